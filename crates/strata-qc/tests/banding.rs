//! Band-wise accumulation gives bit-identical results to whole-image computation.

mod common;

use common::{Image, Pixels, Rng};
use proptest::prelude::*;
use strata_qc::{PixelFormat, PlaneGeometry, QcConfig, Samples, analyze_plane};

fn format() -> impl Strategy<Value = PixelFormat> {
    prop_oneof![
        Just(PixelFormat::Gray8),
        Just(PixelFormat::Gray16),
        Just(PixelFormat::Rgb8),
        Just(PixelFormat::Rgb16),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn banding_does_not_change_any_number(
        w in 1usize..40,
        h in 1usize..40,
        format in format(),
        seed in any::<u64>(),
        split_seed in any::<u64>(),
        max_band in 1usize..12,
        tile_size in 8usize..20,
        levels in 1u64..=65536,
    ) {
        let mut rng = Rng(seed);
        let n = w * h * format.channels();
        let top = u64::from(format.type_max()).min(levels - 1);
        let pixels = if format.bits() == 8 {
            Pixels::U8((0..n).map(|_| rng.below(top + 1) as u8).collect())
        } else {
            Pixels::U16((0..n).map(|_| rng.below(top + 1) as u16).collect())
        };
        let img = Image { name: "p".into(), geometry: PlaneGeometry::new(w, h, format), pixels };
        let config = QcConfig { tile_size, ..QcConfig::default() };
        let whole = analyze_plane(img.geometry, img.samples(), &config).expect("whole");
        let banded = img.analyze_in_bands(&config, &mut Rng(split_seed), max_band);
        prop_assert_eq!(&whole, &banded);
        prop_assert_eq!(whole.tiles.tiles.len(), w.div_ceil(tile_size) * h.div_ceil(tile_size));
    }

    #[test]
    fn column_segments_do_not_change_any_number(
        w in 1usize..40,
        h in 1usize..40,
        format in format(),
        seed in any::<u64>(),
        split_seed in any::<u64>(),
        max_band in 1usize..12,
        max_cols in 1usize..12,
        tile_size in 8usize..20,
        thumbnail_max_side in 0usize..12,
    ) {
        let mut rng = Rng(seed);
        let n = w * h * format.channels();
        let pixels = if format.bits() == 8 {
            Pixels::U8((0..n).map(|_| rng.below(256) as u8).collect())
        } else {
            Pixels::U16((0..n).map(|_| rng.below(65536) as u16).collect())
        };
        let img = Image { name: "p".into(), geometry: PlaneGeometry::new(w, h, format), pixels };
        let config = QcConfig { tile_size, thumbnail_max_side, ..QcConfig::default() };
        let whole = analyze_plane(img.geometry, img.samples(), &config).expect("whole");
        let cut = img.analyze_in_segments(&config, &mut Rng(split_seed), max_band, max_cols);
        prop_assert_eq!(&whole, &cut);
    }
}

#[test]
fn segments_out_of_order_are_errors() {
    use strata_qc::PlaneAccumulator;
    let g = PlaneGeometry::new(6, 4, PixelFormat::Gray8);
    let mut a = PlaneAccumulator::new(g, &QcConfig::default()).expect("valid");
    // Columns 0..3 of two rows, then a segment that skips column 3.
    a.push_segment(0, 3, Samples::U8(&[1; 6]))
        .expect("first segment");
    assert!(a.push_segment(4, 2, Samples::U8(&[1; 4])).is_err());
    // A segment with another row count than its band's.
    assert!(a.push_segment(3, 3, Samples::U8(&[1; 9])).is_err());
    // Past the plane's width.
    assert!(a.push_segment(3, 4, Samples::U8(&[1; 8])).is_err());
    a.push_segment(3, 3, Samples::U8(&[1; 6]))
        .expect("the band's end");
    assert_eq!(a.rows_received(), 2);
    assert!(a.push_segment(0, 6, Samples::U8(&[1; 12])).is_ok());
    a.finish().expect("complete");
}

#[test]
fn row_by_row_equals_whole_on_a_large_plane() {
    let mut rng = Rng(7);
    let (w, h) = (1031, 777);
    let data: Vec<u16> = (0..w * h).map(|_| rng.below(65536) as u16).collect();
    let g = PlaneGeometry::new(w, h, PixelFormat::Gray16);
    let config = QcConfig::default();
    let whole = analyze_plane(g, Samples::U16(&data), &config).expect("whole");
    let img = Image {
        name: "l".into(),
        geometry: g,
        pixels: Pixels::U16(data),
    };
    let rows = img.analyze_in_bands(&config, &mut Rng(1), 1);
    assert_eq!(whole, rows);
    assert_eq!(whole.tiles.cols, 3);
    assert_eq!(whole.tiles.rows, 2);
}

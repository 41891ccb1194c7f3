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

//! From tiled TIFFs to OME-Zarr: a synthetic z-stack written as TIFF, read by `TiffStack` and
//! converted, reads back through zarrs equal to the synthetic source, sample for sample; the
//! pixel size comes from the TIFF resolution tags. Read in column segments (tile regions) or
//! in whole rows, the shards are the same bytes.

use strata_zstack::{
    ConvertOptions, ImageOptions, NoHook, SampleOptions, SampleType, Section, SyntheticStack,
    TiffStack, TileCompression, ZStackSource, convert, write_sample,
};

mod common;

/// Converts a synthetic stack of `tile` x `tile` TIFF tiles into `chunk` x `chunk` inner chunks,
/// reading level 0 in column segments of `segment_chunks` chunks.
fn check(
    channels: u32,
    st: SampleType,
    compression: TileCompression,
    (tile, chunk, segment_chunks): (u32, u32, Option<u32>),
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = SampleOptions {
        width: 300,
        height: 200,
        planes: 3,
        in_focus_plane: 1,
        channels,
        sample_type: st,
        tile,
        compression,
        seed: 5,
        pixel_size_um: 0.5,
        ..SampleOptions::default()
    };
    write_sample(&dir.path().join("zstack"), &o).expect("sample");
    let mut stack = TiffStack::open(&dir.path().join("zstack")).expect("open");
    let section = common::section(&dir.path().join("bids"));
    let options = |segment_chunks| ConvertOptions {
        image: ImageOptions {
            chunk,
            segment_chunks,
            ..ImageOptions::default()
        },
        ..ConvertOptions::default()
    };
    let summary =
        convert(&mut stack, &section, &options(segment_chunks), &mut NoHook).expect("convert");
    // The same stack in whole rows (one segment: wider than the plane) writes the same shards.
    let whole = Section {
        bids_root: dir.path().join("whole"),
        ..section.clone()
    };
    let rows = convert(&mut stack, &whole, &options(Some(1000)), &mut NoHook).expect("convert");
    for level in 0..summary.arrays.levels.len() {
        let key = format!("{level}/c.0.0.0.0");
        assert!(
            std::fs::read(summary.output.join(&key)).expect("segments")
                == std::fs::read(rows.output.join(&key)).expect("rows"),
            "{key}: column segments and whole rows differ"
        );
    }

    let (shape, got) = common::read_level(&summary.output, 0, st);
    assert_eq!(shape, [u64::from(channels), 3, 200, 300]);
    let mut truth = SyntheticStack::new(o).expect("synthetic");
    let (w, h, c) = (300usize, 200usize, channels as usize);
    let planes: Vec<Vec<u8>> = (0..3)
        .map(|z| {
            let mut p = vec![0u8; h * truth.info().row_bytes()];
            truth.read_band(z, 0, 200, &mut p).expect("truth");
            p
        })
        .collect();
    let mut i = 0;
    for ch in 0..c {
        for p in &planes {
            for y in 0..h {
                for x in 0..w {
                    let k = (y * w + x) * c + ch;
                    let want = match st {
                        SampleType::U8 => u64::from(p[k]),
                        SampleType::U16 => u64::from(u16::from_ne_bytes([p[2 * k], p[2 * k + 1]])),
                    };
                    assert_eq!(got[i], want, "c{ch} y{y} x{x}");
                    i += 1;
                }
            }
        }
    }
    let sidecar = summary.output.with_extension("").with_extension("json");
    let text = std::fs::read_to_string(&sidecar).expect("sidecar");
    assert!(
        text.contains("0.5"),
        "pixel size from the TIFF tags: {text}"
    );
}

#[test]
fn gray8_lzw_tiles_to_zarr() {
    // Segments of one 128-pixel chunk of 64-pixel tiles: 128 + 128 + 44 columns.
    check(1, SampleType::U8, TileCompression::Lzw, (64, 128, Some(1)));
    check(1, SampleType::U8, TileCompression::Lzw, (128, 512, None));
}

#[test]
fn rgb16_zstd_tiles_to_zarr() {
    // Segments of two 64-pixel chunks of 32-pixel tiles: 128 + 128 + 44 columns.
    check(
        3,
        SampleType::U16,
        TileCompression::Zstd(3),
        (32, 64, Some(2)),
    );
}

//! zarr-python 3 and tensorstore read the converter's shards: every sample of every level
//! equals what the converter wrote (level 0: the source; lower levels: zarrs' reading of the
//! same array, itself checked against the 2 x 2 mean in `roundtrip.rs`).
//!
//! Needs `STRATA_PYTHON` (set by `cargo xtask test`); skipped without it unless
//! `STRATA_REQUIRE_PEERS` is set.

use std::path::Path;
use strata_zstack::{
    Compression, ConvertOptions, ImageOptions, MemorySource, NoHook, PixelSize, SampleType, convert,
};

use strata_testkit::{peer_script, python, run_python};

mod common;

/// Level bytes in C order, little-endian, as zarrs reads them.
fn zarrs_level(image: &Path, level: usize, st: SampleType) -> Vec<u8> {
    let (_, values) = common::read_level(image, level, st);
    match st {
        SampleType::U8 => values.into_iter().map(|v| v as u8).collect(),
        SampleType::U16 => values
            .into_iter()
            .flat_map(|v| (v as u16).to_le_bytes())
            .collect(),
    }
}

fn check(w: u32, h: u32, planes: u32, channels: u32, st: SampleType) {
    let Some(python) = python() else { return };
    let info = common::stack_info((w, h, planes), channels, st, |z| format!("z{z}.tif"));
    let n = (w * h * channels) as usize * st.bytes();
    let data: Vec<Vec<u8>> = (0..planes)
        .map(|z| {
            (0..n)
                .map(|i| ((i * 31 + z as usize * 7) % 251) as u8)
                .collect()
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let section = common::section(&dir.path().join("bids"));
    let opts = ConvertOptions {
        image: ImageOptions {
            chunk: 128,
            compression: Compression::Zstd(3),
            planes_per_shard: None,
            ..ImageOptions::default()
        },
        pixel_size: Some(PixelSize {
            x: 0.5,
            y: 0.5,
            z: 1.0,
        }),
        ..ConvertOptions::default()
    };
    let mut source = MemorySource::new(info.clone(), data.clone()).expect("source");
    let summary = convert(&mut source, &section, &opts, &mut NoHook).expect("convert");
    let out = dir.path().join("peer");
    std::fs::create_dir_all(&out).expect("mkdir");
    run_python(
        &python,
        peer_script("read_levels.py"),
        [&summary.output, &out],
    );

    // Level 0 must equal the source, reordered to (c, z, y, x) little-endian.
    let bps = st.bytes();
    let mut expected = Vec::with_capacity(n * planes as usize);
    for c in 0..channels as usize {
        for plane in &data {
            for px in 0..(w * h) as usize {
                let i = (px * channels as usize + c) * bps;
                let mut s = plane[i..i + bps].to_vec();
                if cfg!(target_endian = "big") {
                    s.reverse();
                }
                expected.extend_from_slice(&s);
            }
        }
    }
    for level in 0..summary.arrays.levels.len() {
        let ours = if level == 0 {
            expected.clone()
        } else {
            zarrs_level(&summary.output, level, st)
        };
        for reader in ["zarr", "tensorstore"] {
            let got = std::fs::read(out.join(format!("{reader}-{level}.raw"))).expect("raw");
            assert!(got == ours, "{reader} reads level {level} differently");
        }
    }
}

#[test]
fn zarr_python_and_tensorstore_read_gray8() {
    check(300, 270, 3, 1, SampleType::U8);
}

#[test]
fn zarr_python_and_tensorstore_read_rgb16() {
    check(200, 150, 2, 3, SampleType::U16);
}

//! From tiled TIFFs to OME-Zarr: a synthetic z-stack written as TIFF, read by `TiffStack` and
//! converted, reads back through zarrs equal to the synthetic source, sample for sample; the
//! pixel size comes from the TIFF resolution tags.

use std::sync::Arc;
use strata_bids::name::{Label, Suffix};
use strata_zstack::{
    ConvertOptions, NoHook, SampleOptions, SampleType, Section, SyntheticStack, TiffStack,
    TileCompression, ZStackSource, convert, write_sample,
};
use zarrs::array::{Array, ArraySubset};
use zarrs::filesystem::FilesystemStore;

fn check(channels: u32, st: SampleType, compression: TileCompression) {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = SampleOptions {
        width: 300,
        height: 200,
        planes: 3,
        in_focus_plane: 1,
        channels,
        sample_type: st,
        tile: 128,
        compression,
        seed: 5,
        pixel_size_um: 0.5,
        ..SampleOptions::default()
    };
    write_sample(&dir.path().join("zstack"), &o).expect("sample");
    let mut stack = TiffStack::open(&dir.path().join("zstack")).expect("open");
    let section = Section {
        bids_root: dir.path().join("bids"),
        subject: Label::new("sub", "01").expect("label"),
        session: None,
        sample: Label::new("sample", "01").expect("label"),
        stain: None,
        suffix: Suffix::BF,
    };
    let summary = convert(
        &mut stack,
        &section,
        &ConvertOptions::default(),
        &mut NoHook,
    )
    .expect("convert");

    let store = Arc::new(FilesystemStore::new(&summary.output).expect("store"));
    let array = Array::open(store, "/0").expect("level 0");
    assert_eq!(array.shape(), [u64::from(channels), 3, 200, 300]);
    let subset = ArraySubset::new_with_shape(array.shape().to_vec());
    let got: Vec<u64> = match st {
        SampleType::U8 => array
            .retrieve_array_subset::<Vec<u8>>(&subset)
            .expect("read")
            .into_iter()
            .map(u64::from)
            .collect(),
        SampleType::U16 => array
            .retrieve_array_subset::<Vec<u16>>(&subset)
            .expect("read")
            .into_iter()
            .map(u64::from)
            .collect(),
    };
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
    check(1, SampleType::U8, TileCompression::Lzw);
}

#[test]
fn rgb16_zstd_tiles_to_zarr() {
    check(3, SampleType::U16, TileCompression::Zstd(3));
}

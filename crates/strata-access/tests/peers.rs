//! Every region read equals the same region read by zarr-python and by tensorstore from the
//! same image (random regions at every level; uint8 and uint16, gray and RGB; folder and
//! `.ozx`, the archive by zarr-python only: see `tests/peers/read_regions.py`). Needs the
//! Python peers (`STRATA_PYTHON`, set by `cargo xtask test`).

mod common;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::json;
use strata_access::{Image, Region};
use strata_store::sha2::{Digest, Sha256};
use strata_zstack::{Layout, MemorySource, SampleType, StackInfo};

fn source(channels: u32, sample: SampleType) -> MemorySource {
    let (w, h, planes) = (520u32, 390u32, 3u32);
    let info = StackInfo {
        width: w,
        height: h,
        planes,
        channels,
        sample_type: sample,
        pixel_size: None,
        plane_names: (0..planes).map(|z| format!("z{z}.tif")).collect(),
    };
    let samples = (w * h * channels) as usize;
    let data = (0..planes)
        .map(|z| {
            let mut p = Vec::new();
            for i in 0..samples {
                let v = (i * 7 + (i / 13) * 3 + z as usize * 101) as u32;
                match sample {
                    SampleType::U8 => p.push(v as u8),
                    SampleType::U16 => p.extend_from_slice(&((v * 37) as u16).to_le_bytes()),
                }
            }
            p
        })
        .collect();
    MemorySource::new(info, data).expect("stack")
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn regions_equal_zarr_python_and_tensorstore() {
    let Some(python) = strata_testkit::python() else {
        strata_testkit::missing("STRATA_PYTHON (zarr-python and tensorstore) for the peer reads");
        return;
    };
    let script = strata_testkit::peer_script("read_regions.py");
    let mut runner = TestRunner::deterministic();
    for (channels, sample) in [
        (1, SampleType::U8),
        (3, SampleType::U8),
        (1, SampleType::U16),
    ] {
        for layout in [Layout::Folder, Layout::Ozx] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = common::convert_to(dir.path(), &mut source(channels, sample), layout, 1.0)
                .to_string_lossy()
                .into_owned();
            let img = Image::open(&path).expect("open");
            let mut regions = Vec::new();
            let mut ours = Vec::new();
            for level in 0..img.levels().len() {
                let shape = img.level(level).expect("level").shape.clone();
                for _ in 0..8 {
                    let ranges: Vec<_> = shape
                        .iter()
                        .map(|&n| {
                            (0..n)
                                .prop_flat_map(move |a| (proptest::strategy::Just(a), a + 1..=n))
                                .new_tree(&mut runner)
                                .expect("strategy")
                                .current()
                        })
                        .collect();
                    let region = Region::new(ranges.iter().map(|&(a, b)| a..b).collect());
                    ours.push(sha(&img.read_region(level, &region).expect("read")));
                    regions.push(json!({
                        "level": level,
                        "region": ranges.iter().map(|&(a, b)| [a, b]).collect::<Vec<_>>(),
                    }));
                }
            }
            let spec = dir.path().join("regions.json");
            std::fs::write(&spec, serde_json::to_vec(&regions).expect("json")).expect("write");
            let peers = strata_testkit::python_json(
                &python,
                &script,
                [path.as_str(), spec.to_str().expect("utf-8")],
            );
            let peers = peers.as_array().expect("a list");
            assert_eq!(peers.len(), ours.len());
            for (i, (p, o)) in peers.iter().zip(&ours).enumerate() {
                let readers: &[&str] = match layout {
                    Layout::Folder => &["zarr", "tensorstore"],
                    _ => &["zarr"],
                };
                for &reader in readers {
                    assert_eq!(
                        p[reader].as_str(),
                        Some(o.as_str()),
                        "{reader} disagrees on {} of {path} ({channels} channels, {sample:?})",
                        regions[i]
                    );
                }
            }
        }
    }
}

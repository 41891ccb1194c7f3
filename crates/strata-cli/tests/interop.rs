//! Images that Strata writes are read by independent readers: ome-zarr-models validates the
//! OME-NGFF group and zarr-python reads every level, pixel sums equal to what Strata wrote.
//!
//! Needs `STRATA_PYTHON` (a Python with zarr and ome-zarr-models; `cargo xtask test` sets it);
//! skipped without it unless `STRATA_REQUIRE_PEERS` is set.

mod common;
use common::{run, strata};

#[test]
fn demo_images_open_in_zarr_python_and_ome_zarr_models() {
    let Some(python) = strata_testkit::python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("ds");
    let status = run(strata()
        .args([
            "demo",
            "--json",
            "--sections",
            "2",
            "--size",
            "640x520",
            "--planes",
            "3",
        ])
        .arg("--out")
        .arg(&out));
    assert!(status.status.success());
    let micr = out.join("sub-BB01/micr");
    let images: Vec<_> = strata_testkit::names(&micr)
        .into_iter()
        .filter(|n| n.ends_with(".ome.zarr"))
        .map(|n| micr.join(n))
        .collect();
    assert_eq!(images.len(), 2);
    let v = strata_testkit::python_json(
        &python,
        strata_testkit::peer_script("check_ome_zarr.py"),
        &images,
    );
    for (image, seen) in images.iter().zip(v["images"].as_array().expect("images")) {
        assert_eq!(
            seen["valid"],
            true,
            "{}: {}",
            image.display(),
            seen["error"]
        );
        assert_eq!(seen["levels"].as_array().map(Vec::len), Some(2));
        for (l, (h, w)) in [(0usize, (520u64, 640u64)), (1, (260, 320))] {
            let level = &seen["levels"][l];
            assert_eq!(level["shape"], serde_json::json!([1, 3, h, w]));
            assert_eq!(level["dtype"], "uint8");
            // Bright background, darker tissue: every plane has content, none is saturated.
            for z in 0..3 {
                let sum = level["plane_sums"][z].as_u64().expect("sum");
                assert!(sum > 0 && sum < 255 * h * w, "level {l} plane {z}: {sum}");
            }
        }
    }
}

//! `strata read`: a region of a converted section, as `.npy` and `.tif`, equals the same region
//! of the source TIFF (read by tifffile and NumPy when the Python peers are configured); bad
//! regions and outputs are explained.

mod common;
use common::{convert, run, sample, strata};
use std::path::Path;

fn converted(dir: &Path, layout: &str) -> String {
    let raw = dir.join("raw");
    if !raw.exists() {
        sample(&raw, &["--size", "600x500", "--planes", "3"]);
    }
    let bids = dir.join(format!("bids-{layout}"));
    let out = run(convert(&raw, &bids).args([
        "--subject",
        "BB01",
        "--sample",
        "0001",
        "--layout",
        layout,
        "--json",
    ]));
    assert!(
        out.status.success(),
        "{}",
        strata_testkit::output_text(&out)
    );
    strata_testkit::stdout_json(&out)["output"]
        .as_str()
        .expect("output")
        .to_owned()
}

#[test]
fn a_region_equals_the_source_plane() {
    let dir = tempfile::tempdir().expect("tempdir");
    for layout in ["zarr", "ozx"] {
        let image = converted(dir.path(), layout);
        let npy = dir.path().join(format!("{layout}.npy"));
        let tif = dir.path().join(format!("{layout}.tif"));
        for out in [&npy, &tif] {
            let o = run(strata()
                .args([
                    "read",
                    &image,
                    "--region",
                    "1,10:110,20:220",
                    "--json",
                    "--out",
                ])
                .arg(out));
            assert!(o.status.success(), "{}", strata_testkit::output_text(&o));
            let v = strata_testkit::stdout_json(&o);
            assert_eq!(v["shape"], serde_json::json!([1, 1, 100, 200]));
            assert_eq!(v["bytes"], 20000);
        }
        let bytes = std::fs::read(&npy).expect("npy");
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        let Some(python) = strata_testkit::python() else {
            strata_testkit::missing("STRATA_PYTHON (NumPy, tifffile) to compare the pixels");
            continue;
        };
        let check = "import sys, numpy, tifffile\n\
            a = numpy.load(sys.argv[1])\n\
            t = tifffile.imread(sys.argv[2])\n\
            src = tifffile.imread(sys.argv[3])[10:110, 20:220]\n\
            assert a.shape == (1, 1, 100, 200), a.shape\n\
            assert (a[0, 0] == src).all() and (t == src).all()\n\
            print('{\"ok\": true}')\n";
        let src = dir.path().join("raw/z01.tif");
        let o = run(std::process::Command::new(&python)
            .args(["-c", check])
            .arg(&npy)
            .arg(&tif)
            .arg(&src));
        assert!(o.status.success(), "{}", strata_testkit::output_text(&o));
    }
}

#[test]
fn bad_requests_say_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = converted(dir.path(), "zarr");
    let out = dir.path().join("a.npy");
    for (region, level, expect) in [
        ("1,0:600,0:10", "0", "does not fit"),
        ("0,0:10,0:10", "9", "no level 9"),
        ("0,0:10", "0", "Z,Y0:Y1,X0:X1"),
    ] {
        let o = run(strata()
            .args([
                "read", &image, "--region", region, "--level", level, "--out",
            ])
            .arg(&out));
        assert!(!o.status.success(), "{region}");
        let text = strata_testkit::output_text(&o);
        assert!(text.contains(expect), "{region}: {text}");
        assert!(!text.contains("panicked"), "{text}");
    }
    let o = run(strata()
        .args(["read", &image, "--region", "0:3,0:10,0:10", "--out"])
        .arg(dir.path().join("a.tif")));
    assert!(strata_testkit::output_text(&o).contains("one plane"));
    let o = run(strata()
        .args(["read", &image, "--region", "0,0:10,0:10", "--out"])
        .arg(dir.path().join("a.png")));
    assert!(strata_testkit::output_text(&o).contains(".npy or .tif"));
    assert!(!dir.path().join("a.png").exists());
}

//! HDF5 at the command line: `strata convert <file.h5>` (a 3-D dataset, or a group of 2-D
//! planes with `--h5-dataset`), `--hdf5 <OUT.h5>` after publishing, `strata export-hdf5`, and
//! corrupt input as a clear error with exit code 2. Without the `hdf5` feature, HDF5 input
//! and output are a clear error naming the feature.

mod common;
use common::{run, stderr, strata};

#[cfg(not(feature = "hdf5"))]
#[test]
fn without_the_feature_hdf5_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h5 = dir.path().join("stack.h5");
    std::fs::write(&h5, b"whatever").expect("write");
    let o = run(strata()
        .arg("convert")
        .arg(&h5)
        .arg("--bids-root")
        .arg(dir.path().join("bids"))
        .args(["--subject", "01", "--sample", "01"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o)
            .contains("HDF5 input needs strata built with --features hdf5 (Debian: libhdf5-dev)"),
        "{}",
        stderr(&o)
    );
    let o = run(strata()
        .arg("export-hdf5")
        .arg(dir.path().join("x.ome.zarr"))
        .arg(dir.path().join("x.h5")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--features hdf5"), "{}", stderr(&o));
}

#[cfg(feature = "hdf5")]
mod with_hdf5 {
    /// Serialises the tests of this file. HDF5 opens files without close-on-exec and locks
    /// them, so a child process started by one test (h5py, strata) would inherit another test's
    /// open HDF5 file and its lock, and that test's next open of the file fails with EAGAIN.
    fn serial() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        LOCK.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    use super::{run, stderr, strata};
    use hdf5_metno as hdf5;
    use serde_json::Value;
    use std::path::Path;

    const Z: usize = 3;
    const H: usize = 150;
    const W: usize = 170;

    fn pixels() -> Vec<u8> {
        (0..Z * H * W).map(|i| ((i * 37) % 251) as u8).collect()
    }

    /// One 3-D dataset at the root, and a group of 2-D planes with a pixel size.
    fn write_inputs(dir: &Path) {
        let data = pixels();
        let f = hdf5::File::create(dir.join("volume.h5")).expect("create");
        f.new_dataset::<u8>()
            .shape((Z, H, W))
            .create("focus")
            .expect("dataset")
            .write_raw(&data)
            .expect("write");
        let f = hdf5::File::create(dir.join("planes.hdf5")).expect("create");
        let g = f.create_group("scan/planes").expect("group");
        for (i, name) in ["z0", "z1", "z2"].iter().enumerate() {
            let ds = g
                .new_dataset::<u8>()
                .shape((H, W))
                .create(*name)
                .expect("dataset");
            ds.write_raw(&data[i * H * W..(i + 1) * H * W])
                .expect("write");
            ds.new_attr::<f64>()
                .shape(2)
                .create("element_size_um")
                .expect("attr")
                .write_raw(&[0.5, 0.5])
                .expect("write");
        }
    }

    fn convert(dir: &Path, input: &str, sample: &str, extra: &[&str]) -> Output {
        run(super::common::convert(&dir.join(input), &dir.join("bids"))
            .args([
                "--subject",
                "01",
                "--sample",
                sample,
                "--chunk",
                "64",
                "--json",
            ])
            .args(extra))
    }

    use std::process::Output;

    #[test]
    fn convert_h5_inputs_and_export() {
        let _serial = serial();
        let dir = tempfile::tempdir().expect("tempdir");
        write_inputs(dir.path());
        let out_h5 = dir.path().join("legacy.h5");
        let o = convert(
            dir.path(),
            "volume.h5",
            "01",
            &[
                "--pixel-size",
                "0.5,0.5,2",
                "--hdf5",
                out_h5.to_str().expect("utf-8"),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(v["planes"], 3);
        let levels = v["arrays"]["levels"].as_array().expect("levels").len();
        assert!(levels >= 2);
        assert_eq!(
            v["hdf5"]["levels"].as_array().expect("hdf5 levels").len(),
            levels
        );
        assert!(v["hdf5"]["bytes"].as_u64().is_some_and(|b| b > 0));
        assert!(v["hdf5"]["seconds"].as_f64().is_some());
        // Level 0 of the HDF5 copy is the input, as (c, z, y, x).
        let f = hdf5::File::open(&out_h5).expect("open");
        let ds = f.dataset("0").expect("/0");
        assert_eq!(ds.shape(), vec![1, Z, H, W]);
        assert!(ds.read_raw::<u8>().expect("read") == pixels());
        drop(f);

        // A group of 2-D planes, pixel size from `element_size_um`.
        let o = convert(
            dir.path(),
            "planes.hdf5",
            "02",
            &["--h5-dataset", "scan/planes"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(v["planes"], 3);
        assert!(v.get("hdf5").is_none());
        let image = v["output"].as_str().expect("output").to_owned();

        // The dataset is valid.
        let o = run(strata().arg("validate").arg(dir.path().join("bids")));
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );

        // export-hdf5 on its own, uncompressed.
        let out2 = dir.path().join("planes.h5");
        let o = run(strata().arg("export-hdf5").arg(&image).arg(&out2).args([
            "--compression",
            "none",
            "--json",
        ]));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(v["levels"].as_array().expect("levels").len(), levels);
        let f = hdf5::File::open(&out2).expect("open");
        assert!(f.dataset("0").expect("/0").read_raw::<u8>().expect("read") == pixels());
        assert!(f.attr("multiscales").is_ok());

        // One archive and an HDF5 copy: the copy reads the folder, which is then packed.
        let out3 = dir.path().join("packed.h5");
        let o = convert(
            dir.path(),
            "volume.h5",
            "03",
            &[
                "--pixel-size",
                "0.5,0.5,2",
                "--layout",
                "ozx",
                "--hdf5",
                out3.to_str().expect("utf-8"),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).expect("json");
        let archive = std::path::PathBuf::from(v["output"].as_str().expect("output"));
        assert!(archive.is_file() && archive.extension().is_some_and(|e| e == "ozx"));
        assert!(
            !archive.with_extension("ome.zarr").exists(),
            "the folder is packed"
        );
        let f = hdf5::File::open(&out3).expect("open");
        assert!(f.dataset("0").expect("/0").read_raw::<u8>().expect("read") == pixels());
        drop(f);

        // Text output names the file.
        let o = run(strata().arg("export-hdf5").arg(&image).arg(&out2));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("planes.h5"));
    }

    /// HDF5 in, into a DataLad dataset, with an HDF5 copy inside it: all saved in one commit,
    /// the arrays and the copy annexed. Runs when `STRATA_DATALAD` names a datalad executable
    /// (`cargo xtask test` sets it); a failure without it when `STRATA_REQUIRE_PEERS` is set.
    #[test]
    fn h5_input_and_copy_saved_in_datalad() {
        // Serialised before `datalad()` starts git: see `serial`.
        let _serial = serial();
        let Some(datalad) = strata_testkit::datalad() else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        write_inputs(dir.path());
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let root = dir.path().join("brain");
        let copy = root.join("derivatives/hdf5/sub-01_sample-05_BF.h5");
        let o = run(strata()
            .env("HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("STRATA_DATALAD", &datalad)
            .arg("convert")
            .arg(dir.path().join("volume.h5"))
            .arg("--datalad")
            .arg(&root)
            .args([
                "--datalad-group",
                "none",
                "--subject",
                "01",
                "--sample",
                "05",
            ])
            .args(["--pixel-size", "0.5,0.5,2", "--chunk", "64", "--json"])
            .arg("--hdf5")
            .arg(&copy));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).expect("json");
        assert!(
            v["datalad"]["commit"]
                .as_str()
                .is_some_and(|c| c.len() == 40)
        );
        assert!(v["hdf5"]["bytes"].as_u64().is_some_and(|b| b > 0));
        // The provenance names the HDF5 file with its size and checksum.
        assert_eq!(v["sources"][0]["name"], "volume.h5");
        assert_eq!(v["sources"][0]["sha256"].as_str().map(str::len), Some(64));
        let git = |args: &[&str]| {
            let o = run(std::process::Command::new("git")
                .env("HOME", &home)
                .arg("-C")
                .arg(&root)
                .args(args));
            assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        assert_eq!(git(&["status", "--porcelain"]), "", "everything is saved");
        let annexed = git(&["annex", "find"]);
        assert!(
            annexed.contains("derivatives/hdf5/sub-01_sample-05_BF.h5"),
            "{annexed}"
        );
        assert!(annexed.contains("0/c.0.0.0.0"), "{annexed}");
        let f = hdf5::File::open(&copy).expect("open the copy");
        assert!(f.dataset("0").expect("/0").read_raw::<u8>().expect("read") == pixels());
    }

    #[test]
    fn corrupt_h5_is_exit_2_not_a_panic() {
        let _serial = serial();
        let dir = tempfile::tempdir().expect("tempdir");
        write_inputs(dir.path());
        let bytes = std::fs::read(dir.path().join("volume.h5")).expect("read");
        for (name, content) in [
            ("truncated.h5", bytes[..bytes.len() / 3].to_vec()),
            ("header-only.h5", bytes[..64.min(bytes.len())].to_vec()),
            ("garbage.h5", b"this is not an HDF5 file at all".to_vec()),
            ("empty.h5", Vec::new()),
        ] {
            std::fs::write(dir.path().join(name), &content).expect("write");
            let o = convert(dir.path(), name, "09", &["--pixel-size", "1,1"]);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{name}: {err}");
            assert!(
                err.contains("strata: error") && err.contains(name),
                "{name}: {err}"
            );
            assert!(!err.contains("panicked"), "{name}: {err}");
        }
        // A missing dataset is named.
        let o = convert(
            dir.path(),
            "volume.h5",
            "09",
            &["--pixel-size", "1,1", "--h5-dataset", "no/such"],
        );
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("no/such"), "{}", stderr(&o));
        // Nothing was published.
        assert!(
            !dir.path().join("bids/sub-01/micr").exists()
                || std::fs::read_dir(dir.path().join("bids/sub-01/micr"))
                    .expect("ls")
                    .all(|e| !e
                        .expect("entry")
                        .file_name()
                        .to_string_lossy()
                        .contains("sample-09"))
        );
        // A bad image for export-hdf5: exit 2, no output file.
        let out = dir.path().join("never.h5");
        let o = run(strata()
            .arg("export-hdf5")
            .arg(dir.path().join("volume.h5"))
            .arg(&out));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(!out.exists());
    }
}

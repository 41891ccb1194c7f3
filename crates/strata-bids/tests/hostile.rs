//! Malformed and hostile datasets give a report (or a clear error), never a panic.

use proptest::prelude::*;
use std::path::Path;
use strata_bids::validate::validate;

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(p, bytes).expect("write");
}

#[test]
fn hostile_contents_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    write(r, "dataset_description.json", &[0xff, 0xfe, 0x00, 0x01]);
    write(r, "participants.tsv", &[0xff, b'\t', 0x80, b'\n']);
    write(r, "samples.tsv", b"");
    let deep = "[".repeat(100_000);
    write(r, "sub-01/micr/sub-01_sample-A_BF.json", deep.as_bytes());
    write(r, "sub-01/micr/sub-01_sample-A_BF.tif", b"II*\0");
    write(
        r,
        "sub-01/micr/sub-01_sample-B_BF.json",
        b"{\"PixelSize\": [1e999, -0], \"PixelSizeUnits\": 7}",
    );
    write(r, "sub-01/micr/sub-01_sample-B_BF.tif", b"II*\0");
    write(
        r,
        "sub-01/micr/sub-01_sample-C_photo.json",
        b"{\"IntendedFor\": [\"../../../etc/passwd\", 5, {}]}",
    );
    write(r, "sub-01/micr/sub-01_sample-C_photo.jpg", b"\xff\xd8");
    write(
        r,
        "sub-01/micr/sub-01_sample-D_BF.ome.zarr",
        b"not a directory",
    );
    write(
        r,
        "sub-01/micr/sub-01_sample-E_BF.tif/inner",
        b"a directory named like a file",
    );
    write(r, "sub-01/ses-/micr/x", b"x");
    write(r, "sub-01/micr/_BF.tif", b"x");
    write(r, "sub-01/micr/sub-01__sample-A_BF.tif", b"x");
    write(r, "sub-01/micr/sub-01_sample-A_BF", b"x");
    write(r, "sub-01/micr/.hidden", b"");
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"sub-01_sample-\xff_BF.tif");
        std::fs::write(r.join("sub-01/micr").join(name), b"x").expect("write");
        std::os::unix::fs::symlink(
            "/nonexistent/annex/object",
            r.join("sub-01/micr/sub-01_sample-F_BF.tif"),
        )
        .expect("symlink");
        std::os::unix::fs::symlink("..", r.join("sub-01/micr/sub-01_sample-G_BF.ome.zarr"))
            .expect("symlink loop");
    }
    let report = validate(r).expect("a report, not an error");
    assert!(report.has_errors());
    let codes: Vec<&str> = report.issues.iter().map(|i| i.code.as_str()).collect();
    for code in [
        "JSON_INVALID",
        "JSON_SCHEMA_VALIDATION_ERROR",
        "EMPTY_FILE",
        "INTENDED_FOR",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    assert!(report.issues.iter().all(|i| !i.message.is_empty()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn arbitrary_trees_never_panic(
        files in proptest::collection::vec(
            ("(sub-[a-z0-9]{1,2}/)?((ses-1|micr|anat)/)?[a-zA-Z0-9_.+-]{0,20}", proptest::collection::vec(any::<u8>(), 0..64)),
            0..12,
        )
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (rel, bytes) in &files {
            let p = dir.path().join(rel);
            if rel.ends_with('/') || p.exists() {
                continue;
            }
            if let Some(d) = p.parent()
                && std::fs::create_dir_all(d).is_err()
            {
                continue;
            }
            let _ = std::fs::write(&p, bytes);
        }
        let _ = validate(dir.path()).expect("validation of a readable tree succeeds");
    }
}

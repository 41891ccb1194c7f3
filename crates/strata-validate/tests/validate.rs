//! The whole check on the public microscopy examples (read in place) and on broken copies: the
//! library gives the verdicts `strata validate` gives, OME-Zarr contents included.

use std::path::{Path, PathBuf};
use strata_validate::{Severity, validate_dataset};

fn examples() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/bids-examples");
    assert!(p.is_dir(), "conformance data missing at {}", p.display());
    p
}

/// The image of `micr_SEMzarr` (OME-NGFF 0.4), relative to the dataset root.
const IMAGE: &str = "sub-01/ses-01/micr/sub-01_ses-01_sample-A_SPIM.ome.zarr";

/// Copies a folder tree (the examples are small).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// A copy of `micr_SEMzarr` in a scratch folder, changed by `mutate` (given the image folder).
fn broken_copy(mutate: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ds");
    copy_tree(&examples().join("micr_SEMzarr"), &root);
    mutate(&root.join(IMAGE));
    (dir, root)
}

fn error_codes(report: &strata_validate::Report) -> Vec<&str> {
    report
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| i.code.as_str())
        .collect()
}

/// The verdicts `strata validate` gives on the public examples (exit 0, 0, 0, 1).
#[test]
fn public_examples_get_the_command_s_verdicts() {
    for (name, errors) in [
        ("micr_SEM", false),
        ("micr_SEMzarr", false),
        ("micr_SPIM", false),
        ("micr_XPCTzarr", true),
    ] {
        let report = validate_dataset(&examples().join(name)).expect("validate");
        assert_eq!(report.has_errors(), errors, "{name}: {:?}", report.issues);
    }
}

/// A broken `zarr.json` in an image is an OME-Zarr error, which the BIDS-only validator does
/// not see.
#[test]
fn broken_ngff_zarr_json_is_an_error() {
    // zarr.json (OME-Zarr 0.5) takes precedence over the image's 0.4 `.zattrs`.
    let (_dir, root) = broken_copy(|image| {
        std::fs::write(image.join("zarr.json"), "{\"zarr_format\": 3,").expect("write");
    });
    let report = validate_dataset(&root).expect("validate");
    assert_eq!(error_codes(&report), ["NGFF_METADATA_INVALID"]);
    let issue = &report.issues[0];
    assert_eq!(issue.location, format!("/{IMAGE}/zarr.json"));
    assert!(
        issue.message.starts_with("the metadata ") && issue.message.ends_with("; rewrite it"),
        "{}",
        issue.message
    );
    assert_eq!(report.summary.errors, 1);

    let bids_only = strata_bids::validate::validate(&root).expect("validate");
    assert!(!bids_only.has_errors(), "{:?}", bids_only.issues);
    // The same validator, built from its parts.
    let by_hand = strata_validate::validator()
        .validate(&root)
        .expect("validate");
    assert_eq!(by_hand, report);
}

/// A missing NGFF document, and a level-0 scale that disagrees with the sidecar's
/// `PixelSize` once the axes have a length unit (the example spells it `units`, so the
/// comparison is only a warning there).
#[test]
fn missing_metadata_and_pixel_size_mismatch() {
    let (_dir, root) = broken_copy(|image| {
        std::fs::remove_file(image.join(".zattrs")).expect("rm");
    });
    let report = validate_dataset(&root).expect("validate");
    assert_eq!(error_codes(&report), ["NGFF_METADATA_MISSING"]);

    let pristine = validate_dataset(&examples().join("micr_SEMzarr")).expect("validate");
    assert!(
        pristine
            .issues
            .iter()
            .any(|i| i.code == "PIXEL_SIZE_UNVERIFIED"),
        "{:?}",
        pristine.issues
    );
    let (_dir, root) = broken_copy(|image| {
        let path = image.join(".zattrs");
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, text.replace("\"units\"", "\"unit\"")).expect("write");
    });
    let report = validate_dataset(&root).expect("validate");
    assert_eq!(error_codes(&report), ["PIXEL_SIZE_MISMATCH"]);
}

#[test]
fn a_missing_root_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        validate_dataset(&dir.path().join("absent")),
        Err(strata_bids::Error::NotADataset { .. })
    ));
}

/// Replaces the image folder of `root` by one `.ozx` archive of the same files.
fn to_archive(root: &Path) -> PathBuf {
    use strata_store::{OzxOptions, PosixStore, StoreKey};
    let store = PosixStore::open(root).expect("store");
    let archive = IMAGE.replace(".ome.zarr", ".ozx");
    strata_store::block_on(strata_store::ozx::pack(
        &store,
        Some(&StoreKey::new(IMAGE).expect("key")),
        &store,
        &StoreKey::new(archive.as_str()).expect("key"),
        OzxOptions::default().ome_version("0.4"),
    ))
    .expect("pack");
    std::fs::remove_dir_all(root.join(IMAGE)).expect("rm");
    root.join(archive)
}

/// A dataset whose image is one `.ozx` gets the verdicts of the same dataset with the image
/// folder, issue for issue (the archive is checked as the folder it is served as), and the
/// content checks read the archive: a broken image inside it is found.
#[test]
fn an_ozx_image_is_checked_as_its_folder() {
    let (_dir, root) = broken_copy(|_| {});
    let folder = validate_dataset(&root).expect("validate");
    to_archive(&root);
    let archive = validate_dataset(&root).expect("validate");
    assert_eq!(archive.issues, folder.issues);
    assert_eq!(archive.summary.files, folder.summary.files);
    assert_eq!((folder.summary.archives, archive.summary.archives), (0, 1));
    assert!(!archive.has_errors(), "{:?}", archive.issues);

    let (_dir, root) = broken_copy(|image| {
        let path = image.join(".zattrs");
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, text.replace("\"units\"", "\"unit\"")).expect("write");
    });
    to_archive(&root);
    let report = validate_dataset(&root).expect("validate");
    assert_eq!(error_codes(&report), ["PIXEL_SIZE_MISMATCH"]);

    let (_dir, root) = broken_copy(|image| {
        std::fs::remove_file(image.join(".zattrs")).expect("rm");
    });
    to_archive(&root);
    let report = validate_dataset(&root).expect("validate");
    assert_eq!(error_codes(&report), ["NGFF_METADATA_MISSING"]);

    // A truncated archive is named, not a crash.
    let (_dir, root) = broken_copy(|_| {});
    let path = to_archive(&root);
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    let report = validate_dataset(&root).expect("validate");
    assert_eq!(error_codes(&report), ["OZX_INVALID"]);
    assert!(
        report
            .issues
            .iter()
            .any(|i| i.location.ends_with(".ome.zarr/")),
        "{:?}",
        report.issues
    );
}

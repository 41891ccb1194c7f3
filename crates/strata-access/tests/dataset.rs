//! Selecting the images of a BIDS dataset by entity.

use std::fs;
use std::path::Path;

use strata_access::{Error, Selection, dataset_images};

fn tree(root: &Path) {
    fs::write(root.join("dataset_description.json"), "{}").expect("write");
    for dir in [
        "sub-01/micr/sub-01_sample-A_stain-HE_BF.ome.zarr",
        "sub-02/micr/sub-02_sample-C_stain-Nissl_BF.ome.zarr",
        // Not a valid name (no sample): skipped.
        "sub-02/micr/sub-02_BF.ome.zarr",
        // In the wrong subject's folder: skipped.
        "sub-02/micr/sub-03_sample-D_BF.ome.zarr",
    ] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    fs::create_dir_all(root.join("sub-01/ses-2/micr")).expect("mkdir");
    fs::write(
        root.join("sub-01/ses-2/micr/sub-01_ses-2_sample-B_BF.ozx"),
        b"",
    )
    .expect("write");
    fs::write(
        root.join("sub-01/micr/sub-01_sample-A_stain-HE_BF.json"),
        "{}",
    )
    .expect("write");
}

fn names(root: &Path, selection: &Selection) -> Vec<String> {
    dataset_images(root, selection)
        .expect("dataset_images")
        .into_iter()
        .map(|i| {
            i.path
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string()
        })
        .collect()
}

#[test]
fn selects_by_entity_in_path_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    tree(root);
    assert_eq!(
        names(root, &Selection::all()),
        [
            "sub-01/micr/sub-01_sample-A_stain-HE_BF.ome.zarr",
            "sub-01/ses-2/micr/sub-01_ses-2_sample-B_BF.ozx",
            "sub-02/micr/sub-02_sample-C_stain-Nissl_BF.ome.zarr",
        ]
    );
    assert_eq!(
        names(root, &Selection::all().subjects(["sub-01"]).sessions(["2"])),
        ["sub-01/ses-2/micr/sub-01_ses-2_sample-B_BF.ozx"]
    );
    assert_eq!(
        names(root, &Selection::all().stains(["Nissl", "HE"])).len(),
        2
    );
    assert_eq!(
        names(root, &Selection::all().samples(["C"])),
        ["sub-02/micr/sub-02_sample-C_stain-Nissl_BF.ome.zarr"]
    );
    assert!(names(root, &Selection::all().subjects(["99"])).is_empty());
    let images = dataset_images(root, &Selection::all().samples(["B"])).expect("images");
    assert_eq!(
        images[0].name.session.as_ref().map(|s| s.as_str()),
        Some("2")
    );
}

#[test]
fn a_folder_that_is_not_a_dataset_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = dataset_images(dir.path(), &Selection::all()).expect_err("not a dataset");
    assert!(matches!(err, Error::Location { .. }), "{err}");
    assert!(
        err.to_string().contains("dataset_description.json"),
        "{err}"
    );
}

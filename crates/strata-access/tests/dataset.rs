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
    let images = dataset_images(root.to_str().expect("utf-8"), selection).expect("dataset_images");
    for i in &images {
        assert_eq!(Path::new(&i.location), root.join(&i.relative));
    }
    images
        .into_iter()
        .map(|i| i.relative.display().to_string())
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
    let images = dataset_images(
        root.to_str().expect("utf-8"),
        &Selection::all().samples(["B"]),
    )
    .expect("images");
    assert_eq!(
        images[0].name.session.as_ref().map(|s| s.as_str()),
        Some("2")
    );
}

#[test]
fn a_folder_that_is_not_a_dataset_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = dataset_images(dir.path().to_str().expect("utf-8"), &Selection::all())
        .expect_err("not a dataset");
    assert!(matches!(err, Error::Location { .. }), "{err}");
    assert!(
        err.to_string().contains("dataset_description.json"),
        "{err}"
    );
}

#[test]
fn a_dataset_in_object_storage_lists_like_a_folder() {
    let Some((_, bucket)) = strata_testkit::s3_bucket("strata-dataset", "listing object storage")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    tree(root);
    // Object storage has no empty folders: give each image folder its group metadata.
    for image in [
        "sub-01/micr/sub-01_sample-A_stain-HE_BF.ome.zarr",
        "sub-02/micr/sub-02_sample-C_stain-Nissl_BF.ome.zarr",
        "sub-02/micr/sub-02_BF.ome.zarr",
        "sub-02/micr/sub-03_sample-D_BF.ome.zarr",
    ] {
        fs::write(root.join(image).join("zarr.json"), "{}").expect("write");
        fs::create_dir_all(root.join(image).join("0")).expect("mkdir");
        fs::write(root.join(image).join("0/zarr.json"), "{}").expect("write");
    }
    let src = strata_store::StoreUrl::File(root.to_owned());
    let dst: strata_store::StoreUrl = format!("s3://{bucket}/bids").parse().expect("url");
    strata_store::block_on(strata_store::stage_urls(
        &src,
        &dst,
        &strata_store::StageOptions::default(),
    ))
    .expect("stage");
    let local = names(root, &Selection::all());
    let remote = dataset_images(&format!("s3://{bucket}/bids"), &Selection::all()).expect("list");
    assert_eq!(
        remote
            .iter()
            .map(|i| i.relative.display().to_string())
            .collect::<Vec<_>>(),
        local
    );
    assert_eq!(
        remote[0].location,
        format!("s3://{bucket}/bids/sub-01/micr/sub-01_sample-A_stain-HE_BF.ome.zarr")
    );
    let err = dataset_images(&format!("s3://{bucket}/elsewhere"), &Selection::all())
        .expect_err("no dataset there");
    assert!(
        err.to_string().contains("dataset_description.json"),
        "{err}"
    );
}

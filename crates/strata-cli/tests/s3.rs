//! `strata convert --bids-root s3://bucket/prefix` against a real S3 server on loopback
//! (`STRATA_S3_ENDPOINT`, credentials in `AWS_*`): the section is published into the bucket
//! in both layouts, with its sidecar and table rows, and a stack that fails the QC gate
//! publishes nothing there but its QC report.

mod common;
use common::{convert, run, sample};
use std::sync::Arc;
use strata_store::{
    ListableStore, ObjectStoreBackend, OzxStore, ReadableStore, S3Options, StoreKey, block_on,
};

/// The keys under the store's root.
fn keys(store: &dyn ListableStore) -> Vec<String> {
    block_on(store.list(None))
        .expect("list")
        .into_iter()
        .map(|m| m.key.to_string())
        .collect()
}

#[test]
fn convert_publishes_into_object_storage() {
    let Some((endpoint, bucket)) = strata_testkit::s3_bucket("strata-cli", "--bids-root s3://")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw");
    sample(&raw, &["--size", "600x500", "--planes", "3"]);
    let url = format!("s3://{bucket}/brains/bb01");
    let section = ["--subject", "BB01", "--sample", "0001", "--json"];

    let out = run(convert(&raw, url.as_ref()).args(section));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        summary["output"],
        format!("{url}/sub-BB01/micr/sub-BB01_sample-0001_BF.ome.zarr")
    );
    let store = ObjectStoreBackend::s3(&S3Options::from_env(&bucket).endpoint(&endpoint))
        .expect("s3")
        .with_prefix(&StoreKey::new("brains/bb01").expect("key"));
    let image = "sub-BB01/micr/sub-BB01_sample-0001_BF.ome.zarr";
    let mut expected = vec![
        "dataset_description.json".to_owned(),
        "participants.tsv".to_owned(),
        "samples.tsv".to_owned(),
        "sub-BB01/micr/sub-BB01_sample-0001_BF.json".to_owned(),
        format!("{image}/0/c.0.0.0.0"),
        format!("{image}/0/zarr.json"),
        format!("{image}/1/c.0.0.0.0"),
        format!("{image}/1/zarr.json"),
        format!("{image}/zarr.json"),
    ];
    expected.sort();
    assert_eq!(keys(&store), expected);
    let samples = block_on(store.get(&StoreKey::new("samples.tsv").expect("key"))).expect("get");
    assert!(String::from_utf8_lossy(&samples).contains("sample-0001\tsub-BB01"));

    // One archive instead: the folder image goes, the archive holds the same image.
    let out = run(convert(&raw, url.as_ref())
        .args(section)
        .args(["--layout", "ozx"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = "sub-BB01/micr/sub-BB01_sample-0001_BF.ozx";
    let now = keys(&store);
    assert!(now.contains(&archive.to_owned()), "{now:?}");
    assert!(!now.iter().any(|k| k.starts_with(image)), "{now:?}");
    let ozx = block_on(OzxStore::open(
        Arc::new(store.clone()),
        StoreKey::new(archive).expect("key"),
    ))
    .expect("open the archive in the bucket");
    let inside = keys(&ozx);
    assert!(inside.contains(&"0/c.0.0.0.0".to_owned()) && inside.contains(&"zarr.json".to_owned()));

    // A stack that fails the gate: nothing published in the bucket, the report kept.
    let blurred = dir.path().join("blurred");
    sample(
        &blurred,
        &["--size", "512x512", "--planes", "5", "--in-focus", "0"],
    );
    let r = run(convert(&blurred, url.as_ref()).args([
        "--subject",
        "BB02",
        "--sample",
        "0001",
        "--qc-gate",
    ]));
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let now = keys(&store);
    assert!(!now.iter().any(|k| k.starts_with("sub-BB02/")), "{now:?}");
    assert!(
        now.contains(&"derivatives/qc/sub-BB02/sub-BB02_sample-0001_BF_qc.json".to_owned()),
        "{now:?}"
    );
}

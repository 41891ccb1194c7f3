//! One write path: the same conversion into a POSIX folder, into an `.ozx` archive and into
//! object storage (a real S3 server on loopback, `STRATA_S3_ENDPOINT`) yields byte-identical
//! objects: every shard and `zarr.json`, the sidecar and the tables (the group metadata's
//! conversion times aside).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use strata_bids::name::{Label, Suffix};
use strata_store::{
    ListableStore, ObjectStoreBackend, OzxStore, PosixStore, ReadableStore, S3Options, StoreKey,
    block_on,
};
use strata_zstack::{
    ConvertOptions, ImageOptions, Layout, MemorySource, NoHook, PixelSize, SampleType, Section,
    StackInfo, convert,
};

type Objects = BTreeMap<String, Vec<u8>>;

fn stack() -> MemorySource {
    let (w, h, planes) = (700u32, 600u32, 3u32);
    let info = StackInfo {
        width: w,
        height: h,
        planes,
        channels: 1,
        sample_type: SampleType::U8,
        pixel_size: None,
        plane_names: (0..planes).map(|z| format!("z{z}.tif")).collect(),
    };
    let data = (0..planes)
        .map(|z| {
            (0..w * h)
                .map(|i| ((i % w) * 3 + (i / w) * 5 + z * 11) as u8)
                .collect()
        })
        .collect();
    MemorySource::new(info, data).expect("stack")
}

fn section(root: &Path) -> Section {
    Section {
        bids_root: root.to_owned(),
        subject: Label::new("sub", "BB01").expect("label"),
        session: None,
        sample: Label::new("sample", "0042").expect("label"),
        stain: None,
        suffix: Suffix::BF,
    }
}

fn options(layout: Layout, store: Option<strata_store::DynStore>) -> ConvertOptions {
    ConvertOptions {
        image: ImageOptions {
            chunk: 128,
            ..ImageOptions::default()
        },
        pixel_size: Some(PixelSize {
            x: 0.5,
            y: 0.5,
            z: 2.0,
        }),
        layout,
        store,
        ..ConvertOptions::default()
    }
}

/// The group metadata without the conversion's start and end times.
fn without_times(bytes: &[u8]) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).expect("group zarr.json");
    if let Some(r) = v
        .pointer_mut("/attributes/strata")
        .and_then(|r| r.as_object_mut())
    {
        r.remove("started");
        r.remove("finished");
    }
    serde_json::to_vec_pretty(&v).expect("json")
}

/// Every object of a store (under `prefix`), keys relative to it, the group metadata
/// normalised; hidden files (the tables' lock files on POSIX) are not dataset content.
fn objects<S: ReadableStore + ListableStore + ?Sized>(
    store: &S,
    prefix: Option<&StoreKey>,
) -> Objects {
    block_on(async {
        let mut out = Objects::new();
        for meta in store.list(prefix).await.expect("list") {
            let rel = meta.key.strip(prefix).expect("under prefix").to_owned();
            if rel.split('/').any(|s| s.starts_with('.')) {
                continue;
            }
            let mut bytes = store.get(&meta.key).await.expect("get").to_vec();
            if rel.ends_with(".ome.zarr/zarr.json") || rel == "zarr.json" {
                bytes = without_times(&bytes);
            }
            out.insert(rel, bytes);
        }
        out
    })
}

const IMAGE: &str = "sub-BB01/micr/sub-BB01_sample-0042_BF.ome.zarr";
const ARCHIVE: &str = "sub-BB01/micr/sub-BB01_sample-0042_BF.ozx";

/// The image's objects keyed inside the image, and the dataset's other objects.
fn split(all: Objects) -> (Objects, Objects) {
    let mut image = Objects::new();
    let mut rest = Objects::new();
    for (k, v) in all {
        match k.strip_prefix(&format!("{IMAGE}/")) {
            Some(inner) => {
                image.insert(inner.to_owned(), v);
            }
            None => {
                rest.insert(k, v);
            }
        }
    }
    (image, rest)
}

fn folder_conversion() -> (Objects, Objects) {
    let dir = tempfile::tempdir().expect("tempdir");
    convert(
        &mut stack(),
        &section(dir.path()),
        &options(Layout::Folder, None),
        &mut NoHook,
    )
    .expect("convert to a folder");
    let store = PosixStore::open(dir.path()).expect("store");
    split(objects(&store, None))
}

#[test]
fn folder_and_ozx_hold_the_same_bytes() {
    let (image, rest) = folder_conversion();
    assert!(image.contains_key("0/c.0.0.0.0") && image.contains_key("2/zarr.json"));

    let dir = tempfile::tempdir().expect("tempdir");
    let summary = convert(
        &mut stack(),
        &section(dir.path()),
        &options(Layout::Ozx, None),
        &mut NoHook,
    )
    .expect("convert to ozx");
    assert_eq!(summary.output, dir.path().join(ARCHIVE));
    assert_eq!(summary.files, 2);
    let posix = PosixStore::open(dir.path()).expect("store");
    let (none, mut others) = split(objects(&posix, None));
    assert!(
        none.is_empty(),
        "no image folder beside the archive: {none:?}"
    );
    others.remove(ARCHIVE).expect("the archive");
    assert_eq!(others, rest, "sidecar, tables and description");
    let archive = block_on(OzxStore::open(
        Arc::new(posix),
        StoreKey::new(ARCHIVE).expect("key"),
    ))
    .expect("open archive");
    assert_eq!(objects(&archive, None), image);
}

#[test]
fn object_storage_holds_the_same_bytes() {
    let Some((endpoint, bucket)) =
        strata_testkit::s3_bucket("strata-targets", "the object-storage target")
    else {
        return;
    };
    let prefix = StoreKey::new("brains/bb01").expect("key");
    let s3 = ObjectStoreBackend::s3(&S3Options::from_env(&bucket).endpoint(&endpoint))
        .expect("s3")
        .with_prefix(&prefix);
    let s3: strata_store::DynStore = Arc::new(s3);
    let (image, rest) = folder_conversion();

    let at = Path::new("s3://bucket/brains/bb01");
    for layout in [Layout::Folder, Layout::Ozx] {
        convert(
            &mut stack(),
            &section(at),
            &options(layout, Some(Arc::clone(&s3))),
            &mut NoHook,
        )
        .expect("convert to S3");
    }
    let (in_s3, mut others) = split(objects(&*s3, None));
    // The ozx conversion replaced the folder-layout image with the archive.
    assert!(in_s3.is_empty(), "folder image removed: {:?}", in_s3.keys());
    let archive_bytes = others.remove(ARCHIVE).expect("the archive");
    assert_eq!(
        others.keys().collect::<Vec<_>>(),
        rest.keys().collect::<Vec<_>>()
    );
    assert_eq!(others, rest, "sidecar, tables and description");
    let local = tempfile::tempdir().expect("tempdir");
    std::fs::write(local.path().join("a.ozx"), archive_bytes).expect("write");
    let archive = block_on(OzxStore::open(
        Arc::new(PosixStore::open(local.path()).expect("store")),
        StoreKey::new("a.ozx").expect("key"),
    ))
    .expect("open archive");
    assert_eq!(objects(&archive, None), image);

    // The folder layout in place, over the archive's dataset: same objects as on POSIX.
    let folder_opts = options(Layout::Folder, Some(Arc::clone(&s3)));
    convert(&mut stack(), &section(at), &folder_opts, &mut NoHook).expect("convert to S3");
    let (in_s3, _) = split(objects(&*s3, None));
    assert_eq!(in_s3, image);
}

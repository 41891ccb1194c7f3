//! Single-file OME-Zarr (.ozx): written by streaming into POSIX and S3, read back with
//! ranged reads, cross-checked with the `zip` crate, zarrs through it, damaged archives.

mod common;

use std::io::Read;
use std::sync::Arc;

use strata_store::conformance::{self, fixture, pattern};
use strata_store::ozx::{self, OzxOptions, OzxStore, OzxWriter};
use strata_store::zarr::ZarrsStorage;
use strata_store::{
    Bytes, DynReadableStore, Error, ListableStore, ObjectStoreBackend, PosixStore, ReadableStore,
    S3Options, StoreExt, StoreKey, WritableStore,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn k(s: &str) -> StoreKey {
    StoreKey::new(s).unwrap_or_else(|e| panic!("{e}"))
}

/// Writes the fixture the way a metadata-last converter would: data first (the large
/// object streamed), then `zarr.json` documents.
async fn write_fixture(dst: &dyn WritableStore, archive: &StoreKey) -> Result<u64, Error> {
    let w = OzxWriter::create(dst, archive, OzxOptions::default()).await?;
    let fx = fixture();
    // Root metadata first (goes to the start of the file), a placeholder for 0/zarr.json.
    w.put(&fx[0].0, fx[0].1.clone()).await?;
    w.put(&fx[1].0, Bytes::from_static(b"placeholder")).await?;
    for (key, v) in &fx[2..] {
        if v.len() > 1 << 20 {
            let mut s = w.put_stream(key).await?;
            for piece in v.chunks(1 << 20) {
                s.write(Bytes::copy_from_slice(piece)).await?;
            }
            s.complete().await?;
        } else {
            w.put(key, v.clone()).await?;
        }
    }
    // A stream that is dropped publishes nothing.
    let mut s = w.put_stream(&k("0/c/9/9/9")).await?;
    s.write(Bytes::from_static(b"lost")).await?;
    drop(s);
    // Metadata last: replaces the placeholder, held until finish.
    w.put(&fx[1].0, fx[1].1.clone()).await?;
    // A deleted entry disappears from the directory.
    w.put(&k("tmp/x"), Bytes::from_static(b"x")).await?;
    w.delete(&k("tmp/x")).await?;
    w.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ozx_on_posix_roundtrip_and_zip_crate_agrees() -> TestResult {
    let dir = tempfile::tempdir()?;
    let posix = Arc::new(PosixStore::open(dir.path())?);
    let archive = k("sub-01/micr/sub-01_sample-1_BF.ozx");
    let size = write_fixture(posix.as_ref(), &archive).await?;
    assert_eq!(posix.size(&archive).await?, size);
    // One inode for the whole hierarchy (plus its directories).
    assert_eq!(posix.list(None).await?.len(), 1);

    let store = OzxStore::open(posix.clone() as DynReadableStore, archive.clone()).await?;
    assert_eq!(store.comment(), r#"{"ome":{"version":"0.5"}}"#);
    conformance::read_only(&store, &fixture()).await;

    // Independent reader: the zip crate.
    let raw = std::fs::read(posix.path_of(&archive))?;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(raw.clone()))?;
    assert_eq!(z.comment(), br#"{"ome":{"version":"0.5"}}"#);
    let mut names = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i)?;
        assert_eq!(f.compression(), zip::CompressionMethod::Stored);
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?; // checks the CRC
        let want = fixture()
            .into_iter()
            .find(|(key, _)| key.as_str() == f.name())
            .map(|(_, v)| v);
        assert_eq!(Some(Bytes::from(buf)), want, "{}", f.name());
        names.push(f.name().to_owned());
    }
    // Central directory: root zarr.json first, then other zarr.json breadth-first.
    assert_eq!(names[..2], ["zarr.json", "0/zarr.json"]);
    assert_eq!(names.len(), fixture().len());
    // File order: the root zarr.json is the first entry of the file.
    assert_eq!(&raw[..4], b"PK\x03\x04");
    assert_eq!(&raw[30..39], b"zarr.json");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pack_puts_metadata_first_in_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let posix = Arc::new(PosixStore::open(dir.path())?);
    for (key, v) in fixture() {
        posix.put(&k(&format!("img.ome.zarr/{key}")), v).await?;
    }
    let archive = k("img.ozx");
    ozx::pack(
        posix.as_ref(),
        Some(&k("img.ome.zarr")),
        posix.as_ref(),
        &archive,
        OzxOptions::default(),
    )
    .await?;
    let raw = std::fs::read(posix.path_of(&archive))?;
    // The first two local headers are the zarr.json documents, root first.
    assert_eq!(&raw[30..39], b"zarr.json");
    let first_len = 30 + 9 + 20 + fixture()[0].1.len();
    assert_eq!(&raw[first_len + 30..first_len + 41], b"0/zarr.json");
    let store = OzxStore::open(posix as DynReadableStore, archive).await?;
    conformance::read_only(&store, &fixture()).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ozx_on_s3_streams_with_multipart_and_reads_ranges() -> TestResult {
    let Some(endpoint) = common::s3_endpoint() else {
        return Ok(());
    };
    let bucket = common::unique("ozx");
    common::create_bucket(&endpoint, &bucket)?;
    let s3 = Arc::new(ObjectStoreBackend::s3(&S3Options::from_env(&bucket))?);
    let archive = k("sections/s0001.ozx");
    write_fixture(s3.as_ref(), &archive).await?;
    let store = OzxStore::open(s3 as DynReadableStore, archive).await?;
    conformance::read_only(&store, &fixture()).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_is_invisible_until_finished() -> TestResult {
    let mem = Arc::new(ObjectStoreBackend::memory());
    let archive = k("a.ozx");
    let w = OzxWriter::create(mem.as_ref(), &archive, OzxOptions::default()).await?;
    w.put(&k("zarr.json"), Bytes::from_static(b"{}")).await?;
    w.put(&k("c/0"), pattern(1, 6 << 20)).await?;
    assert!(!mem.exists(&archive).await?, "no archive before finish");
    drop(w);
    assert!(
        !mem.exists(&archive).await?,
        "a dropped writer publishes nothing"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zarrs_writes_and_reads_an_array_in_an_ozx() -> TestResult {
    use zarrs::array::{ArrayBuilder, ArraySubset, data_type};
    let dir = tempfile::tempdir()?;
    let posix = Arc::new(PosixStore::open(dir.path())?);
    let archive = k("img.ozx");
    let writer =
        Arc::new(OzxWriter::create(posix.as_ref(), &archive, OzxOptions::default()).await?);
    let storage = Arc::new(ZarrsStorage::new(writer.clone()));
    zarrs::group::GroupBuilder::new()
        .build(storage.clone(), "/")?
        .async_store_metadata()
        .await?;
    let array = ArrayBuilder::new(vec![30, 64, 64], vec![30, 64, 64], data_type::uint8(), 0u8)
        .subchunk_shape(vec![1, 32, 32])
        .build(storage.clone(), "/0")?;
    array.async_store_metadata().await?;
    let data: Vec<u8> = (0..30 * 64 * 64).map(|i| (i % 253) as u8 + 1).collect();
    array.async_store_chunk(&[0, 0, 0], data.clone()).await?;
    drop(array);
    drop(storage);
    let writer = Arc::try_unwrap(writer).map_err(|_| "writer still shared")?;
    writer.finish().await?;

    let store = Arc::new(OzxStore::open(posix as DynReadableStore, archive).await?);
    let keys: Vec<String> = ListableStore::list(store.as_ref(), None)
        .await?
        .into_iter()
        .map(|m| m.key.to_string())
        .collect();
    assert_eq!(keys, ["0/c/0/0/0", "0/zarr.json", "zarr.json"]);
    let reader = Arc::new(ZarrsStorage::new(store));
    let array = zarrs::array::Array::async_open(reader, "/0").await?;
    let patch: Vec<u8> = array
        .async_retrieve_array_subset(&ArraySubset::new_with_ranges(&[7..8, 32..64, 0..32]))
        .await?;
    let want: Vec<u8> = (32..64)
        .flat_map(|y| (0..32).map(move |x| 7 * 64 * 64 + y * 64 + x))
        .map(|i| data[i])
        .collect();
    assert_eq!(patch, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_archives_are_errors_never_panics() -> TestResult {
    let mem = Arc::new(ObjectStoreBackend::memory());
    let good = k("good.ozx");
    let w = OzxWriter::create(mem.as_ref(), &good, OzxOptions::default()).await?;
    w.put(&k("zarr.json"), Bytes::from_static(b"{}")).await?;
    w.put(&k("c/0"), pattern(2, 3000)).await?;
    w.finish().await?;
    let raw = mem.get(&good).await?;

    // Not a zip at all.
    mem.put(&k("junk.ozx"), pattern(3, 5000)).await?;
    let err = OzxStore::open(mem.clone() as DynReadableStore, k("junk.ozx"))
        .await
        .err();
    assert!(matches!(err, Some(Error::Corrupt { .. })), "{err:?}");
    assert!(
        err.map(|e| e.to_string())
            .unwrap_or_default()
            .contains("junk.ozx")
    );

    // Every truncation, and byte flips all over the archive: errors or consistent reads.
    let bad = k("bad.ozx");
    for cut in (0..raw.len()).step_by(7) {
        mem.put(&bad, raw.slice(..cut)).await?;
        assert!(
            OzxStore::open(mem.clone() as DynReadableStore, bad.clone())
                .await
                .is_err(),
            "truncated at {cut}"
        );
    }
    for pos in 0..raw.len() {
        let mut v = raw.to_vec();
        v[pos] ^= 0xFF;
        mem.put(&bad, Bytes::from(v)).await?;
        if let Ok(s) = OzxStore::open(mem.clone() as DynReadableStore, bad.clone()).await {
            for m in ListableStore::list(&s, None).await.unwrap_or_default() {
                let _ = s.get(&m.key).await;
            }
        }
    }
    // Missing archive.
    let err = OzxStore::open(mem as DynReadableStore, k("none.ozx"))
        .await
        .err();
    assert!(matches!(err, Some(Error::NotFound { .. })), "{err:?}");
    Ok(())
}

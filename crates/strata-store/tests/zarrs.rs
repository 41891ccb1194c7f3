//! zarrs reads and writes arrays through every backend: sync API over POSIX (sharded,
//! cross-checked with zarrs' own filesystem store), async API over memory and S3.

mod common;

use std::sync::Arc;

use strata_store::zarr::{ZarrsStorage, sync_storage};
use strata_store::{ListableStore, ObjectStoreBackend, PosixStore, S3Options, Store, StoreKey};
use zarrs::array::{ArrayBuilder, ArraySubset, data_type};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn image(h: usize, w: usize) -> Vec<u8> {
    (0..h * w)
        .map(|i| ((i * 7 + i / w * 13) % 251) as u8)
        .collect()
}

#[test]
fn zarrs_sync_sharded_array_through_posix() -> TestResult {
    let rt = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(PosixStore::open(dir.path())?);
    let storage = sync_storage(store.clone(), rt.handle().clone());

    // 64 x 96 uint8, one 64 x 96 shard of 16 x 32 inner chunks.
    let array = ArrayBuilder::new(vec![64, 96], vec![64, 96], data_type::uint8(), 0u8)
        .subchunk_shape(vec![16, 32])
        .build(storage.clone(), "/img")?;
    array.store_metadata()?;
    let data = image(64, 96);
    array.store_array_subset(&array.subset_all(), data.clone())?;

    // Read back through strata: whole array and a patch (ranged reads of the shard).
    let back: Vec<u8> = array.retrieve_array_subset(&array.subset_all())?;
    assert_eq!(back, data);
    let patch: Vec<u8> =
        array.retrieve_array_subset(&ArraySubset::new_with_ranges(&[16..32, 32..64]))?;
    let want: Vec<u8> = (16..32)
        .flat_map(|y| data[y * 96 + 32..y * 96 + 64].to_vec())
        .collect();
    assert_eq!(patch, want);

    // One shard object + metadata, no temp files.
    let keys: Vec<String> = rt
        .block_on(store.list(None))?
        .into_iter()
        .map(|m| m.key.to_string())
        .collect();
    assert_eq!(keys, ["img/c/0/0", "img/zarr.json"]);

    // zarrs' own filesystem store reads what strata wrote.
    let fs = Arc::new(zarrs::filesystem::FilesystemStore::new(dir.path())?);
    let other = zarrs::array::Array::open(fs, "/img")?;
    let back2: Vec<u8> = other.retrieve_array_subset(&other.subset_all())?;
    assert_eq!(back2, data);
    Ok(())
}

async fn async_roundtrip(store: Arc<dyn Store>) -> TestResult {
    let storage = Arc::new(ZarrsStorage::new(store.clone()));
    let array = ArrayBuilder::new(vec![40, 50], vec![32, 32], data_type::uint8(), 7u8)
        .subchunk_shape(vec![16, 16])
        .build(storage.clone(), "/a")?;
    array.async_store_metadata().await?;
    let data = image(40, 50);
    array
        .async_store_array_subset(&array.subset_all(), data.clone())
        .await?;
    let back: Vec<u8> = array
        .async_retrieve_array_subset(&array.subset_all())
        .await?;
    assert_eq!(back, data);
    // Reopen from storage: metadata round-trips too.
    let reopened = zarrs::array::Array::async_open(storage, "/a").await?;
    let patch: Vec<u8> = reopened
        .async_retrieve_array_subset(&ArraySubset::new_with_ranges(&[33..40, 45..50]))
        .await?;
    let want: Vec<u8> = (33..40)
        .flat_map(|y| data[y * 50 + 45..y * 50 + 50].to_vec())
        .collect();
    assert_eq!(patch, want);
    assert!(store.size(&StoreKey::new("a/zarr.json")?).await? > 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zarrs_async_array_through_memory() -> TestResult {
    async_roundtrip(Arc::new(ObjectStoreBackend::memory())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zarrs_async_array_through_posix() -> TestResult {
    let dir = tempfile::tempdir()?;
    async_roundtrip(Arc::new(PosixStore::open(dir.path())?)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zarrs_async_array_through_s3() -> TestResult {
    let Some(endpoint) = common::s3_endpoint() else {
        return Ok(());
    };
    let bucket = common::unique("zarrs");
    common::create_bucket(&endpoint, &bucket)?;
    async_roundtrip(Arc::new(ObjectStoreBackend::s3(&S3Options::from_env(
        &bucket,
    ))?))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zarrs_list_dir_and_erase_prefix() -> TestResult {
    use strata_store::WritableStore;
    use zarrs::storage::{AsyncListableStorageTraits, AsyncWritableStorageTraits, StorePrefix};
    let mem = Arc::new(ObjectStoreBackend::memory());
    for key in ["a/zarr.json", "a/b/c", "a/b/d/e", "a/d/e", "a/f", "ab/x"] {
        mem.put(&StoreKey::new(key)?, strata_store::Bytes::from_static(b"1"))
            .await?;
    }
    let z = ZarrsStorage::new(mem.clone());
    let dir = z.list_dir(&StorePrefix::new("a/")?).await?;
    let keys: Vec<&str> = dir.keys().iter().map(|k| k.as_str()).collect();
    let prefixes: Vec<&str> = dir.prefixes().iter().map(|p| p.as_str()).collect();
    assert_eq!(keys, ["a/f", "a/zarr.json"]);
    assert_eq!(prefixes, ["a/b/", "a/d/"]);
    assert_eq!(z.size_prefix(&StorePrefix::new("a/")?).await?, 5);
    z.erase_prefix(&StorePrefix::new("a/")?).await?;
    let left: Vec<String> = mem
        .list(None)
        .await?
        .into_iter()
        .map(|m| m.key.to_string())
        .collect();
    assert_eq!(left, ["ab/x"]);
    Ok(())
}

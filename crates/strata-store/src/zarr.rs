//! zarrs integration: every store implements zarrs' async storage traits through
//! [`ZarrsStorage`], and the sync traits through zarrs' async-to-sync adapter
//! ([`sync_storage`]).
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use strata_store::{PosixStore, zarr};
//! let rt = tokio::runtime::Runtime::new()?;
//! let store = Arc::new(PosixStore::open("/gpfs/project/x.ome.zarr")?);
//! // zarrs' synchronous API (Array::store_chunk, retrieve_array_subset, ...):
//! let storage = zarr::sync_storage(store.clone(), rt.handle().clone());
//! // zarrs' async API (Array::async_store_chunk, ...):
//! let async_storage = Arc::new(zarr::ZarrsStorage::new(store));
//! # Ok(()) }
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use zarrs_storage::byte_range::{ByteRange as ZByteRange, ByteRangeIterator};
use zarrs_storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs_storage::{
    AsyncListableStorageTraits, AsyncMaybeBytesIterator, AsyncReadableStorageTraits,
    AsyncWritableStorageTraits, MaybeBytes, OffsetBytesIterator, StorageError, StoreKey as ZKey,
    StoreKeys, StoreKeysPrefixes, StorePrefix, StorePrefixes,
};

use crate::error::Error;
use crate::key::StoreKey;
use crate::traits::{ByteRange, ListableStore, ReadableStore, WritableStore};

/// A strata store seen through zarrs' async storage traits.
#[derive(Debug)]
pub struct ZarrsStorage<S: ?Sized> {
    store: Arc<S>,
}

impl<S: ?Sized> ZarrsStorage<S> {
    /// Wraps a store.
    #[must_use]
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }

    /// The wrapped store.
    #[must_use]
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }
}

/// Blocks on futures with a tokio runtime handle, for zarrs' sync API over async stores.
///
/// Use the resulting sync storage from threads outside the runtime's async tasks (plain
/// threads, rayon, or inside `tokio::task::spawn_blocking`).
#[derive(Clone, Debug)]
pub struct TokioBlockOn(pub tokio::runtime::Handle);

impl AsyncToSyncBlockOn for TokioBlockOn {
    fn block_on<F: core::future::Future>(&self, future: F) -> F::Output {
        self.0.block_on(future)
    }
}

/// Sync zarrs storage (`ReadableStorageTraits`, `WritableStorageTraits`,
/// `ListableStorageTraits`) over any strata store.
pub type SyncStorage<S> = AsyncToSyncStorageAdapter<ZarrsStorage<S>, TokioBlockOn>;

/// zarrs' sync storage traits over `store`, driving its futures on `handle`.
#[must_use]
pub fn sync_storage<S: ?Sized>(
    store: Arc<S>,
    handle: tokio::runtime::Handle,
) -> Arc<SyncStorage<S>> {
    Arc::new(AsyncToSyncStorageAdapter::new(
        Arc::new(ZarrsStorage::new(store)),
        TokioBlockOn(handle),
    ))
}

/// zarrs' sync read trait over a strata store, for readers on plain threads (rayon's,
/// `main`): reads go to [`ReadableStore::get_range_blocking`] where the backend has it (no
/// hand-over to another thread), else through [`crate::block_on`].
#[derive(Debug)]
pub struct SyncReader<S: ?Sized> {
    store: Arc<S>,
}

impl<S: ?Sized> SyncReader<S> {
    /// The adapter over `store`.
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }
}

impl<S: ReadableStore + ?Sized> SyncReader<S> {
    fn read(&self, key: &StoreKey, range: ByteRange) -> crate::Result<Bytes> {
        match self.store.get_range_blocking(key, range.clone()) {
            Some(r) => r,
            None => crate::block_on(self.store.get_range(key, range)),
        }
    }
}

impl<S: ReadableStore + ?Sized + 'static> zarrs_storage::ReadableStorageTraits for SyncReader<S> {
    fn get_partial_many<'a>(
        &'a self,
        key: &ZKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<zarrs_storage::MaybeBytesIterator<'a>, StorageError> {
        let key = key_of(key)?;
        let mut out = Vec::new();
        for r in byte_ranges {
            match self.read(&key, range_of(r)) {
                Ok(b) => out.push(Ok(b)),
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => out.push(Err(to_storage_error(e))),
            }
        }
        Ok(Some(Box::new(out.into_iter())))
    }

    fn size_key(&self, key: &ZKey) -> Result<Option<u64>, StorageError> {
        match crate::block_on(self.store.size(&key_of(key)?)) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(to_storage_error(e)),
        }
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}

fn to_storage_error(e: Error) -> StorageError {
    match e {
        Error::Io { source, .. } => StorageError::IOError(Arc::new(source)),
        other => StorageError::Other(other.to_string()),
    }
}

fn key_of(key: &ZKey) -> Result<StoreKey, StorageError> {
    StoreKey::new(key.as_str()).map_err(to_storage_error)
}

/// zarrs prefixes end in `/` (`""` is the root).
fn prefix_of(prefix: &StorePrefix) -> Result<Option<StoreKey>, StorageError> {
    let p = prefix.as_str().trim_end_matches('/');
    if p.is_empty() {
        Ok(None)
    } else {
        StoreKey::new(p).map(Some).map_err(to_storage_error)
    }
}

fn range_of(r: ZByteRange) -> ByteRange {
    match r {
        ZByteRange::FromStart(off, Some(len)) => ByteRange::Bounded(off..off.saturating_add(len)),
        ZByteRange::FromStart(off, None) => ByteRange::From(off),
        ZByteRange::Suffix(n) => ByteRange::Suffix(n),
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl<S: ReadableStore + ?Sized + 'static> AsyncReadableStorageTraits for ZarrsStorage<S> {
    async fn get(&self, key: &ZKey) -> Result<MaybeBytes, StorageError> {
        match self.store.get(&key_of(key)?).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(to_storage_error(e)),
        }
    }

    async fn get_partial_many<'a>(
        &'a self,
        key: &ZKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<AsyncMaybeBytesIterator<'a>, StorageError> {
        let key = key_of(key)?;
        let ranges: Vec<ByteRange> = byte_ranges.map(range_of).collect();
        let reads = ranges.into_iter().map(|r| self.store.get_range(&key, r));
        let results = futures::future::join_all(reads).await;
        if results
            .iter()
            .any(|r| matches!(r, Err(e) if e.is_not_found()))
        {
            return Ok(None);
        }
        let items: Vec<Result<Bytes, StorageError>> = results
            .into_iter()
            .map(|r| r.map_err(to_storage_error))
            .collect();
        Ok(Some(futures::stream::iter(items).boxed()))
    }

    async fn size_key(&self, key: &ZKey) -> Result<Option<u64>, StorageError> {
        match self.store.size(&key_of(key)?).await {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(to_storage_error(e)),
        }
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl<S: WritableStore + ?Sized + 'static> AsyncWritableStorageTraits for ZarrsStorage<S> {
    async fn set(&self, key: &ZKey, value: Bytes) -> Result<(), StorageError> {
        self.store
            .put(&key_of(key)?, value)
            .await
            .map_err(to_storage_error)
    }

    async fn set_partial_many<'a>(
        &'a self,
        key: &ZKey,
        offset_values: OffsetBytesIterator<'a>,
    ) -> Result<(), StorageError> {
        // zarrs only asks for partial writes when `supports_set_partial` is true.
        let _ = offset_values;
        Err(StorageError::Unsupported(format!(
            "partial writes of {key} are not supported by {:?}; write whole objects",
            self.store
        )))
    }

    async fn erase(&self, key: &ZKey) -> Result<(), StorageError> {
        self.store
            .delete(&key_of(key)?)
            .await
            .map_err(to_storage_error)
    }

    async fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        let p = prefix_of(prefix)?;
        self.store
            .delete_prefix(p.as_ref())
            .await
            .map(|_| ())
            .map_err(to_storage_error)
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl<S: ListableStore + ?Sized + 'static> AsyncListableStorageTraits for ZarrsStorage<S> {
    async fn list(&self) -> Result<StoreKeys, StorageError> {
        self.list_prefix(&StorePrefix::root()).await
    }

    async fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        let p = prefix_of(prefix)?;
        let list = self
            .store
            .list(p.as_ref())
            .await
            .map_err(to_storage_error)?;
        list.into_iter()
            .map(|m| ZKey::new(m.key.as_str()).map_err(StorageError::from))
            .collect()
    }

    async fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        let keys = self.list_prefix(prefix).await?;
        let mut direct = Vec::new();
        let mut prefixes = std::collections::BTreeSet::new();
        for k in keys {
            let Some(rest) = k.as_str().strip_prefix(prefix.as_str()) else {
                continue;
            };
            match rest.split_once('/') {
                None => direct.push(k),
                Some((child, _)) => {
                    let p = StorePrefix::new(format!("{}{child}/", prefix.as_str()))?;
                    prefixes.insert(p);
                }
            }
        }
        let prefixes: StorePrefixes = prefixes.into_iter().collect();
        Ok(StoreKeysPrefixes::new(direct, prefixes))
    }

    async fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        let p = prefix_of(prefix)?;
        let u = self
            .store
            .usage(p.as_ref())
            .await
            .map_err(to_storage_error)?;
        Ok(u.bytes)
    }
}

//! The store traits, split by capability.

use std::fmt::Debug;
use std::ops::{Range, RangeFrom};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::key::StoreKey;

/// A byte range of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `start..end` (end exclusive); must lie inside the object.
    Bounded(Range<u64>),
    /// From an offset to the end of the object.
    From(u64),
    /// The last `n` bytes (the whole object when it is shorter).
    Suffix(u64),
}

impl ByteRange {
    /// The concrete range inside an object of `size` bytes.
    ///
    /// # Errors
    /// [`Error::InvalidRange`] naming `key` when the range does not fit.
    pub fn resolve(&self, key: &StoreKey, size: u64) -> Result<Range<u64>> {
        let r = match self {
            Self::Bounded(r) => r.clone(),
            Self::From(start) => *start..size,
            Self::Suffix(n) => size.saturating_sub(*n)..size,
        };
        if r.start > r.end || r.end > size {
            return Err(Error::InvalidRange {
                key: key.to_string(),
                range: self.to_string(),
                size,
            });
        }
        Ok(r)
    }
}

impl std::fmt::Display for ByteRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bounded(r) => write!(f, "{}..{}", r.start, r.end),
            Self::From(s) => write!(f, "{s}.."),
            Self::Suffix(n) => write!(f, "last {n} bytes"),
        }
    }
}

impl From<Range<u64>> for ByteRange {
    fn from(r: Range<u64>) -> Self {
        Self::Bounded(r)
    }
}

impl From<RangeFrom<u64>> for ByteRange {
    fn from(r: RangeFrom<u64>) -> Self {
        Self::From(r.start)
    }
}

/// What a listing returns per object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's key.
    pub key: StoreKey,
    /// Its size in bytes.
    pub size: u64,
}

/// What a HEAD request tells of one object: its size and, where the backend records them,
/// when it last changed and a tag of its version (for HTTP `Last-Modified` and `ETag`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectHead {
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, where the backend has one.
    pub modified: Option<SystemTime>,
    /// An opaque tag that changes whenever the object's content may have changed (POSIX:
    /// inode, size and modification time; object storage: the server's ETag; an archive
    /// entry: the archive's tag and the entry's CRC-32). `None` where the backend has none.
    pub version: Option<String>,
}

impl ObjectHead {
    /// A head with only a size.
    #[must_use]
    pub fn sized(size: u64) -> Self {
        Self {
            size,
            modified: None,
            version: None,
        }
    }

    /// Sets the modification time.
    #[must_use]
    pub fn with_modified(mut self, modified: Option<SystemTime>) -> Self {
        self.modified = modified;
        self
    }

    /// Sets the version tag.
    #[must_use]
    pub fn with_version(mut self, version: Option<String>) -> Self {
        self.version = version;
        self
    }
}

/// The immediate children of a prefix (see [`ListableStore::list_dir`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirListing {
    /// Objects directly under the prefix, sorted by key.
    pub objects: Vec<ObjectMeta>,
    /// Names (one segment, without `/`) of the sub-prefixes that hold objects, sorted.
    pub folders: Vec<String>,
}

/// Space a prefix occupies (see [`ListableStore::usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Number of objects.
    pub objects: u64,
    /// Sum of the objects' sizes.
    pub bytes: u64,
    /// File-system inodes (files + directories, the prefix's own directory included) where
    /// the backend has them; `None` on object storage.
    pub inodes: Option<u64>,
}

/// One object opened for reading: the head it had when it was opened, and ranged reads of
/// that very version (a POSIX file descriptor keeps reading the file it opened even when a
/// new version is renamed over it). Made by [`ReadableStore::open_blocking`]; for servers
/// that answer many ranges of one object, or that must not mix versions.
pub trait ObjectReader: Send + Sync + Debug {
    /// The object's head as of opening.
    fn head(&self) -> &ObjectHead;

    /// Bytes `range` (inside `0..head().size`), read on the calling thread (it blocks: not
    /// from an async task).
    ///
    /// # Errors
    /// [`Error::InvalidRange`] when the range does not fit; [`Error::Io`] when the read
    /// fails or the object is shorter than its head says (it was truncated).
    fn read_blocking(&self, range: Range<u64>) -> Result<Bytes>;
}

/// Shared handle to an opened object.
pub type DynObjectReader = Arc<dyn ObjectReader>;

/// Read access.
#[async_trait]
pub trait ReadableStore: Send + Sync + Debug {
    /// The whole object.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no object under `key`.
    async fn get(&self, key: &StoreKey) -> Result<Bytes>;

    /// Part of an object.
    ///
    /// # Errors
    /// [`Error::NotFound`], or [`Error::InvalidRange`] when the range does not fit the object.
    async fn get_range(&self, key: &StoreKey, range: ByteRange) -> Result<Bytes>;

    /// Part of an object, read on the calling thread, for callers on plain threads (never
    /// from an async task: it blocks). `Some` where the backend's reads are blocking system
    /// calls anyway (POSIX files, archives on them), which then skip the hand-over to the
    /// async runtime's blocking pool; `None` (the default) where reads need the runtime
    /// (object storage): use [`get_range`](Self::get_range) then.
    ///
    /// # Errors
    /// As [`get_range`](Self::get_range).
    fn get_range_blocking(&self, key: &StoreKey, range: ByteRange) -> Option<Result<Bytes>> {
        let _ = (key, range);
        None
    }

    /// The object's size in bytes (a HEAD request on object storage).
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no object under `key`.
    async fn size(&self, key: &StoreKey) -> Result<u64>;

    /// The object's size, modification time and version tag (a HEAD request on object
    /// storage, a `stat` on POSIX). The default has the size only.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no object under `key`.
    async fn head(&self, key: &StoreKey) -> Result<ObjectHead> {
        Ok(ObjectHead::sized(self.size(key).await?))
    }

    /// [`head`](Self::head) on the calling thread, where the backend's metadata is at hand
    /// without the async runtime (as [`get_range_blocking`](Self::get_range_blocking));
    /// `None` (the default) otherwise.
    ///
    /// # Errors
    /// As [`head`](Self::head).
    fn head_blocking(&self, key: &StoreKey) -> Option<Result<ObjectHead>> {
        let _ = key;
        None
    }

    /// Opens `key` for ranged reads of one version, on the calling thread (it blocks: not
    /// from an async task). `Some` where the backend reads through file descriptors (POSIX
    /// files, archives on them); `None` (the default) elsewhere: use
    /// [`head`](Self::head) and [`get_range`](Self::get_range) then.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no object under `key`.
    fn open_blocking(&self, key: &StoreKey) -> Option<Result<DynObjectReader>> {
        let _ = key;
        None
    }

    /// Where the data lives, stable across runs (a root directory, a bucket and prefix), for
    /// messages and staging journals. Never contains credentials.
    fn location(&self) -> String {
        format!("{self:?}")
    }
}

/// An object being written in pieces. Nothing is visible under the key until
/// [`complete`](PutStream::complete) returns; dropping or [`abort`](PutStream::abort)ing the
/// stream leaves the previous object (if any) untouched.
#[async_trait]
pub trait PutStream: Send + Debug {
    /// Appends `chunk`.
    ///
    /// # Errors
    /// An I/O or backend error; the stream should then be aborted.
    async fn write(&mut self, chunk: Bytes) -> Result<()>;

    /// Publishes the object atomically and returns its size.
    ///
    /// # Errors
    /// An I/O or backend error; nothing is published then.
    async fn complete(self: Box<Self>) -> Result<u64>;

    /// Discards what was written.
    ///
    /// # Errors
    /// When cleaning up fails (the object is still not published).
    async fn abort(self: Box<Self>) -> Result<()>;
}

/// Write access. Every write is published atomically: a concurrent reader sees the old
/// object, no object, or the whole new object, never a part.
#[async_trait]
pub trait WritableStore: Send + Sync + Debug {
    /// Stores `value` under `key`, replacing any previous object.
    ///
    /// # Errors
    /// An I/O or backend error; the previous object is then unchanged.
    async fn put(&self, key: &StoreKey, value: Bytes) -> Result<()>;

    /// Starts writing an object that may be larger than memory (multipart upload where the
    /// backend has one).
    ///
    /// # Errors
    /// An I/O or backend error.
    async fn put_stream(&self, key: &StoreKey) -> Result<Box<dyn PutStream>>;

    /// Removes the object; removing a missing object succeeds.
    ///
    /// # Errors
    /// An I/O or backend error.
    async fn delete(&self, key: &StoreKey) -> Result<()>;

    /// Whether [`rename_prefix`](WritableStore::rename_prefix) is supported (an atomic
    /// rename of a whole prefix: POSIX folders).
    fn can_rename_prefix(&self) -> bool {
        false
    }

    /// Moves every object under `from` to the same key under `to`, atomically where
    /// [`can_rename_prefix`](WritableStore::can_rename_prefix) is true; nothing may exist under
    /// `to` yet.
    ///
    /// # Errors
    /// [`Error::Unsupported`] on stores that cannot (the default), [`Error::NotFound`] when
    /// nothing is under `from`, or an I/O or backend error.
    async fn rename_prefix(&self, from: &StoreKey, to: &StoreKey) -> Result<()> {
        Err(Error::Unsupported {
            op: "rename_prefix",
            store: format!("{self:?}"),
            hint: format!(
                "write the objects under {:?} in place instead of under {:?}",
                to.as_str(),
                from.as_str()
            ),
        })
    }

    /// Removes every object under `prefix` (segment-wise; `None` empties the store) and
    /// returns how many were removed.
    ///
    /// # Errors
    /// [`Error::Unsupported`] on stores that cannot enumerate what they hold (the default),
    /// or an I/O or backend error.
    async fn delete_prefix(&self, prefix: Option<&StoreKey>) -> Result<u64> {
        Err(Error::Unsupported {
            op: "delete_prefix",
            store: format!("{self:?}"),
            hint: format!(
                "delete the objects under {:?} one by one",
                prefix.map(StoreKey::as_str).unwrap_or_default()
            ),
        })
    }
}

/// Listing and accounting.
#[async_trait]
pub trait ListableStore: Send + Sync + Debug {
    /// Every object under `prefix` (segment-wise; `None` lists the whole store), sorted by key.
    /// Temporary files of in-flight writes are never listed.
    ///
    /// # Errors
    /// An I/O or backend error.
    async fn list(&self, prefix: Option<&StoreKey>) -> Result<Vec<ObjectMeta>>;

    /// The objects and sub-prefixes directly under `prefix` (`None`: the top level), like one
    /// folder of a file browser. The default groups a full [`list`](Self::list); backends
    /// answer it with one directory read (POSIX) or one delimited listing (object storage).
    ///
    /// # Errors
    /// An I/O or backend error.
    async fn list_dir(&self, prefix: Option<&StoreKey>) -> Result<DirListing> {
        Ok(group_listing(self.list(prefix).await?, prefix))
    }

    /// Objects and bytes under `prefix` (and inodes where the backend has them).
    ///
    /// # Errors
    /// An I/O or backend error.
    async fn usage(&self, prefix: Option<&StoreKey>) -> Result<Usage> {
        let list = self.list(prefix).await?;
        Ok(Usage {
            objects: list.len() as u64,
            bytes: list.iter().map(|m| m.size).sum(),
            inodes: None,
        })
    }
}

/// Groups a recursive listing into the immediate children of `prefix`.
pub(crate) fn group_listing(list: Vec<ObjectMeta>, prefix: Option<&StoreKey>) -> DirListing {
    let mut out = DirListing::default();
    for meta in list {
        let Some(rest) = meta.key.strip(prefix) else {
            continue;
        };
        match rest.split_once('/') {
            Some((folder, _)) => {
                if out.folders.last().map(String::as_str) != Some(folder) {
                    out.folders.push(folder.to_owned());
                }
            }
            None => out.objects.push(meta),
        }
    }
    out.folders.sort();
    out.folders.dedup();
    out
}

/// A store with every capability.
pub trait Store: ReadableStore + WritableStore + ListableStore {}

impl<T: ReadableStore + WritableStore + ListableStore + ?Sized> Store for T {}

/// Shared handle to a readable store.
pub type DynReadableStore = Arc<dyn ReadableStore>;
/// Shared handle to a writable store.
pub type DynWritableStore = Arc<dyn WritableStore>;
/// Shared handle to a listable store.
pub type DynListableStore = Arc<dyn ListableStore>;
/// Shared handle to a full store.
pub type DynStore = Arc<dyn Store>;

macro_rules! forward {
    ($wrapper:ty) => {
        #[async_trait]
        impl<T: ReadableStore + ?Sized> ReadableStore for $wrapper {
            async fn get(&self, key: &StoreKey) -> Result<Bytes> {
                (**self).get(key).await
            }
            async fn get_range(&self, key: &StoreKey, range: ByteRange) -> Result<Bytes> {
                (**self).get_range(key, range).await
            }
            fn get_range_blocking(
                &self,
                key: &StoreKey,
                range: ByteRange,
            ) -> Option<Result<Bytes>> {
                (**self).get_range_blocking(key, range)
            }
            async fn size(&self, key: &StoreKey) -> Result<u64> {
                (**self).size(key).await
            }
            async fn head(&self, key: &StoreKey) -> Result<ObjectHead> {
                (**self).head(key).await
            }
            fn head_blocking(&self, key: &StoreKey) -> Option<Result<ObjectHead>> {
                (**self).head_blocking(key)
            }
            fn open_blocking(&self, key: &StoreKey) -> Option<Result<DynObjectReader>> {
                (**self).open_blocking(key)
            }
            fn location(&self) -> String {
                (**self).location()
            }
        }
        #[async_trait]
        impl<T: WritableStore + ?Sized> WritableStore for $wrapper {
            async fn put(&self, key: &StoreKey, value: Bytes) -> Result<()> {
                (**self).put(key, value).await
            }
            async fn put_stream(&self, key: &StoreKey) -> Result<Box<dyn PutStream>> {
                (**self).put_stream(key).await
            }
            async fn delete(&self, key: &StoreKey) -> Result<()> {
                (**self).delete(key).await
            }
            async fn delete_prefix(&self, prefix: Option<&StoreKey>) -> Result<u64> {
                (**self).delete_prefix(prefix).await
            }
            fn can_rename_prefix(&self) -> bool {
                (**self).can_rename_prefix()
            }
            async fn rename_prefix(&self, from: &StoreKey, to: &StoreKey) -> Result<()> {
                (**self).rename_prefix(from, to).await
            }
        }
        #[async_trait]
        impl<T: ListableStore + ?Sized> ListableStore for $wrapper {
            async fn list(&self, prefix: Option<&StoreKey>) -> Result<Vec<ObjectMeta>> {
                (**self).list(prefix).await
            }
            async fn usage(&self, prefix: Option<&StoreKey>) -> Result<Usage> {
                (**self).usage(prefix).await
            }
            async fn list_dir(&self, prefix: Option<&StoreKey>) -> Result<DirListing> {
                (**self).list_dir(prefix).await
            }
        }
    };
}

forward!(Arc<T>);
forward!(Box<T>);

/// Convenience on top of the capability traits.
#[async_trait]
pub trait StoreExt: ReadableStore {
    /// Like [`ReadableStore::get`], but `Ok(None)` when the object does not exist.
    ///
    /// # Errors
    /// Any error but "not found".
    async fn get_opt(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        match self.get(key).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether an object exists under `key`.
    ///
    /// # Errors
    /// Any error but "not found".
    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        match self.size(key).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Several ranges of one object, in order.
    ///
    /// # Errors
    /// As [`ReadableStore::get_range`].
    async fn get_ranges(&self, key: &StoreKey, ranges: &[ByteRange]) -> Result<Vec<Bytes>> {
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            out.push(self.get_range(key, r.clone()).await?);
        }
        Ok(out)
    }
}

impl<T: ReadableStore + ?Sized> StoreExt for T {}

/// Convenience for writers.
#[async_trait]
pub trait WritableStoreExt: WritableStore {
    /// Writes `chunks` as one object through [`WritableStore::put_stream`], aborting on error.
    ///
    /// # Errors
    /// The first write error.
    async fn put_chunks<I>(&self, key: &StoreKey, chunks: I) -> Result<u64>
    where
        I: IntoIterator<Item = Bytes> + Send,
        I::IntoIter: Send,
    {
        let mut stream = self.put_stream(key).await?;
        for chunk in chunks {
            if let Err(e) = stream.write(chunk).await {
                let _ = stream.abort().await;
                return Err(e);
            }
        }
        stream.complete().await
    }
}

impl<T: WritableStore + ?Sized> WritableStoreExt for T {}

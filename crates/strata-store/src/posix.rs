//! POSIX / GPFS backend: one file per object under a root directory.
//!
//! Writes go to a hidden temporary file in the destination directory
//! (`.<name>.strata-tmp-<pid>-<n>`) and are renamed over the destination, so readers never
//! see a partial object and listings (and BIDS validators, which skip dot files) never see
//! the temporary. Blocking file-system calls run on tokio's blocking pool, so independent
//! objects are read and written in parallel.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::direct::{BlockIo, DirectPutStream};
use crate::error::{Error, Result};
use crate::key::StoreKey;
use crate::traits::{
    ByteRange, DirListing, DynObjectReader, ListableStore, ObjectHead, ObjectMeta, ObjectReader,
    PutStream, ReadableStore, Usage, WritableStore,
};

/// When written data is forced to stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// Never call fsync: fastest; a crash may lose recent objects (never expose partial ones
    /// on file systems that order rename after data, as GPFS and ext4 with `data=ordered` do).
    None,
    /// fsync each file before it is renamed into place.
    #[default]
    File,
    /// fsync each file, then its directory after the rename: the object survives a crash as
    /// soon as `put` returns.
    FileAndDir,
}

/// Options of a [`PosixStore`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PosixOptions {
    /// When data is synced to disk.
    pub fsync: FsyncPolicy,
    /// Streaming writes are collected until this many bytes are pending and then written in
    /// one blocking call (large sequential writes suit GPFS).
    pub write_buffer: usize,
    /// Streaming writes go through the store's I/O thread in aligned 1 MiB blocks, with
    /// direct I/O (`O_DIRECT`) where the file system has it and the page cache where it does
    /// not (see [`PosixOptions::direct_io`]).
    pub direct_io: bool,
}

impl Default for PosixOptions {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::default(),
            write_buffer: 8 << 20,
            direct_io: false,
        }
    }
}

impl PosixOptions {
    /// Sets the fsync policy.
    #[must_use]
    pub fn fsync(mut self, fsync: FsyncPolicy) -> Self {
        self.fsync = fsync;
        self
    }

    /// Sets the streaming write buffer size in bytes (at least 4 KiB).
    #[must_use]
    pub fn write_buffer(mut self, bytes: usize) -> Self {
        self.write_buffer = bytes.max(4096);
        self
    }

    /// Streams large objects ([`WritableStore::put_stream`]) through one I/O thread per store
    /// in aligned 1 MiB blocks written with direct I/O, so their bytes are copied once and
    /// skip the page cache (the converter's shards: no page-cache work on the encoding
    /// cores). A file system that has no direct I/O, or refuses a direct write, gets the same
    /// blocks through the page cache, synced every 4 MiB. A stream's `write` may block its
    /// thread while the I/O thread's queue is full. Off by default: small objects gain
    /// nothing from it.
    #[must_use]
    pub fn direct_io(mut self, on: bool) -> Self {
        self.direct_io = on;
        self
    }
}

/// A store of files under a root directory (POSIX file systems, GPFS, Lustre, NFS).
///
/// Keys never leave the root: key validation rejects `..` and absolute keys, and a symlink
/// whose target lies outside the root makes the operation fail with
/// [`Error::OutsideRoot`].
#[derive(Clone, Debug)]
pub struct PosixStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    options: PosixOptions,
    /// The I/O thread of direct streams, started by the first one.
    direct: std::sync::OnceLock<Arc<BlockIo>>,
}

/// The head of a regular file: its size, modification time, and a version of inode, size
/// and modification time (the tag changes when a new file is renamed over the key).
fn head_of(m: &fs::Metadata) -> ObjectHead {
    use std::os::unix::fs::MetadataExt;
    ObjectHead::sized(m.len())
        .with_modified(m.modified().ok())
        .with_version(Some(format!(
            "{:x}-{:x}-{:x}.{:x}",
            m.ino(),
            m.len(),
            m.mtime(),
            m.mtime_nsec()
        )))
}

/// Exactly `n` bytes of `file` from `offset`, read into memory that is not zeroed first: a
/// pooled buffer for the sizes of chunk reads, else rustix's `pread` into a new vector's
/// spare capacity (zeroing costs as much as the copy out of the page cache for the 256 KiB
/// chunks a server reads).
fn read_at(file: &File, n: usize, offset: u64) -> io::Result<Bytes> {
    let mut buf = crate::buffers::take(n);
    if !buf.is_empty() {
        // A pooled buffer: its old bytes are initialized memory, overwritten in place (only
        // a part beyond them is zeroed first).
        buf.resize(n, 0);
        std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                truncated(offset + n as u64)
            } else {
                e
            }
        })?;
        return Ok(crate::buffers::into_bytes(buf));
    }
    while buf.len() < n {
        let at = offset + buf.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at) {
            Ok(0) => return Err(truncated(offset + n as u64)),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The capacity may exceed `n`: what was read beyond the range is dropped.
    buf.truncate(n);
    Ok(crate::buffers::into_bytes(buf))
}

fn truncated(end: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the file ends before byte {end} (it was truncated)"),
    )
}

fn io_err(op: &'static str, key: &str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        op,
        key: key.to_owned(),
        path: path.to_owned(),
        source,
    }
}

/// An error of the shared file-system layer, as a store error.
fn fs_err(op: &'static str, key: &str, e: strata_fs::Error) -> Error {
    let (path, source) = e.into_parts();
    io_err(op, key, &path, source)
}

fn join_err(op: &'static str, key: &str, e: tokio::task::JoinError) -> Error {
    Error::Io {
        op,
        key: key.to_owned(),
        path: PathBuf::new(),
        source: io::Error::other(e),
    }
}

impl PosixStore {
    /// Removes the temporary files that interrupted writes of `key` left beside it (a write
    /// is published by renaming its temporary file; a killed process leaves that file).
    /// Returns how many were removed. Call it only while no other process writes `key`.
    ///
    /// # Errors
    /// An I/O error naming the folder or file.
    pub fn remove_stale_temps(&self, key: &StoreKey) -> Result<u64> {
        let target = self.inner.check_inside(key.as_str())?;
        strata_fs::remove_stale_temps(&target)
            .map_err(|e| fs_err("remove_stale_temps", key.as_str(), e))
    }

    /// Removes every temporary file ([`strata_fs::is_temp_name`]) under `prefix` (the whole
    /// store for `None`): what killed writers left. Only for a tree no other process is
    /// writing into (a stage destination once the stage has finished, say). Returns how many
    /// were removed.
    ///
    /// # Errors
    /// An I/O error naming the folder or file.
    pub fn remove_temps_under(&self, prefix: Option<&StoreKey>) -> Result<u64> {
        let top = match prefix {
            Some(p) => self.inner.check_inside(p.as_str())?,
            None => self.inner.root.clone(),
        };
        let label = prefix.map_or("", StoreKey::as_str);
        let mut removed = 0;
        let mut dirs = vec![top];
        while let Some(dir) = dirs.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("remove_temps_under", label, &dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_err("remove_temps_under", label, &dir, e))?;
                let path = entry.path();
                let ft = entry
                    .file_type()
                    .map_err(|e| io_err("remove_temps_under", label, &path, e))?;
                if strata_fs::is_temp_name(entry.file_name()) {
                    let gone = if ft.is_dir() {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                    match gone {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io_err("remove_temps_under", label, &path, e)),
                    }
                } else if ft.is_dir() {
                    dirs.push(path);
                }
            }
        }
        Ok(removed)
    }

    /// Opens a store at an existing directory with default options.
    ///
    /// # Errors
    /// [`Error::Config`] when `root` is not an existing directory.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        Self::with_options(root, PosixOptions::default())
    }

    /// Creates `root` (and its parents) if needed and opens a store there.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be created.
    pub fn create(root: impl AsRef<Path>, options: PosixOptions) -> Result<Self> {
        let root = root.as_ref();
        fs::create_dir_all(root).map_err(|e| io_err("create", "", root, e))?;
        Self::with_options(root, options)
    }

    /// Opens a store at an existing directory.
    ///
    /// # Errors
    /// [`Error::Config`] when `root` is not an existing directory.
    pub fn with_options(root: impl AsRef<Path>, options: PosixOptions) -> Result<Self> {
        let given = root.as_ref();
        let root = fs::canonicalize(given).map_err(|e| Error::Config {
            reason: format!("store root {given:?} cannot be opened ({e}); create the directory first or use PosixStore::create"),
        })?;
        if !root.is_dir() {
            return Err(Error::Config {
                reason: format!("store root {given:?} is not a directory"),
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                options,
                direct: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The canonical root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The file a key is stored in.
    #[must_use]
    pub fn path_of(&self, key: &StoreKey) -> PathBuf {
        self.inner.path_of(key)
    }

    async fn blocking<T, F>(&self, op: &'static str, key: &StoreKey, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &str) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let k = key.to_string();
        tokio::task::spawn_blocking(move || f(&inner, &k))
            .await
            .map_err(|e| join_err(op, key.as_str(), e))?
    }
}

impl Inner {
    fn path_of(&self, key: &StoreKey) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(key.segments());
        p
    }

    fn path_of_str(&self, key: &str) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(key.split('/'));
        p
    }

    /// Checks that no existing component of `key`'s path is a symlink leading outside the
    /// root.
    fn check_inside(&self, key: &str) -> Result<PathBuf> {
        let mut p = self.root.clone();
        for seg in key.split('/') {
            p.push(seg);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    let resolved = match fs::canonicalize(&p) {
                        Ok(r) => r,
                        // A dangling link: resolve its target text for the message.
                        Err(_) => fs::read_link(&p).unwrap_or_else(|_| p.clone()),
                    };
                    if !resolved.starts_with(&self.root) {
                        return Err(Error::OutsideRoot {
                            key: key.to_owned(),
                            root: self.root.clone(),
                            resolved,
                        });
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => break,
                Err(e) => return Err(io_err("resolve", key, &p, e)),
            }
        }
        Ok(self.path_of_str(key))
    }

    fn not_found(&self, key: &str) -> Error {
        Error::NotFound {
            key: key.to_owned(),
            store: format!("POSIX store {:?}", self.root),
        }
    }

    /// The size, modification time and version (inode, size, mtime) of the file under `key`.
    fn head(&self, key: &str) -> Result<ObjectHead> {
        let path = self.check_inside(key)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(head_of(&m)),
            Ok(_) => Err(self.not_found(key)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Err(self.not_found(key))
            }
            Err(e) => Err(io_err("head", key, &path, e)),
        }
    }

    /// The files and folders directly under `prefix`, from one directory read. Temporary
    /// files and names that are no valid key are left out; a symlink is listed as what it
    /// points to when that lies inside the root.
    fn list_dir(&self, prefix: Option<&str>) -> Result<DirListing> {
        let dir = match prefix {
            Some(p) => self.check_inside(p)?,
            None => self.root.clone(),
        };
        let label = prefix.unwrap_or_default();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(DirListing::default());
            }
            Err(e) => return Err(io_err("list_dir", label, &dir, e)),
        };
        let mut out = DirListing::default();
        for entry in entries {
            let entry = entry.map_err(|e| io_err("list_dir", label, &dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let key_text = match prefix {
                Some(p) => format!("{p}/{name}"),
                None => name.clone(),
            };
            // Temporaries and lock files are not objects.
            if strata_fs::is_temp_name(&name) || strata_fs::is_lock_name(&name) {
                continue;
            }
            let Ok(key) = StoreKey::new(key_text) else {
                continue;
            };
            let path = entry.path();
            let ft = entry
                .file_type()
                .map_err(|e| io_err("list_dir", label, &path, e))?;
            let meta = if ft.is_symlink() {
                // Followed only when it stays inside the root.
                match self.check_inside(key.as_str()).map(fs::metadata) {
                    Ok(Ok(m)) => m,
                    _ => continue,
                }
            } else {
                entry
                    .metadata()
                    .map_err(|e| io_err("list_dir", label, &path, e))?
            };
            if meta.is_dir() {
                out.folders.push(name);
            } else if meta.is_file() {
                out.objects.push(ObjectMeta {
                    key,
                    size: meta.len(),
                });
            }
        }
        out.objects.sort_by(|a, b| a.key.cmp(&b.key));
        out.folders.sort();
        Ok(out)
    }

    /// Reads part of the file under `key` (one `pread`).
    fn read_range(&self, key: &StoreKey, range: ByteRange) -> Result<Bytes> {
        let k = key.as_str();
        let (file, len) = self.open_file("get_range", k)?;
        let r = range.resolve(key, len)?;
        let n = usize::try_from(r.end - r.start).map_err(|_| Error::InvalidRange {
            key: k.to_owned(),
            range: range.to_string(),
            size: len,
        })?;
        read_at(&file, n, r.start).map_err(|e| io_err("get_range", k, &self.path_of_str(k), e))
    }

    fn open_file(&self, op: &'static str, key: &str) -> Result<(File, u64)> {
        let path = self.check_inside(key)?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Err(self.not_found(key));
            }
            Err(e) => return Err(io_err(op, key, &path, e)),
        };
        let meta = file.metadata().map_err(|e| io_err(op, key, &path, e))?;
        if !meta.is_file() {
            return Err(self.not_found(key));
        }
        Ok((file, meta.len()))
    }

    /// The shared layer's durability for this store's fsync policy.
    fn durability(&self) -> strata_fs::Durability {
        match self.options.fsync {
            FsyncPolicy::None => strata_fs::Durability::None,
            FsyncPolicy::File => strata_fs::Durability::File,
            FsyncPolicy::FileAndDir => strata_fs::Durability::FileAndDir,
        }
    }

    /// Creates the parent directories of `key` and an atomic file beside its target.
    fn create_atomic(&self, op: &'static str, key: &str) -> Result<strata_fs::AtomicFile> {
        let target = self.check_inside(key)?;
        let parent = target.parent().unwrap_or(&self.root).to_owned();
        // A concurrent delete may prune the freshly created directory: retry a few times.
        let mut last = None;
        for _ in 0..4 {
            if let Err(e) = fs::create_dir_all(&parent) {
                return Err(io_err(op, key, &parent, e));
            }
            // The directories now exist: check again that none of them escapes.
            self.check_inside(key)?;
            match strata_fs::AtomicFile::create_with(&target, self.durability()) {
                Ok(f) => return Ok(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => last = Some(e),
                Err(e) => return Err(fs_err(op, key, e)),
            }
        }
        Err(match last {
            Some(e) => fs_err(op, key, e),
            None => io_err(
                op,
                key,
                &target,
                io::Error::other("cannot create temporary file"),
            ),
        })
    }

    /// Creates the parent directories of `key` and a temporary file beside its target.
    fn create_temp(&self, op: &'static str, key: &str) -> Result<(File, PathBuf, PathBuf)> {
        let atomic = self.create_atomic(op, key)?;
        let target = atomic.target().to_owned();
        let (file, temp) = atomic.into_parts();
        Ok((file, temp.keep(), target))
    }

    /// Syncs and renames a finished temporary file into place.
    fn publish(
        &self,
        op: &'static str,
        key: &str,
        file: File,
        temp: &Path,
        target: &Path,
    ) -> Result<()> {
        let synced = if self.options.fsync == FsyncPolicy::None {
            Ok(())
        } else {
            file.sync_all().map_err(|e| io_err(op, key, temp, e))
        };
        drop(file);
        let result = synced.and_then(|()| self.rename_into_place(op, key, temp, target));
        if result.is_err() {
            let _ = fs::remove_file(temp);
        }
        result
    }

    /// Renames a finished (and, by the policy, synced) temporary file over `target`, then
    /// syncs the folder if the policy says so.
    fn rename_into_place(
        &self,
        op: &'static str,
        key: &str,
        temp: &Path,
        target: &Path,
    ) -> Result<()> {
        if target.is_dir() {
            return Err(io_err(
                op,
                key,
                target,
                io::Error::other("a directory (a prefix of other keys) exists under this key"),
            ));
        }
        strata_fs::failpoint("store.posix.before-rename");
        fs::rename(temp, target).map_err(|e| io_err(op, key, target, e))?;
        strata_fs::failpoint("store.posix.renamed");
        if self.options.fsync == FsyncPolicy::FileAndDir
            && let Some(dir) = target.parent()
        {
            strata_fs::sync_dir(dir).map_err(|e| fs_err(op, key, e))?;
        }
        Ok(())
    }

    /// The I/O thread of direct streams (started on first use).
    fn block_io(&self, key: &str) -> Result<Arc<BlockIo>> {
        if let Some(io) = self.direct.get() {
            return Ok(Arc::clone(io));
        }
        let io = BlockIo::start().map_err(|e| io_err("put_stream", key, &self.root, e))?;
        Ok(Arc::clone(self.direct.get_or_init(|| io)))
    }

    /// Removes empty directories from `dir` up to (not including) the root.
    fn prune(&self, mut dir: &Path) {
        while dir != self.root && dir.starts_with(&self.root) {
            if fs::remove_dir(dir).is_err() {
                break;
            }
            match dir.parent() {
                Some(p) => dir = p,
                None => break,
            }
        }
    }

    /// Walks `dir`, calling `f(key, size)` for each object; returns (files, dirs) seen,
    /// temporaries included, for inode accounting.
    fn walk(
        &self,
        dir: &Path,
        key_prefix: &str,
        f: &mut dyn FnMut(String, u64),
    ) -> Result<(u64, u64)> {
        let mut files = 0;
        let mut dirs = 0;
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok((0, 0));
            }
            Err(e) => return Err(io_err("list", key_prefix, dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_err("list", key_prefix, dir, e))?;
            let path = entry.path();
            let ft = entry
                .file_type()
                .map_err(|e| io_err("list", key_prefix, &path, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                // Not UTF-8: cannot be a key. Counted, not listed.
                files += 1;
                continue;
            };
            let key = if key_prefix.is_empty() {
                name.clone()
            } else {
                format!("{key_prefix}/{name}")
            };
            if ft.is_dir() {
                dirs += 1;
                let (f2, d2) = self.walk(&path, &key, f)?;
                files += f2;
                dirs += d2;
            } else {
                files += 1;
                if strata_fs::is_temp_name(&name)
                    || strata_fs::is_lock_name(&name)
                    || StoreKey::new(key.as_str()).is_err()
                {
                    continue;
                }
                let size = if ft.is_symlink() {
                    // Only symlinks to files inside the root are objects.
                    match fs::canonicalize(&path) {
                        Ok(t) if t.starts_with(&self.root) => match fs::metadata(&t) {
                            Ok(m) if m.is_file() => m.len(),
                            _ => continue,
                        },
                        _ => continue,
                    }
                } else {
                    entry
                        .metadata()
                        .map_err(|e| io_err("list", &key, &path, e))?
                        .len()
                };
                f(key, size);
            }
        }
        Ok((files, dirs))
    }

    fn list(&self, prefix: Option<&str>) -> Result<(Vec<ObjectMeta>, u64, u64)> {
        let (dir, key_prefix) = match prefix {
            Some(p) => (self.check_inside(p)?, p.to_owned()),
            None => (self.root.clone(), String::new()),
        };
        let mut out = Vec::new();
        let (files, dirs) = self.walk(&dir, &key_prefix, &mut |key, size| {
            if let Ok(key) = StoreKey::new(key) {
                out.push(ObjectMeta { key, size });
            }
        })?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        let own = u64::from(dir.is_dir());
        Ok((out, files, dirs + own))
    }
}

/// A file opened by [`PosixStore::open_blocking`]: reads by `pread` on its descriptor.
#[derive(Debug)]
struct PosixReader {
    file: File,
    head: ObjectHead,
    key: StoreKey,
    path: PathBuf,
}

impl ObjectReader for PosixReader {
    fn head(&self) -> &ObjectHead {
        &self.head
    }

    fn read_blocking(&self, range: std::ops::Range<u64>) -> Result<Bytes> {
        let r = ByteRange::Bounded(range).resolve(&self.key, self.head.size)?;
        let n = usize::try_from(r.end - r.start).map_err(|_| Error::InvalidRange {
            key: self.key.to_string(),
            range: format!("{}..{}", r.start, r.end),
            size: self.head.size,
        })?;
        read_at(&self.file, n, r.start)
            .map_err(|e| io_err("get_range", self.key.as_str(), &self.path, e))
    }
}

#[async_trait]
impl ReadableStore for PosixStore {
    async fn get(&self, key: &StoreKey) -> Result<Bytes> {
        self.blocking("get", key, |inner, key| {
            let (mut file, len) = inner.open_file("get", key)?;
            // The size the file had when opened, into a pooled buffer; when the file turns
            // out shorter or longer than that, whatever it holds now, read to its end.
            if let Ok(n) = usize::try_from(len)
                && let Ok(b) = read_at(&file, n, 0)
                && matches!(
                    std::os::unix::fs::FileExt::read_at(&file, &mut [0], len),
                    Ok(0)
                )
            {
                return Ok(b);
            }
            let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.seek(io::SeekFrom::Start(0))
                .and_then(|_| file.read_to_end(&mut buf))
                .map_err(|e| io_err("get", key, &inner.path_of_str(key), e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn get_range(&self, key: &StoreKey, range: ByteRange) -> Result<Bytes> {
        let k = key.clone();
        self.blocking("get_range", key, move |inner, _| {
            inner.read_range(&k, range)
        })
        .await
    }

    fn get_range_blocking(&self, key: &StoreKey, range: ByteRange) -> Option<Result<Bytes>> {
        Some(self.inner.read_range(key, range))
    }

    async fn size(&self, key: &StoreKey) -> Result<u64> {
        self.blocking("size", key, |inner, key| Ok(inner.head(key)?.size))
            .await
    }

    async fn head(&self, key: &StoreKey) -> Result<ObjectHead> {
        self.blocking("head", key, |inner, key| inner.head(key))
            .await
    }

    fn head_blocking(&self, key: &StoreKey) -> Option<Result<ObjectHead>> {
        Some(self.inner.head(key.as_str()))
    }

    fn open_blocking(&self, key: &StoreKey) -> Option<Result<DynObjectReader>> {
        let open = || {
            let k = key.as_str();
            let (file, _) = self.inner.open_file("open", k)?;
            let meta = file
                .metadata()
                .map_err(|e| io_err("open", k, &self.inner.path_of_str(k), e))?;
            Ok(Arc::new(PosixReader {
                head: head_of(&meta),
                file,
                key: key.clone(),
                path: self.inner.path_of_str(k),
            }) as DynObjectReader)
        };
        Some(open())
    }

    fn location(&self) -> String {
        format!("file://{}", self.inner.root.display())
    }
}

#[async_trait]
impl WritableStore for PosixStore {
    async fn delete_prefix(&self, prefix: Option<&StoreKey>) -> Result<u64> {
        let list = self.list(prefix).await?;
        for m in &list {
            self.delete(&m.key).await?;
        }
        Ok(list.len() as u64)
    }

    async fn put(&self, key: &StoreKey, value: Bytes) -> Result<()> {
        self.blocking("put", key, move |inner, key| {
            // Dropping the atomic file on an error removes its temporary.
            let mut file = inner.create_atomic("put", key)?;
            file.write_all(&value)
                .map_err(|e| io_err("put", key, file.temp_path(), e))?;
            if file.target().is_dir() {
                return Err(io_err(
                    "put",
                    key,
                    file.target(),
                    io::Error::other("a directory (a prefix of other keys) exists under this key"),
                ));
            }
            file.commit().map_err(|e| fs_err("put", key, e))
        })
        .await
    }

    async fn put_stream(&self, key: &StoreKey) -> Result<Box<dyn PutStream>> {
        let (file, temp, target) = self
            .blocking("put_stream", key, |inner, key| {
                inner.create_temp("put_stream", key)
            })
            .await?;
        if self.inner.options.direct_io {
            let io = self.inner.block_io(key.as_str())?;
            let inner = Arc::clone(&self.inner);
            let k = key.to_string();
            let publish = Box::new(move |temp: &Path| {
                inner.rename_into_place("put_stream", &k, temp, &target)
            });
            let sync = self.inner.options.fsync != FsyncPolicy::None;
            return Ok(Box::new(DirectPutStream::new(
                io,
                key.as_str(),
                file,
                temp,
                sync,
                publish,
            )));
        }
        Ok(Box::new(PosixPutStream {
            inner: Arc::clone(&self.inner),
            key: key.to_string(),
            file: Some(file),
            temp,
            target,
            pending: Vec::new(),
            pending_len: 0,
            written: 0,
            done: false,
        }))
    }

    fn can_rename_prefix(&self) -> bool {
        true
    }

    /// Renames the folder of `from` to that of `to` in one `rename` (atomic on POSIX file
    /// systems), creating `to`'s parent folders; `to` must not exist (or be an empty folder).
    async fn rename_prefix(&self, from: &StoreKey, to: &StoreKey) -> Result<()> {
        let to = to.clone();
        self.blocking("rename_prefix", from, move |inner, from| {
            let src = inner.check_inside(from)?;
            let dst = inner.check_inside(to.as_str())?;
            if !src.is_dir() {
                return Err(inner.not_found(from));
            }
            let parent = dst.parent().unwrap_or(&inner.root).to_owned();
            fs::create_dir_all(&parent).map_err(|e| io_err("rename_prefix", from, &parent, e))?;
            strata_fs::failpoint("store.posix.before-rename-prefix");
            fs::rename(&src, &dst).map_err(|e| io_err("rename_prefix", to.as_str(), &dst, e))?;
            strata_fs::failpoint("store.posix.prefix-renamed");
            if inner.options.fsync != FsyncPolicy::None {
                for dir in [Some(parent.as_path()), src.parent()].into_iter().flatten() {
                    strata_fs::sync_dir(dir).map_err(|e| fs_err("rename_prefix", from, e))?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn delete(&self, key: &StoreKey) -> Result<()> {
        self.blocking("delete", key, |inner, key| {
            let path = inner.check_inside(key)?;
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => return Ok(()),
                Ok(_) => {}
                Err(_) => return Ok(()),
            }
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_err("delete", key, &path, e)),
            }
            if let Some(parent) = path.parent() {
                inner.prune(parent);
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl ListableStore for PosixStore {
    async fn list(&self, prefix: Option<&StoreKey>) -> Result<Vec<ObjectMeta>> {
        let inner = Arc::clone(&self.inner);
        let p = prefix.map(ToString::to_string);
        tokio::task::spawn_blocking(move || inner.list(p.as_deref()).map(|(l, _, _)| l))
            .await
            .map_err(|e| join_err("list", "", e))?
    }

    async fn list_dir(&self, prefix: Option<&StoreKey>) -> Result<DirListing> {
        let inner = Arc::clone(&self.inner);
        let p = prefix.map(ToString::to_string);
        tokio::task::spawn_blocking(move || inner.list_dir(p.as_deref()))
            .await
            .map_err(|e| join_err("list_dir", "", e))?
    }

    async fn usage(&self, prefix: Option<&StoreKey>) -> Result<Usage> {
        let inner = Arc::clone(&self.inner);
        let p = prefix.map(ToString::to_string);
        let (list, files, dirs) = tokio::task::spawn_blocking(move || inner.list(p.as_deref()))
            .await
            .map_err(|e| join_err("usage", "", e))??;
        Ok(Usage {
            objects: list.len() as u64,
            bytes: list.iter().map(|m| m.size).sum(),
            inodes: Some(files + dirs),
        })
    }
}

/// A streaming write into a hidden temporary file, renamed into place on completion.
#[derive(Debug)]
struct PosixPutStream {
    inner: Arc<Inner>,
    key: String,
    file: Option<File>,
    temp: PathBuf,
    target: PathBuf,
    pending: Vec<Bytes>,
    pending_len: usize,
    written: u64,
    done: bool,
}

impl PosixPutStream {
    async fn flush_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(mut file) = self.file.take() else {
            return Err(io_err(
                "put_stream",
                &self.key,
                &self.temp,
                io::Error::other("an earlier write failed; abort and retry the object"),
            ));
        };
        let chunks = std::mem::take(&mut self.pending);
        self.pending_len = 0;
        let (key, temp) = (self.key.clone(), self.temp.clone());
        let file = tokio::task::spawn_blocking(move || {
            for c in &chunks {
                file.write_all(c)
                    .map_err(|e| io_err("put_stream", &key, &temp, e))?;
            }
            Ok::<_, Error>(file)
        })
        .await
        .map_err(|e| join_err("put_stream", &self.key, e))??;
        self.file = Some(file);
        Ok(())
    }
}

#[async_trait]
impl PutStream for PosixPutStream {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.written += chunk.len() as u64;
        self.pending_len += chunk.len();
        self.pending.push(chunk);
        if self.pending_len >= self.inner.options.write_buffer {
            self.flush_pending().await?;
        }
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<u64> {
        self.flush_pending().await?;
        let file = self.file.take();
        let inner = Arc::clone(&self.inner);
        let (key, temp, target) = (self.key.clone(), self.temp.clone(), self.target.clone());
        let written = self.written;
        let result = tokio::task::spawn_blocking(move || match file {
            Some(file) => inner.publish("put_stream", &key, file, &temp, &target),
            None => Err(io_err(
                "put_stream",
                &key,
                &temp,
                io::Error::other("stream already failed"),
            )),
        })
        .await
        .map_err(|e| join_err("put_stream", &self.key, e))?;
        // Published or cleaned up by `publish`.
        self.done = true;
        result.map(|()| written)
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.file = None;
        self.done = true;
        match fs::remove_file(&self.temp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("abort", &self.key, &self.temp, e)),
        }
    }
}

impl Drop for PosixPutStream {
    fn drop(&mut self) {
        if !self.done {
            self.file = None;
            let _ = fs::remove_file(&self.temp);
        }
    }
}

//! Atomic publication: write under a temporary name beside the target, sync, rename.
//!
//! A reader sees either the previous content of the target or the new one, never a part.
//! With [`Durability::FileAndDir`] (the default) the new content also survives a crash as
//! soon as the call returns.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::names::{lock_name, temp_name};

/// When written data is forced to stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// No fsync: fastest. A crash may lose the write, but never exposes a partial file on
    /// file systems that order a rename after the data (GPFS, ext4 with `data=ordered`).
    None,
    /// fsync the file before the rename: a crash leaves the old or the new content.
    File,
    /// fsync the file, rename, then fsync the folder: the new content survives a crash as soon
    /// as the call returns.
    #[default]
    FileAndDir,
}

/// The folder holding `path` (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn check_file_path(path: &Path) -> Result<()> {
    if path.file_name().is_none() {
        return Err(Error::NotAFile {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// fsyncs a folder, making the renames and creations inside it durable.
///
/// # Errors
/// [`Error::Io`] naming the folder.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing folder", dir, e))
}

/// Creates (or truncates) `path`, writes `bytes` and fsyncs it, without a rename: for files
/// inside a folder that is itself published atomically (a staged image folder).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io("creating", path, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("writing", path, e))?;
    f.sync_all().map_err(|e| Error::io("syncing", path, e))
}

/// Replaces `path` with `bytes` atomically and durably: a temporary name beside it, write,
/// fsync, rename, fsync of the folder. The folder must exist.
///
/// # Errors
/// [`Error::NotAFile`] or [`Error::Io`] naming the file; the target is then unchanged and no
/// temporary remains.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, Durability::FileAndDir)
}

/// [`write_atomic`] with the given [`Durability`].
///
/// # Errors
/// As [`write_atomic`].
pub fn write_atomic_with(path: &Path, bytes: &[u8], durability: Durability) -> Result<()> {
    let mut f = AtomicFile::create_with(path, durability)?;
    f.write_all(bytes)
        .map_err(|e| Error::io("writing", f.temp_path(), e))?;
    f.commit()
}

/// A temporary name beside a target, removed on drop unless persisted or kept.
///
/// For writers that create the file themselves (an HDF5 library, an archive writer) or that
/// stage a whole folder: write at [`TempPath::path`], then [`TempPath::persist`].
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    /// A fresh temporary name beside `target` ([`temp_name`]); nothing is created.
    #[must_use]
    pub fn new(target: &Path) -> Self {
        Self {
            path: temp_name(target),
            armed: true,
        }
    }

    /// The temporary path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// fsyncs what is at the temporary path (a file, or a folder's own entries: sync the files
    /// inside it as they are written, e.g. with [`write_synced`]), renames it over `target`
    /// and, for [`Durability::FileAndDir`], fsyncs the target's folder.
    ///
    /// A folder can only replace a missing or empty folder (rename's rule).
    ///
    /// # Errors
    /// [`Error::Io`]; the temporary is then removed.
    pub fn persist(mut self, target: &Path, durability: Durability) -> Result<()> {
        if durability != Durability::None {
            File::open(&self.path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io("syncing", &self.path, e))?;
        }
        self.rename_over(target, durability)
    }

    /// Renames the temporary over `target`, then fsyncs the folder if asked.
    fn rename_over(&mut self, target: &Path, durability: Durability) -> Result<()> {
        crate::failpoint("fs.atomic.before-rename");
        fs::rename(&self.path, target).map_err(|e| Error::io("renaming into place", target, e))?;
        self.armed = false;
        crate::failpoint("fs.atomic.renamed");
        if durability == Durability::FileAndDir {
            sync_dir(parent_of(target))?;
        }
        Ok(())
    }

    /// Leaves whatever is at the temporary path in place and returns the path.
    #[must_use]
    pub fn keep(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        match fs::symlink_metadata(&self.path) {
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir_all(&self.path);
            }
            Ok(_) => {
                let _ = fs::remove_file(&self.path);
            }
            Err(_) => {}
        }
    }
}

/// A streamed atomic write: a temporary file beside the target, published by
/// [`AtomicFile::commit`]. Dropping it without committing removes the temporary and leaves the
/// target as it was.
#[derive(Debug)]
pub struct AtomicFile {
    // Field order matters: the file is closed before the temporary is removed.
    file: File,
    temp: TempPath,
    target: PathBuf,
    durability: Durability,
}

impl AtomicFile {
    /// Creates a temporary file beside `target` with [`Durability::FileAndDir`]. The folder
    /// must exist.
    ///
    /// # Errors
    /// [`Error::NotAFile`], or [`Error::Io`] naming the temporary (its kind is
    /// [`io::ErrorKind::NotFound`] when the folder is missing).
    pub fn create(target: &Path) -> Result<Self> {
        Self::create_with(target, Durability::FileAndDir)
    }

    /// [`AtomicFile::create`] with the given [`Durability`].
    ///
    /// # Errors
    /// As [`AtomicFile::create`].
    pub fn create_with(target: &Path, durability: Durability) -> Result<Self> {
        check_file_path(target)?;
        let temp = TempPath::new(target);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp.path())
            .map_err(|e| Error::io("creating", temp.path(), e))?;
        Ok(Self {
            file,
            temp,
            target: target.to_owned(),
            durability,
        })
    }

    /// The temporary file's path.
    #[must_use]
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// The path the file is published at.
    #[must_use]
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The open temporary file (for `metadata`, `set_len`, positioned writes).
    #[must_use]
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The open temporary file and its name, for writers that move the file between threads
    /// themselves; publish with [`TempPath::persist`] (or keep the name and rename it).
    #[must_use]
    pub fn into_parts(self) -> (File, TempPath) {
        (self.file, self.temp)
    }

    /// fsyncs the file (unless [`Durability::None`]), renames it over the target and, for
    /// [`Durability::FileAndDir`], fsyncs the folder.
    ///
    /// # Errors
    /// [`Error::Io`]; the temporary is then removed and the target unchanged.
    pub fn commit(self) -> Result<()> {
        let Self {
            file,
            mut temp,
            target,
            durability,
        } = self;
        if durability != Durability::None {
            file.sync_all()
                .map_err(|e| Error::io("syncing", temp.path(), e))?;
        }
        drop(file);
        temp.rename_over(&target, durability)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.file.write_vectored(bufs)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A locked read-modify-write of `path`: takes an exclusive lock on the lock file beside it
/// ([`lock_name`]), reads the current content (`None` if the file does not exist), lets
/// `change` compute the new content and publishes it with [`write_atomic`]. The folder is
/// created if needed; the lock file stays in place, and temporaries of `path` that killed
/// writers left beside it are removed.
///
/// Concurrent updates from threads or processes are serialised, so none is lost; a reader
/// never sees a half-written file. The lock is advisory (`flock`): it excludes other
/// `update_locked` calls, not plain writers.
///
/// # Errors
/// The crate's [`Error`] (converted) for I/O failures, or what `change` returns. On error the
/// file on disk is unchanged.
pub fn update_locked<E, F>(path: &Path, change: F) -> std::result::Result<(), E>
where
    E: From<Error>,
    F: FnOnce(Option<&[u8]>) -> std::result::Result<Vec<u8>, E>,
{
    let lock = lock_for(path)?;
    let old = match fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("reading", path, e).into()),
    };
    let new = change(old.as_deref())?;
    crate::failpoint("fs.locked.changed");
    write_atomic(path, &new)?;
    // Closing the lock file releases the lock.
    drop(lock);
    Ok(())
}

/// Writes `bytes` to `path` unless the file exists, under the same lock as
/// [`update_locked`] (so a temporary a killed first writer left is removed, and of writers
/// racing to create the file exactly one does). Returns whether this call wrote it.
///
/// # Errors
/// The crate's [`Error`] for I/O failures; the file is then unchanged.
pub fn create_locked(path: &Path, bytes: &[u8]) -> Result<bool> {
    let lock = lock_for(path)?;
    let created = match fs::symlink_metadata(path) {
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            write_atomic(path, bytes)?;
            true
        }
        Err(e) => return Err(Error::io("reading", path, e)),
    };
    drop(lock);
    Ok(created)
}

/// Takes the exclusive lock of `path` (its folder created if needed) and removes the
/// temporaries of `path` that killed writers left: under the lock no other locked writer
/// is writing it. The lock is released when the returned file is closed.
fn lock_for(path: &Path) -> Result<File> {
    check_file_path(path)?;
    let dir = parent_of(path);
    fs::create_dir_all(dir).map_err(|e| Error::io("creating folder", dir, e))?;
    let lock_path = lock_name(path);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io("opening lock file", &lock_path, e))?;
    lock.lock()
        .map_err(|e| Error::io("locking", &lock_path, e))?;
    crate::remove_stale_temps(path)?;
    Ok(lock)
}

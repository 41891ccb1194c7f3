//! File-system primitives for Strata, shared by every crate that writes files.
//!
//! - [`write_atomic`] and [`AtomicFile`]: publish a file whole or not at all (a temporary
//!   beside the target, write, fsync, rename, fsync of the folder); [`TempPath`] for writers
//!   that create the file themselves or stage a folder.
//! - One temporary-name convention: [`temp_name`], [`is_temp_name`], [`remove_stale_temps`],
//!   and [`TEMP_GLOBS`] for exclude lists.
//! - [`update_locked`]: a read-modify-write serialised by a lock file (table rows added by
//!   concurrent conversions), and [`create_locked`] for a file that only the first of many
//!   writers creates.
//! - [`sha256_file`]: size and checksum of a file in one read.
//! - [`failpoint`]: crash points, armed only in a build with the `failpoints` feature.
//!
//! ```
//! use std::io::Write as _;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("table.tsv");
//! strata_fs::write_atomic(&path, b"a\tb\n")?;
//!
//! let mut f = strata_fs::AtomicFile::create(&path)?;
//! f.write_all(b"a\tb\n1\t2\n")?;
//! f.commit()?;
//!
//! strata_fs::update_locked(&path, |old: Option<&[u8]>| {
//!     let mut text = old.unwrap_or_default().to_vec();
//!     text.extend_from_slice(b"3\t4\n");
//!     Ok::<_, strata_fs::Error>(text)
//! })?;
//! assert_eq!(std::fs::read(&path)?, b"a\tb\n1\t2\n3\t4\n");
//! assert!(std::fs::read_dir(dir.path())?
//!     .all(|e| e.map_or(false, |e| !strata_fs::is_temp_name(e.file_name()))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod atomic;
pub mod error;
mod failpoint;
mod hash;
mod names;

pub use atomic::{
    AtomicFile, Durability, TempPath, create_locked, sync_dir, update_locked, write_atomic,
    write_atomic_with, write_synced,
};
pub use error::{Error, Result};
pub use failpoint::{FAILPOINT_LOG, KILL_AT, failpoint};
pub use hash::{sha256_file, sha256_file_until};
pub use names::{
    LOCK_SUFFIX, STAGED_GLOBS, TEMP_GLOBS, TEMP_MARKER, exclude_globs, is_lock_name, is_temp_name,
    is_temp_of, lock_name, partial_name, remove_stale_temps, replaced_name, temp_name,
};

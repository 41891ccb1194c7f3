//! The crate's error type.

use std::io;
use std::path::{Path, PathBuf};

/// Errors of strata-fs. Each names the file or folder it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"creating"`, `"renaming into place"`, ...).
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The path names no file (it is empty, `/` or ends in `..`).
    #[error("{}: not a file path; name a file inside a folder", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The file or folder concerned.
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. } | Self::NotAFile { path } => path,
        }
    }

    /// The kind of the underlying I/O error ([`io::ErrorKind::InvalidInput`] for
    /// [`Error::NotAFile`]).
    #[must_use]
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Self::Io { source, .. } => source.kind(),
            Self::NotAFile { .. } => io::ErrorKind::InvalidInput,
        }
    }

    /// The path and the bare I/O error, for callers whose own error type carries the path
    /// separately (so that the message does not name it twice).
    #[must_use]
    pub fn into_parts(self) -> (PathBuf, io::Error) {
        match self {
            Self::Io { path, source, .. } => (path, source),
            Self::NotAFile { path } => (
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
            ),
        }
    }
}

impl From<Error> for io::Error {
    /// An I/O error of the same kind whose message names the path.
    fn from(e: Error) -> Self {
        Self::new(e.kind(), e)
    }
}

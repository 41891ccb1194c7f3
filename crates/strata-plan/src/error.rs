//! The crate's error type.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while planning or measuring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A planning input is out of range.
    #[error("invalid plan input: {0}")]
    Input(String),
    /// An enumeration would exceed its entry limit.
    #[error("tree has {entries} entries, more than the limit of {limit}")]
    TooLarge {
        /// Entries the tree would have.
        entries: u64,
        /// The limit that was given.
        limit: u64,
    },
    /// Reading the file system failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that could not be read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

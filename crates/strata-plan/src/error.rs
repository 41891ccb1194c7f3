//! The crate's error type.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while planning, measuring or saving into DataLad.
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
    /// A subject or sample label is not a valid BIDS label.
    #[error(transparent)]
    Label(#[from] strata_bids::name::NameError),
    /// DataLad or git-annex cannot be run; the message says how to install them.
    #[error("{0}")]
    DataladMissing(String),
    /// A DataLad step failed: a section that cannot be placed, a folder that cannot be read
    /// or written, or a `datalad` or `git` command that failed (with its output).
    #[error("{0}")]
    Datalad(String),
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

//! The crate's error type.

use std::path::PathBuf;

/// Errors of strata-bids. Each variant carries the path it concerns and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file name or path is not a valid BIDS microscopy name.
    #[error("invalid BIDS microscopy name {name:?}: {source}")]
    Name {
        /// The offending name.
        name: String,
        /// What is wrong with it.
        #[source]
        source: crate::name::NameError,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be parsed or does not have the expected shape.
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A TSV table is malformed.
    #[error("{}: line {line}: {message}", path.display())]
    Table {
        /// The table file (empty when parsed from memory).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A value breaks a rule of the specification.
    #[error("{what}: {message}")]
    Invalid {
        /// The field, column or file concerned.
        what: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The path given as a dataset root is not a directory.
    #[error("{}: not a directory; give the root folder of a BIDS dataset", path.display())]
    NotADataset {
        /// The path.
        path: PathBuf,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<strata_fs::Error> for Error {
    fn from(e: strata_fs::Error) -> Self {
        let (path, source) = e.into_parts();
        Self::Io { path, source }
    }
}

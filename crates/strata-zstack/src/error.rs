//! The crate's error type.

use std::path::PathBuf;

/// Errors of strata-zstack. Each names the file or object concerned and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input plane cannot be used (unreadable, corrupt, unsupported, inconsistent).
    #[error("{source_name}: {message}")]
    Input {
        /// The plane's file (or other source) name.
        source_name: String,
        /// What is wrong and what to do.
        message: String,
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
    /// Encoding a chunk failed.
    #[error("encoding failed: {0}")]
    Codec(String),
    /// The requested conversion is not possible as configured.
    #[error("{0}")]
    Config(String),
    /// Writing BIDS metadata failed.
    #[error(transparent)]
    Bids(#[from] strata_bids::Error),
    /// Building NGFF metadata failed.
    #[error(transparent)]
    Ngff(#[from] strata_ngff::Error),
    /// The z-stack failed the QC gate: nothing was published.
    #[error(
        "the z-stack failed quality control, nothing was published (report: {}): {}",
        report.display(),
        reasons.join("; ")
    )]
    QcFailed {
        /// The HTML report (written as a derivative of the dataset).
        report: PathBuf,
        /// Each failed rule: metric, value, limit and what it means.
        reasons: Vec<String>,
    },
    /// A source file changed while the conversion read it (a scanner still writing it, a
    /// copy in progress): nothing was published.
    #[error(
        "{}: the file changed while it was being converted ({detail}); nothing was published: convert again once the file is complete",
        path.display()
    )]
    SourceChanged {
        /// The source file.
        path: PathBuf,
        /// What changed: size or modification time, before and after.
        detail: String,
    },
    /// Writing to (or reading from) the store that holds the dataset failed.
    #[error(transparent)]
    Store(#[from] strata_store::Error),
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

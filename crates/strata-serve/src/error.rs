//! Errors of the server.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The dataset cannot be opened.
    #[error("cannot serve {location}: {reason}")]
    Open {
        /// The location given.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// Nothing is served under the requested path.
    #[error("not found")]
    NotFound,
    /// The backend failed while answering.
    #[error(transparent)]
    Store(Box<strata_store::Error>),
    /// The address cannot be bound, or another socket error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A bad option.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// A store error; "not found" and "outside the root" become [`Error::NotFound`].
    pub(crate) fn store(e: strata_store::Error) -> Self {
        if e.is_not_found()
            || matches!(
                e,
                strata_store::Error::OutsideRoot { .. } | strata_store::Error::InvalidKey { .. }
            )
        {
            Self::NotFound
        } else {
            Self::Store(Box::new(e))
        }
    }
}

/// Result of the server's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

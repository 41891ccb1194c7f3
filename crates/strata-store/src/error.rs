//! The crate's one error type.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Boxed source error of a backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a store. Every variant names the key (or the root/path) it
/// concerns, so a message can be acted on without a backtrace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No object is stored under the key.
    #[error("object {key:?} not found in {store}")]
    NotFound {
        /// The key asked for.
        key: String,
        /// Which store (its display name).
        store: String,
    },
    /// The key is not a valid store key (relative, `/`-separated, no `.`/`..`, no empty
    /// segments, no NUL).
    #[error(
        "invalid store key {key:?}: {reason}; use a relative '/'-separated key such as \"sub-01/micr/zarr.json\""
    )]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A byte range does not fit the object.
    #[error("byte range {range} is outside object {key:?} of {size} bytes")]
    InvalidRange {
        /// The key read.
        key: String,
        /// The requested range, as text.
        range: String,
        /// The object's size.
        size: u64,
    },
    /// The key resolves (through a symlink) to a path outside the store's root.
    #[error(
        "key {key:?} resolves to {resolved:?}, outside the store root {root:?}; remove the symlink or open the store at a root that contains its target"
    )]
    OutsideRoot {
        /// The key.
        key: String,
        /// The root of the store.
        root: PathBuf,
        /// Where the key led.
        resolved: PathBuf,
    },
    /// An I/O error on a local file.
    #[error("{op} of {key:?} failed at {path:?}: {source}")]
    Io {
        /// The operation (`get`, `put`, `list`, ...).
        op: &'static str,
        /// The key (empty for store-wide operations).
        key: String,
        /// The file-system path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An error from a remote or wrapped backend (object storage, ...).
    #[error("{op} of {key:?} failed in {store}: {source}")]
    Backend {
        /// The operation.
        op: &'static str,
        /// The key (empty for store-wide operations).
        key: String,
        /// Which store.
        store: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The stored data is malformed (for example a damaged zip archive).
    #[error("{what} is malformed: {reason}")]
    Corrupt {
        /// What was read (key or file).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The operation is not available on this store.
    #[error("{op} is not supported by {store}: {hint}")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// Which store.
        store: String,
        /// What to do instead.
        hint: String,
    },
    /// A store cannot be opened with the given configuration.
    #[error("invalid store configuration: {reason}")]
    Config {
        /// What is missing or wrong, and how to fix it.
        reason: String,
    },
}

impl Error {
    /// Whether this error means "no object under that key".
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    pub(crate) fn invalid_key(key: &str, reason: impl Into<String>) -> Self {
        Self::InvalidKey {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

//! The crate's error type.

use crate::validate::Report;

/// Errors returned by `strata-ngff`.
///
/// Validation problems are not reported one by one through this type: a
/// document that breaks the specification yields [`Error::Invalid`], which
/// carries the full [`Report`] with every violation and its JSON path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not well-formed JSON.
    #[error("malformed JSON: {source}")]
    Json {
        /// The parser error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A metadata document is larger than the caller's limit.
    #[error("metadata document of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the document in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The metadata does not conform to OME-NGFF; the report lists every violation.
    #[error("invalid OME-NGFF metadata:\n{report}")]
    Invalid {
        /// Every violation found, each with its JSON path.
        report: Report,
    },
    /// Metadata that passed validation could not be converted to the typed model.
    #[error("cannot convert metadata at `{pointer}` to the typed model: {source}")]
    Model {
        /// JSON pointer of the value that failed to convert.
        pointer: String,
        /// The conversion error.
        #[source]
        source: serde_json::Error,
    },
    /// A Zarr array metadata document (`zarr.json` or `.zarray`) is unusable.
    #[error("invalid Zarr array metadata at `{pointer}`: {message}")]
    ArrayMetadata {
        /// JSON pointer of the offending value.
        pointer: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The multiscale builder was given inconsistent input.
    #[error("cannot build multiscale: {message}")]
    Builder {
        /// What is wrong with the input.
        message: String,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

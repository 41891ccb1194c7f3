//! The crate's error type.

/// Errors from QC computation, rule parsing and report rendering.
///
/// QC never panics on malformed input: wrong buffer lengths, out-of-order bands, empty or
/// oversized planes and inconsistent stacks are reported here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The plane geometry is unusable (zero or too large dimensions, bad tile size, ...).
    #[error("invalid plane geometry: {0}")]
    InvalidGeometry(String),
    /// A band's sample buffer does not match the plane's geometry or pixel format.
    #[error("plane {plane}: invalid band at row {y0}: {reason}")]
    InvalidBand {
        /// Plane index (0 when used outside a stack).
        plane: usize,
        /// First row of the offending band.
        y0: usize,
        /// What is wrong.
        reason: String,
    },
    /// A plane was finished before all its rows arrived.
    #[error("plane {plane}: incomplete, {received} of {height} rows received")]
    IncompletePlane {
        /// Plane index.
        plane: usize,
        /// Rows received.
        received: usize,
        /// Rows expected.
        height: usize,
    },
    /// The stack's planes are inconsistent or missing.
    #[error("invalid stack: {0}")]
    InvalidStack(String),
    /// A rules file could not be parsed.
    #[error("invalid QC rules: {0}")]
    Rules(String),
    /// An image for the report could not be encoded.
    #[error("report image: {0}")]
    Image(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! Errors of the read side: each names the image, and where it applies the level and chunk.

/// What went wrong opening or reading an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The location is not one this crate can open.
    #[error(
        "cannot open {location:?}: {reason}; give an .ome.zarr folder, an .ozx file, zip:///path/x.ozx or s3://bucket/prefix/x.ome.zarr"
    )]
    Location {
        /// The location as given.
        location: String,
        /// Why it cannot be opened.
        reason: String,
    },
    /// The store failed (missing object, I/O, network).
    #[error("{image}: {source}")]
    Store {
        /// The image.
        image: String,
        /// The store's error.
        #[source]
        source: strata_store::Error,
    },
    /// The image's metadata is missing, malformed, or disagrees with its arrays.
    #[error("{image}: {reason}")]
    Metadata {
        /// The image.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// A level that the image does not have.
    #[error("{image}: there is no level {level} (the image has levels 0 to {last})", last = levels.saturating_sub(1))]
    NoSuchLevel {
        /// The image.
        image: String,
        /// The level asked for.
        level: usize,
        /// How many levels the image has.
        levels: usize,
    },
    /// A region that does not fit the level.
    #[error("{image} level {level}: region {region} does not fit the level's shape {shape:?}")]
    OutOfBounds {
        /// The image.
        image: String,
        /// The level.
        level: usize,
        /// The region, as `start..end` per axis.
        region: String,
        /// The level's shape.
        shape: Vec<u64>,
    },
    /// A region larger than the configured limit.
    #[error(
        "{image} level {level}: a region of {bytes} bytes is over the limit of {limit} bytes; read it in pieces or raise ImageOptions::max_region_bytes"
    )]
    TooLarge {
        /// The image.
        image: String,
        /// The level.
        level: usize,
        /// Bytes the region would need.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// A buffer whose size is not the region's.
    #[error("{image} level {level}: the buffer holds {got} bytes, the region needs {want}")]
    Buffer {
        /// The image.
        image: String,
        /// The level.
        level: usize,
        /// Bytes the region needs.
        want: usize,
        /// Bytes the buffer holds.
        got: usize,
    },
    /// A chunk (or the shard index that locates it) could not be read or decoded.
    #[error("{image} level {level} chunk {chunk:?}: {reason}")]
    Chunk {
        /// The image.
        image: String,
        /// The level.
        level: usize,
        /// The chunk's grid indices (the inner chunk of a sharded array).
        chunk: Vec<u64>,
        /// What failed.
        reason: String,
    },
}

impl Error {
    /// Whether the error is about the caller's request (level, region, buffer), not the data.
    #[must_use]
    pub fn is_request_error(&self) -> bool {
        matches!(
            self,
            Self::NoSuchLevel { .. }
                | Self::OutOfBounds { .. }
                | Self::TooLarge { .. }
                | Self::Buffer { .. }
                | Self::Location { .. }
        )
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

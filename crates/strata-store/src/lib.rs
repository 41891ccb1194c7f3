//! Storage for Strata: one small, object-safe async store trait over POSIX/GPFS, object
//! storage (S3 and any other [`object_store`] backend) and single-file OME-Zarr zip archives
//! (`.ozx`), with zarrs integration and usage accounting.
//!
//! The traits are split by capability ([`ReadableStore`], [`WritableStore`],
//! [`ListableStore`]; [`Store`] has all three) over validated [`StoreKey`]s and
//! [`bytes::Bytes`]. Every write is published atomically: a reader sees the old object or
//! the whole new one, never a part (temp file + rename on POSIX, single PUT or completed
//! multipart upload on object storage, the central directory in a zip archive).
//!
//! ```
//! # async fn demo() -> strata_store::Result<()> {
//! use strata_store::{PosixStore, ReadableStore, StoreKey, WritableStore};
//! let dir = std::env::temp_dir().join("strata-store-doc");
//! let store = PosixStore::create(&dir, Default::default())?;
//! let key = StoreKey::new("img.ome.zarr/zarr.json")?;
//! store.put(&key, bytes::Bytes::from_static(b"{}")).await?;
//! assert_eq!(&store.get(&key).await?[..], b"{}");
//! # Ok(()) }
//! ```

mod bridge;
mod buffers;
mod copy;
mod direct;
mod error;
mod key;
#[cfg(feature = "object-store")]
mod object;
pub mod ozx;
mod posix;
pub mod stage;
mod traits;

pub use bridge::block_on;
pub use bytes::Bytes;
pub use copy::{DEFAULT_PIECE, copy_object, sha256_object, sha256_object_ranged};
pub use error::{BoxError, Error, Result};
pub use key::StoreKey;
#[cfg(feature = "object-store")]
pub use object::{DEFAULT_PART_SIZE, ObjectStoreBackend, S3Options};
#[cfg(feature = "object-store")]
pub use object_store;
pub use ozx::{OzxOptions, OzxStore, OzxWriter};
pub use posix::{FsyncPolicy, PosixOptions, PosixStore};
pub use stage::{StageOptions, StageSummary, StoreUrl, stage, stage_to_ozx, stage_urls};
pub use traits::{
    ByteRange, DirListing, DynListableStore, DynObjectReader, DynReadableStore, DynStore,
    DynWritableStore, ListableStore, ObjectHead, ObjectMeta, ObjectReader, PutStream,
    ReadableStore, Store, StoreExt, Usage, WritableStore, WritableStoreExt,
};

#[cfg(feature = "conformance")]
pub mod conformance;

#[cfg(feature = "zarrs")]
pub mod zarr;
/// The SHA-256 implementation [`copy_object`] hashes with.
pub use sha2;
#[cfg(feature = "zarrs")]
pub use zarrs_storage;

//! The read side of a Strata repository: open an OME-Zarr image wherever it is stored (an
//! `.ome.zarr` folder, a single-file `.ozx` archive, a prefix of an S3 bucket) and read
//! regions of its levels.
//!
//! All reads go through the strata-store traits; zarrs parses the array metadata and the
//! shard indexes (read once per open image and kept) and decodes the inner chunks, which a
//! region read decodes in parallel (rayon) and can keep in a byte-budgeted LRU cache.
//!
//! ```no_run
//! use strata_access::{Image, ImageOptions, Region};
//! # fn main() -> Result<(), strata_access::Error> {
//! let img = Image::open_with(
//!     "sub-BB01/micr/sub-BB01_sample-0001_BF.ome.zarr",
//!     ImageOptions::default().cache_bytes(256 << 20),
//! )?;
//! let level = img.level(0)?;
//! println!("{} planes of {:?} {}", img.planes(), level.shape, level.data_type);
//! // Plane 3, rows 1000..1512, columns 2000..2512 of channel 0.
//! let patch = img.read_region(0, &Region::czyx(0..1, 3..4, 1000..1512, 2000..2512))?;
//! assert_eq!(patch.len(), 512 * 512 * level.element_size);
//! # Ok(()) }
//! ```

mod cache;
mod dataset;
mod error;
mod image;
mod location;
mod sampler;

pub use dataset::{DatasetImage, Selection, dataset_images};
pub use error::{Error, Result};
pub use image::{Image, ImageOptions, LevelInfo, Region};
pub use location::Location;
pub use sampler::{Patch, PatchAt, PatchIter, PatchSampler, Positions, SamplerOptions};

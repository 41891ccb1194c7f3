//! The whole check of a Strata dataset, as `strata validate` runs it: the BIDS microscopy
//! verdicts of [`strata_bids::validate`] plus, for every `.ome.zarr` image, its NGFF metadata,
//! its arrays' metadata checked against it, and its level-0 pixel size compared with the BIDS
//! sidecar's `PixelSize` (see [`OmeZarrCheck`]). The official BIDS validator checks none of the
//! image contents.
//!
//! ```
//! let report = strata_validate::validate_dataset(std::path::Path::new("."))?;
//! println!("{} errors, {} warnings", report.summary.errors, report.summary.warnings);
//! # Ok::<(), strata_bids::Error>(())
//! ```

mod ome_zarr;

pub use ome_zarr::OmeZarrCheck;
pub use strata_bids::validate::{CacheStats, Issue, Report, Severity, Summary, Validator};

/// The full validator: the BIDS rules plus the OME-Zarr content check.
#[must_use]
pub fn validator() -> Validator {
    Validator::new().with_check(Box::new(OmeZarrCheck))
}

/// Validates the dataset at `root` with the [`validator()`]: BIDS verdicts and OME-Zarr
/// contents in one report.
///
/// # Errors
/// [`strata_bids::Error::NotADataset`] if `root` is not a directory; [`strata_bids::Error::Io`]
/// if it cannot be read. Problems of the dataset itself are issues of the report, not errors.
pub fn validate_dataset(root: &std::path::Path) -> strata_bids::Result<Report> {
    validator().validate(root)
}

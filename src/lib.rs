//! Strata: a storage SDK for petabyte microscopy repositories.
//!
//! Slide scanners write z-stacks of whole-slide TIFF planes; Strata turns them into datasets
//! that follow community standards (BIDS microscopy with OME-Zarr) while keeping the number of
//! files small enough for HPC file-system quotas, and checks them on the way.
//!
//! This crate re-exports the workspace's crates under short names:
//!
//! - [`bids`]: BIDS microscopy names, sidecars, tables, dataset description and validation.
//! - [`ngff`]: OME-NGFF 0.4/0.5 metadata: models, validation, upgrade, Strata's pyramid builder.
//! - [`zstack`]: the one-pass z-stack converter (TIFF in, sharded OME-Zarr + BIDS out).
//! - [`qc`]: focus, exposure and tissue metrics, the QC gate and its HTML report.
//! - [`plan`]: the inode and byte planner for layouts and DataLad groupings.
//! - [`validate`]: the whole dataset check: BIDS verdicts plus every OME-Zarr image's contents.
//! - [`store`]: the async chunk-store traits and backends (POSIX/GPFS, object storage, `.ozx`
//!   zip), zarrs integration and staging between tiers.
//! - [`access`]: the read side: open an image anywhere (folder, `.ozx`, S3) and read regions of
//!   its levels in parallel.
//! - [`serve`]: the HTTP service: a dataset read-only over HTTP for viewers, with byte ranges,
//!   validators, CORS and every `.ozx` shown as its `.ome.zarr` folder.
//! - [`batch`]: a whole brain through Slurm: section manifests, idempotent array tasks and
//!   each section's state derived from the dataset.
//!
//! ```
//! let report = strata::bids::validate::validate(std::path::Path::new("."));
//! assert!(report.is_ok());
//! ```

pub use strata_access as access;
pub use strata_batch as batch;
pub use strata_bids as bids;
pub use strata_ngff as ngff;
pub use strata_plan as plan;
pub use strata_qc as qc;
pub use strata_serve as serve;
pub use strata_store as store;
pub use strata_validate as validate;
pub use strata_zstack as zstack;

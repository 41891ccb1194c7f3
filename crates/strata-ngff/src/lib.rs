//! OME-NGFF (OME-Zarr) 0.4 and 0.5 metadata for Strata.
//!
//! Pure metadata: this crate (de)serialises and checks JSON values and never
//! touches a file or a store. It provides
//!
//! * typed models of multiscales (axes, datasets, scale and translation),
//!   omero, labels and image-label, plate, well, `bioformats2raw.layout` and
//!   `series`, for both versions ([`model`]); unknown keys are kept;
//! * validation that reports every violation with its JSON path and an
//!   actionable message ([`validate()`], [`validate_zarr_json`]), in agreement
//!   with the specification's conformance suites;
//! * reading 0.4 `.zattrs` ([`read_zattrs`]) or 0.5 `zarr.json`
//!   ([`read_zarr_json`]) and upgrading 0.4 to 0.5 in one call
//!   ([`upgrade_zattrs`]);
//! * the multiscale Strata writes ([`MultiscaleBuilder`], pixel-centre
//!   convention in [`builder`]) and its group `zarr.json` ([`group_zarr_json`]);
//! * cross-checks of the metadata against the arrays it names
//!   ([`cross_check`], [`ArraySummary`]).
//!
//! # Reading 0.4 and upgrading to 0.5
//!
//! ```
//! use strata_ngff::{parse_json, upgrade_zattrs};
//!
//! let zattrs = parse_json(br#"{
//!   "multiscales": [{
//!     "version": "0.4",
//!     "axes": [
//!       {"name": "y", "type": "space", "unit": "micrometer"},
//!       {"name": "x", "type": "space", "unit": "micrometer"}
//!     ],
//!     "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [0.5, 0.5]}]}]
//!   }]
//! }"#)?;
//! let group = upgrade_zattrs(&zattrs)?;
//! let zarr_json = group.to_value();
//! assert_eq!(zarr_json["zarr_format"], 3);
//! assert_eq!(zarr_json["attributes"]["ome"]["version"], "0.5");
//! assert!(zarr_json["attributes"]["ome"]["multiscales"][0].get("version").is_none());
//! # Ok::<(), strata_ngff::Error>(())
//! ```
//!
//! # Validating with JSON paths
//!
//! ```
//! use strata_ngff::{ValidateOptions, parse_json, validate_zarr_json};
//!
//! let doc = parse_json(br#"{"zarr_format": 3, "node_type": "group", "attributes": {"ome": {
//!   "version": "0.5",
//!   "multiscales": [{"axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space", "unit": 5}],
//!                    "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]}]}]
//! }}}"#)?;
//! let report = validate_zarr_json(&doc, &ValidateOptions::new());
//! assert!(!report.is_valid());
//! let paths: Vec<&str> = report.errors().map(|v| v.path.as_str()).collect();
//! assert!(paths.contains(&"/attributes/ome/multiscales/0/axes/1/unit"));
//! assert!(paths.contains(&"/attributes/ome/multiscales/0/datasets/0/coordinateTransformations/0/scale"));
//! # Ok::<(), strata_ngff::Error>(())
//! ```
//!
//! # Building Strata's multiscale
//!
//! ```
//! use strata_ngff::MultiscaleBuilder;
//!
//! // 1 channel, 30 focus levels, 4096 x 4096 pixels of 0.25 um, z spacing 2 um;
//! // y and x halve per level, z is kept; 4 levels.
//! let builder = MultiscaleBuilder::czyx(
//!     [1, 30, 4096, 4096],
//!     [2.0, 0.25, 0.25],
//!     ["micrometer"; 3],
//!     [1, 2, 2],
//!     4,
//! )
//! .name("sub-01_sample-01_BF");
//! let ms = builder.build()?;
//! assert_eq!(ms.datasets[2].scale(), Some(&[1.0, 2.0, 1.0, 1.0][..]));
//! // Pixel centres: translation = (2^2 - 1) / 2 * 0.25 = 0.375.
//! assert_eq!(ms.datasets[2].translation(), Some(&[0.0, 0.0, 0.375, 0.375][..]));
//! assert_eq!(builder.level_shapes()?[3], vec![1, 30, 512, 512]);
//! let zarr_json = builder.group_zarr_json()?;
//! assert_eq!(zarr_json["attributes"]["ome"]["version"], "0.5");
//! # Ok::<(), strata_ngff::Error>(())
//! ```

pub mod builder;
pub mod crosscheck;
mod error;
pub mod model;
mod read;
pub mod units;
pub mod validate;

pub use builder::{AxisSpec, MultiscaleBuilder, group_zarr_json, pyramid_shapes};
pub use crosscheck::{ArraySummary, cross_check, is_integer_type};
pub use error::{Error, Result};
pub use model::{
    Acquisition, Axis, AxisType, Channel, CoordinateTransformation, Dataset, GroupAttributes,
    ImageLabel, LabelColor, LabelProperty, LabelSource, Multiscale, NamedEntry, OmeMetadata, Omero,
    Plate, PlateWell, Scale, Translation, Version, Well, WellImage, Window, ZarrGroup,
};
pub use read::{
    GroupMetadata, MAX_METADATA_BYTES, parse_json, parse_json_limited, read_zarr_json, read_zattrs,
    upgrade, upgrade_zattrs,
};
pub use validate::{
    GroupKind, Report, Severity, ValidateOptions, Violation, ViolationKind, detect_version,
    validate, validate_zarr_json,
};

//! BIDS microscopy for Strata: typed file names, sidecars, tables, the dataset description and
//! a fast validator.
//!
//! The rules (entity order, suffixes, extensions, sidecar fields and their levels, table
//! columns, value types) are generated from the official BIDS schema; see [`schema`].
//!
//! ```
//! use strata_bids::name::{Extension, Label, MicrName, Suffix};
//! use strata_bids::sidecar::{MicroscopySidecar, PixelSizeUnits};
//!
//! let name = MicrName::new(
//!     Label::new("sub", "BB01")?,
//!     Label::new("sample", "3121")?,
//!     Suffix::BF,
//!     Extension::OME_ZARR,
//! );
//! assert_eq!(name.to_string(), "sub-BB01_sample-3121_BF.ome.zarr");
//! let sidecar = MicroscopySidecar::new(vec![1.0, 1.0, 5.0], PixelSizeUnits::Micrometre);
//! assert!(sidecar.to_json()?.contains("\"PixelSizeUnits\": \"um\""));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod description;
pub mod error;
pub mod name;
pub mod schema;
pub mod sidecar;
pub mod table;
pub mod validate;

pub use error::{Error, Result};

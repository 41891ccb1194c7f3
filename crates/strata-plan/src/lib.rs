//! Inode and byte model of Strata's storage layouts under DataLad/git-annex, calibrated on
//! real DataLad runs, with a tree counter to compare plans with reality.
//!
//! ```
//! use strata_plan::{Grouping, Layout, PlanInput, predict};
//!
//! let brain = PlanInput::whole_brain();
//! let p = predict(&brain, Layout::ZarrV3Sharded, Grouping::PerSections(1000))?;
//! assert!(p.inodes_after_gc < 350_000);
//! # Ok::<(), strata_plan::Error>(())
//! ```

pub mod error;
pub mod input;
pub mod layout;
pub mod measure;
pub mod model;
pub mod plan;
pub mod svg;

pub use error::{Error, Result};
pub use input::{AnnexOptions, Grouping, KeySeparator, Layout, PlanInput};
pub use layout::{Entry, EntryKind, SectionCounts, section_counts, section_entries};
pub use measure::{GitPart, Measurement, measure};
pub use model::{Constants, DatasetShape, Prediction, datasets, predict, predict_with};
pub use plan::{
    MAX_DATASET_FILES, MAX_DIR_ENTRIES, PlanRow, Recommendation, groupings, plan, recommend,
};
pub use svg::render_svg;

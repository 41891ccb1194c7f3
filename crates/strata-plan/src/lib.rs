//! Inode and byte model of Strata's storage layouts under DataLad/git-annex, calibrated on
//! real DataLad runs, with a tree counter to compare plans with reality.
//!
//! - [`predict()`]: one layout and subdataset grouping → files, directories, inodes before and
//!   after `git gc`, bytes, the fullest directory and the largest dataset;
//! - [`plan()`] / [`recommend()`]: every layout x grouping against an inode quota, and a choice
//!   that respects the limits DataLad's documentation gives;
//! - [`measure()`]: counts a real tree (work tree and `.git` separately);
//! - [`render_svg()`]: inodes against subdataset size;
//! - [`datalad`]: sections saved into DataLad datasets in those groupings: placement, annex
//!   settings, `.gitattributes` rules, one save per section.
//!
//! ```
//! use strata_plan::{AnnexOptions, Grouping, Layout, PlanInput, predict};
//!
//! // 7,000 sections x 30 planes of 150,000 x 120,000 uint8 RGB, one shard per pyramid level.
//! let brain = PlanInput::whole_brain();
//! let p = predict(&brain, Layout::ZarrV3Sharded, Grouping::PerSections(2000))?;
//! assert_eq!(p.inodes_plain, 231_015); // 33 per section, plus the dataset files
//! assert!((440_000..450_000).contains(&p.inodes_after_gc));
//! let tuned = PlanInput { annex: AnnexOptions::TUNED, ..brain };
//! let p = predict(&tuned, Layout::ZarrV3Sharded, Grouping::PerSections(2000))?;
//! assert!(p.inodes_after_gc < 350_000);
//! # Ok::<(), strata_plan::Error>(())
//! ```

pub mod datalad;
pub mod error;
pub mod input;
pub mod layout;
pub mod measure;
pub mod model;
pub mod plan;
pub mod svg;

pub use datalad::AnnexMode;
pub use error::{Error, Result};
pub use input::{AnnexOptions, Grouping, KeySeparator, Layout, PlanInput};
pub use layout::{Entry, EntryKind, SectionCounts, section_counts, section_entries};
pub use measure::{GitPart, Measurement, measure};
pub use model::{Constants, DatasetShape, Prediction, datasets, predict, predict_with};
pub use plan::{
    MAX_DATASET_FILES, MAX_DIR_ENTRIES, PlanRow, Recommendation, groupings, plan, plan_with,
    recommend,
};
pub use svg::render_svg;

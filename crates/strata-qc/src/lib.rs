//! Quality control for Strata z-stacks: focus, exposure and tissue metrics computed band by band
//! inside the conversion's single read, a configurable gate, and a self-contained HTML report.
//!
//! This crate is pure pixel code: it never touches files. Feed it bands of full-width rows
//! through a [`PlaneSink`] (or a [`PlaneAccumulator`] per plane, which also takes a band as
//! column segments, left to right, with the same results), then evaluate the stack
//! against [`Rules`] to get a serialisable [`QcReport`].
//!
//! ```
//! use strata_qc::{PixelFormat, PlaneGeometry, PlaneSink, QcConfig, Rules, Samples, StackQc};
//!
//! let (w, h) = (64, 48);
//! let mut qc = StackQc::new(QcConfig::default())?;
//! for z in 0..3 {
//!     qc.begin_plane(z, PlaneGeometry::new(w, h, PixelFormat::Gray8))?;
//!     // Two bands of 24 rows each; the sharpest pattern is on plane 1.
//!     for y0 in [0, 24] {
//!         let band: Vec<u8> = (0..24 * w)
//!             .map(|i| {
//!                 let (x, y) = (i % w, y0 + i / w);
//!                 let edge = if (x / 8 + y / 8) % 2 == 0 { 40 } else { 220 };
//!                 if z == 1 { edge } else { 130 }
//!             })
//!             .collect();
//!         qc.band(z, y0, Samples::U8(&band))?;
//!     }
//!     qc.finish_plane(z)?;
//! }
//! let report = qc.finish()?.evaluate(&Rules::default());
//! assert_eq!(report.best_plane, 1);
//! # Ok::<(), strata_qc::Error>(())
//! ```
//!
//! See the crate README for the exact definition of every metric and how each agrees with
//! OpenCV and scikit-image.

pub mod error;
pub mod gate;
pub mod otsu;
pub mod pixel;
pub mod plane;
pub mod report;
pub mod stack;

pub use error::{Error, Result};
pub use gate::{QcReport, RuleOutcome, Rules};
pub use otsu::otsu_threshold;
pub use pixel::{LUMA_WEIGHTS_Q15, PixelFormat, PlaneGeometry, Samples, luminance};
pub use plane::{
    ExposureMetrics, FocusMetrics, GrayImage, PlaneAccumulator, PlaneMetrics, PlaneQc, QcConfig,
    TileMap, TileStat, TissueMetrics, analyze_plane,
};
pub use report::{Thumbnail, render_html};
pub use stack::{PlaneSink, StackQc, StackSummary, TileSummary};

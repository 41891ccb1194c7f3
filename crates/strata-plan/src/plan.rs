//! Tables of layouts x groupings, and a recommendation that respects the limits DataLad's and
//! git-annex's documentation give.

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::datalad::AnnexMode;
use crate::input::{Grouping, Layout, PlanInput};
use crate::model::predict;

/// Files per dataset above which a dataset needs restructuring.
///
/// DataLad handbook recommends ("Going big with DataLad", section 2.1): datasets "with some
/// tens of thousands of files at maximum" usually work fine, and the scaling advice applies
/// "once you have a use case in which you would go substantially beyond 100k files in a single
/// dataset". The planner holds every dataset at or below 100,000 work-tree files.
pub const MAX_DATASET_FILES: u64 = 100_000;

/// Entries per directory the planner allows.
///
/// DataLad handbook recommends (section 2.4, "Summary") minding file-system limits: "too many
/// files in single directories can become problematic even without version control"; the
/// git-annex tips page "Repositories with large number of files" puts the number: keep a
/// directory "between 5000 and 20000" files depending on the file system. The planner uses
/// 10,000, the middle of that range.
pub const MAX_DIR_ENTRIES: u64 = 10_000;

/// One row of the plan table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRow {
    /// Layout.
    pub layout: Layout,
    /// Subdataset grouping.
    pub grouping: Grouping,
    /// git-annex layout (`default` or `compact`, as `strata convert --datalad-annex`).
    pub annex: AnnexMode,
    /// Datasets (superdataset included).
    pub datasets: u64,
    /// Inodes of the plain tree, without DataLad.
    pub inodes_plain: u64,
    /// Inodes with DataLad before `git gc`.
    pub inodes_before_gc: u64,
    /// Inodes with DataLad after `git gc` in every dataset.
    pub inodes_after_gc: u64,
    /// Stored bytes.
    pub bytes: u64,
    /// Entries of the fullest directory.
    pub largest_dir: u64,
    /// Work-tree files of the biggest dataset.
    pub largest_dataset_files: u64,
    /// Whether the tree fits the inode quota after gc.
    pub fits_quota: bool,
    /// Whether it fits even before gc.
    pub fits_quota_before_gc: bool,
    /// Whether it keeps [`MAX_DATASET_FILES`] and [`MAX_DIR_ENTRIES`].
    pub within_limits: bool,
}

/// Groupings the table compares: none, per subject, and 1 to 5,000 sections per subdataset
/// (sizes not below the sections of a subject are left out).
#[must_use]
pub fn groupings(input: &PlanInput) -> Vec<Grouping> {
    let per_subject = input.sections.div_ceil(input.subjects.max(1));
    let mut out = vec![Grouping::None, Grouping::PerSubject];
    for n in [1, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000] {
        if n < per_subject {
            out.push(Grouping::PerSections(n));
        }
    }
    out
}

/// Predicts every layout x grouping, for both git-annex layouts ([`AnnexMode::ALL`]).
///
/// # Errors
/// [`crate::Error::Input`] if the input is invalid.
pub fn plan(input: &PlanInput, quota_inodes: u64) -> Result<Vec<PlanRow>> {
    plan_with(input, quota_inodes, &AnnexMode::ALL)
}

/// Predicts every layout x grouping for the git-annex layouts `modes`.
///
/// # Errors
/// [`crate::Error::Input`] if the input is invalid.
pub fn plan_with(
    input: &PlanInput,
    quota_inodes: u64,
    modes: &[AnnexMode],
) -> Result<Vec<PlanRow>> {
    input.validate()?;
    let mut out = Vec::new();
    for &annex in modes {
        let input = PlanInput {
            annex: annex.options(),
            ..input.clone()
        };
        for layout in Layout::ALL {
            for grouping in groupings(&input) {
                let p = predict(&input, layout, grouping)?;
                out.push(PlanRow {
                    layout,
                    grouping,
                    annex,
                    datasets: p.datasets,
                    inodes_plain: p.inodes_plain,
                    inodes_before_gc: p.inodes_before_gc,
                    inodes_after_gc: p.inodes_after_gc,
                    bytes: p.bytes,
                    largest_dir: p.largest_dir,
                    largest_dataset_files: p.largest_dataset_files,
                    fits_quota: p.inodes_after_gc <= quota_inodes,
                    fits_quota_before_gc: p.inodes_before_gc <= quota_inodes,
                    within_limits: p.largest_dataset_files <= MAX_DATASET_FILES
                        && p.largest_dir <= MAX_DIR_ENTRIES,
                });
            }
        }
    }
    Ok(out)
}

/// The chosen row and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The recommended layout, grouping and annex options.
    pub row: PlanRow,
    /// The `strata convert` flags that produce the row's layout, grouping and annex layout
    /// (`None` for a layout `strata convert` does not write).
    pub convert_flags: Option<String>,
    /// Why, with numbers.
    pub reasons: Vec<String>,
}

impl PlanRow {
    /// The `strata convert` flags that produce this row (`--layout`, `--datalad-group`,
    /// `--datalad-annex`), or `None` for a layout `strata convert` does not write.
    #[must_use]
    pub fn convert_flags(&self) -> Option<String> {
        let layout = match self.layout {
            Layout::ZarrV3Sharded => "zarr",
            Layout::Ozx => "ozx",
            _ => return None,
        };
        let group = match self.grouping {
            Grouping::None => "none".to_owned(),
            Grouping::PerSubject => "subject".to_owned(),
            Grouping::PerSections(1) => "section".to_owned(),
            Grouping::PerSections(n) => n.to_string(),
        };
        Some(format!(
            "--layout {layout} --datalad ROOT --datalad-group {group} --datalad-annex {}",
            self.annex.name()
        ))
    }
}

/// Picks a row: the BIDS-valid layout with the fewest inodes after gc that fits
/// `quota_inodes` and keeps the dataset and directory limits (either git-annex layout; fewer
/// datasets on a tie). Falls back to non-BIDS layouts, then to the smallest row, saying so.
/// `None` for no rows.
#[must_use]
pub fn recommend(rows: &[PlanRow], quota_inodes: u64) -> Option<Recommendation> {
    let ok = |r: &&PlanRow| r.inodes_after_gc <= quota_inodes && r.within_limits;
    let best = |pred: &dyn Fn(&&PlanRow) -> bool| {
        rows.iter()
            .filter(|r| ok(r) && pred(r))
            .min_by_key(|r| (r.inodes_after_gc, r.datasets))
    };
    let mut reasons = Vec::new();
    let row = if let Some(r) = best(&|r| r.layout.bids_valid()) {
        reasons.push(format!(
            "the smallest BIDS-valid layout that fits {quota_inodes} inodes within the limits, with the {} git-annex layout",
            r.annex.name()
        ));
        if let Some(d) = best(&|d| {
            d.layout.bids_valid() && d.annex == AnnexMode::Default && r.annex != AnnexMode::Default
        }) {
            reasons.push(format!(
                "with git-annex defaults the smallest is {} grouped {}: {} inodes after gc",
                d.layout.name(),
                d.grouping.name(),
                d.inodes_after_gc
            ));
        }
        r
    } else if let Some(r) = best(&|_| true) {
        reasons.push(format!(
            "no BIDS-valid layout fits {quota_inodes} inodes; {} does but is not BIDS",
            r.layout.name()
        ));
        r
    } else {
        let r = rows.iter().min_by_key(|r| r.inodes_after_gc)?;
        reasons.push(format!(
            "nothing fits {quota_inodes} inodes within the limits; this is the smallest"
        ));
        r
    };
    reasons.push(format!(
        "{} inodes after git gc ({:.0}% of the quota), {} before gc",
        row.inodes_after_gc,
        percent(row.inodes_after_gc, quota_inodes),
        row.inodes_before_gc
    ));
    reasons.push(format!(
        "largest dataset {} files (DataLad handbook: stay below {MAX_DATASET_FILES})",
        row.largest_dataset_files
    ));
    reasons.push(format!(
        "fullest directory {} entries (limit {MAX_DIR_ENTRIES})",
        row.largest_dir
    ));
    reasons.push(format!(
        "{} datasets: each costs about 75 inodes after gc (hundreds before) and its own annex \
         hash directories, so smaller subdatasets cost more",
        row.datasets
    ));
    Some(Recommendation {
        row: row.clone(),
        convert_flags: row.convert_flags(),
        reasons,
    })
}

#[allow(clippy::cast_precision_loss)]
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

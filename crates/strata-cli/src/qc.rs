//! `strata qc`: quality control of a z-stack (focus, exposure, tissue) without converting it.

use crate::common::{DynResult, bytes_bar, rules};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use strata_zstack::{BandHook, Region, StackInfo};

/// The flags of `strata qc`.
#[derive(Debug, clap::Args)]
pub(crate) struct QcCmd {
    /// Folder of TIFF files, one per focus level.
    zstack: PathBuf,
    /// Rules file (TOML, or JSON with a .json extension); documented defaults without it.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Print the report as JSON (best_plane, planes with their metrics, passed, reasons).
    #[arg(long)]
    json: bool,
    /// Write a self-contained HTML report (focus curve, thumbnails, tissue mask, tile map).
    #[arg(long)]
    report: Option<PathBuf>,
}

/// Drives a progress bar from the converter's band hook.
struct Progress {
    bar: ProgressBar,
}

impl BandHook for Progress {
    fn band(&mut self, _info: &StackInfo, _region: Region, data: &[u8]) {
        self.bar.inc(data.len() as u64);
    }
}

impl QcCmd {
    /// Checks the z-stack and prints the report; `Ok(true)` when it fails the rules.
    pub(crate) fn run(self) -> DynResult<bool> {
        let zstack: &Path = &self.zstack;
        let rules = rules(self.rules.as_deref())?;
        let mut source = strata_zstack::open_source(zstack, None)?;
        let info = source.info().clone();
        let total = u64::from(info.planes) * u64::from(info.height) * info.row_bytes() as u64;
        let bar = bytes_bar(
            self.json,
            total,
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})",
            format!("checking {}", zstack.display()),
        );
        let mut progress = Progress { bar };
        let summary = strata_zstack::run_qc(
            &mut *source,
            strata_qc::QcConfig::default(),
            512,
            &mut progress,
        )?;
        progress.bar.finish_and_clear();
        let report = summary.evaluate(&rules);
        if let Some(path) = &self.report {
            let title = zstack.display().to_string();
            std::fs::write(
                path,
                strata_qc::render_html(&report, &title, &summary.thumbnails())?,
            )
            .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if self.json {
            outln!("{}", report.to_json()?);
        } else {
            print_report(zstack, &report, info.planes);
        }
        Ok(!report.passed)
    }
}

/// Prints a QC report as text: the verdict, then one line per rule.
fn print_report(zstack: &Path, report: &strata_qc::QcReport, planes: u32) {
    outln!(
        "{}: {} (best focus: plane {} of {})",
        zstack.display(),
        if report.passed { "passed" } else { "FAILED" },
        report.best_plane,
        planes
    );
    for r in &report.reasons {
        outln!(
            "  {} {:<32} {:>12.6} (limit {}) {}",
            if r.passed { "ok  " } else { "FAIL" },
            r.rule,
            r.value,
            r.threshold,
            r.message
        );
    }
}

//! `strata plan`: inodes and bytes of every layout and DataLad grouping for a whole
//! repository, against a quota; `--measure` counts a real tree.

use serde_json::json;
use std::path::{Path, PathBuf};
use strata_plan::{AnnexMode, PlanInput, measure, plan_with, recommend, render_svg};

type DynResult<T> = Result<T, Box<dyn std::error::Error>>;

/// What to plan (the flags of `strata plan`).
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Sections (histological slices).
    #[arg(long, default_value_t = 7000)]
    pub(crate) sections: u64,
    /// Subjects (brains) the sections are spread over.
    #[arg(long, default_value_t = 1)]
    pub(crate) subjects: u64,
    /// Focus levels per section.
    #[arg(long, default_value_t = 30)]
    pub(crate) planes: u64,
    /// Plane size, WIDTHxHEIGHT.
    #[arg(long, default_value = "120000x150000", value_parser = crate::common::parse_size)]
    pub(crate) plane: (u32, u32),
    /// Sample type: uint8 or uint16.
    #[arg(long, default_value = "uint8")]
    pub(crate) dtype: String,
    /// Samples per pixel (3 for RGB).
    #[arg(long, default_value_t = 3)]
    pub(crate) channels: u64,
    /// Inode quota to fit.
    #[arg(long, default_value_t = 3_000_000)]
    pub(crate) quota_inodes: u64,
    /// git-annex layouts to plan (as `strata convert --datalad-annex`): default, compact, or
    /// both (comma-separated; the default).
    #[arg(long, value_delimiter = ',', default_value = "default,compact", value_parser = parse_annex)]
    pub(crate) annex: Vec<AnnexMode>,
    /// Write a chart of inodes against subdataset size (SVG).
    #[arg(long)]
    pub(crate) svg: Option<PathBuf>,
    /// Count a real tree instead (files, folders, bytes, annexed objects).
    #[arg(long)]
    pub(crate) measure: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_annex(s: &str) -> Result<AnnexMode, String> {
    s.parse().map_err(|e: strata_plan::Error| e.to_string())
}

/// `strata plan`: with `--measure`, counts the tree; else prints the plan table (or JSON) and
/// optionally writes the chart.
pub(crate) fn run(a: &Options) -> DynResult<()> {
    match &a.measure {
        Some(path) => measure_tree(path, a.json),
        None => plan_table(a),
    }
}

/// Prints the plan table (or JSON) and optionally writes the chart.
fn plan_table(a: &Options) -> DynResult<()> {
    let dtype_bytes = match a.dtype.as_str() {
        "uint8" => 1,
        "uint16" => 2,
        other => return Err(format!("--dtype {other:?}: use uint8 or uint16").into()),
    };
    let input = PlanInput {
        sections: a.sections,
        subjects: a.subjects,
        planes: a.planes,
        width: u64::from(a.plane.0),
        height: u64::from(a.plane.1),
        dtype_bytes,
        channels: a.channels,
        ..PlanInput::whole_brain()
    };
    let mut modes = a.annex.clone();
    modes.dedup();
    let rows = plan_with(&input, a.quota_inodes, &modes)?;
    let rec = recommend(&rows, a.quota_inodes);
    if let Some(path) = &a.svg {
        let layouts: Vec<_> =
            rows.iter()
                .map(|r| (r.layout, r.annex.options()))
                .fold(Vec::new(), |mut v, x| {
                    if !v.contains(&x) {
                        v.push(x);
                    }
                    v
                });
        let sizes = [1, 10, 100, 500, 1000, 2000, 5000, a.sections];
        let chart = render_svg(&input, &layouts, &sizes, &[("quota", a.quota_inodes)])?;
        std::fs::write(path, chart).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"input": input, "rows": rows, "recommendation": rec})
            )?
        );
        return Ok(());
    }
    outln!(
        "{:<16} {:<16} {:<8} {:>9} {:>14} {:>14} {:>10} {:>12} {:>5}",
        "layout",
        "grouping",
        "annex",
        "datasets",
        "inodes (gc)",
        "before gc",
        "max dir",
        "max dataset",
        "fits"
    );
    for r in &rows {
        outln!(
            "{:<16} {:<16} {:<8} {:>9} {:>14} {:>14} {:>10} {:>12} {:>5}",
            r.layout.name(),
            r.grouping.name(),
            r.annex.name(),
            r.datasets,
            r.inodes_after_gc,
            r.inodes_before_gc,
            r.largest_dir,
            r.largest_dataset_files,
            if r.fits_quota { "yes" } else { "no" }
        );
    }
    match rec {
        Some(rec) => {
            outln!(
                "\nrecommended for a quota of {} inodes: {} grouped {} ({} inodes after gc)",
                a.quota_inodes,
                rec.row.layout.name(),
                rec.row.grouping.name(),
                rec.row.inodes_after_gc
            );
            for reason in &rec.reasons {
                outln!("  - {reason}");
            }
            match &rec.convert_flags {
                Some(flags) => outln!("  - produced by: strata convert ... {flags}"),
                None => outln!("  - strata convert does not write this layout"),
            }
        }
        None => outln!("\nno layout fits a quota of {} inodes", a.quota_inodes),
    }
    Ok(())
}

/// `strata plan --measure PATH`.
fn measure_tree(path: &Path, json_out: bool) -> DynResult<()> {
    let m = measure(path)?;
    if json_out {
        outln!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        outln!("{}: {m:#?}", path.display());
    }
    Ok(())
}

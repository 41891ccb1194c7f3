//! `strata convert --datalad <SUPERDATASET>`: the converted section saved into a DataLad
//! dataset, in the subdataset grouping the planner models ([`strata_plan::datalad`] places and
//! saves it); this module parses the flags, builds the provenance record and prints.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use strata_plan::Grouping;
use strata_plan::datalad::{AnnexMode, Datalad, Placement, Section, place, save};
use strata_zstack::ConvertSummary;

use crate::convert::{ConvertArgs, Hdf5Args, convert_with, print_convert_with};

type DynResult<T> = Result<T, Box<dyn std::error::Error>>;

/// `--datalad-group` by default: 2,000 sections per subdataset, the planner's recommendation
/// for a whole brain (7,000 sections of 30 planes under a 3M-inode quota); `strata plan`
/// computes it for other scales.
pub(crate) const DEFAULT_GROUP: &str = "2000";

/// Parses `--datalad-group`: a number of sections per subdataset, `section` (1), `subject`
/// or `none`.
pub(crate) fn parse_group(s: &str) -> Result<Grouping, String> {
    match s {
        "none" => Ok(Grouping::None),
        "subject" => Ok(Grouping::PerSubject),
        "section" => Ok(Grouping::PerSections(1)),
        n => n
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Grouping::PerSections)
            .ok_or_else(|| {
                format!(
                    "{s:?}: use a number of sections per subdataset (e.g. 2000), section, subject or none"
                )
            }),
    }
}

/// Whether two paths name the same folder (resolving links where the folders exist).
fn same_path(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    resolve(a) == resolve(b)
}

/// The BIDS root of a conversion: `--bids-root`, or the superdataset of `--datalad`, which is
/// the BIDS root itself (so both, if given, must name the same folder).
pub(crate) fn bids_root(
    bids_root: Option<PathBuf>,
    superdataset: Option<&Path>,
) -> Result<PathBuf, String> {
    match (bids_root, superdataset) {
        (Some(root), None) => Ok(root),
        (None, Some(sup)) => Ok(sup.to_path_buf()),
        (Some(root), Some(sup)) if same_path(&root, sup) => Ok(root),
        (Some(root), Some(sup)) => Err(format!(
            "--datalad {} is the superdataset and must be the BIDS root, but --bids-root is {}: \
             leave out --bids-root or give the same folder to both",
            sup.display(),
            root.display()
        )),
        (None, None) => Err("give --bids-root (or --datalad with the superdataset)".to_owned()),
    }
}

/// A path relative to the superdataset, for messages.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// The provenance record of a section: what was read (names, sizes), with what parameters,
/// what was written, by which strata, when; plus the record stored in the image's
/// `attributes.strata`.
fn provenance(
    a: &ConvertArgs,
    s: &ConvertSummary,
    p: &Placement,
    started: SystemTime,
    finished: SystemTime,
) -> Value {
    let files = json!(s.sources);
    let total: u64 = s.sources.iter().map(|f| f.bytes).sum();
    let record = std::fs::read(s.output.join("zarr.json"))
        .ok()
        .and_then(|t| serde_json::from_slice::<Value>(&t).ok())
        .and_then(|v| v.get("attributes")?.get("strata").cloned());
    let source = std::path::absolute(&a.zstack).unwrap_or_else(|_| a.zstack.clone());
    json!({
        "strata_version": env!("CARGO_PKG_VERSION"),
        "command": std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        "source": {"path": source, "files": files, "bytes": total},
        "subject": a.subject,
        "session": p.session,
        "sample": a.sample,
        "stain": a.stain,
        "output": relative(&p.root, &s.output),
        "parameters": {
            "chunk": a.chunk,
            "compression": format!("{:?}", a.compression),
            "planes_per_shard": a.planes_per_shard,
            "pixel_size": a.pixel_size,
            "pixel_units": a.pixel_units,
            "layout": if a.ozx { "ozx" } else { "zarr" },
            "qc_gate": a.qc_gate.is_some(),
            "datalad_group": p.grouping.name(),
        },
        "planes": s.planes,
        "width": s.width,
        "height": s.height,
        "levels": s.arrays.levels,
        "bytes_in": s.arrays.bytes_in,
        "bytes_out": s.arrays.bytes_out,
        "files": s.files,
        "folders": s.folders,
        "started": strata_zstack::utc(started),
        "finished": strata_zstack::utc(finished),
        "seconds": s.seconds,
        "record": record,
    })
}

/// `strata convert ... --datalad <SUPERDATASET>`: finds DataLad (before converting anything),
/// places the section, converts it, and saves it; prints the summary with a `datalad` object.
///
/// # Errors
/// As the conversion (a failing QC gate is [`strata_zstack::Error::QcFailed`]: nothing is created or saved),
/// and [`strata_plan::Error`] if DataLad is missing or fails (the section is then published but not
/// saved; rerunning the command converts it again and saves it).
pub(crate) fn convert(
    mut a: ConvertArgs,
    h5: &Hdf5Args,
    grouping: Grouping,
    compact: bool,
    json_out: bool,
) -> DynResult<()> {
    let placement = place(
        &a.bids_root,
        grouping,
        &a.subject,
        &a.sample,
        a.session.as_deref(),
    )?;
    let dl = Datalad::locate()?;
    a.session.clone_from(&placement.session);
    let started = SystemTime::now();
    let (summary, peak, exported) = convert_with(&a, h5, json_out)?;
    // An HDF5 copy written inside the superdataset is saved (annexed) with the section.
    let extra: Vec<PathBuf> = h5
        .export
        .iter()
        .filter_map(|f| std::path::absolute(f).ok())
        .filter(|f| std::path::absolute(&placement.root).is_ok_and(|r| f.starts_with(r)))
        .collect();
    let finished = SystemTime::now();
    let section = Section {
        image: summary.output.clone(),
        subject: a.subject.clone(),
        qc_reports: a.qc_gate.is_some(),
        extra,
        title: format!(
            "strata convert sub-{} sample-{} ({} planes, {} levels)",
            a.subject,
            a.sample,
            summary.planes,
            summary.arrays.levels.len()
        ),
        provenance: provenance(&a, &summary, &placement, started, finished),
    };
    let annex = if compact {
        AnnexMode::Compact
    } else {
        AnnexMode::Default
    };
    let saved = save(&dl, &placement, &section, annex).map_err(|e| {
        strata_plan::Error::Datalad(format!(
            "{} was published but not saved in DataLad: {e}; fix the cause and rerun the same \
             command (it converts the section again and saves it)",
            summary.output.display()
        ))
    })?;
    let saved = serde_json::to_value(&saved)?;
    print_convert_with(&summary, peak, json_out, Some(&saved), exported.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_parse() {
        assert_eq!(parse_group("none"), Ok(Grouping::None));
        assert_eq!(parse_group("subject"), Ok(Grouping::PerSubject));
        assert_eq!(parse_group("section"), Ok(Grouping::PerSections(1)));
        assert_eq!(parse_group("2000"), Ok(Grouping::PerSections(2000)));
        assert!(parse_group("0").is_err());
        assert!(parse_group("many").is_err());
    }

    /// The default is what the planner recommends for the whole brain.
    #[test]
    fn default_group_is_the_planners_recommendation() {
        let brain = strata_plan::PlanInput::whole_brain();
        let rows = strata_plan::plan(&brain, 3_000_000).expect("plan");
        let best = strata_plan::recommend(&rows, 3_000_000).expect("recommendation");
        assert_eq!(parse_group(DEFAULT_GROUP), Ok(best.row.grouping));
    }
}

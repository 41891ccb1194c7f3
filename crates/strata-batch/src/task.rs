//! One array task: section `i` of the manifest converted, idempotently ([`run_task`]), and
//! what it leaves behind for `status` ([`TaskReport`]).

use crate::error::{Error, Result};
use crate::manifest::{Manifest, fingerprint};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};
use strata_zstack::{SectionOptions, convert_section};

/// The provenance key under which a batch records the source fingerprint.
pub const PROVENANCE_KEY: &str = "batch";

/// Where a batch keeps its files, beside the manifest `M.json`: task reports and Slurm
/// logs in `M.logs/`, the state cache `M.db`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchPaths {
    /// The manifest.
    pub manifest: PathBuf,
    /// Task reports (`<i>.json`) and Slurm output (`slurm-<job>_<i>.out`).
    pub logs: PathBuf,
    /// The state cache (SQLite): on the submitting node's disk, never written by tasks.
    pub db: PathBuf,
}

impl BatchPaths {
    /// The paths of the batch whose manifest is `manifest` (made absolute).
    ///
    /// # Errors
    /// [`Error::Io`] if the working directory is gone.
    pub fn new(manifest: &Path) -> Result<Self> {
        let manifest = std::path::absolute(manifest).map_err(|e| Error::io(manifest, e))?;
        let stem = manifest
            .file_stem()
            .map_or_else(|| "manifest".into(), |s| s.to_string_lossy().into_owned());
        let dir = manifest
            .parent()
            .map_or_else(PathBuf::new, Path::to_path_buf);
        Ok(Self {
            logs: dir.join(format!("{stem}.logs")),
            db: dir.join(format!("{stem}.db")),
            manifest,
        })
    }

    /// The report of task `i`.
    #[must_use]
    pub fn report(&self, i: usize) -> PathBuf {
        self.logs.join(format!("{i}.json"))
    }
}

/// How a task ended (or that it is under way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Started and not finished: if the task is no longer queued or running, it was killed
    /// (cancelled, out of time or memory, node failure).
    Running,
    /// Converted and published.
    Published,
    /// Already published with the same source fingerprint: nothing done.
    Skipped,
    /// The QC gate failed: nothing published.
    QcFailed {
        /// Each failed rule.
        reasons: Vec<String>,
        /// The QC report.
        report: PathBuf,
    },
    /// Failed with an error: nothing published.
    Failed {
        /// The error.
        error: String,
    },
}

/// What a task writes to `M.logs/<i>.json`: at its start (outcome `running`) and again at
/// its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskReport {
    /// The task (manifest section) index.
    pub index: usize,
    /// The section's folder.
    pub folder: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Start time (RFC 3339 UTC).
    pub started: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Peak resident memory of the task's process in bytes (Linux), if known.
    pub peak_rss_bytes: Option<u64>,
    /// Bytes of the source.
    pub source_bytes: u64,
    /// The Slurm job and task (`<array job>_<task>`), when run by Slurm.
    pub slurm_job: Option<String>,
    /// The host that ran it.
    pub host: Option<String>,
    /// What staging copied (with [`crate::Settings::stage_to`], when it copied anything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<Staged>,
}

/// What a task's staging copied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Staged {
    /// Objects of the section (image and sidecar).
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects read back from the target and found equal.
    pub verified: u64,
    /// Seconds the copy took.
    pub seconds: f64,
}

impl TaskReport {
    /// Reads a task report; `None` if there is none (or it is damaged: a task killed while
    /// writing leaves at most a temporary file, but a hand-edited one may be anything).
    #[must_use]
    pub fn read(path: &Path) -> Option<Self> {
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(|e| Error::Plan(e.to_string()))?;
        text.push(b'\n');
        strata_fs::write_atomic(path, &text)?;
        Ok(())
    }
}

/// Peak resident memory of this process (`VmHWM`), in bytes.
#[must_use]
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The fingerprint recorded in a published image's provenance, if the section is whole:
/// its group metadata is written last (folder layout) or it is a finished `.ozx`, its
/// sidecar exists (written right after), and `samples.tsv` and `participants.tsv` hold its
/// rows (written last of all).
#[must_use]
pub fn published_fingerprint(manifest: &Manifest, i: usize) -> Option<String> {
    let image = manifest.image(i).ok()?;
    let section = manifest.section(i).ok()?;
    let sidecar = section.image_path();
    let sidecar = sidecar.with_extension("").with_extension("json");
    if !sidecar.is_file() || !in_tables(&manifest.bids_root, &section) {
        return None;
    }
    let provenance = if manifest.settings.layout == "ozx" {
        let img = strata_access::Image::open(image.to_str()?).ok()?;
        img.provenance()?.clone()
    } else {
        // Only the group metadata: opening every level's arrays is not needed.
        let bytes = std::fs::read(image.join("zarr.json")).ok()?;
        let group: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        group.pointer("/attributes/strata")?.clone()
    };
    provenance
        .pointer(&format!("/{PROVENANCE_KEY}/fingerprint"))?
        .as_str()
        .map(str::to_owned)
}

/// Whether `samples.tsv` and `participants.tsv` under `root` hold the section's rows.
fn in_tables(root: &std::path::Path, section: &strata_zstack::Section) -> bool {
    let has = |file: &str, column: &str, value: String| {
        strata_bids::table::Table::read(&root.join(file))
            .is_ok_and(|t| t.values(column).any(|v| v == value))
    };
    has(
        "samples.tsv",
        "sample_id",
        format!("sample-{}", section.sample),
    ) && has(
        "participants.tsv",
        "participant_id",
        format!("sub-{}", section.subject),
    )
}

/// Runs task `index` of the batch: checks the source against its fingerprint, skips a
/// section already published with it, else converts (a half-written earlier attempt is
/// redone from the start) with the fingerprint in the provenance. The task's report goes to
/// `M.logs/<index>.json` at its start and at its end.
///
/// # Errors
/// [`Error::Manifest`] / [`Error::Plan`] for a bad manifest or index,
/// [`Error::SourceChanged`] when the source no longer matches the manifest, the conversion's
/// errors (including a failed QC gate). The report records each of them.
pub fn run_task(paths: &BatchPaths, index: usize) -> Result<TaskReport> {
    let manifest = Manifest::load(&paths.manifest)?;
    let entry = manifest
        .sections
        .get(index)
        .ok_or_else(|| {
            Error::Plan(format!(
                "task index {index}: the manifest has {} sections",
                manifest.sections.len()
            ))
        })?
        .clone();
    std::fs::create_dir_all(&paths.logs).map_err(|e| Error::io(&paths.logs, e))?;
    let start = Instant::now();
    let slurm_job = match (
        std::env::var("SLURM_ARRAY_JOB_ID"),
        std::env::var("SLURM_ARRAY_TASK_ID"),
    ) {
        (Ok(j), Ok(t)) => Some(format!("{j}_{t}")),
        _ => None,
    };
    let mut report = TaskReport {
        index,
        folder: entry.folder.clone(),
        outcome: Outcome::Running,
        started: strata_zstack::convert::utc(SystemTime::now()),
        seconds: 0.0,
        peak_rss_bytes: None,
        source_bytes: entry.bytes,
        slurm_job,
        host: hostname(),
        staged: None,
    };
    let report_path = paths.report(index);
    report.write(&report_path)?;
    let result = convert_entry(&manifest, index).and_then(|o| {
        // Staging follows the publish (or the skip: a section published by an earlier run
        // that was not staged yet).
        report.staged = stage_entry(&manifest, index)?;
        Ok(o)
    });
    strata_fs::failpoint("batch.task.done");
    report.seconds = start.elapsed().as_secs_f64();
    report.peak_rss_bytes = peak_rss();
    let out = match result {
        Ok(o) => {
            report.outcome = o;
            Ok(report.clone())
        }
        Err(Error::Convert(strata_zstack::Error::QcFailed { report: r, reasons })) => {
            report.outcome = Outcome::QcFailed {
                reasons: reasons.clone(),
                report: r.clone(),
            };
            Err(Error::Convert(strata_zstack::Error::QcFailed {
                report: r,
                reasons,
            }))
        }
        Err(e) => {
            report.outcome = Outcome::Failed {
                error: e.to_string(),
            };
            Err(e)
        }
    };
    report.write(&report_path)?;
    out
}

/// Copies a published section to the stage target, unless it is there already.
fn stage_entry(manifest: &Manifest, index: usize) -> Result<Option<Staged>> {
    let Some(url) = &manifest.settings.stage_to else {
        return Ok(None);
    };
    let target = crate::stage::target_store(url)?;
    let fp = &manifest.sections[index].fingerprint;
    if crate::stage::staged_fingerprint(manifest, index, &target).as_deref() == Some(fp.as_str()) {
        return Ok(None);
    }
    crate::stage::stage_section(manifest, index, &target)
        .map(|s| {
            Some(Staged {
                objects: s.objects,
                bytes: s.bytes,
                verified: s.verified,
                seconds: s.seconds,
            })
        })
        .map_err(|e| Error::Plan(format!("published but not staged: {e} (a retry stages it)")))
}

fn convert_entry(manifest: &Manifest, index: usize) -> Result<Outcome> {
    let entry = &manifest.sections[index];
    let source = manifest.source(index);
    let (now, planes, _) = fingerprint(&source)?;
    if now != entry.fingerprint {
        return Err(Error::SourceChanged {
            folder: source,
            message: format!(
                "the source changed since the manifest was written (now {planes} planes, was {}): \
                 run `strata batch plan` again",
                entry.planes
            ),
        });
    }
    if published_fingerprint(manifest, index).as_deref() == Some(entry.fingerprint.as_str()) {
        return Ok(Outcome::Skipped);
    }
    let section = manifest.section(index)?;
    let mut options = SectionOptions::default()
        .convert(manifest.settings.convert_options())
        .provenance(
            PROVENANCE_KEY,
            serde_json::json!({ "fingerprint": entry.fingerprint, "folder": entry.folder }),
        );
    if let Some(rules) = &manifest.settings.qc_gate {
        options = options.qc_gate(rules.clone());
    }
    convert_section(&source, &section, &options)?;
    Ok(Outcome::Published)
}

/// This machine's host name.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

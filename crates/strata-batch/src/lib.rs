//! A whole brain through Slurm: sections discovered under a scanner root and mapped to the
//! dataset ([`plan`], [`Manifest`]), one array task per section that is safe to run any
//! number of times ([`run_task`]), and each section's state derived from what exists
//! ([`status`]): the dataset, the task reports and the queue.
//!
//! ```text
//! strata batch plan SCANNER_ROOT --map MAP.tsv --bids-root R --manifest M.json
//! strata batch submit --manifest M.json      # pilot section, then sbatch --array
//! strata batch status --manifest M.json
//! strata batch retry --manifest M.json       # failed and lost sections only
//! strata batch save --manifest M.json        # one DataLad save for every finished section
//! ```
//!
//! The scanner gateway, `strata ingest --watch DROP`, is a batch whose manifest grows as
//! sections complete ([`Ingest`]).
//!
//! Files of a batch ([`BatchPaths`]): the manifest `M.json`, the task reports and Slurm logs
//! in `M.logs/`, the state cache `M.db` ([`StateDb`]). Only the manifest must be seen by the
//! compute nodes; the cache stays on the submitting node.

pub mod db;
pub mod error;
pub mod ingest;
pub mod manifest;
pub mod save;
pub mod slurm;
pub mod stage;
pub mod state;
pub mod task;

pub use db::{CachedSection, StateDb};
pub use error::{Error, Result};
pub use ingest::{Event, Ingest, IngestOptions};
pub use manifest::{Entry, Manifest, PlanOptions, Settings, fingerprint, plan};
pub use save::{SaveSummary, save};
pub use slurm::{JobSpec, QueueState};
pub use stage::{stage_section, staged_fingerprint, target_store};
pub use state::{SectionState, State, counts, states};
pub use task::{BatchPaths, Outcome, TaskReport, peak_rss, published_fingerprint, run_task};

use std::path::{Path, PathBuf};
use std::process::Command;

/// Memory and time a task asks Slurm for, derived from measured tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Requests {
    /// Memory per task in MiB.
    pub mem_mib: u64,
    /// Time limit per task in minutes.
    pub time_min: u64,
}

/// Memory headroom over the measured peak.
const MEM_HEADROOM: f64 = 1.5;
/// Time headroom over the measured rate (a busy file system, a slower node).
const TIME_HEADROOM: f64 = 3.0;
/// The smallest requests.
const MIN_MEM_MIB: u64 = 256;
const MIN_TIME_MIN: u64 = 5;

/// The requests the finished tasks' measurements call for: the largest peak memory with
/// 50% headroom (rounded up to 64 MiB, at least 256 MiB), and the slowest rate (seconds per
/// source byte) times the largest section with 3x headroom (at least 5 minutes). `None`
/// when no task has finished with its measurements.
#[must_use]
pub fn measured_requests(manifest: &Manifest, paths: &BatchPaths) -> Option<Requests> {
    let mut peak = 0u64;
    let mut rate = 0f64;
    let mut any = false;
    for i in 0..manifest.sections.len() {
        let Some(r) = TaskReport::read(&paths.report(i)) else {
            continue;
        };
        if r.outcome != Outcome::Published || r.source_bytes == 0 {
            continue;
        }
        let Some(p) = r.peak_rss_bytes else { continue };
        any = true;
        peak = peak.max(p);
        rate = rate.max(r.seconds / r.source_bytes as f64);
    }
    if !any {
        return None;
    }
    let largest = manifest.sections.iter().map(|s| s.bytes).max().unwrap_or(0);
    let mib = (peak as f64 * MEM_HEADROOM / (1 << 20) as f64 / 64.0).ceil() as u64 * 64;
    let minutes = (rate * largest as f64 * TIME_HEADROOM / 60.0).ceil() as u64;
    Some(Requests {
        mem_mib: mib.max(MIN_MEM_MIB),
        time_min: minutes.max(MIN_TIME_MIN),
    })
}

/// Runs task `index` as its own process (`strata batch run`), as a pilot whose peak memory
/// and time size the array's requests, and returns its report.
///
/// # Errors
/// [`Error::Io`] if the program cannot be started; [`Error::Plan`] if the pilot fails (its
/// error quoted: the array would fail the same way).
pub fn pilot(paths: &BatchPaths, strata: &Path, index: usize) -> Result<TaskReport> {
    let out = Command::new(strata)
        .args(["batch", "run", "--manifest"])
        .arg(&paths.manifest)
        .args(["--index", &index.to_string()])
        .output()
        .map_err(|e| Error::io(strata, e))?;
    let report = TaskReport::read(&paths.report(index));
    match report {
        Some(r) if matches!(r.outcome, Outcome::Published | Outcome::Skipped) => Ok(r),
        _ => Err(Error::Plan(format!(
            "the pilot task (section {index}) failed: {} (fix this before submitting the array)",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// How [`submit`] sizes and places the array job.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubmitOptions {
    /// At most this many tasks at once (`%K`).
    pub concurrency: Option<u32>,
    /// Memory per task in MiB; `None`: measured ([`measured_requests`], after a pilot).
    pub mem_mib: Option<u64>,
    /// Time limit per task in minutes; `None`: measured.
    pub time_min: Option<u64>,
    /// CPUs per task (default 2: the converter decodes and compresses in parallel).
    pub cpus: u32,
    /// Slurm partition.
    pub partition: Option<String>,
    /// Slurm account.
    pub account: Option<String>,
    /// The `strata` program the tasks run; default: this program.
    pub strata: PathBuf,
    /// Print the script only: no pilot, nothing submitted.
    pub dry_run: bool,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        Self {
            concurrency: None,
            mem_mib: None,
            time_min: None,
            cpus: 2,
            partition: None,
            account: None,
            strata: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("strata")),
            dry_run: false,
        }
    }
}

/// What [`submit`] did.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct Submission {
    /// The job script.
    pub script: String,
    /// The Slurm job id (`None` for a dry run or when there was nothing to submit).
    pub job_id: Option<String>,
    /// The task indices submitted.
    pub indices: Vec<usize>,
    /// Memory and time per task.
    pub requests: Requests,
    /// Where the requests came from: `measured`, `given`, or `default` (a dry run before
    /// any task has run).
    pub requests_from: &'static str,
    /// The pilot task's report, if one ran.
    pub pilot: Option<TaskReport>,
}

/// Submits an array job over `indices` (all sections when `None`). Without measurements and
/// without given requests, section `indices[0]` first runs here as a pilot.
///
/// # Errors
/// A bad manifest, a failed pilot, [`Error::SlurmMissing`] / [`Error::Slurm`],
/// [`Error::Db`].
pub fn submit(
    paths: &BatchPaths,
    options: &SubmitOptions,
    indices: Option<Vec<usize>>,
) -> Result<Submission> {
    let manifest = Manifest::load(&paths.manifest)?;
    std::fs::create_dir_all(&paths.logs).map_err(|e| Error::io(&paths.logs, e))?;
    let indices = indices.unwrap_or_else(|| (0..manifest.sections.len()).collect());
    let mut pilot_report = None;
    let (requests, from) = match (options.mem_mib, options.time_min) {
        (Some(mem_mib), Some(time_min)) => (Requests { mem_mib, time_min }, "given"),
        (mem, time) => {
            let measured = match measured_requests(&manifest, paths) {
                Some(r) => Some(r),
                None if options.dry_run || indices.is_empty() => None,
                None => {
                    pilot_report = Some(pilot(paths, &options.strata, indices[0])?);
                    measured_requests(&manifest, paths)
                }
            };
            let (base, from) = match measured {
                Some(r) => (r, "measured"),
                None => (
                    Requests {
                        mem_mib: 4096,
                        time_min: 60,
                    },
                    "default",
                ),
            };
            (
                Requests {
                    mem_mib: mem.unwrap_or(base.mem_mib),
                    time_min: time.unwrap_or(base.time_min),
                },
                from,
            )
        }
    };
    let spec = JobSpec {
        indices: indices.clone(),
        concurrency: options.concurrency,
        mem_mib: requests.mem_mib,
        time_min: requests.time_min,
        cpus: options.cpus,
        partition: options.partition.clone(),
        account: options.account.clone(),
        strata: options.strata.clone(),
    };
    let script = spec.script(paths);
    let mut job_id = None;
    if !options.dry_run && !indices.is_empty() {
        let id = slurm::submit(&script)?;
        let folders: Vec<String> = manifest.sections.iter().map(|s| s.folder.clone()).collect();
        StateDb::open(&paths.db)?.record_job(&id, &indices, &folders)?;
        job_id = Some(id);
    }
    Ok(Submission {
        script,
        job_id,
        indices,
        requests,
        requests_from: from,
        pilot: pilot_report,
    })
}

/// Every section's state (the queue asked unless `ask_queue` is off), stored in the cache.
///
/// # Errors
/// A bad manifest; [`Error::SlurmMissing`] / [`Error::Slurm`] when the queue is asked and
/// cannot answer; [`Error::Db`].
pub fn status(paths: &BatchPaths, ask_queue: bool) -> Result<Vec<SectionState>> {
    let manifest = Manifest::load(&paths.manifest)?;
    let queue = if ask_queue {
        slurm::queue(paths)?
    } else {
        std::collections::BTreeMap::new()
    };
    let states = states(&manifest, paths, &queue)?;
    StateDb::open(&paths.db)?.update(&states)?;
    Ok(states)
}

/// Resubmits the sections that failed, were lost or went stale (not QC failures, not those
/// still queued or running), and with a stage target those published but not staged yet.
/// Returns `None` when there is nothing to retry.
///
/// # Errors
/// As [`status`] and [`submit`].
pub fn retry(paths: &BatchPaths, options: &SubmitOptions) -> Result<Option<Submission>> {
    let staging = Manifest::load(&paths.manifest)?.settings.stage_to.is_some();
    let indices: Vec<usize> = status(paths, true)?
        .iter()
        .filter(|s| {
            s.state.needs_retry() || (staging && matches!(s.state, State::Published | State::Saved))
        })
        .map(|s| s.index)
        .collect();
    if indices.is_empty() {
        return Ok(None);
    }
    submit(paths, options, Some(indices)).map(Some)
}

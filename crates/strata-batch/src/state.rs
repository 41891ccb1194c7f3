//! Each section's state, derived from what exists: the dataset (is the image published, with
//! which fingerprint), the task reports and the queue ([`states`]). Nothing here is
//! bookkeeping that could be lost: the state cache only remembers it.

use crate::error::Result;
use crate::manifest::Manifest;
use crate::slurm::QueueState;
use crate::task::{BatchPaths, Outcome, TaskReport, published_fingerprint};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Where a section stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum State {
    /// Not started (or started by nothing that left a trace).
    Pending,
    /// In the queue, waiting.
    Queued,
    /// Running now.
    Converting,
    /// Published with the manifest's fingerprint.
    Published,
    /// Published from a source whose fingerprint differs from the manifest's: the source
    /// changed after it was converted; a retry converts it again.
    Stale,
    /// The QC gate failed; nothing published.
    QcFailed {
        /// Each failed rule.
        reasons: Vec<String>,
    },
    /// The task failed with an error; nothing published.
    Failed {
        /// The error (or the last line of the task's log).
        error: String,
    },
    /// The task started and stopped without a result (cancelled, out of time or memory,
    /// node failure); nothing published.
    Lost {
        /// The last line of the task's log, if any.
        last_line: Option<String>,
    },
}

impl State {
    /// The state's name as `status` prints it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Queued => "queued",
            Self::Converting => "converting",
            Self::Published => "published",
            Self::Stale => "stale",
            Self::QcFailed { .. } => "qc_failed",
            Self::Failed { .. } => "failed",
            Self::Lost { .. } => "lost",
        }
    }

    /// Whether a retry runs the section again (failed, lost, stale; not a QC failure: the
    /// stack itself is bad and needs rescanning).
    #[must_use]
    pub fn needs_retry(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::Lost { .. } | Self::Stale)
    }
}

/// One section's state with what `status` shows of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SectionState {
    /// The manifest index.
    pub index: usize,
    /// The source folder.
    pub folder: String,
    /// The state.
    #[serde(flatten)]
    pub state: State,
    /// Seconds of the last finished task, if any.
    pub seconds: Option<f64>,
    /// Peak memory of the last finished task in bytes, if known.
    pub peak_rss_bytes: Option<u64>,
}

/// The last non-empty line of the newest Slurm log of task `index` (`slurm-<job>_<i>.out`).
fn last_log_line(paths: &BatchPaths, index: usize) -> Option<String> {
    let suffix = format!("_{index}.out");
    let newest = std::fs::read_dir(&paths.logs)
        .ok()?
        .filter_map(std::result::Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("slurm-") && n.ends_with(&suffix)
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()?
        .1;
    last_line(&newest)
}

/// The last non-empty line of a file (read from its last 64 KiB).
fn last_line(path: &Path) -> Option<String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))
        .ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    String::from_utf8_lossy(&buf)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// The state of every section: the dataset first (published is published, whatever the
/// reports say), then the queue, then the task reports.
///
/// # Errors
/// None today beyond what reading the manifest's labels can raise.
pub fn states(
    manifest: &Manifest,
    paths: &BatchPaths,
    queue: &BTreeMap<usize, QueueState>,
) -> Result<Vec<SectionState>> {
    let mut out = Vec::with_capacity(manifest.sections.len());
    for (i, entry) in manifest.sections.iter().enumerate() {
        let report = TaskReport::read(&paths.report(i));
        let published = published_fingerprint(manifest, i);
        let state = match (published, queue.get(&i), &report) {
            (Some(f), _, _) if f == entry.fingerprint => State::Published,
            (_, Some(QueueState::Running), _) => State::Converting,
            (_, Some(QueueState::Pending), _) => State::Queued,
            (Some(_), None, _) => State::Stale,
            (None, None, None) => State::Pending,
            (None, None, Some(r)) => match &r.outcome {
                Outcome::QcFailed { reasons, .. } => State::QcFailed {
                    reasons: reasons.clone(),
                },
                Outcome::Failed { error } => State::Failed {
                    error: error.clone(),
                },
                // Finished and published, but the image is gone (or not whole): lost too.
                Outcome::Running | Outcome::Published | Outcome::Skipped => State::Lost {
                    last_line: last_log_line(paths, i),
                },
            },
        };
        let finished = report.as_ref().filter(|r| r.outcome != Outcome::Running);
        out.push(SectionState {
            index: i,
            folder: entry.folder.clone(),
            state,
            seconds: finished.map(|r| r.seconds),
            peak_rss_bytes: finished.and_then(|r| r.peak_rss_bytes),
        });
    }
    Ok(out)
}

/// Counts per state name, in a fixed order.
#[must_use]
pub fn counts(states: &[SectionState]) -> BTreeMap<&'static str, usize> {
    let mut c = BTreeMap::new();
    for s in states {
        *c.entry(s.state.name()).or_default() += 1;
    }
    c
}

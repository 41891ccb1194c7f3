//! Each section's state, derived from what exists: the dataset (is the image published, with
//! which fingerprint), the task reports and the queue ([`states`]). Nothing here is
//! bookkeeping that could be lost: the state cache only remembers it.

use crate::error::Result;
use crate::manifest::Manifest;
use crate::slurm::QueueState;
use crate::task::{BatchPaths, Outcome, TaskReport, published_fingerprint};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

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
    /// Published, and saved in DataLad: its files are committed in their dataset, unchanged.
    Saved,
    /// Published and copied to the stage target ([`crate::Settings::stage_to`]), whole.
    Staged,
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
            Self::Saved => "saved",
            Self::Staged => "staged",
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
    let committed = committed_files(manifest);
    let target = match &manifest.settings.stage_to {
        Some(url) => Some(crate::stage::target_store(url)?),
        None => None,
    };
    for (i, entry) in manifest.sections.iter().enumerate() {
        let report = TaskReport::read(&paths.report(i));
        let published = published_fingerprint(manifest, i);
        let state = match (published, queue.get(&i), &report) {
            (Some(f), _, _) if f == entry.fingerprint => {
                let staged = target.as_ref().is_some_and(|t| {
                    crate::stage::staged_fingerprint(manifest, i, t).as_deref()
                        == Some(entry.fingerprint.as_str())
                });
                if staged {
                    State::Staged
                } else if is_saved(manifest, i, &committed) {
                    State::Saved
                } else {
                    State::Published
                }
            }
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

/// The files committed and unchanged in the git repositories (DataLad datasets) of the
/// dataset: the BIDS root and each subject's folder, where they are repositories. One
/// `git ls-files` and one `git status` per repository, not per section.
fn committed_files(manifest: &Manifest) -> HashSet<PathBuf> {
    let root = &manifest.bids_root;
    let mut repos: Vec<PathBuf> = vec![root.clone()];
    for e in &manifest.sections {
        let sub = root.join(format!("sub-{}", e.subject));
        if !repos.contains(&sub) {
            repos.push(sub);
        }
    }
    let mut files = HashSet::new();
    for repo in repos.iter().filter(|r| r.join(".git").exists()) {
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| o.stdout)
        };
        let (Some(tracked), Some(dirty)) = (
            git(&["ls-files", "-z"]),
            git(&["status", "--porcelain", "-z", "--untracked-files=no"]),
        ) else {
            continue;
        };
        let dirty: HashSet<&[u8]> = dirty
            .split(|b| *b == 0)
            .filter(|l| l.len() > 3)
            .map(|l| &l[3..])
            .collect();
        for f in tracked.split(|b| *b == 0).filter(|f| !f.is_empty()) {
            if !dirty.contains(f) {
                files.insert(repo.join(String::from_utf8_lossy(f).as_ref()));
            }
        }
    }
    files
}

/// Whether section `i`'s image metadata (or `.ozx`) and sidecar are committed and unchanged.
fn is_saved(manifest: &Manifest, i: usize, committed: &HashSet<PathBuf>) -> bool {
    if committed.is_empty() {
        return false;
    }
    let (Ok(image), Ok(section)) = (manifest.image(i), manifest.section(i)) else {
        return false;
    };
    let sidecar = section
        .image_path()
        .with_extension("")
        .with_extension("json");
    let image_file = if manifest.settings.layout == "ozx" {
        image
    } else {
        image.join("zarr.json")
    };
    committed.contains(&image_file) && committed.contains(&sidecar)
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

//! The scanner gateway ([`Ingest`]): a long-running watch over a drop folder that converts
//! each z-stack once it is complete. A section folder is complete when it holds the expected
//! number of TIFF planes and its fingerprint (names, sizes, mtimes) has not changed for the
//! settle time, or at once when its marker file appears. The QC gate of the settings runs on
//! the way, and nothing that fails it is published.
//!
//! The gateway is a batch whose manifest grows: each complete section is appended to
//! `<state>/ingest.json` and converted as its task ([`run_task`], here or as a one-task Slurm
//! job), so `strata batch status --manifest <state>/ingest.json` shows the gateway's sections
//! too. Restarted after a crash it resumes from what exists: a section published with its
//! fingerprint is never redone, one whose QC failed is not retried until its source changes,
//! and one that was half converted is converted again.

use crate::error::{Error, Result};
use crate::manifest::{Entry, FORMAT, Manifest, Settings, VERSION, fingerprint, read_map};
use crate::slurm::{self, QueueState};
use crate::task::{BatchPaths, Outcome, TaskReport, published_fingerprint, run_task};
use crate::{SubmitOptions, submit};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How the gateway watches and converts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IngestOptions {
    /// The drop folder: one folder per section, written by the scanner.
    pub drop: PathBuf,
    /// MAP.tsv (folder, subject, sample, optional stain), read again on every scan so that
    /// rows can be added while the service runs.
    pub map: PathBuf,
    /// The BIDS dataset the sections go into.
    pub bids_root: PathBuf,
    /// TIFF planes of a complete section.
    pub planes: u32,
    /// How long a section's fingerprint must stay unchanged before it counts as complete.
    pub settle: Duration,
    /// A file whose presence in a section folder marks it complete at once (e.g. `DONE`).
    pub marker: Option<String>,
    /// Time between scans of the drop folder.
    pub poll: Duration,
    /// How sections are converted.
    pub settings: Settings,
    /// The gateway's manifest (its reports and state cache go beside it); default
    /// `<drop>/.strata-ingest/ingest.json`.
    pub manifest: Option<PathBuf>,
    /// Submit each complete section to Slurm as a one-task array job instead of converting
    /// it here.
    pub slurm: Option<SubmitOptions>,
}

impl IngestOptions {
    /// Options for a drop folder, a map and a dataset; defaults: 30 planes, 60 s settle time,
    /// no marker, a scan every 5 s, default settings, local conversion.
    #[must_use]
    pub fn new(drop: PathBuf, map: PathBuf, bids_root: PathBuf) -> Self {
        Self {
            drop,
            map,
            bids_root,
            planes: 30,
            settle: Duration::from_secs(60),
            marker: None,
            poll: Duration::from_secs(5),
            settings: Settings::default(),
            manifest: None,
            slurm: None,
        }
    }
}

/// What the gateway reports as it goes (one JSON object per line with `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A folder not in the map (reported once per folder and run).
    Unmapped {
        /// The folder.
        folder: String,
    },
    /// A section still being written (reported when its plane count changes).
    Waiting {
        /// The folder.
        folder: String,
        /// TIFF planes present.
        planes: u32,
        /// Planes expected.
        expected: u32,
    },
    /// A section is complete and about to be converted (or submitted).
    Complete {
        /// The folder.
        folder: String,
        /// Its index in the gateway's manifest.
        index: usize,
    },
    /// Converted and published.
    Published {
        /// The folder.
        folder: String,
        /// Its index in the gateway's manifest.
        index: usize,
        /// Seconds the conversion took.
        seconds: f64,
        /// Whether it was copied to the stage target in this step.
        staged: bool,
    },
    /// Submitted to Slurm.
    Submitted {
        /// The folder.
        folder: String,
        /// Its index in the gateway's manifest.
        index: usize,
        /// The Slurm job id.
        job_id: String,
    },
    /// The QC gate failed; nothing published. Not retried until the source changes.
    QcFailed {
        /// The folder.
        folder: String,
        /// Its index in the gateway's manifest.
        index: usize,
        /// Each failed rule.
        reasons: Vec<String>,
    },
    /// The section could not be converted; nothing published. Retried when its source
    /// changes or the service restarts.
    Failed {
        /// The folder.
        folder: String,
        /// The error.
        error: String,
    },
    /// A scan failed as a whole (the map unreadable, the drop folder gone); the next scan
    /// tries again.
    ScanFailed {
        /// The error.
        error: String,
    },
}

/// The gateway: its options, its manifest and what it has seen of each folder.
#[derive(Debug)]
pub struct Ingest {
    opts: IngestOptions,
    paths: BatchPaths,
    /// Each folder's last fingerprint and since when it has been unchanged.
    seen: HashMap<String, (String, Instant)>,
    /// Folders already reported (unmapped, waiting with a count, failed with a fingerprint).
    told_unmapped: HashSet<String>,
    told_waiting: HashMap<String, u32>,
    failed: HashMap<String, String>,
}

impl Ingest {
    /// Opens the gateway: its manifest is created (empty) or read back, and checked to
    /// belong to this drop folder and dataset.
    ///
    /// # Errors
    /// [`Error::Plan`] for bad settings, or a manifest of another drop folder or dataset;
    /// [`Error::Io`], [`Error::Manifest`].
    pub fn open(opts: IngestOptions) -> Result<Self> {
        opts.settings.check()?;
        let drop = std::path::absolute(&opts.drop).map_err(|e| Error::io(&opts.drop, e))?;
        let bids =
            std::path::absolute(&opts.bids_root).map_err(|e| Error::io(&opts.bids_root, e))?;
        if !drop.is_dir() {
            return Err(Error::Plan(format!(
                "--watch {}: not a folder",
                drop.display()
            )));
        }
        let manifest = opts
            .manifest
            .clone()
            .unwrap_or_else(|| drop.join(".strata-ingest/ingest.json"));
        let paths = BatchPaths::new(&manifest)?;
        if paths.manifest.exists() {
            let m = Manifest::load(&paths.manifest)?;
            if m.scanner_root != drop || m.bids_root != bids {
                return Err(Error::Plan(format!(
                    "{} belongs to --watch {} --bids-root {}: give this gateway a manifest of its own (--manifest)",
                    paths.manifest.display(),
                    m.scanner_root.display(),
                    m.bids_root.display()
                )));
            }
        } else {
            if let Some(dir) = paths.manifest.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            Manifest {
                format: FORMAT.into(),
                version: VERSION,
                scanner_root: drop.clone(),
                bids_root: bids.clone(),
                settings: opts.settings.clone(),
                sections: Vec::new(),
            }
            .save(&paths.manifest)?;
        }
        let opts = IngestOptions {
            drop,
            bids_root: bids,
            ..opts
        };
        Ok(Self {
            opts,
            paths,
            seen: HashMap::new(),
            told_unmapped: HashSet::new(),
            told_waiting: HashMap::new(),
            failed: HashMap::new(),
        })
    }

    /// The gateway's batch files (manifest, reports, state cache).
    #[must_use]
    pub fn paths(&self) -> &BatchPaths {
        &self.paths
    }

    /// Scans until `stop` is set: one [`Ingest::scan`] every poll interval, a failed scan
    /// reported as [`Event::ScanFailed`].
    pub fn run(&mut self, stop: &AtomicBool, on_event: &mut dyn FnMut(&Event)) {
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = self.scan(on_event) {
                on_event(&Event::ScanFailed {
                    error: e.to_string(),
                });
            }
            let until = Instant::now() + self.opts.poll;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50).min(self.opts.poll));
            }
        }
    }

    /// One pass over the drop folder: every complete section that is not published (nor
    /// failed QC with this source) is converted or submitted. Returns how many were.
    ///
    /// # Errors
    /// The map or the drop folder cannot be read, the manifest cannot be written, Slurm
    /// cannot be asked.
    pub fn scan(&mut self, on_event: &mut dyn FnMut(&Event)) -> Result<usize> {
        let rows = read_map(&self.opts.map)?;
        let mut folders = Vec::new();
        let drop = self.opts.drop.clone();
        for entry in std::fs::read_dir(&drop).map_err(|e| Error::io(&drop, e))? {
            let entry = entry.map_err(|e| Error::io(&drop, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.path().is_dir() {
                folders.push(name);
            }
        }
        folders.sort_by(|a, b| strata_zstack::natural_cmp(a, b));
        let queue = match &self.opts.slurm {
            Some(_) => slurm::queue(&self.paths)?,
            None => Default::default(),
        };
        let target = match &self.opts.settings.stage_to {
            Some(url) => Some(crate::stage::target_store(url)?),
            None => None,
        };
        // Read once per scan (7,000 sections: once, not once per folder), saved on change.
        let mut manifest = Manifest::load(&self.paths.manifest)?;
        let mut started = 0;
        for folder in folders {
            let Some(row) = rows.iter().find(|r| r.folder == folder) else {
                if self.told_unmapped.insert(folder.clone()) {
                    on_event(&Event::Unmapped { folder });
                }
                continue;
            };
            let (fp, planes, bytes) = match fingerprint(&drop.join(&folder)) {
                Ok(f) => f,
                Err(e) => {
                    on_event(&Event::Failed {
                        folder,
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            let now = Instant::now();
            let since = match self.seen.get(&folder) {
                Some((f, t)) if *f == fp => *t,
                _ => {
                    self.seen.insert(folder.clone(), (fp.clone(), now));
                    now
                }
            };
            let index = manifest.sections.iter().position(|s| s.folder == folder);
            // Done already: published from this source, or its QC failed on this source.
            if let Some(i) = index
                && manifest.sections[i].fingerprint == fp
            {
                if published_fingerprint(&manifest, i).as_deref() == Some(fp.as_str()) {
                    let staged = target.as_ref().is_none_or(|t| {
                        crate::stage::staged_fingerprint(&manifest, i, t).as_deref()
                            == Some(fp.as_str())
                    });
                    if staged {
                        continue;
                    }
                    // Published, not staged: the task runs again, skips the conversion and
                    // stages.
                }
                let report = TaskReport::read(&self.paths.report(i));
                if matches!(report.map(|r| r.outcome), Some(Outcome::QcFailed { .. })) {
                    continue;
                }
                if queue.contains_key(&i) {
                    continue;
                }
            }
            if self.failed.get(&folder) == Some(&fp) {
                continue;
            }
            let marked = self
                .opts
                .marker
                .as_ref()
                .is_some_and(|m| drop.join(&folder).join(m).exists());
            if planes != self.opts.planes {
                if marked {
                    self.failed.insert(folder.clone(), fp);
                    on_event(&Event::Failed {
                        folder,
                        error: format!(
                            "the marker says complete, but the folder has {planes} of {} TIFF planes",
                            self.opts.planes
                        ),
                    });
                } else if self.told_waiting.insert(folder.clone(), planes) != Some(planes) {
                    on_event(&Event::Waiting {
                        folder,
                        planes,
                        expected: self.opts.planes,
                    });
                }
                continue;
            }
            if !marked && now.duration_since(since) < self.opts.settle {
                continue;
            }
            // Complete: into the manifest (a rewritten source replaces its fingerprint).
            let entry = Entry {
                folder: folder.clone(),
                subject: row.subject.clone(),
                sample: row.sample.clone(),
                stain: row.stain.clone(),
                planes,
                bytes,
                fingerprint: fp.clone(),
            };
            let i = match index {
                Some(i) => {
                    manifest.sections[i] = entry;
                    i
                }
                None => {
                    if let Some(other) = manifest.sections.iter().find(|s| {
                        s.subject == entry.subject
                            && s.sample == entry.sample
                            && s.stain == entry.stain
                    }) {
                        let error = format!(
                            "sub-{} sample-{} is already the section of folder {}: give it its own sample label in the map",
                            entry.subject, entry.sample, other.folder
                        );
                        self.failed.insert(folder.clone(), fp);
                        on_event(&Event::Failed { folder, error });
                        continue;
                    }
                    manifest.sections.push(entry);
                    manifest.sections.len() - 1
                }
            };
            manifest.save(&self.paths.manifest)?;
            on_event(&Event::Complete {
                folder: folder.clone(),
                index: i,
            });
            started += 1;
            if let Some(o) = &self.opts.slurm {
                if queue.get(&i) == Some(&QueueState::Running) {
                    continue;
                }
                let s = submit(&self.paths, o, Some(vec![i]))?;
                on_event(&Event::Submitted {
                    folder,
                    index: i,
                    job_id: s.job_id.unwrap_or_default(),
                });
                continue;
            }
            match run_task(&self.paths, i) {
                Ok(r) => on_event(&Event::Published {
                    folder,
                    index: i,
                    seconds: r.seconds,
                    staged: r.staged.is_some(),
                }),
                Err(Error::Convert(strata_zstack::Error::QcFailed { reasons, .. })) => {
                    on_event(&Event::QcFailed {
                        folder,
                        index: i,
                        reasons,
                    });
                }
                Err(e) => {
                    self.failed.insert(folder.clone(), fp);
                    on_event(&Event::Failed {
                        folder,
                        error: e.to_string(),
                    });
                }
            }
        }
        Ok(started)
    }
}

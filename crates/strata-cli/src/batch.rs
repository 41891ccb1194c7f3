//! `strata batch`: a whole brain through Slurm (plan, submit, run, status, retry, cancel),
//! on the `strata-batch` library.

use crate::common::{DynResult, ImageArgs, rules};
use std::path::PathBuf;
use strata_batch::{BatchPaths, Manifest, PlanOptions, Settings, State, SubmitOptions};
use strata_zstack::Compression;

/// The subcommands of `strata batch`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum BatchCmd {
    /// Discover the sections under a scanner root, map them to subjects and samples, and
    /// write the manifest (one section per folder, in the map's order).
    Plan(PlanCmd),
    /// Submit the manifest as one Slurm array job (`sbatch --array`): task i converts
    /// section i. Without measurements, section 0 first runs here as a pilot whose peak
    /// memory and time size the requests.
    Submit(SubmitCmd),
    /// Convert one section of the manifest (what each array task runs): skipped if already
    /// published from the same source, redone if half-written.
    Run(RunCmd),
    /// Each section's state, derived from the dataset, the task reports and the queue.
    Status(StatusCmd),
    /// Resubmit the sections that failed, were lost (cancelled, killed) or went stale.
    Retry(SubmitCmd),
    /// Cancel every queued and running task of the batch.
    Cancel(ManifestArg),
    /// Save every published section into the DataLad superdataset at the BIDS root in one
    /// recursive `datalad save`: one commit per subdataset, not one per section.
    Save(SaveCmd),
}

impl BatchCmd {
    pub(crate) fn run(self) -> DynResult<bool> {
        match self {
            Self::Plan(c) => c.run(),
            Self::Submit(c) => c.run(false),
            Self::Retry(c) => c.run(true),
            Self::Run(c) => c.run(),
            Self::Status(c) => c.run(),
            Self::Save(c) => c.run(),
            Self::Cancel(c) => {
                strata_batch::slurm::cancel(&BatchPaths::new(&c.manifest)?)?;
                Ok(false)
            }
        }
    }
}

/// The manifest a subcommand works on.
#[derive(Debug, clap::Args)]
pub(crate) struct ManifestArg {
    /// The batch manifest (`strata batch plan` writes it); task reports and Slurm logs go
    /// to `<manifest stem>.logs/` beside it, the state cache to `<manifest stem>.db`.
    #[arg(long)]
    manifest: PathBuf,
}

/// The flags of `strata batch plan`.
#[derive(Debug, clap::Args)]
pub(crate) struct PlanCmd {
    /// The folder holding one folder of TIFF focus levels per section.
    scanner_root: PathBuf,
    /// TSV mapping folders to sections: columns folder, subject, sample, optional stain.
    #[arg(long, value_name = "MAP.tsv")]
    map: PathBuf,
    /// Root folder of the BIDS dataset.
    #[arg(long)]
    bids_root: PathBuf,
    /// Where to write the manifest.
    #[arg(long)]
    manifest: PathBuf,
    /// Which folders are sections (glob on the name); others are ignored.
    #[arg(long, default_value = "*")]
    pattern: String,
    /// Focus levels every section must have (default: the count most folders have).
    #[arg(long)]
    planes: Option<u32>,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

/// How the sections of a batch (or of the gateway) are converted: the flags of
/// `strata convert` that apply to every section.
#[derive(Debug, clap::Args)]
pub(crate) struct SettingsArgs {
    /// Session label of every section.
    #[arg(long)]
    session: Option<String>,
    /// Microscopy suffix.
    #[arg(long, default_value = "BF")]
    suffix: String,
    /// Output layout: zarr or ozx.
    #[arg(long, default_value = "zarr", value_parser = ["zarr", "ozx"])]
    layout: String,
    #[command(flatten)]
    image: ImageArgs,
    /// Pixel size X,Y,Z in micrometres (default: X and Y from the TIFFs, Z = 1).
    #[arg(long, value_delimiter = ',', num_args = 3)]
    pixel_size: Option<Vec<f64>>,
    /// Publish only the stacks that pass quality control (the report goes to
    /// derivatives/qc/ either way).
    #[arg(long)]
    qc_gate: bool,
    /// QC rules file (TOML or .json) for --qc-gate.
    #[arg(long)]
    qc_rules: Option<PathBuf>,
    /// Do not record the SHA-256 of the source files.
    #[arg(long)]
    no_checksums: bool,
    /// After publishing, copy each section to this second tier (a folder, file:///path or
    /// s3://bucket/prefix), every object read back and compared.
    #[arg(long, value_name = "URL")]
    stage_to: Option<String>,
}

impl SettingsArgs {
    /// The settings these flags give.
    pub(crate) fn settings(self) -> DynResult<Settings> {
        let mut settings = Settings::default();
        settings.session = self.session;
        settings.suffix = self.suffix;
        settings.layout = self.layout;
        settings.chunk = self.image.chunk;
        settings.zstd_level = match self.image.compression {
            Compression::Zstd(l) => Some(l),
            _ => None,
        };
        settings.planes_per_shard = self.image.planes_per_shard;
        settings.pixel_size_um = self.pixel_size.map(|v| [v[0], v[1], v[2]]);
        settings.qc_gate = if self.qc_gate {
            Some(rules(self.qc_rules.as_deref())?)
        } else {
            None
        };
        settings.checksums = !self.no_checksums;
        settings.stage_to = self.stage_to;
        settings.check()?;
        Ok(settings)
    }
}

impl PlanCmd {
    fn run(self) -> DynResult<bool> {
        let settings = self.settings.settings()?;
        let mut options = PlanOptions::default();
        options.pattern = self.pattern;
        options.planes = self.planes;
        options.settings = settings;
        let manifest =
            strata_batch::plan(&self.scanner_root, &self.map, &self.bids_root, &options)?;
        manifest.save(&self.manifest)?;
        let bytes: u64 = manifest.sections.iter().map(|s| s.bytes).sum();
        let planes: u64 = manifest.sections.iter().map(|s| u64::from(s.planes)).sum();
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "manifest": self.manifest,
                    "sections": manifest.sections.len(),
                    "planes": planes,
                    "bytes": bytes,
                    "bids_root": manifest.bids_root,
                })
            );
        } else {
            println!(
                "{}: {} sections, {planes} planes, {:.1} GB into {}",
                self.manifest.display(),
                manifest.sections.len(),
                bytes as f64 / 1e9,
                manifest.bids_root.display()
            );
        }
        Ok(false)
    }
}

/// The flags of `strata batch submit` and `retry`.
#[derive(Debug, clap::Args)]
pub(crate) struct SubmitCmd {
    #[command(flatten)]
    manifest: ManifestArg,
    #[command(flatten)]
    slurm: SlurmArgs,
    /// Print the job script to stdout; run no pilot, submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

/// How array jobs are sized and placed.
#[derive(Debug, clap::Args)]
pub(crate) struct SlurmArgs {
    /// At most K tasks at once (`--array=...%K`).
    #[arg(long, value_name = "K")]
    concurrency: Option<u32>,
    /// Memory per task in MiB (default: measured on a pilot section, +50%).
    #[arg(long, value_name = "MIB")]
    mem: Option<u64>,
    /// Time limit per task in minutes (default: measured on a pilot section, 3x).
    #[arg(long, value_name = "MINUTES")]
    time: Option<u64>,
    /// CPUs per task.
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// Slurm partition.
    #[arg(long)]
    partition: Option<String>,
    /// Slurm account.
    #[arg(long)]
    account: Option<String>,
    /// The strata program the tasks run, as the compute nodes see it (default: this one).
    #[arg(long)]
    strata: Option<PathBuf>,
}

impl SlurmArgs {
    /// The submit options these flags give.
    pub(crate) fn options(self) -> DynResult<SubmitOptions> {
        let mut o = SubmitOptions::default();
        o.concurrency = self.concurrency;
        o.mem_mib = self.mem;
        o.time_min = self.time;
        o.cpus = self.cpus;
        o.partition = self.partition;
        o.account = self.account;
        if let Some(s) = self.strata {
            o.strata = std::path::absolute(&s)?;
        }
        Ok(o)
    }
}

impl SubmitCmd {
    fn run(self, retry: bool) -> DynResult<bool> {
        let paths = BatchPaths::new(&self.manifest.manifest)?;
        let mut o = self.slurm.options()?;
        o.dry_run = self.dry_run;
        let submission = if retry {
            strata_batch::retry(&paths, &o)?
        } else {
            Some(strata_batch::submit(&paths, &o, None)?)
        };
        let Some(s) = submission else {
            if self.json {
                println!("{}", serde_json::json!({ "job_id": null, "indices": [] }));
            } else {
                println!("nothing to retry: no section failed or was lost");
            }
            return Ok(false);
        };
        if self.json {
            println!("{}", serde_json::to_string(&s)?);
        } else if self.dry_run {
            print!("{}", s.script);
        } else {
            if let Some(p) = &s.pilot {
                println!(
                    "pilot: section {} ({}) in {:.1} s, peak {:.0} MiB",
                    p.index,
                    p.folder,
                    p.seconds,
                    p.peak_rss_bytes.unwrap_or(0) as f64 / (1 << 20) as f64
                );
            }
            println!(
                "submitted job {} : {} task(s), {} MiB and {} min each ({})",
                s.job_id.as_deref().unwrap_or("-"),
                s.indices.len(),
                s.requests.mem_mib,
                s.requests.time_min,
                s.requests_from
            );
        }
        Ok(false)
    }
}

/// The flags of `strata batch run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunCmd {
    #[command(flatten)]
    manifest: ManifestArg,
    /// The section (task) index: line `i` of the manifest's sections, from 0.
    #[arg(long)]
    index: usize,
}

impl RunCmd {
    fn run(self) -> DynResult<bool> {
        let paths = BatchPaths::new(&self.manifest.manifest)?;
        let report = strata_batch::run_task(&paths, self.index)?;
        println!("{}", serde_json::to_string(&report)?);
        Ok(false)
    }
}

/// The flags of `strata batch status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusCmd {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Do not ask Slurm (queued and running tasks then show as lost or pending).
    #[arg(long)]
    no_queue: bool,
    /// Print what the state cache holds, without looking at the dataset or the queue.
    #[arg(long, conflicts_with = "no_queue")]
    cached: bool,
    /// Print every section's state as JSON.
    #[arg(long)]
    json: bool,
}

impl StatusCmd {
    fn run(self) -> DynResult<bool> {
        let paths = BatchPaths::new(&self.manifest.manifest)?;
        if self.cached {
            let rows = strata_batch::StateDb::open(&paths.db)?.sections()?;
            if self.json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                for r in rows {
                    println!(
                        "{:>6} {:<12} {} (attempts {}){}",
                        r.index,
                        r.state,
                        r.folder,
                        r.attempts,
                        r.detail.map(|d| format!(": {d}")).unwrap_or_default()
                    );
                }
            }
            return Ok(false);
        }
        let manifest = Manifest::load(&paths.manifest)?;
        let states = strata_batch::status(&paths, !self.no_queue)?;
        let counts = strata_batch::counts(&states);
        if self.json {
            println!(
                "{}",
                serde_json::json!({ "counts": counts, "sections": states })
            );
        } else {
            let line: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            println!("{} sections: {}", manifest.sections.len(), line.join(", "));
            for s in &states {
                let detail = match &s.state {
                    State::Failed { error } => error.clone(),
                    State::QcFailed { reasons } => reasons.join("; "),
                    State::Lost { last_line } => last_line
                        .clone()
                        .unwrap_or_else(|| "stopped without a result".into()),
                    State::Stale => "source changed since it was published".into(),
                    _ => continue,
                };
                println!("  {} {} ({}): {detail}", s.state.name(), s.index, s.folder);
            }
        }
        Ok(false)
    }
}

/// The flags of `strata batch save`.
#[derive(Debug, clap::Args)]
pub(crate) struct SaveCmd {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Subdatasets: `subject` (one per sub-<s>/) or `none` (the superdataset holds all).
    #[arg(long, default_value = "subject", value_parser = ["subject", "none"])]
    datalad_group: String,
    /// git-annex layout of the datasets created: `default` or `compact`.
    #[arg(long, default_value = "default", value_parser = ["default", "compact"])]
    datalad_annex: String,
    /// One save (and commit) per section instead of one for all: finer history, one
    /// `datalad save` per section.
    #[arg(long)]
    per_section: bool,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

impl SaveCmd {
    fn run(self) -> DynResult<bool> {
        let paths = BatchPaths::new(&self.manifest.manifest)?;
        let grouping = if self.datalad_group == "none" {
            strata_plan::Grouping::None
        } else {
            strata_plan::Grouping::PerSubject
        };
        let annex = self.datalad_annex.parse::<strata_plan::AnnexMode>()?;
        let dl = strata_plan::datalad::Datalad::locate()?;
        let s = strata_batch::save(&paths, &dl, grouping, annex, self.per_section)?;
        if self.json {
            println!("{}", serde_json::to_string(&s)?);
        } else {
            let commits = s
                .saved
                .datasets
                .iter()
                .filter(|d| d.commit != d.before)
                .count();
            println!(
                "saved {} sections in {:.1} s: {} dataset(s) committed{}",
                s.sections,
                s.seconds,
                commits,
                if s.unpublished > 0 {
                    format!(", {} not published yet", s.unpublished)
                } else {
                    String::new()
                }
            );
        }
        Ok(false)
    }
}

//! `strata ingest --watch DROP`: the scanner gateway, on `strata_batch::Ingest`.

use crate::batch::{SettingsArgs, SlurmArgs};
use crate::common::DynResult;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use strata_batch::{Event, Ingest, IngestOptions};

/// The flags of `strata ingest`.
#[derive(Debug, clap::Args)]
pub(crate) struct IngestCmd {
    /// The drop folder the scanner writes into: one folder of TIFF planes per section.
    #[arg(long, value_name = "DROP")]
    watch: PathBuf,
    /// TSV mapping folders to sections (folder, subject, sample, optional stain); read
    /// again on every scan, so rows can be added while the service runs.
    #[arg(long, value_name = "MAP.tsv")]
    map: PathBuf,
    /// Root folder of the BIDS dataset.
    #[arg(long)]
    bids_root: PathBuf,
    /// TIFF planes of a complete section.
    #[arg(long, default_value_t = 30)]
    planes: u32,
    /// Seconds a section must stay unchanged (same files, sizes, times) to count as complete.
    #[arg(long, default_value_t = 60.0)]
    settle: f64,
    /// A file name whose presence in a section folder marks it complete at once.
    #[arg(long)]
    marker: Option<String>,
    /// Seconds between scans of the drop folder.
    #[arg(long, default_value_t = 5.0)]
    poll: f64,
    /// The gateway's manifest (reports and state cache beside it), for
    /// `strata batch status`; default DROP/.strata-ingest/ingest.json.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Scan once, convert what is complete, and exit (for cron or a systemd timer).
    #[arg(long)]
    once: bool,
    /// Submit each complete section to Slurm instead of converting it here.
    #[arg(long)]
    slurm: bool,
    #[command(flatten)]
    slurm_args: SlurmArgs,
    #[command(flatten)]
    settings: SettingsArgs,
    /// One JSON object per event on stdout.
    #[arg(long)]
    json: bool,
}

/// One line per event, for people.
fn line(e: &Event) -> String {
    match e {
        Event::Unmapped { folder } => format!("{folder}: not in the map, ignored"),
        Event::Waiting {
            folder,
            planes,
            expected,
        } => format!("{folder}: {planes} of {expected} planes, waiting"),
        Event::Complete { folder, index } => format!("{folder}: complete (section {index})"),
        Event::Published {
            folder, seconds, ..
        } => format!("{folder}: published in {seconds:.1} s"),
        Event::Submitted { folder, job_id, .. } => format!("{folder}: submitted as job {job_id}"),
        Event::QcFailed {
            folder, reasons, ..
        } => format!("{folder}: QC failed, not published: {}", reasons.join("; ")),
        Event::Failed { folder, error } => format!("{folder}: failed: {error}"),
        Event::ScanFailed { error } => format!("scan failed (trying again): {error}"),
        _ => format!("{e:?}"),
    }
}

impl IngestCmd {
    pub(crate) fn run(self) -> DynResult<bool> {
        let seconds = |v: f64, flag: &str| {
            if v.is_finite() && v >= 0.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(format!("{flag} {v}: a number of seconds, 0 or more"))
            }
        };
        let mut o = IngestOptions::new(self.watch, self.map, self.bids_root);
        o.planes = self.planes;
        o.settle = seconds(self.settle, "--settle")?;
        o.poll = seconds(self.poll, "--poll")?;
        o.marker = self.marker;
        o.manifest = self.manifest;
        o.settings = self.settings.settings()?;
        if self.slurm {
            o.slurm = Some(self.slurm_args.options()?);
        }
        let mut ingest = Ingest::open(o)?;
        let json = self.json;
        let mut print = move |e: &Event| {
            if json {
                if let Ok(text) = serde_json::to_string(e) {
                    println!("{text}");
                }
            } else {
                println!("{}", line(e));
            }
        };
        if self.once {
            ingest.scan(&mut print)?;
            return Ok(false);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        // SIGTERM or Ctrl-C: stop after the section being converted.
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            });
            flag.store(true, Ordering::Relaxed);
        });
        if !json {
            eprintln!(
                "strata ingest: watching; state in {} (strata batch status --manifest ...); \
                 SIGTERM stops after the current section",
                ingest.paths().manifest.display()
            );
        }
        ingest.run(&stop, &mut print);
        Ok(false)
    }
}

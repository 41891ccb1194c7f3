//! `cargo xtask failpoints [--hits N]`: the crash-point matrix. Builds `strata` with the
//! `failpoints` feature (`strata_fs::failpoint`), runs each writing command once cleanly with
//! `STRATA_FAILPOINT_LOG` to learn which crash points it passes and how often, then, for
//! every point and up to N of its passes (all with `--hits 0`), runs it again with
//! `STRATA_KILL_AT=<point>@<pass>` into a fresh copy of the same starting state, where the
//! process kills itself with SIGKILL. After each kill:
//!
//! - the process died of SIGKILL (the point was reached: a renamed or removed point fails
//!   the matrix instead of passing unseen);
//! - the dataset checks of `campaign-kill` (tables parse and hold each finished section once,
//!   no sidecar or row without its image, `strata validate` passes or names only the killed
//!   section), for the conversions;
//! - for the stages, every object the resume journal records as staged is at the
//!   destination with the recorded size and SHA-256, and an archive is either absent or
//!   whole;
//! - the same command run again succeeds, and the result equals the clean run's file for
//!   file (object for object on S3; `git status` clean with DataLad).
//!
//! The commands: `strata convert` (a new dataset's first section, folder, `.ozx`, into S3,
//! `--datalad`, `--hdf5`), `strata batch run`, `strata ingest --once`, and `strata stage` (folder to S3, small and
//! multipart, folder to `.ozx`, S3 to folder). The S3 cases need the
//! test S3 server (`STRATA_S3_ENDPOINT`), the DataLad case `STRATA_DATALAD`; `cargo xtask
//! test` runs the matrix with both, at most 2 passes per point.

use crate::campaign_kill::{check_after_kill, dataset};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the S3 cases write: the test server and a bucket made for this run.
pub(crate) struct S3 {
    pub(crate) endpoint: String,
    pub(crate) bucket: String,
}

/// What the matrix runs with.
pub(crate) struct Setup {
    pub(crate) strata: PathBuf,
    pub(crate) s3: Option<S3>,
    pub(crate) datalad: Option<PathBuf>,
}

/// The commands of the matrix.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    ConvertFirst,
    ConvertFolder,
    ConvertOzx,
    ConvertS3,
    ConvertDatalad,
    ConvertHdf5,
    BatchRun,
    Ingest,
    StageToS3,
    StageLargeToS3,
    StageToOzx,
    StageFromS3,
}

impl Kind {
    const ALL: [Kind; 12] = [
        Kind::ConvertFirst,
        Kind::ConvertFolder,
        Kind::ConvertOzx,
        Kind::ConvertS3,
        Kind::ConvertDatalad,
        Kind::ConvertHdf5,
        Kind::BatchRun,
        Kind::Ingest,
        Kind::StageToS3,
        Kind::StageLargeToS3,
        Kind::StageToOzx,
        Kind::StageFromS3,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::ConvertFirst => "strata convert (a new dataset's first section)",
            Kind::ConvertFolder => "strata convert (folder)",
            Kind::ConvertOzx => "strata convert --layout ozx",
            Kind::ConvertS3 => "strata convert --bids-root s3://",
            Kind::ConvertDatalad => "strata convert --datalad",
            Kind::ConvertHdf5 => "strata convert --hdf5",
            Kind::BatchRun => "strata batch run",
            Kind::Ingest => "strata ingest --once",
            Kind::StageToS3 => "strata stage folder s3://",
            Kind::StageLargeToS3 => "strata stage folder s3:// (multipart)",
            Kind::StageToOzx => "strata stage folder zip://",
            Kind::StageFromS3 => "strata stage s3:// folder",
        }
    }

    /// Points a clean run must pass (so that a build without the feature, or a point
    /// that moved away from its step, fails the matrix).
    fn must_pass(self) -> &'static [&'static str] {
        match self {
            Kind::ConvertFirst => &["convert.published", "fs.atomic.before-rename"],
            Kind::ConvertFolder | Kind::BatchRun | Kind::Ingest => &[
                "convert.arrays-written",
                "convert.earlier-moved-aside",
                "store.posix.prefix-renamed",
                "convert.published",
                "convert.sidecar-written",
                "convert.participants-added",
                "fs.locked.changed",
            ],
            Kind::ConvertOzx => &[
                "convert.arrays-written",
                "convert.published",
                "convert.sidecar-written",
                "store.posix.renamed",
            ],
            Kind::ConvertS3 => &["convert.published", "convert.table-written", "store.s3.put"],
            Kind::ConvertDatalad => &["convert.published", "datalad.before-save", "datalad.saved"],
            Kind::ConvertHdf5 => &["convert.published", "fs.atomic.renamed"],
            Kind::StageToS3 => &["stage.copied", "stage.journaled"],
            Kind::StageLargeToS3 => &[
                "store.s3.before-complete",
                "store.s3.completed",
                "stage.journaled",
            ],
            Kind::StageToOzx => &["stage.ozx.entry-copied", "stage.ozx.published"],
            Kind::StageFromS3 => &["stage.copied", "stage.journaled", "fs.atomic.renamed"],
        }
    }

    fn needs_s3(self) -> bool {
        matches!(
            self,
            Kind::ConvertS3 | Kind::StageToS3 | Kind::StageLargeToS3 | Kind::StageFromS3
        )
    }
}

/// One prepared run: its arguments and what it writes.
struct Run {
    args: Vec<String>,
    out: Out,
    /// The resume journal of a stage.
    journal: Option<PathBuf>,
}

impl Run {
    /// A run that writes into the dataset folder `root` (no Git, no journal).
    fn dataset(args: Vec<String>, root: PathBuf) -> Self {
        Self {
            args,
            out: Out::Dataset { root, git: false },
            journal: None,
        }
    }
}

/// What a run writes, to be checked and compared.
enum Out {
    /// A dataset folder (`.git` and `.datalad` left out of the comparison when `git`).
    Dataset { root: PathBuf, git: bool },
    /// A dataset in S3 (`s3://bucket/prefix`), pulled into a folder to check.
    S3Dataset { url: String, pull: PathBuf },
    /// A folder that receives a staged copy.
    Copy { root: PathBuf },
    /// An `.ozx` archive staged into an otherwise empty folder.
    Archive { folder: PathBuf },
}

/// Sections, datasets and S3 prefixes the runs start from.
struct Fixture<'a> {
    setup: &'a Setup,
    work: PathBuf,
    raw1: PathBuf,
    raw2: PathBuf,
    scan: PathBuf,
    map: PathBuf,
    template: PathBuf,
    /// Two files of 20 MiB and 9 MiB: multipart uploads.
    large: PathBuf,
    template_datalad: Option<PathBuf>,
    s3_source: Option<String>,
    runs: std::cell::Cell<u64>,
}

impl Fixture<'_> {
    fn strata(&self) -> Command {
        let mut c = Command::new(&self.setup.strata);
        if let Some(s3) = &self.setup.s3 {
            c.env("STRATA_S3_ENDPOINT", &s3.endpoint)
                .env("AWS_ACCESS_KEY_ID", "strata-test")
                .env("AWS_SECRET_ACCESS_KEY", "strata-test")
                .env("AWS_DEFAULT_REGION", "us-east-1");
        }
        if let Some(dl) = &self.setup.datalad {
            c.env("STRATA_DATALAD", dl);
        }
        c.env_remove(strata_kill_at())
            .env_remove(strata_log())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `strata args`, failing with its error output.
    fn quiet(&self, args: &[String]) -> Result<(), String> {
        let out = self
            .strata()
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "strata {} failed with {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn convert_args(&self, raw: &Path, sample: &str, target: &[String]) -> Vec<String> {
        let mut a = vec!["convert".into(), raw.display().to_string()];
        a.extend(target.iter().cloned());
        a.extend(
            ["--subject", "K", "--sample", sample]
                .iter()
                .map(|s| (*s).to_string()),
        );
        a
    }

    /// A fresh folder under the work folder.
    fn fresh(&self, label: &str) -> Result<PathBuf, String> {
        let dir = self.work.join(label);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(dir)
    }

    fn copy_of(&self, template: &Path, to: &Path) -> Result<(), String> {
        crate::run_cmd(
            Command::new("cp")
                .arg("-a")
                .arg(template)
                .arg(to)
                .stderr(Stdio::null()),
        )
    }

    /// A new S3 prefix of this run's bucket.
    fn s3_prefix(&self, what: &str) -> Result<String, String> {
        let s3 = self.setup.s3.as_ref().ok_or("no S3 server")?;
        let n = self.runs.get() + 1;
        self.runs.set(n);
        Ok(format!("s3://{}/{what}-{n}", s3.bucket))
    }

    /// Prepares a run of `kind` in a fresh state under `label`.
    fn prepare(&self, kind: Kind, label: &str) -> Result<Run, String> {
        let ws = self.fresh(label)?;
        let bids = ws.join("bids");
        let journal = ws.join("stage.journal");
        Ok(match kind {
            Kind::ConvertFirst => {
                let target = ["--bids-root".into(), bids.display().to_string()];
                Run::dataset(self.convert_args(&self.raw2, "2", &target), bids)
            }
            Kind::ConvertFolder | Kind::ConvertOzx => {
                self.copy_of(&self.template, &bids)?;
                let layout = if kind == Kind::ConvertOzx {
                    "ozx"
                } else {
                    "zarr"
                };
                let target = [
                    "--bids-root".into(),
                    bids.display().to_string(),
                    "--layout".into(),
                    layout.into(),
                ];
                Run::dataset(self.convert_args(&self.raw2, "2", &target), bids)
            }
            Kind::ConvertHdf5 => {
                self.copy_of(&self.template, &bids)?;
                let h5 = bids.join("derivatives/legacy/sub-K_sample-2_BF.h5");
                let target = [
                    "--bids-root".into(),
                    bids.display().to_string(),
                    "--hdf5".into(),
                    h5.display().to_string(),
                ];
                Run::dataset(self.convert_args(&self.raw2, "2", &target), bids)
            }
            Kind::ConvertDatalad => {
                let template = self.template_datalad.as_ref().ok_or("no DataLad")?;
                self.copy_of(template, &bids)?;
                let target = ["--datalad".into(), bids.display().to_string()];
                Run {
                    args: self.convert_args(&self.raw2, "2", &target),
                    out: Out::Dataset {
                        root: bids,
                        git: true,
                    },
                    journal: None,
                }
            }
            Kind::ConvertS3 => {
                let url = self.s3_prefix("convert")?;
                let target = ["--bids-root".into(), url.clone()];
                self.quiet(&self.convert_args(&self.raw1, "1", &target))?;
                Run {
                    args: self.convert_args(&self.raw2, "2", &target),
                    out: Out::S3Dataset {
                        url,
                        pull: ws.join("pulled"),
                    },
                    journal: None,
                }
            }
            Kind::BatchRun => {
                self.copy_of(&self.template, &bids)?;
                let manifest = ws.join("m.json");
                self.quiet(&[
                    "batch".into(),
                    "plan".into(),
                    self.scan.display().to_string(),
                    "--map".into(),
                    self.map.display().to_string(),
                    "--bids-root".into(),
                    bids.display().to_string(),
                    "--manifest".into(),
                    manifest.display().to_string(),
                ])?;
                Run {
                    args: vec![
                        "batch".into(),
                        "run".into(),
                        "--manifest".into(),
                        manifest.display().to_string(),
                        "--index".into(),
                        "0".into(),
                    ],
                    out: Out::Dataset {
                        root: bids,
                        git: false,
                    },
                    journal: None,
                }
            }
            Kind::Ingest => {
                self.copy_of(&self.template, &bids)?;
                // The drop folder at one path for every run (the source's path is part of
                // the provenance), fresh for each: the gateway keeps its state in it.
                let drop = self.work.join("drop");
                let _ = std::fs::remove_dir_all(&drop);
                self.copy_of(&self.scan, &drop)?;
                std::fs::write(drop.join("slide2/DONE"), b"").map_err(|e| e.to_string())?;
                let mut args: Vec<String> = [
                    "ingest", "--once", "--planes", "4", "--settle", "3600", "--marker", "DONE",
                ]
                .iter()
                .map(|s| (*s).to_string())
                .collect();
                for (flag, value) in [
                    ("--watch", &drop),
                    ("--map", &self.map),
                    ("--bids-root", &bids),
                ] {
                    args.push(flag.into());
                    args.push(value.display().to_string());
                }
                Run {
                    args,
                    out: Out::Dataset {
                        root: bids,
                        git: false,
                    },
                    journal: None,
                }
            }
            Kind::StageToS3 => {
                let url = self.s3_prefix("stage")?;
                Run {
                    args: stage_args(&file_url(&self.template), &url, &journal),
                    out: Out::S3Dataset {
                        url,
                        pull: ws.join("pulled"),
                    },
                    journal: Some(journal),
                }
            }
            Kind::StageLargeToS3 => {
                let url = self.s3_prefix("large")?;
                Run {
                    args: stage_args(&file_url(&self.large), &url, &journal),
                    out: Out::S3Dataset {
                        url,
                        pull: ws.join("pulled"),
                    },
                    journal: Some(journal),
                }
            }
            Kind::StageToOzx => {
                let folder = ws.join("archive");
                std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
                let dst = format!("zip://{}", folder.join("dataset.ozx").display());
                Run {
                    args: stage_args(&file_url(&self.template), &dst, &journal),
                    out: Out::Archive { folder },
                    journal: None,
                }
            }
            Kind::StageFromS3 => {
                let src = self.s3_source.as_ref().ok_or("no S3 server")?;
                let root = ws.join("copy");
                Run {
                    args: stage_args(src, &file_url(&root), &journal),
                    out: Out::Copy { root },
                    journal: Some(journal),
                }
            }
        })
    }

    /// Everything the run wrote, as compared between the killed-and-rerun and the clean run.
    fn snapshot(&self, out: &Out) -> Result<BTreeMap<String, Vec<u8>>, String> {
        match out {
            Out::Dataset { root, git } => {
                let mut d = dataset(root)?;
                if *git {
                    d.retain(|k, _| {
                        !k.split('/')
                            .any(|part| part == ".git" || part == ".datalad")
                    });
                }
                Ok(d)
            }
            Out::S3Dataset { url, pull } => {
                self.pull(url, pull)?;
                dataset(pull)
            }
            Out::Copy { root } => dataset(root),
            Out::Archive { folder } => {
                let mut d = BTreeMap::new();
                for e in std::fs::read_dir(folder).map_err(|e| e.to_string())? {
                    let e = e.map_err(|e| e.to_string())?;
                    let bytes = std::fs::read(e.path()).map_err(|e| e.to_string())?;
                    d.insert(e.file_name().to_string_lossy().into_owned(), bytes);
                }
                Ok(d)
            }
        }
    }

    /// Copies an S3 dataset into `to` (emptied first) with `strata stage`.
    fn pull(&self, url: &str, to: &Path) -> Result<(), String> {
        let _ = std::fs::remove_dir_all(to);
        let journal = to.with_extension("journal");
        let _ = std::fs::remove_file(&journal);
        self.quiet(&stage_args(url, &file_url(to), &journal))?;
        let _ = std::fs::remove_file(&journal);
        Ok(())
    }

    /// The checks right after a kill (see the module docs).
    fn after_kill(&self, kind: Kind, run: &Run, expected: &Snapshot) -> Result<(), String> {
        let image = match kind {
            Kind::ConvertOzx => "sub-K/micr/sub-K_sample-2_BF.ozx",
            // DataLad places the section in a session (subdataset) of its subject.
            Kind::ConvertDatalad => "sub-K/ses-01/micr/sub-K_ses-01_sample-2_BF.ome.zarr",
            _ => "sub-K/micr/sub-K_sample-2_BF.ome.zarr",
        };
        match &run.out {
            Out::Dataset { root, .. } if !root.exists() => Ok(()),
            Out::Dataset { root, .. } => {
                check_after_kill(&self.setup.strata, root, image, kind == Kind::ConvertFirst)
            }
            Out::S3Dataset { url, pull } => {
                self.pull(url, pull)?;
                if kind == Kind::ConvertS3 {
                    check_after_kill(&self.setup.strata, pull, image, false)?;
                }
                // The journal's keys start with the prefix in the bucket.
                let prefix = url.splitn(4, '/').nth(3).map(|p| format!("{p}/"));
                check_journal(run.journal.as_deref(), pull, prefix.as_deref())
            }
            Out::Copy { root } => check_journal(run.journal.as_deref(), root, None),
            Out::Archive { folder } => {
                let archive = folder.join("dataset.ozx");
                match std::fs::read(&archive) {
                    Ok(bytes) if Some(&bytes) != expected.files.get("dataset.ozx") => {
                        Err("an archive is in place that differs from a clean run's".to_string())
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

/// A clean run's result and the crash points it passed (name, passes).
struct Snapshot {
    files: BTreeMap<String, Vec<u8>>,
    points: BTreeMap<String, u64>,
}

fn strata_kill_at() -> &'static str {
    "STRATA_KILL_AT"
}

fn strata_log() -> &'static str {
    "STRATA_FAILPOINT_LOG"
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn stage_args(src: &str, dst: &str, journal: &Path) -> Vec<String> {
    vec![
        "stage".into(),
        src.into(),
        dst.into(),
        "--journal".into(),
        journal.display().to_string(),
    ]
}

/// Every object a stage journal records as done is at `root` (its key without `prefix`)
/// with its size and SHA-256.
fn check_journal(journal: Option<&Path>, root: &Path, prefix: Option<&str>) -> Result<(), String> {
    let Some(journal) = journal else {
        return Ok(());
    };
    let Ok(text) = std::fs::read_to_string(journal) else {
        return Ok(()); // killed before the journal was made
    };
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut f = line.splitn(3, '\t');
        let (Some(sha), Some(size), Some(key)) = (f.next(), f.next(), f.next()) else {
            // The last line may be torn by the kill; a torn line names no object.
            continue;
        };
        let path = root.join(prefix.and_then(|p| key.strip_prefix(p)).unwrap_or(key));
        let bytes = std::fs::read(&path).map_err(|e| {
            format!("the journal records {key} as staged, but it is not there: {e}")
        })?;
        let out = Command::new("sha256sum")
            .arg(&path)
            .output()
            .map_err(|e| format!("sha256sum: {e}"))?;
        let got = String::from_utf8_lossy(&out.stdout);
        if bytes.len().to_string() != size || !got.starts_with(sha) {
            return Err(format!(
                "the journal records {key} as staged ({size} bytes, sha256 {sha}), the destination holds {} bytes, sha256 {}",
                bytes.len(),
                got.split_whitespace().next().unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// The passes of a point to kill at: all up to `max` (0: all), else the first, the last and
/// evenly spread ones between.
fn hits(count: u64, max: u64) -> Vec<u64> {
    if max == 0 || count <= max {
        return (1..=count).collect();
    }
    if max == 1 {
        return vec![1];
    }
    let mut v: Vec<u64> = (0..max).map(|i| 1 + i * (count - 1) / (max - 1)).collect();
    v.dedup();
    v
}

/// Builds the armed `strata` (debug profile, shared target folder, with HDF5) and copies it to
/// `target/failpoints/strata`, out of the way of the next build of the plain one.
pub(crate) fn build(root: &Path) -> Result<PathBuf, String> {
    crate::run_cmd(crate::cargo().current_dir(root).args([
        "build",
        "--package",
        "strata-cli",
        "--features",
        "failpoints,hdf5",
    ]))?;
    let armed = root.join("target/failpoints/strata");
    std::fs::create_dir_all(root.join("target/failpoints")).map_err(|e| e.to_string())?;
    std::fs::copy(root.join("target/debug/strata"), &armed)
        .map_err(|e| format!("copying the armed strata: {e}"))?;
    Ok(armed)
}

/// Runs the matrix (see the module docs); `max_hits` passes per point (0: all).
pub(crate) fn run(root: &Path, setup: &Setup, max_hits: u64) -> Result<(), String> {
    let work = root.join("target/failpoints");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let mut fx = Fixture {
        setup,
        raw1: work.join("raw-1"),
        raw2: work.join("raw-2"),
        scan: work.join("scan"),
        map: work.join("map.tsv"),
        template: work.join("template"),
        large: work.join("large"),
        template_datalad: None,
        s3_source: None,
        work,
        runs: std::cell::Cell::new(0),
    };
    crate::bench_convert::sample(&setup.strata, &fx.raw1, "256x256", 3)?;
    crate::bench_convert::sample(&setup.strata, &fx.raw2, "512x512", 4)?;
    let _ = std::fs::remove_dir_all(&fx.template);
    let target = ["--bids-root".into(), fx.template.display().to_string()];
    fx.quiet(&fx.convert_args(&fx.raw1, "1", &target))?;
    let _ = std::fs::remove_dir_all(&fx.large);
    std::fs::create_dir_all(&fx.large).map_err(|e| e.to_string())?;
    let mut rng = crate::bench_serve::Rng(17);
    for (name, mib) in [("a.bin", 20), ("b.bin", 9)] {
        let bytes: Vec<u8> = (0..mib << 20).map(|_| rng.below(256) as u8).collect();
        std::fs::write(fx.large.join(name), bytes).map_err(|e| e.to_string())?;
    }
    let _ = std::fs::remove_dir_all(&fx.scan);
    std::fs::create_dir_all(&fx.scan).map_err(|e| e.to_string())?;
    fx.copy_of(&fx.raw2, &fx.scan.join("slide2"))?;
    std::fs::write(&fx.map, "folder\tsubject\tsample\nslide2\tK\t2\n")
        .map_err(|e| e.to_string())?;
    if setup.datalad.is_some() {
        let t = fx.work.join("template-datalad");
        let _ = std::fs::remove_dir_all(&t);
        let target = ["--datalad".into(), t.display().to_string()];
        fx.quiet(&fx.convert_args(&fx.raw1, "1", &target))?;
        fx.template_datalad = Some(t);
    }
    if setup.s3.is_some() {
        let url = fx.s3_prefix("source")?;
        let journal = fx.work.join("source.journal");
        let _ = std::fs::remove_file(&journal);
        fx.quiet(&stage_args(&file_url(&fx.template), &url, &journal))?;
        fx.s3_source = Some(url);
    }

    let mut failed = Vec::new();
    println!("failpoints: kill at every crash point, up to {max_hits} passes each (0: all)");
    println!("| command | points passed | kills | violations |");
    println!("| --- | --- | --- | --- |");
    for kind in Kind::ALL {
        if kind.needs_s3() && setup.s3.is_none()
            || kind == Kind::ConvertDatalad && setup.datalad.is_none()
        {
            println!(
                "| {} | skipped (no S3 server or DataLad) | | |",
                kind.name()
            );
            continue;
        }
        let reference = fx.prepare(kind, "reference")?;
        let log = fx.work.join("points.log");
        let _ = std::fs::remove_file(&log);
        let out = fx
            .strata()
            .args(&reference.args)
            .env(strata_log(), &log)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "{}: the clean run failed: {}",
                kind.name(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let mut points = BTreeMap::new();
        for name in std::fs::read_to_string(&log).unwrap_or_default().lines() {
            *points.entry(name.to_owned()).or_insert(0u64) += 1;
        }
        for p in kind.must_pass() {
            if !points.contains_key(*p) {
                return Err(format!(
                    "{}: a clean run does not pass crash point {p} (passed: {:?}); is {} built with --features failpoints?",
                    kind.name(),
                    points.keys().collect::<Vec<_>>(),
                    setup.strata.display()
                ));
            }
        }
        let expected = Snapshot {
            files: fx.snapshot(&reference.out)?,
            points,
        };
        let mut kills = 0;
        let mut violations = Vec::new();
        for (point, &count) in &expected.points {
            for n in hits(count, max_hits) {
                let at = format!("{point}@{n}");
                let run = fx.prepare(kind, "killed")?;
                let status = fx
                    .strata()
                    .args(&run.args)
                    .env(strata_kill_at(), &at)
                    .stderr(Stdio::null())
                    .status()
                    .map_err(|e| e.to_string())?;
                kills += 1;
                let verdict = if status.signal() != Some(9) {
                    Err(format!("not killed (it ended with {status})"))
                } else {
                    fx.after_kill(kind, &run, &expected).and_then(|()| {
                        fx.quiet(&run.args)?;
                        let got = fx.snapshot(&run.out)?;
                        compare(&got, &expected.files)?;
                        match &run.out {
                            Out::Dataset { root, git: true } => git_clean(root),
                            _ => Ok(()),
                        }
                    })
                };
                if let Err(e) = verdict {
                    violations.push(format!("killed at {at}: {e}"));
                }
            }
        }
        println!(
            "| {} | {} | {kills} | {} |",
            kind.name(),
            expected.points.len(),
            violations.len()
        );
        for v in violations {
            eprintln!("  violation ({}): {v}", kind.name());
            failed.push(v);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failpoints: {} violation(s) (above)", failed.len()))
    }
}

/// The same files with the same bytes.
fn compare(
    got: &BTreeMap<String, Vec<u8>>,
    expected: &BTreeMap<String, Vec<u8>>,
) -> Result<(), String> {
    if got.keys().ne(expected.keys()) {
        let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
        let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
        return Err(format!(
            "after the rerun the files differ from a clean run: extra {extra:?}, missing {missing:?}"
        ));
    }
    match got.iter().find(|(k, v)| expected.get(*k) != Some(*v)) {
        Some((k, _)) => Err(format!("after the rerun {k} differs from a clean run")),
        None => Ok(()),
    }
}

/// `git status` of a DataLad dataset (and its subdatasets) shows nothing.
fn git_clean(root: &Path) -> Result<(), String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["status", "--porcelain", "--ignore-submodules=none"])
        .output()
        .map_err(|e| format!("git status: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("after the rerun git status is not clean: {text}"))
    }
}

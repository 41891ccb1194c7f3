//! `strata convert --datalad <SUPERDATASET>`: the converted section saved into a DataLad
//! dataset, in the subdataset grouping the planner models.
//!
//! The superdataset is the BIDS root. Where a section goes, by `--datalad-group`
//! (the layout [`strata_plan::datasets`] counts and the calibration builds):
//!
//! - `none`: the superdataset holds everything (`sub-<s>/micr/...`);
//! - `subject`: one subdataset per subject, rooted at `sub-<s>/`;
//! - `N` (`section` is 1): one subdataset per `N` sections of a subject, rooted at
//!   `sub-<s>/ses-<k>/` (BIDS sessions are the only directory level BIDS allows between the
//!   subject and `micr/`): the section gets session `<k>`, the first group (`01`, `02`, ...)
//!   with room, in the order sections are converted. A section converted again stays in its
//!   group.
//!
//! Datasets are created as needed (`datalad create --force`, after the section is published,
//! so a section that fails its QC gate creates and saves nothing), with `.gitattributes` rules
//! that keep metadata (`*.json`, `*.tsv`, `README`, ...) in git and annex everything else (the
//! shards). Each section is one recursive `datalad save` of its own files, whose message holds
//! the provenance.

use serde_json::{Value, json};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;
use strata_plan::Grouping;
use strata_zstack::ConvertSummary;

use crate::zstack::{self, ConvertArgs};

type DynResult<T> = Result<T, Box<dyn std::error::Error>>;

/// `--datalad-group` by default: 2,000 sections per subdataset, the planner's recommendation
/// for a whole brain (7,000 sections of 30 planes under a 3M-inode quota); `strata plan`
/// computes it for other scales.
pub(crate) const DEFAULT_GROUP: &str = "2000";

/// `.gitattributes` rules added to every dataset: metadata in git, everything else annexed
/// (the rules the planner's calibration uses, plus the other BIDS text files).
pub(crate) const LARGEFILES_RULES: [&str; 10] = [
    "*.json annex.largefiles=nothing",
    "*.tsv annex.largefiles=nothing",
    "README annex.largefiles=nothing",
    "README.* annex.largefiles=nothing",
    "CHANGES annex.largefiles=nothing",
    "LICENSE annex.largefiles=nothing",
    ".bidsignore annex.largefiles=nothing",
    ".zgroup annex.largefiles=nothing",
    ".zattrs annex.largefiles=nothing",
    ".zarray annex.largefiles=nothing",
];

/// `.git/info/exclude` patterns added to every dataset: the converter's transient files (table
/// locks, partial and replaced images, temporary sidecars), never content.
pub(crate) const EXCLUDES: [&str; 5] =
    [".*.lock", ".*.partial", ".*.replaced", ".*.tmp", ".*.tmp-*"];

/// How to install what `--datalad` needs.
const INSTALL_HINT: &str = "--datalad needs DataLad and git-annex: install them with \
`pip install datalad` and `apt-get install git-annex` (or your platform's git-annex package), \
and put `datalad` on PATH or point STRATA_DATALAD at the datalad executable";

/// A DataLad step failed (exit code 2).
#[derive(Debug)]
pub(crate) struct DataladError(String);

impl std::fmt::Display for DataladError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DataladError {}

fn err(message: impl Into<String>) -> DataladError {
    DataladError(message.into())
}

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

/// The `datalad` executable and the environment its commands run with.
pub(crate) struct Datalad {
    exe: PathBuf,
    version: String,
    env: Vec<(&'static str, String)>,
}

impl Datalad {
    /// Finds datalad (`STRATA_DATALAD`, else `datalad` on PATH) and git-annex, and settles the
    /// git identity of the commits (the user's if git has one, else `strata`).
    ///
    /// # Errors
    /// [`DataladError`] with how to install what is missing.
    pub(crate) fn locate() -> Result<Self, DataladError> {
        let (exe, source) = match std::env::var_os("STRATA_DATALAD") {
            Some(p) if !p.is_empty() => (PathBuf::from(p), "STRATA_DATALAD"),
            _ => (PathBuf::from("datalad"), "PATH"),
        };
        let out = Command::new(&exe).arg("--version").output().map_err(|e| {
            err(format!(
                "cannot run datalad ({} from {source}): {e}; {INSTALL_HINT}",
                exe.display()
            ))
        })?;
        if !out.status.success() {
            return Err(err(format!(
                "`{} --version` failed: {}; {INSTALL_HINT}",
                exe.display(),
                output_text(&out)
            )));
        }
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let annex = Command::new("git")
            .args(["annex", "version", "--raw"])
            .output();
        match annex {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(err(format!(
                    "git-annex is missing (`git annex version`: {}); {INSTALL_HINT}",
                    output_text(&o)
                )));
            }
            Err(e) => {
                return Err(err(format!("cannot run git ({e}); {INSTALL_HINT}")));
            }
        }
        Ok(Self {
            exe,
            version,
            env: identity(),
        })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    }

    /// Creates the dataset `path` (registered in `parent` when given). `compact` sets
    /// `annex.tune.objecthash1` (one hash directory level; git-annex reads it only when it
    /// initialises the repository, which `datalad create` does) and thin unlocked files (the
    /// work-tree file is a hard link to the annexed object: one inode for both).
    fn create(
        &self,
        parent: Option<&Path>,
        path: &Path,
        compact: bool,
    ) -> Result<(), DataladError> {
        let mut args: Vec<OsString> = vec!["create".into(), "--force".into()];
        if let Some(parent) = parent {
            args.extend(["-d".into(), parent.into()]);
        }
        args.push(path.into());
        let tune: &[(&str, &str)] = if compact {
            &[
                ("GIT_CONFIG_COUNT", "1"),
                ("GIT_CONFIG_KEY_0", "annex.tune.objecthash1"),
                ("GIT_CONFIG_VALUE_0", "true"),
            ]
        } else {
            &[]
        };
        self.run_with(&args, tune)?;
        if compact {
            for (key, value) in [("annex.addunlocked", "true"), ("annex.thin", "true")] {
                git(path, &["config", key, value])?;
            }
        }
        Ok(())
    }

    /// Runs `datalad <args>`; the error carries its output.
    fn run(&self, args: &[OsString]) -> Result<(), DataladError> {
        self.run_with(args, &[])
    }

    /// Runs `datalad <args>` with extra environment variables.
    fn run_with(&self, args: &[OsString], env: &[(&str, &str)]) -> Result<(), DataladError> {
        let out = self
            .command()
            .envs(env.iter().copied())
            .args(args)
            .output()
            .map_err(|e| {
                err(format!(
                    "cannot run datalad ({}): {e}; {INSTALL_HINT}",
                    self.exe.display()
                ))
            })?;
        if out.status.success() {
            return Ok(());
        }
        let shown: Vec<String> = args
            .iter()
            .take(4)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Err(err(format!(
            "`datalad {} ...` failed ({}): {}",
            shown.join(" "),
            out.status,
            output_text(&out)
        )))
    }
}

/// A process's stderr and stdout, trimmed to their last 4,000 characters.
fn output_text(out: &std::process::Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(stdout.trim());
    }
    let n = text.chars().count();
    if n > 4000 {
        text = format!("...{}", text.chars().skip(n - 4000).collect::<String>());
    }
    if text.is_empty() {
        "no output".to_owned()
    } else {
        text
    }
}

/// Git identity variables for the commits when neither the environment nor git's
/// configuration has one (a fresh machine): `strata <strata@localhost>`.
fn identity() -> Vec<(&'static str, String)> {
    let configured = |key: &str| {
        Command::new("git")
            .args(["config", "--get", key])
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty())
    };
    let has_name = configured("user.name");
    let has_email = configured("user.email");
    let mut env = Vec::new();
    for (var, has, default) in [
        ("GIT_AUTHOR_NAME", has_name, "strata"),
        ("GIT_COMMITTER_NAME", has_name, "strata"),
        ("GIT_AUTHOR_EMAIL", has_email, "strata@localhost"),
        ("GIT_COMMITTER_EMAIL", has_email, "strata@localhost"),
    ] {
        if !has && std::env::var_os(var).is_none() {
            env.push((var, default.to_owned()));
        }
    }
    env
}

/// Where a section goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    /// The superdataset (the BIDS root).
    pub(crate) root: PathBuf,
    /// The grouping.
    pub(crate) grouping: Grouping,
    /// The dataset that holds the section: the superdataset or a subdataset.
    pub(crate) dataset: PathBuf,
    /// The session label the grouping chose (one subdataset per N sections), else the user's.
    pub(crate) session: Option<String>,
}

/// The `sample-` label of a BIDS image name, if the entry is an image (`.ome.zarr`, `.ozx`).
fn image_sample(name: &str) -> Option<&str> {
    if name.starts_with('.') || !(name.ends_with(".ome.zarr") || name.ends_with(".ozx")) {
        return None;
    }
    name.split('_').find_map(|p| p.strip_prefix("sample-"))
}

/// Samples with an image in `micr`.
fn samples_in(micr: &Path) -> Result<std::collections::BTreeSet<String>, DataladError> {
    let mut out = std::collections::BTreeSet::new();
    let entries = match std::fs::read_dir(micr) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(err(format!("{}: {e}", micr.display()))),
    };
    for e in entries {
        let e = e.map_err(|e| err(format!("{}: {e}", micr.display())))?;
        if let Some(s) = e.file_name().to_str().and_then(image_sample) {
            out.insert(s.to_owned());
        }
    }
    Ok(out)
}

/// The session (group) of a section when each subdataset holds `n` sections of a subject:
/// the group that already has the sample, else the last group if it has room, else a new one.
fn group_session(subject_dir: &Path, sample: &str, n: u64) -> Result<String, DataladError> {
    let mut groups: Vec<(u64, String)> = Vec::new();
    match std::fs::read_dir(subject_dir) {
        Ok(entries) => {
            for e in entries {
                let e = e.map_err(|e| err(format!("{}: {e}", subject_dir.display())))?;
                let name = e.file_name();
                let Some(label) = name.to_str().and_then(|n| n.strip_prefix("ses-")) else {
                    continue;
                };
                if e.path().is_dir()
                    && !label.is_empty()
                    && label.bytes().all(|b| b.is_ascii_digit())
                    && let Ok(k) = label.parse::<u64>()
                {
                    groups.push((k, label.to_owned()));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(format!("{}: {e}", subject_dir.display()))),
    }
    groups.sort();
    let mut last: Option<(u64, &str, u64)> = None;
    for (k, label) in &groups {
        let samples = samples_in(&subject_dir.join(format!("ses-{label}")).join("micr"))?;
        if samples.contains(sample) {
            return Ok(label.clone());
        }
        last = Some((*k, label, samples.len() as u64));
    }
    Ok(match last {
        None => "01".to_owned(),
        Some((_, label, count)) if count < n => label.to_owned(),
        Some((k, _, _)) => format!("{:02}", k + 1),
    })
}

/// Decides which dataset (and, grouping by sections, which session) a section goes into.
///
/// # Errors
/// A bad subject or sample label, `--session` with a grouping by sections (the grouping
/// chooses the session), or an unreadable folder.
pub(crate) fn place(
    root: &Path,
    grouping: Grouping,
    subject: &str,
    sample: &str,
    session: Option<&str>,
) -> DynResult<Placement> {
    strata_bids::name::Label::new("sub", subject.to_owned())?;
    strata_bids::name::Label::new("sample", sample.to_owned())?;
    let subject_dir = root.join(format!("sub-{subject}"));
    let (dataset, session) = match grouping {
        Grouping::None => (root.to_path_buf(), session.map(str::to_owned)),
        Grouping::PerSubject => (subject_dir, session.map(str::to_owned)),
        Grouping::PerSections(n) => {
            if let Some(s) = session {
                return Err(Box::new(err(format!(
                    "--session {s}: with --datalad-group {} the session is the subdataset of the \
                     section's group (sub-{subject}/ses-<k>/, chosen by strata); leave out \
                     --session, or group by subject or none",
                    if n == 1 {
                        "section".to_owned()
                    } else {
                        n.to_string()
                    }
                ))));
            }
            let label = group_session(&subject_dir, sample, n)?;
            (subject_dir.join(format!("ses-{label}")), Some(label))
        }
        other => {
            return Err(Box::new(err(format!(
                "--datalad-group {}: not supported by strata convert",
                other.name()
            ))));
        }
    };
    Ok(Placement {
        root: root.to_path_buf(),
        grouping,
        dataset,
        session,
    })
}

/// Whether `path` is the root of a git repository (a DataLad dataset has one).
fn is_dataset(path: &Path) -> bool {
    path.join(".git").exists() && path.join(".datalad").is_dir()
}

/// Appends the [`LARGEFILES_RULES`] missing from the dataset's `.gitattributes`.
fn ensure_rules(dataset: &Path) -> Result<(), DataladError> {
    let path = dataset.join(".gitattributes");
    let mut text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(err(format!("{}: {e}", path.display()))),
    };
    let missing: Vec<&str> = LARGEFILES_RULES
        .iter()
        .copied()
        .filter(|rule| !text.lines().any(|l| l.trim() == *rule))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for rule in missing {
        text.push_str(rule);
        text.push('\n');
    }
    std::fs::write(&path, text).map_err(|e| err(format!("{}: {e}", path.display())))
}

/// Appends the [`EXCLUDES`] missing from the dataset's `.git/info/exclude` (not tracked, so
/// no file is added to the dataset).
fn ensure_excludes(dataset: &Path) -> Result<(), DataladError> {
    let info = dataset.join(".git/info");
    if !dataset.join(".git").is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(&info).map_err(|e| err(format!("{}: {e}", info.display())))?;
    let path = info.join("exclude");
    let mut text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(err(format!("{}: {e}", path.display()))),
    };
    let before = text.len();
    for pattern in EXCLUDES {
        if !text.lines().any(|l| l.trim() == pattern) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(pattern);
            text.push('\n');
        }
    }
    if text.len() == before {
        return Ok(());
    }
    std::fs::write(&path, text).map_err(|e| err(format!("{}: {e}", path.display())))
}

/// The commit checked out in a repository.
fn head(repo: &Path) -> Result<String, DataladError> {
    git(repo, &["rev-parse", "HEAD"])
}

/// Runs `git -C <repo> <args>`; returns its trimmed output, or an error with git's output.
fn git(repo: &Path, args: &[&str]) -> Result<String, DataladError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .map_err(|e| err(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "`git {}` in {} failed: {}",
            args.join(" "),
            repo.display(),
            output_text(&out)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The image's base name without extension (`sub-01_sample-1_BF`).
fn stem(image: &Path) -> Option<String> {
    let name = image.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".ome.zarr")
        .or_else(|| name.strip_suffix(".ozx"))?;
    Some(stem.to_owned())
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

/// Creates the datasets the placement needs, then saves the section's files in one recursive
/// `datalad save` whose message holds the provenance. Returns the `datalad` summary object.
fn save(
    dl: &Datalad,
    a: &ConvertArgs,
    s: &ConvertSummary,
    p: &Placement,
    started: SystemTime,
    compact: bool,
    extra: &[PathBuf],
) -> Result<Value, DataladError> {
    let finished = SystemTime::now();
    let root = &p.root;
    // Conversions into one superdataset take turns here (git allows one writer per
    // repository): an exclusive lock on the superdataset folder, released on return.
    let lock = std::fs::File::open(root).map_err(|e| err(format!("{}: {e}", root.display())))?;
    lock.lock()
        .map_err(|e| err(format!("locking {}: {e}", root.display())))?;
    let mut created = Vec::new();
    if !is_dataset(root) {
        dl.create(None, root, compact)?;
        created.push(root.clone());
    }
    ensure_rules(root)?;
    ensure_excludes(root)?;
    if p.dataset != *root {
        if !is_dataset(&p.dataset) {
            dl.create(Some(root), &p.dataset, compact)?;
            created.push(p.dataset.clone());
        }
        ensure_rules(&p.dataset)?;
        ensure_excludes(&p.dataset)?;
    }
    let stem = stem(&s.output).ok_or_else(|| {
        err(format!(
            "{}: not an .ome.zarr or .ozx image",
            s.output.display()
        ))
    })?;
    let micr = s
        .output
        .parent()
        .ok_or_else(|| err("the image has no parent folder"))?;
    let mut paths = vec![
        s.output.clone(),
        micr.join(format!("{stem}.json")),
        root.join(".gitattributes"),
        p.dataset.join(".gitattributes"),
    ];
    for f in [
        "dataset_description.json",
        "participants.tsv",
        "samples.tsv",
    ] {
        paths.push(root.join(f));
    }
    if a.qc_gate.is_some() {
        let qc = root
            .join("derivatives/qc")
            .join(format!("sub-{}", a.subject));
        paths.push(qc.join(format!("{stem}_qc.json")));
        paths.push(qc.join(format!("{stem}_qc.html")));
    }
    paths.extend(extra.iter().cloned());
    paths.dedup();
    let levels = s.arrays.levels.len();
    let record = provenance(a, s, p, started, finished);
    let message = format!(
        "strata convert sub-{} sample-{} ({} planes, {} levels)\n\n{}\n",
        a.subject,
        a.sample,
        s.planes,
        levels,
        serde_json::to_string_pretty(&record).unwrap_or_else(|_| record.to_string())
    );
    let before = head(&p.dataset)?;
    let mut args: Vec<OsString> = vec![
        "save".into(),
        "-d".into(),
        root.into(),
        "-r".into(),
        "-m".into(),
        message.into(),
    ];
    args.extend(paths.into_iter().filter(|p| p.exists()).map(Into::into));
    dl.run(&args)?;
    let commit = head(&p.dataset)?;
    Ok(json!({
        "superdataset": root,
        "dataset": p.dataset,
        "grouping": p.grouping.name(),
        "annex": if compact { "compact" } else { "default" },
        "session": p.session,
        "created": created,
        "commit": commit,
        "superdataset_commit": head(root)?,
        "saved": commit != before,
        "datalad_version": dl.version,
    }))
}

/// `strata convert ... --datalad <SUPERDATASET>`: finds DataLad (before converting anything),
/// places the section, converts it, and saves it; prints the summary with a `datalad` object.
///
/// # Errors
/// As the conversion (a failing QC gate is [`zstack::QcFailed`]: nothing is created or saved),
/// and [`DataladError`] if DataLad is missing or fails (the section is then published but not
/// saved; rerunning the command converts it again and saves it).
pub(crate) fn convert(
    mut a: ConvertArgs,
    h5: &zstack::Hdf5Args,
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
    let (summary, peak, exported) = zstack::convert_with(&a, h5, json_out)?;
    // An HDF5 copy written inside the superdataset is saved (annexed) with the section.
    let extra: Vec<PathBuf> = h5
        .export
        .iter()
        .filter_map(|f| std::path::absolute(f).ok())
        .filter(|f| std::path::absolute(&placement.root).is_ok_and(|r| f.starts_with(r)))
        .collect();
    let saved = save(&dl, &a, &summary, &placement, started, compact, &extra).map_err(|e| {
        err(format!(
            "{} was published but not saved in DataLad: {e}; fix the cause and rerun the same \
             command (it converts the section again and saves it)",
            summary.output.display()
        ))
    })?;
    zstack::print_convert_with(&summary, peak, json_out, Some(&saved), exported.as_ref())
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

    #[test]
    fn sections_fill_groups_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("sub-01");
        assert_eq!(group_session(&sub, "1", 2).expect("group"), "01");
        let image = |ses: &str, sample: &str| {
            let micr = sub.join(format!("ses-{ses}/micr"));
            std::fs::create_dir_all(
                micr.join(format!("sub-01_ses-{ses}_sample-{sample}_BF.ome.zarr")),
            )
            .expect("mkdir");
        };
        image("01", "1");
        assert_eq!(group_session(&sub, "2", 2).expect("group"), "01");
        image("01", "2");
        assert_eq!(group_session(&sub, "3", 2).expect("group"), "02");
        // A section converted again stays where it is.
        assert_eq!(group_session(&sub, "1", 2).expect("group"), "01");
        image("02", "3");
        assert_eq!(group_session(&sub, "4", 2).expect("group"), "02");
        assert_eq!(group_session(&sub, "4", 1).expect("group"), "03");
    }

    #[test]
    fn session_conflicts_with_section_groups() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(place(dir.path(), Grouping::PerSections(2), "01", "1", Some("a")).is_err());
        let p = place(dir.path(), Grouping::PerSubject, "01", "1", Some("a")).expect("place");
        assert_eq!(p.dataset, dir.path().join("sub-01"));
        assert!(place(dir.path(), Grouping::None, "0_1", "1", None).is_err());
    }
}

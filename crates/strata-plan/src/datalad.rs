//! Sections saved into a DataLad dataset, in the subdataset grouping the planner models.
//!
//! The superdataset is the BIDS root. Where a section goes ([`place`]), by [`Grouping`]
//! (the layout [`crate::datasets`] counts and the calibration builds):
//!
//! - [`Grouping::None`]: the superdataset holds everything (`sub-<s>/micr/...`);
//! - [`Grouping::PerSubject`]: one subdataset per subject, rooted at `sub-<s>/`;
//! - [`Grouping::PerSections`]`(N)`: one subdataset per `N` sections of a subject, rooted at
//!   `sub-<s>/ses-<k>/` (BIDS sessions are the only directory level BIDS allows between the
//!   subject and `micr/`): the section gets session `<k>`, the first group (`01`, `02`, ...)
//!   with room, in the order sections are placed. A section placed again stays in its group.
//!
//! [`save`] creates the datasets as needed (`datalad create --force`, so a section is saved only
//! once it is published) in the chosen [`AnnexMode`], with the [`LARGEFILES_RULES`] that keep
//! metadata (`*.json`, `*.tsv`, `README`, ...) in git and annex everything else (the shards),
//! and the [`excludes`] that keep transient files out; then it saves the section's files in one
//! recursive `datalad save` whose message holds the provenance.
//!
//! ```no_run
//! use strata_plan::Grouping;
//! use strata_plan::datalad::{AnnexMode, Datalad, Section, place, save};
//! use std::path::Path;
//!
//! let root = Path::new("/data/brain");
//! // Which subdataset sample 0001 of subject 01 goes into: sub-01/ses-<k>/, 2,000 a group.
//! let placement = place(root, Grouping::PerSections(2000), "01", "0001", None)?;
//! // ... write the section's image under `placement.dataset`/micr/, then:
//! let section = Section {
//!     image: placement.dataset.join("micr/sub-01_ses-01_sample-0001_BF.ome.zarr"),
//!     subject: "01".to_owned(),
//!     qc_reports: false,
//!     extra: Vec::new(),
//!     title: "convert sub-01 sample-0001".to_owned(),
//!     provenance: serde_json::json!({"source": "/scans/0001"}),
//! };
//! let saved = save(&Datalad::locate()?, &placement, &section, AnnexMode::Compact)?;
//! println!("{} at {}", saved.dataset.display(), saved.commit);
//! # Ok::<(), strata_plan::Error>(())
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::input::{AnnexOptions, Grouping};

/// `.gitattributes` rules added to every dataset: metadata in git, everything else annexed
/// (the rules the planner's calibration uses, plus the other BIDS text files).
pub const LARGEFILES_RULES: [&str; 10] = [
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
pub fn excludes() -> Vec<&'static str> {
    strata_fs::exclude_globs()
}

/// How to install what saving into DataLad needs.
const INSTALL_HINT: &str = "--datalad needs DataLad and git-annex: install them with \
`pip install datalad` and `apt-get install git-annex` (or your platform's git-annex package), \
and put `datalad` on PATH or point STRATA_DATALAD at the datalad executable";

fn err(message: impl Into<String>) -> Error {
    Error::Datalad(message.into())
}

/// The git-annex layout of the datasets [`save`] creates (datasets that exist keep theirs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnexMode {
    /// git-annex defaults: locked files (a symlink per annexed file), two hash levels
    /// ([`AnnexOptions::DEFAULT`]).
    #[default]
    Default,
    /// `annex.tune.objecthash1` and thin unlocked files: about 1 inode per annexed file
    /// instead of 3 ([`AnnexOptions::TUNED`]; the planner's 305k-inode whole brain).
    Compact,
}

impl AnnexMode {
    /// Both modes.
    pub const ALL: [AnnexMode; 2] = [AnnexMode::Default, AnnexMode::Compact];

    /// `default` or `compact`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Compact => "compact",
        }
    }

    /// The annex options the planner models for this mode.
    #[must_use]
    pub fn options(self) -> AnnexOptions {
        match self {
            Self::Default => AnnexOptions::DEFAULT,
            Self::Compact => AnnexOptions::TUNED,
        }
    }
}

impl std::str::FromStr for AnnexMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::Input(format!("annex mode {s:?}: use default or compact")))
    }
}

impl std::fmt::Display for AnnexMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl AnnexOptions {
    /// git settings that must be in effect when git-annex initialises a repository (which
    /// `datalad create` does): `annex.tune.objecthash1` (one hash directory level), which
    /// git-annex reads only then.
    #[must_use]
    pub fn init_config(self) -> Vec<(&'static str, &'static str)> {
        if self.objecthash1 {
            vec![("annex.tune.objecthash1", "true")]
        } else {
            Vec::new()
        }
    }

    /// [`Self::init_config`] as the environment variables (`GIT_CONFIG_COUNT`,
    /// `GIT_CONFIG_KEY_<i>`, `GIT_CONFIG_VALUE_<i>`) that pass it to the git and git-annex a
    /// `datalad create` runs.
    #[must_use]
    pub fn init_env(self) -> Vec<(String, String)> {
        let config = self.init_config();
        if config.is_empty() {
            return Vec::new();
        }
        let mut env = vec![("GIT_CONFIG_COUNT".to_owned(), config.len().to_string())];
        for (i, (key, value)) in config.into_iter().enumerate() {
            env.push((format!("GIT_CONFIG_KEY_{i}"), key.to_owned()));
            env.push((format!("GIT_CONFIG_VALUE_{i}"), value.to_owned()));
        }
        env
    }

    /// git settings written into a repository's config once it exists: `annex.addunlocked`
    /// and `annex.thin` for thin unlocked files (the work-tree file is a hard link to the
    /// annexed object: one inode for both).
    #[must_use]
    pub fn repo_config(self) -> Vec<(&'static str, &'static str)> {
        if self.thin_unlocked {
            vec![("annex.addunlocked", "true"), ("annex.thin", "true")]
        } else {
            Vec::new()
        }
    }
}

/// The `datalad` executable and the environment its commands run with.
#[derive(Debug, Clone)]
pub struct Datalad {
    exe: PathBuf,
    version: String,
    env: Vec<(&'static str, String)>,
}

impl Datalad {
    /// Finds datalad (`STRATA_DATALAD`, else `datalad` on PATH) and git-annex, and settles the
    /// git identity of the commits (the user's if git has one, else `strata`).
    ///
    /// # Errors
    /// [`Error::DataladMissing`] with how to install what is missing.
    pub fn locate() -> Result<Self> {
        let (exe, source) = match std::env::var_os("STRATA_DATALAD") {
            Some(p) if !p.is_empty() => (PathBuf::from(p), "STRATA_DATALAD"),
            _ => (PathBuf::from("datalad"), "PATH"),
        };
        let missing = |message: String| Error::DataladMissing(message);
        let out = Command::new(&exe).arg("--version").output().map_err(|e| {
            missing(format!(
                "cannot run datalad ({} from {source}): {e}; {INSTALL_HINT}",
                exe.display()
            ))
        })?;
        if !out.status.success() {
            return Err(missing(format!(
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
                return Err(missing(format!(
                    "git-annex is missing (`git annex version`: {}); {INSTALL_HINT}",
                    output_text(&o)
                )));
            }
            Err(e) => {
                return Err(missing(format!("cannot run git ({e}); {INSTALL_HINT}")));
            }
        }
        Ok(Self {
            exe,
            version,
            env: identity(),
        })
    }

    /// The datalad executable.
    #[must_use]
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// What `datalad --version` printed.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    }

    /// Creates the dataset `path` (`datalad create --force`, registered in `parent` when
    /// given) with the annex settings of `annex` ([`AnnexOptions::init_config`] while
    /// git-annex initialises it, then [`AnnexOptions::repo_config`]).
    ///
    /// # Errors
    /// [`Error::Datalad`] with the failing command's output.
    pub fn create(&self, parent: Option<&Path>, path: &Path, annex: AnnexOptions) -> Result<()> {
        let mut args: Vec<OsString> = vec!["create".into(), "--force".into()];
        if let Some(parent) = parent {
            args.extend(["-d".into(), parent.into()]);
        }
        args.push(path.into());
        self.run_with(&args, &annex.init_env())?;
        for (key, value) in annex.repo_config() {
            git(path, &["config", key, value])?;
        }
        Ok(())
    }

    /// Runs `datalad <args>`.
    ///
    /// # Errors
    /// [`Error::Datalad`] carrying its output if it cannot run or fails.
    pub fn run(&self, args: &[OsString]) -> Result<()> {
        self.run_with(args, &[])
    }

    /// Runs `datalad <args>` with extra environment variables.
    fn run_with(&self, args: &[OsString], env: &[(String, String)]) -> Result<()> {
        let out = self
            .command()
            .envs(env.iter().map(|(k, v)| (k, v)))
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
pub struct Placement {
    /// The superdataset (the BIDS root).
    pub root: PathBuf,
    /// The grouping.
    pub grouping: Grouping,
    /// The dataset that holds the section: the superdataset or a subdataset.
    pub dataset: PathBuf,
    /// The session label the grouping chose (one subdataset per N sections), else the user's.
    pub session: Option<String>,
}

/// The `sample-` label of a BIDS image name, if the entry is an image (`.ome.zarr`, `.ozx`).
fn image_sample(name: &str) -> Option<&str> {
    if name.starts_with('.') || !(name.ends_with(".ome.zarr") || name.ends_with(".ozx")) {
        return None;
    }
    name.split('_').find_map(|p| p.strip_prefix("sample-"))
}

/// Samples with an image in `micr`.
fn samples_in(micr: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
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
fn group_session(subject_dir: &Path, sample: &str, n: u64) -> Result<String> {
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

/// Decides which dataset (and, grouping by sections, which session) the section `sample` of
/// `subject` goes into under the superdataset `root`. Nothing is created: [`save`] creates
/// the datasets the placement needs.
///
/// # Errors
/// [`Error::Label`] for a bad subject or sample label; [`Error::Datalad`] for a `session` with
/// a grouping by sections (the grouping chooses the session), or an unreadable folder.
pub fn place(
    root: &Path,
    grouping: Grouping,
    subject: &str,
    sample: &str,
    session: Option<&str>,
) -> Result<Placement> {
    strata_bids::name::Label::new("sub", subject.to_owned())?;
    strata_bids::name::Label::new("sample", sample.to_owned())?;
    let subject_dir = root.join(format!("sub-{subject}"));
    let (dataset, session) = match grouping {
        Grouping::None => (root.to_path_buf(), session.map(str::to_owned)),
        Grouping::PerSubject => (subject_dir, session.map(str::to_owned)),
        Grouping::PerSections(n) => {
            if let Some(s) = session {
                return Err(err(format!(
                    "--session {s}: with --datalad-group {} the session is the subdataset of the \
                     section's group (sub-{subject}/ses-<k>/, chosen by strata); leave out \
                     --session, or group by subject or none",
                    if n == 1 {
                        "section".to_owned()
                    } else {
                        n.to_string()
                    }
                )));
            }
            let label = group_session(&subject_dir, sample, n)?;
            (subject_dir.join(format!("ses-{label}")), Some(label))
        }
    };
    Ok(Placement {
        root: root.to_path_buf(),
        grouping,
        dataset,
        session,
    })
}

/// Whether `path` is the root of a DataLad dataset (a git repository with `.datalad/`).
#[must_use]
pub fn is_dataset(path: &Path) -> bool {
    path.join(".git").exists() && path.join(".datalad").is_dir()
}

/// Appends the [`LARGEFILES_RULES`] missing from the dataset's `.gitattributes` (creating the
/// file if needed).
///
/// # Errors
/// [`Error::Datalad`] if the file cannot be read or written.
pub fn ensure_rules(dataset: &Path) -> Result<()> {
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

/// Appends the [`excludes`] missing from the dataset's `.git/info/exclude` (not tracked, so
/// no file is added to the dataset). Does nothing where `.git` is not a folder.
///
/// # Errors
/// [`Error::Datalad`] if the file cannot be read or written.
pub fn ensure_excludes(dataset: &Path) -> Result<()> {
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
    for pattern in excludes() {
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
fn head(repo: &Path) -> Result<String> {
    git(repo, &["rev-parse", "HEAD"])
}

/// Runs `git -C <repo> <args>`; returns its trimmed output, or an error with git's output.
fn git(repo: &Path, args: &[&str]) -> Result<String> {
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

/// A published section to save.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The image (`.ome.zarr` folder or `.ozx` file) in its `micr/` folder; its sidecar
    /// (`<stem>.json` beside it) is saved with it.
    pub image: PathBuf,
    /// Subject label (for the QC reports' folder).
    pub subject: String,
    /// Whether QC reports were written (`derivatives/qc/sub-<s>/<stem>_qc.{json,html}`).
    pub qc_reports: bool,
    /// Further files saved with the section (e.g. an HDF5 copy inside the superdataset).
    pub extra: Vec<PathBuf>,
    /// First line of the save message.
    pub title: String,
    /// The provenance record, written below the title as pretty-printed JSON.
    pub provenance: Value,
}

/// What [`save`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Saved {
    /// The superdataset (the BIDS root).
    pub superdataset: PathBuf,
    /// The dataset that holds the section.
    pub dataset: PathBuf,
    /// The grouping's name.
    pub grouping: String,
    /// The annex mode new datasets were created in.
    pub annex: &'static str,
    /// The section's session.
    pub session: Option<String>,
    /// Datasets created for this section.
    pub created: Vec<PathBuf>,
    /// The commit of the dataset holding the section.
    pub commit: String,
    /// The superdataset's commit.
    pub superdataset_commit: String,
    /// Whether the save made a new commit in the section's dataset (false: nothing changed).
    pub saved: bool,
    /// What `datalad --version` printed.
    pub datalad_version: String,
}

/// Creates the datasets the placement needs (in `annex` mode), adds the rules and excludes,
/// then saves the section's files (image, sidecar, `.gitattributes`, the dataset's
/// description and tables, QC reports, extras) in one recursive `datalad save` whose message is
/// the title and the provenance. Saves into one superdataset take turns (an exclusive lock on
/// its folder while saving).
///
/// # Errors
/// [`Error::Datalad`] if the image is not an `.ome.zarr` or `.ozx` in a folder, a folder cannot
/// be locked, read or written, or a DataLad or git step fails.
pub fn save(dl: &Datalad, p: &Placement, section: &Section, annex: AnnexMode) -> Result<Saved> {
    let record = &section.provenance;
    let message = format!(
        "{}\n\n{}\n",
        section.title,
        serde_json::to_string_pretty(record).unwrap_or_else(|_| record.to_string())
    );
    let many = save_many(
        dl,
        &p.root,
        &[(p.clone(), section.clone())],
        annex,
        &message,
    )?;
    let (before, commit) = many
        .datasets
        .iter()
        .find(|d| d.dataset == p.dataset)
        .map(|d| (d.before.clone(), d.commit.clone()))
        .ok_or_else(|| err("the section's dataset was not saved"))?;
    Ok(Saved {
        superdataset: p.root.clone(),
        dataset: p.dataset.clone(),
        grouping: p.grouping.name(),
        annex: annex.name(),
        session: p.session.clone(),
        created: many.created,
        saved: commit != before,
        commit,
        superdataset_commit: many.superdataset_commit,
        datalad_version: dl.version.clone(),
    })
}

/// A dataset [`save_many`] saved into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedDataset {
    /// The dataset (the superdataset or a subdataset).
    pub dataset: PathBuf,
    /// Its commit before the save.
    pub before: String,
    /// Its commit after the save (equal to `before`: nothing changed in it).
    pub commit: String,
    /// Sections saved into it.
    pub sections: usize,
}

/// What [`save_many`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedMany {
    /// Datasets created.
    pub created: Vec<PathBuf>,
    /// Each dataset that holds one of the sections, and the superdataset.
    pub datasets: Vec<SavedDataset>,
    /// The superdataset's commit.
    pub superdataset_commit: String,
}

/// Saves many published sections of the superdataset `root` at once: the datasets their
/// placements need are created (in `annex` mode) with the rules and excludes, then one
/// recursive `datalad save` with `message` records every section's files, one commit per
/// dataset instead of one per section. Takes the superdataset's lock while saving.
///
/// # Errors
/// As [`save`]; also a placement under another superdataset.
pub fn save_many(
    dl: &Datalad,
    root: &Path,
    sections: &[(Placement, Section)],
    annex: AnnexMode,
    message: &str,
) -> Result<SavedMany> {
    // git allows one writer per repository: an exclusive lock on the superdataset folder,
    // released on return.
    let lock = std::fs::File::open(root).map_err(|e| err(format!("{}: {e}", root.display())))?;
    lock.lock()
        .map_err(|e| err(format!("locking {}: {e}", root.display())))?;
    let options = annex.options();
    let mut created = Vec::new();
    if !is_dataset(root) {
        dl.create(None, root, options)?;
        created.push(root.to_path_buf());
    }
    ensure_rules(root)?;
    ensure_excludes(root)?;
    strata_fs::failpoint("datalad.superdataset-ready");
    let mut paths = vec![root.join(".gitattributes")];
    for f in [
        "dataset_description.json",
        "participants.tsv",
        "samples.tsv",
    ] {
        paths.push(root.join(f));
    }
    let mut datasets: Vec<(PathBuf, usize)> = vec![(root.to_path_buf(), 0)];
    for (p, section) in sections {
        if p.root != root {
            return Err(err(format!(
                "{}: placed under {}, not under {}",
                section.image.display(),
                p.root.display(),
                root.display()
            )));
        }
        if p.dataset != root && !datasets.iter().any(|(d, _)| *d == p.dataset) {
            if !is_dataset(&p.dataset) {
                dl.create(Some(root), &p.dataset, options)?;
                created.push(p.dataset.clone());
            }
            ensure_rules(&p.dataset)?;
            ensure_excludes(&p.dataset)?;
            paths.push(p.dataset.join(".gitattributes"));
            datasets.push((p.dataset.clone(), 0));
        }
        if let Some(d) = datasets.iter_mut().find(|(d, _)| *d == p.dataset) {
            d.1 += 1;
        }
        paths.extend(section_paths(root, section)?);
    }
    paths.sort();
    paths.dedup();
    let before: Vec<String> = datasets
        .iter()
        .map(|(d, _)| head(d))
        .collect::<Result<_>>()?;
    let mut args: Vec<OsString> = vec![
        "save".into(),
        "-d".into(),
        root.into(),
        "-r".into(),
        "-m".into(),
        message.into(),
    ];
    args.extend(paths.into_iter().filter(|p| p.exists()).map(Into::into));
    strata_fs::failpoint("datalad.before-save");
    dl.run(&args)?;
    strata_fs::failpoint("datalad.saved");
    let mut saved = Vec::with_capacity(datasets.len());
    for ((dataset, n), before) in datasets.into_iter().zip(before) {
        saved.push(SavedDataset {
            commit: head(&dataset)?,
            dataset,
            before,
            sections: n,
        });
    }
    Ok(SavedMany {
        created,
        datasets: saved,
        superdataset_commit: head(root)?,
    })
}

/// The files of one section: image, sidecar, QC reports, extras.
fn section_paths(root: &Path, section: &Section) -> Result<Vec<PathBuf>> {
    let image = &section.image;
    let stem = stem(image).ok_or_else(|| {
        err(format!(
            "{}: not an .ome.zarr or .ozx image",
            image.display()
        ))
    })?;
    let micr = image
        .parent()
        .ok_or_else(|| err("the image has no parent folder"))?;
    let mut paths = vec![image.clone(), micr.join(format!("{stem}.json"))];
    if section.qc_reports {
        let qc = root
            .join("derivatives/qc")
            .join(format!("sub-{}", section.subject));
        paths.push(qc.join(format!("{stem}_qc.json")));
        paths.push(qc.join(format!("{stem}_qc.html")));
    }
    paths.extend(section.extra.iter().cloned());
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(
            place(dir.path(), Grouping::None, "0_1", "1", None),
            Err(Error::Label(_))
        ));
    }
}

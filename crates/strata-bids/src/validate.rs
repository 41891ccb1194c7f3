//! Validation of a BIDS microscopy dataset on a POSIX file system.
//!
//! The validator walks the dataset once, counts an `.ome.zarr/` directory as one file (as the
//! official validator does), and reports [`Issue`]s with the official validator's codes where
//! one exists, so the two can be compared. Files of datatypes other than `micr` are reported as
//! a warning (`DATATYPE_NOT_CHECKED`) rather than judged. `.bidsignore` is not read.
//!
//! A single-file image `X.ozx` (OME-Zarr in one zip archive, RFC-9) is checked as the folder
//! `X.ome.zarr/` it is served as by `strata serve`: the same name rules, and the content checks
//! read the archive's members ([`Summary::archives`] counts them).
//!
//! Checks of a file's contents beyond BIDS (e.g. OME-Zarr metadata against the sidecar) plug in
//! through [`DataCheck`].

use crate::error::{Error, Result};
use crate::name::{DATATYPE, MicrName, NameError};
use crate::schema::{self, Level, generated};
use crate::sidecar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod cache;

pub use cache::CacheStats;

/// How serious an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The dataset is not valid.
    Error,
    /// The dataset is valid but should be improved.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Stable code, the official validator's where it has one (e.g. `SIDECAR_KEY_REQUIRED`).
    pub code: String,
    /// Error or warning.
    pub severity: Severity,
    /// Path from the dataset root, starting with `/` (directories end with `/`); empty for
    /// the dataset as a whole.
    pub location: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl Issue {
    /// An error.
    #[must_use]
    pub fn error(code: &str, location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            severity: Severity::Error,
            location: location.into(),
            message: message.into(),
        }
    }

    /// A warning.
    #[must_use]
    pub fn warning(code: &str, location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, location, message)
        }
    }
}

/// Counts over the dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Files, an `.ome.zarr` directory counted as one.
    pub files: usize,
    /// Bytes in those files.
    pub bytes: u64,
    /// Subject labels found as `sub-<label>` folders.
    pub subjects: Vec<String>,
    /// Session labels found.
    pub sessions: Vec<String>,
    /// Distinct (subject, sample) pairs among data files.
    pub samples: usize,
    /// Number of errors.
    pub errors: usize,
    /// Number of warnings.
    pub warnings: usize,
    /// Single-file images (`X.ozx`) checked as the `X.ome.zarr/` folders they are served as
    /// (`strata serve`'s virtual view); their issues name that folder.
    pub archives: usize,
}

/// The outcome of a validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every finding, errors first, then by location.
    pub issues: Vec<Issue>,
    /// Counts.
    pub summary: Summary,
    /// How the run used its [cache](Validator::with_cache), when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStats>,
}

impl Report {
    /// True if any issue is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.summary.errors > 0
    }
}

/// A check of a data file's contents, run for every microscopy image the walk finds.
pub trait DataCheck: Send + Sync {
    /// Checks one image. `location` is the official-style location (`/sub-01/.../x.ome.zarr/`),
    /// `path` the file or directory on disk, `sidecar` the merged (inherited) sidecar.
    fn check(
        &self,
        path: &Path,
        location: &str,
        name: &MicrName,
        sidecar: &Map<String, Value>,
    ) -> Vec<Issue>;

    /// The name and version of this check's verdicts, under which a
    /// [cache](Validator::with_cache) keeps them: change it whenever the same files could get
    /// another verdict. `None` (the default) keeps the check out of the cache: then every
    /// image's content checks run every time.
    fn cache_id(&self) -> Option<String> {
        None
    }
}

/// Validates a dataset with the BIDS checks only.
///
/// # Errors
/// [`Error::NotADataset`] if `root` is not a directory; [`Error::Io`] if it cannot be read.
pub fn validate(root: &Path) -> Result<Report> {
    Validator::new().validate(root)
}

/// A configurable validator.
#[derive(Default)]
pub struct Validator {
    checks: Vec<Box<dyn DataCheck>>,
    cache: Option<PathBuf>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("checks", &self.checks.len())
            .field("cache", &self.cache)
            .finish()
    }
}

impl Validator {
    /// A validator with the BIDS checks only.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a content check run on every microscopy image.
    #[must_use]
    pub fn with_check(mut self, check: Box<dyn DataCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Keeps the content checks' verdicts in the file `path` and reuses them for images
    /// unchanged since (see [`CacheStats`]): a repeated run reads only what changed, with the
    /// report of a full run. The file is written atomically at the end of each run; a missing
    /// or damaged one is (re)built. Keep it outside the dataset (or under a hidden name, which
    /// validators and `strata serve` skip).
    #[must_use]
    pub fn with_cache(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache = Some(path.into());
        self
    }

    /// Validates the dataset at `root`.
    ///
    /// # Errors
    /// [`Error::NotADataset`] if `root` is not a directory; [`Error::Io`] if it cannot be read,
    /// or if the [cache](Validator::with_cache) cannot be written.
    pub fn validate(&self, root: &Path) -> Result<Report> {
        if !root.is_dir() {
            return Err(Error::NotADataset {
                path: root.to_owned(),
            });
        }
        let cache = self.cache.as_deref().map(|path| {
            let ids: Option<Vec<String>> = self.checks.iter().map(|c| c.cache_id()).collect();
            cache::Cache::open(path, ids.map(|ids| ids.join("\0")))
        });
        let files = walk(root, "")?;
        let mut run = Run {
            root,
            files: files.iter().map(|f| (f.rel.clone(), f)).collect(),
            json: HashMap::new(),
            json_by_dir: HashMap::new(),
            issues: Vec::new(),
        };
        run.check(&files, &self.checks, cache.as_ref());
        let mut report = run.finish(&files);
        report.cache = cache.map(cache::Cache::save).transpose()?;
        Ok(report)
    }
}

/// A file found by the walk (an `.ome.zarr` directory is one file).
#[derive(Debug)]
struct Found {
    /// Relative path with `/` separators, no leading slash.
    rel: String,
    abs: PathBuf,
    size: u64,
    /// Zero bytes (for `.ome.zarr`: holds a zero-byte file).
    empty: bool,
    zarr: bool,
    /// An `X.ozx` archive presented as the folder `X.ome.zarr` (`rel` has that name, `abs` is
    /// the archive).
    archive: bool,
    /// The fingerprint of an image (`zarr`), for the validation cache.
    stamp: Option<Stamp>,
}

/// The fingerprint of an image's files.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    /// SHA-256 over every file's name, size, inode, device, modification and change time.
    digest: [u8; 32],
    /// The latest modification or change time of any of them, in ns since the epoch.
    newest_ns: i128,
}

/// The extension of a single-file OME-Zarr archive, presented as an `.ome.zarr` folder.
const OZX: &str = ".ozx";

fn is_ignored(name: &str) -> bool {
    name.starts_with('.')
}

/// Folders whose contents BIDS does not regulate.
const FREE_FOLDERS: &[&str] = &["code", "derivatives", "sourcedata", "stimuli"];

/// The files under `dir` (at `rel`), in name order. Folders and images are visited in
/// parallel: the walk of a whole brain is 35,000 `stat` and `getdents` calls, which spread over
/// the cores.
fn walk(dir: &Path, rel: &str) -> Result<Vec<Found>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(std::result::Result::ok)
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    let found: Vec<Result<Vec<Found>>> = entries
        .par_iter()
        .map(|entry| visit(dir, rel, entry))
        .collect();
    let mut out = Vec::new();
    for f in found {
        out.extend(f?);
    }
    Ok(out)
}

/// One entry of a folder: a file, an image, or a folder walked in turn.
fn visit(dir: &Path, rel: &str, entry: &std::fs::DirEntry) -> Result<Vec<Found>> {
    let name = entry.file_name().to_string_lossy().into_owned();
    if is_ignored(&name) || (rel.is_empty() && FREE_FOLDERS.contains(&name.as_str())) {
        return Ok(Vec::new());
    }
    let child_rel = if rel.is_empty() {
        name.clone()
    } else {
        format!("{rel}/{name}")
    };
    let abs = entry.path();
    let ft = entry.file_type().map_err(|e| Error::io(&abs, e))?;
    // Symlinks (git-annex keeps content behind them) are judged by their target; a broken
    // one is content that is not present here, not an empty file.
    let meta = metadata(entry, ft);
    let is_dir = meta.as_ref().is_some_and(std::fs::Metadata::is_dir);
    if is_dir && name.ends_with(".ome.zarr") {
        let tree = tree_stamp(&abs);
        return Ok(vec![Found {
            rel: child_rel,
            abs,
            size: tree.size,
            empty: tree.empty,
            zarr: true,
            archive: false,
            stamp: Some(tree.stamp()),
        }]);
    }
    if let Some(stem) = name.strip_suffix(OZX).filter(|stem| {
        meta.as_ref().is_some_and(std::fs::Metadata::is_file)
            && !dir.join(format!("{stem}.ome.zarr")).exists()
    }) {
        // The virtual view: `X.ozx` is checked as the folder `X.ome.zarr` it is served
        // as. (With a real `X.ome.zarr` beside it, the archive is an ordinary file.)
        let size = meta.as_ref().map_or(0, std::fs::Metadata::len);
        let folder = format!("{stem}.ome.zarr");
        let mut tree = TreeStamp::default();
        if let Some(m) = &meta {
            tree.add("", m);
        }
        return Ok(vec![Found {
            rel: if rel.is_empty() {
                folder
            } else {
                format!("{rel}/{folder}")
            },
            abs,
            size,
            empty: size == 0,
            zarr: true,
            archive: true,
            stamp: Some(tree.stamp()),
        }]);
    }
    if is_dir && !ft.is_symlink() {
        return walk(&abs, &child_rel);
    }
    let size = meta.as_ref().map_or(0, std::fs::Metadata::len);
    Ok(vec![Found {
        rel: child_rel,
        abs,
        size,
        empty: meta.is_some() && size == 0 && !is_dir,
        zarr: false,
        archive: false,
        stamp: None,
    }])
}

/// The metadata of an entry, a symlink's target's for a symlink (`None` if broken): one
/// `fstatat` relative to the open folder for the others.
fn metadata(entry: &std::fs::DirEntry, ft: std::fs::FileType) -> Option<std::fs::Metadata> {
    if ft.is_symlink() {
        std::fs::metadata(entry.path()).ok()
    } else {
        entry.metadata().ok()
    }
}

/// What the walk learns of an image folder: its bytes, whether it holds an empty file, and a
/// fingerprint of its files for the [validation cache](Validator::with_cache).
#[derive(Default)]
struct TreeStamp {
    size: u64,
    empty: bool,
    digest: Sha256,
    newest_ns: i128,
}

impl TreeStamp {
    /// Counts a file (or, for `.ozx`, the archive) at `rel` in the image: its name, size,
    /// inode, modification and change times enter the fingerprint, as in git's index.
    fn add(&mut self, rel: &str, m: &std::fs::Metadata) {
        use std::os::unix::fs::MetadataExt as _;
        self.size += m.len();
        self.empty |= m.len() == 0 && !m.is_dir();
        let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
        let ctime = i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec());
        self.newest_ns = self.newest_ns.max(mtime).max(ctime);
        self.digest.update((rel.len() as u64).to_le_bytes());
        self.digest.update(rel.as_bytes());
        for n in [m.len(), m.ino(), m.dev()] {
            self.digest.update(n.to_le_bytes());
        }
        self.digest.update(mtime.to_le_bytes());
        self.digest.update(ctime.to_le_bytes());
    }

    fn stamp(self) -> Stamp {
        Stamp {
            digest: self.digest.finalize().into(),
            newest_ns: self.newest_ns,
        }
    }
}

/// Total bytes under an image folder, whether any file in it is empty, and its fingerprint
/// (files in name order, so the same tree gives the same digest).
fn tree_stamp(dir: &Path) -> TreeStamp {
    let mut tree = TreeStamp::default();
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        // Folders are visited after this folder's files, last name first off the stack.
        let mut folders = Vec::new();
        for e in entries {
            let Ok(ft) = e.file_type() else { continue };
            let child = format!("{rel}/{}", e.file_name().to_string_lossy());
            if ft.is_dir() {
                folders.push((e.path(), child));
            } else if let Some(m) = metadata(&e, ft) {
                tree.add(&child, &m);
            } else {
                // A broken link: content not present here; its name still counts.
                tree.digest.update(child.as_bytes());
            }
        }
        stack.extend(folders.into_iter().rev());
    }
    tree
}

fn loc(f: &Found) -> String {
    if f.zarr {
        format!("/{}/", f.rel)
    } else {
        format!("/{}", f.rel)
    }
}

/// A JSON file as read: an object, or why it is not one.
#[derive(Clone)]
enum Json {
    Object(Arc<Map<String, Value>>),
    Invalid(String),
}

struct Run<'a> {
    root: &'a Path,
    files: HashMap<String, &'a Found>,
    json: HashMap<String, Json>,
    /// JSON file names by folder (`""` for the root).
    json_by_dir: HashMap<String, DirJson>,
    issues: Vec<Issue>,
}

/// The JSON files of one folder, indexed by their `sample` entity. A sidecar with a sample
/// entity applies only to images of that sample, so looking up an image's sidecars touches its
/// own and the sample-less ones, not every sidecar of the folder (a subject's `micr/` folder of
/// a whole brain holds thousands).
#[derive(Default)]
struct DirJson {
    by_sample: HashMap<String, Vec<String>>,
    other: Vec<String>,
}

impl DirJson {
    fn push(&mut self, name: String) {
        let stem = name.strip_suffix(".json").unwrap_or(&name);
        match stem.split('_').find_map(|p| p.strip_prefix("sample-")) {
            Some(sample) => {
                let sample = sample.to_owned();
                self.by_sample.entry(sample).or_default().push(name);
            }
            None => self.other.push(name),
        }
    }

    /// The files that may apply to an image of `sample` (a superset of those that do).
    fn candidates<'s>(&'s self, sample: &str) -> impl Iterator<Item = &'s String> {
        self.by_sample
            .get(sample)
            .into_iter()
            .flatten()
            .chain(&self.other)
    }
}

/// A JSON file's object, or why it is not one.
fn read_json_file(path: &Path) -> Json {
    match std::fs::read(path) {
        Err(e) => Json::Invalid(format!("cannot be read: {e}")),
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Json::Object(Arc::new(m)),
            Ok(_) => Json::Invalid("holds JSON but not an object ({...})".into()),
            Err(e) => Json::Invalid(format!("is not valid JSON: {e}")),
        },
    }
}

/// The content checks' verdicts on one image: from the cache when it holds them for the image
/// as it is, else by running the checks (and recording their verdicts in the cache).
fn content_issues(
    f: &Found,
    name: &MicrName,
    merged: &Map<String, Value>,
    checks: &[Box<dyn DataCheck>],
    cache: Option<&cache::Cache>,
) -> Vec<Issue> {
    if checks.is_empty() {
        return Vec::new();
    }
    let key = cache.and_then(|c| c.key(f, merged));
    if let (Some(cache), Some(key)) = (cache, &key)
        && let Some(issues) = cache.get(key)
    {
        cache.keep(key.clone(), &issues);
        return issues;
    }
    let location = loc(f);
    let issues: Vec<Issue> = checks
        .iter()
        .flat_map(|c| c.check(&f.abs, &location, name, merged))
        .collect();
    if let Some(cache) = cache {
        cache.put(key, f, &issues);
    }
    issues
}

/// Where a non-table file sits.
enum Place<'f> {
    /// Root, subject or session folder: only tables and inherited sidecars.
    Level { depth: usize },
    /// In a datatype folder `dt`.
    Datatype { dt: &'f str },
    /// Anywhere else.
    Elsewhere,
}

fn place<'f>(parts: &[&'f str]) -> Place<'f> {
    let dirs = &parts[..parts.len() - 1];
    let is_sub = |s: &str| s.strip_prefix("sub-").is_some_and(crate::name::is_label);
    let is_ses = |s: &str| s.strip_prefix("ses-").is_some_and(crate::name::is_label);
    match dirs {
        [] => Place::Level { depth: 0 },
        [s] if is_sub(s) => Place::Level { depth: 1 },
        [s, x] if is_sub(s) && is_ses(x) => Place::Level { depth: 2 },
        [s, dt] if is_sub(s) && !is_ses(dt) => Place::Datatype { dt },
        [s, x, dt] if is_sub(s) && is_ses(x) => Place::Datatype { dt },
        _ => Place::Elsewhere,
    }
}

fn name_issue(location: &str, err: &NameError) -> Issue {
    let code = match err {
        NameError::UnknownSuffix { .. } | NameError::NoSuffix => "NOT_INCLUDED",
        NameError::UnknownExtension { .. } => "EXTENSION_MISMATCH",
        NameError::MalformedEntity { .. } => "ENTITY_WITH_NO_LABEL",
        NameError::EntityNotAllowed { .. } => "ENTITY_NOT_IN_RULE",
        NameError::BadLocation { .. } => "INVALID_LOCATION",
        _ => "FILENAME_MISMATCH",
    };
    Issue::error(
        code,
        location,
        format!("not a valid microscopy file name: {err}"),
    )
}

impl Run<'_> {
    fn read_json(&mut self, rel: &str) -> Json {
        if let Some(j) = self.json.get(rel) {
            return j.clone();
        }
        let j = read_json_file(&self.root.join(rel));
        self.json.insert(rel.to_owned(), j.clone());
        j
    }

    /// Reads and parses every JSON file of the walk at once, in parallel (a brain has one
    /// sidecar per section); the checks then find them in [`Run::json`].
    fn read_all_json(&mut self, files: &[Found]) {
        let read: Vec<(String, Json)> = files
            .par_iter()
            .filter(|f| !f.zarr && f.rel.ends_with(".json"))
            .map(|f| (f.rel.clone(), read_json_file(&f.abs)))
            .collect();
        self.json.extend(read);
    }

    fn check(
        &mut self,
        files: &[Found],
        checks: &[Box<dyn DataCheck>],
        cache: Option<&cache::Cache>,
    ) {
        let mut data: Vec<(&Found, MicrName)> = Vec::new();
        let mut sidecars: Vec<&Found> = Vec::new();
        let mut has_description = false;
        self.read_all_json(files);
        for f in files {
            if let Some(file) = f.rel.strip_suffix(".json").map(|_| &f.rel) {
                let (dir, name) = file.rsplit_once('/').unwrap_or(("", file));
                self.json_by_dir
                    .entry(dir.to_owned())
                    .or_default()
                    .push(name.to_owned());
            }
        }
        for f in files {
            let location = loc(f);
            if f.empty {
                self.issues.push(Issue::error(
                    "EMPTY_FILE",
                    &location,
                    if f.zarr {
                        "holds a zero-byte file; a chunk or metadata file was not written completely: rewrite the image"
                    } else {
                        "is empty (0 bytes): write its content or remove it"
                    },
                ));
            }
            let parts: Vec<&str> = f.rel.split('/').collect();
            let file_name = parts.last().copied().unwrap_or_default();
            match place(&parts) {
                Place::Level { depth } => {
                    if depth == 0 && file_name == "dataset_description.json" {
                        has_description = true;
                        self.check_description(f);
                    } else if depth == 0 && is_root_file(file_name) {
                        // README, LICENSE, ...: free text.
                    } else if is_table_file(depth, &parts) {
                        // Checked with the tables below.
                    } else if is_inherited_sidecar(file_name) {
                        sidecars.push(f);
                    } else {
                        self.not_included(&location);
                    }
                }
                Place::Datatype { dt } => match file_name.parse::<MicrName>() {
                    Ok(name) if dt != DATATYPE => self.issues.push(Issue::error(
                        "DATATYPE_MISMATCH",
                        &location,
                        format!(
                            "a {} file belongs in a `{DATATYPE}` folder, not `{dt}`: move it",
                            name.suffix
                        ),
                    )),
                    _ if dt != DATATYPE => self.issues.push(Issue::warning(
                        "DATATYPE_NOT_CHECKED",
                        &location,
                        format!("the `{dt}` datatype is not microscopy; this file was not checked"),
                    )),
                    Err(e) => self.issues.push(name_issue(&location, &e)),
                    Ok(name) => {
                        if let Err(e) = MicrName::parse_path(Path::new(&f.rel)) {
                            self.issues.push(Issue::error(
                                "INVALID_LOCATION",
                                &location,
                                format!("the folders do not match the name's subject/session ({e}); move it to {}", name.relative_path().display()),
                            ));
                        }
                        if name.extension == crate::name::Extension::JSON {
                            sidecars.push(f);
                        } else if name.extension.is_directory() != f.zarr {
                            self.issues.push(Issue::error(
                                "EXTENSION_MISMATCH",
                                &location,
                                format!("`{}` must be a directory", name.extension),
                            ));
                        } else {
                            data.push((f, name));
                        }
                    }
                },
                Place::Elsewhere => self.not_included(&location),
            }
        }
        if !has_description {
            self.issues.push(Issue::error(
                "MISSING_DATASET_DESCRIPTION",
                "",
                "dataset_description.json is missing at the dataset root: add one with at least Name and BIDSVersion",
            ));
        }
        self.check_sidecars(&sidecars, &data);
        // Each image on its own, in parallel (the report is sorted at the end, so the order
        // they finish in does not show): its merged sidecar, the sidecar checks, and the
        // content checks, which read the image (or take their verdicts from the cache).
        let run = &*self;
        let found: Vec<Vec<Issue>> = data
            .par_iter()
            .map(|(f, name)| {
                let merged = run.merged_sidecar(f, name);
                let mut issues = run.data_issues(f, name, &merged);
                issues.extend(content_issues(f, name, &merged, checks, cache));
                issues
            })
            .collect();
        self.issues.extend(found.into_iter().flatten());
        self.check_tables(files, &data);
    }

    fn not_included(&mut self, location: &str) {
        self.issues.push(Issue::error(
            "NOT_INCLUDED",
            location,
            "this file is not part of BIDS microscopy at this place: rename it, move it under code/ or sourcedata/, or remove it",
        ));
    }

    fn check_description(&mut self, f: &Found) {
        let location = loc(f);
        let obj = match self.read_json(&f.rel) {
            Json::Object(m) => m,
            Json::Invalid(why) => {
                self.issues.push(Issue::error(
                    "JSON_INVALID",
                    &location,
                    format!("the file {why}"),
                ));
                Arc::new(Map::new())
            }
        };
        for (field, level) in generated::DATASET_DESCRIPTION_FIELDS {
            match (obj.get(*field), level) {
                (None, Level::Required) => self.issues.push(Issue::error(
                    "JSON_KEY_REQUIRED",
                    &location,
                    format!("required key {field:?} is missing: add it"),
                )),
                (None, Level::Recommended) => self.issues.push(Issue::warning(
                    "JSON_KEY_RECOMMENDED",
                    &location,
                    format!("recommended key {field:?} is missing"),
                )),
                (Some(v), _) => self.schema_check(&location, field, v),
                _ => {}
            }
        }
    }

    fn schema_check(&mut self, location: &str, field: &str, value: &Value) {
        if let Some(s) = schema::metadata_schema(field)
            && let Err(m) = schema::check_value(s, value, field)
        {
            self.issues.push(Issue::error(
                "JSON_SCHEMA_VALIDATION_ERROR",
                location,
                format!("{m}: correct the value"),
            ));
        }
    }

    fn check_sidecars(&mut self, sidecars: &[&Found], data: &[(&Found, MicrName)]) {
        // (folder, name without extension) of every image.
        let images: HashSet<(&str, &str)> = data
            .iter()
            .map(|(d, n)| {
                let (dir, file) = d.rel.rsplit_once('/').unwrap_or(("", &d.rel));
                (dir, &file[..file.len() - n.extension.as_str().len()])
            })
            .collect();
        for f in sidecars {
            let location = loc(f);
            match self.read_json(&f.rel) {
                Json::Invalid(why) => self.issues.push(Issue::error(
                    "JSON_INVALID",
                    &location,
                    format!("the sidecar {why}: fix the syntax"),
                )),
                Json::Object(obj) => {
                    for (_, message) in sidecar::check_fields(&obj) {
                        self.issues.push(Issue::error(
                            "JSON_SCHEMA_VALIDATION_ERROR",
                            &location,
                            format!("{message}: correct the value"),
                        ));
                    }
                }
            }
            let (dir, file) = f.rel.rsplit_once('/').unwrap_or(("", &f.rel));
            // A sidecar in a datatype folder belongs to the image of the same name; one higher
            // up may serve any image below it.
            let used = match file.parse::<MicrName>() {
                Ok(n) if n.extension == crate::name::Extension::JSON && !dir.is_empty() => {
                    let stem = &file[..file.len() - ".json".len()];
                    images.contains(&(dir, stem))
                }
                _ => data.iter().any(|(d, n)| {
                    let ddir = d.rel.rsplit_once('/').map_or("", |(p, _)| p);
                    (dir.is_empty()
                        || ddir
                            .strip_prefix(dir)
                            .is_some_and(|r| r.is_empty() || r.starts_with('/')))
                        && sidecar::sidecar_applies(file, n)
                }),
            };
            if !used {
                self.issues.push(Issue::error(
                    "SIDECAR_WITHOUT_DATAFILE",
                    &location,
                    "no image file uses this sidecar: rename it to match its image or remove it",
                ));
            }
        }
    }

    /// The sidecars that apply to a data file, merged from the dataset root down.
    fn merged_sidecar(&self, f: &Found, name: &MicrName) -> Map<String, Value> {
        let parts: Vec<&str> = f.rel.split('/').collect();
        let mut layers = Vec::new();
        for depth in 0..parts.len() {
            let dir = parts[..depth].join("/");
            let mut candidates: Vec<String> = self
                .json_by_dir
                .get(&dir)
                .into_iter()
                .flat_map(|d| d.candidates(name.sample.as_str()))
                .filter(|file| sidecar::sidecar_applies(file, name))
                .map(|file| {
                    if dir.is_empty() {
                        file.clone()
                    } else {
                        format!("{dir}/{file}")
                    }
                })
                .collect();
            // Fewer entities first, so the most specific sidecar of a level wins.
            candidates.sort_by_key(|c| (c.matches('_').count(), c.clone()));
            for c in candidates {
                // Every JSON file of the walk was read up front; read any other now.
                let json = match self.json.get(&c) {
                    Some(j) => j.clone(),
                    None => read_json_file(&self.root.join(&c)),
                };
                if let Json::Object(m) = json {
                    layers.push(m);
                }
            }
        }
        match layers.as_slice() {
            [one] => Map::clone(one),
            _ => {
                let mut out = Map::new();
                for layer in &layers {
                    for (k, v) in layer.iter() {
                        out.insert(k.clone(), v.clone());
                    }
                }
                out
            }
        }
    }

    /// The sidecar checks of one image.
    fn data_issues(&self, f: &Found, name: &MicrName, merged: &Map<String, Value>) -> Vec<Issue> {
        let mut issues = Vec::new();
        let location = loc(f);
        for (field, level) in sidecar::missing_fields(name, merged) {
            if level == Level::Required {
                issues.push(Issue::error(
                    "SIDECAR_KEY_REQUIRED",
                    &location,
                    format!(
                        "required sidecar key {field:?} is missing: add it to {} (or a sidecar it inherits)",
                        name.with_extension(crate::name::Extension::JSON)
                    ),
                ));
            } else {
                issues.push(Issue::warning(
                    "SIDECAR_KEY_RECOMMENDED",
                    &location,
                    format!("recommended sidecar key {field:?} is missing"),
                ));
            }
        }
        if name.suffix.is_photo() {
            self.check_intended_for(&location, name, merged, &mut issues);
        }
        issues
    }

    fn check_intended_for(
        &self,
        location: &str,
        name: &MicrName,
        merged: &Map<String, Value>,
        issues: &mut Vec<Issue>,
    ) {
        let targets: Vec<&str> = match merged.get("IntendedFor") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => return,
        };
        for t in targets {
            let rel = t
                .strip_prefix("bids::")
                .map_or_else(|| format!("sub-{}/{}", name.subject, t), str::to_owned);
            let rel = rel.trim_end_matches('/').to_owned();
            if !self.files.contains_key(&rel) {
                issues.push(Issue::error(
                    "INTENDED_FOR",
                    location,
                    format!("IntendedFor names {t:?}, which does not exist in the dataset: correct the path"),
                ));
            }
        }
    }

    fn check_tables(&mut self, files: &[Found], data: &[(&Found, MicrName)]) {
        let subjects: BTreeSet<String> = files
            .iter()
            .filter_map(|f| f.rel.split_once('/').map(|(s, _)| s))
            .filter(|s| s.starts_with("sub-"))
            .map(str::to_owned)
            .collect();
        for f in files {
            let parts: Vec<&str> = f.rel.split('/').collect();
            let Place::Level { depth } = place(&parts) else {
                continue;
            };
            if !is_table_file(depth, &parts) {
                continue;
            }
            let file = parts.last().copied().unwrap_or_default();
            let (stem, ext) = file.rsplit_once('.').unwrap_or((file, ""));
            let location = loc(f);
            let dir = parts[..parts.len() - 1].join("/");
            let sibling = |e: &str| {
                if dir.is_empty() {
                    format!("{stem}.{e}")
                } else {
                    format!("{dir}/{stem}.{e}")
                }
            };
            if ext == "json" {
                if !self.files.contains_key(&sibling("tsv")) {
                    self.issues.push(Issue::error(
                        "SIDECAR_WITHOUT_DATAFILE",
                        &location,
                        format!("{file} describes {stem}.tsv, which is missing: add the table or remove this file"),
                    ));
                }
                if let Json::Invalid(why) = self.read_json(&f.rel) {
                    self.issues.push(Issue::error(
                        "JSON_INVALID",
                        &location,
                        format!("the file {why}"),
                    ));
                }
                continue;
            }
            let described: Vec<String> = match self.files.contains_key(&sibling("json")) {
                true => match self.read_json(&sibling("json")) {
                    Json::Object(m) => m.keys().cloned().collect(),
                    Json::Invalid(_) => Vec::new(),
                },
                false => Vec::new(),
            };
            let (columns, index): (&[(&str, Level)], &[&str]) = if stem == "participants" {
                (generated::PARTICIPANTS_COLUMNS, &["participant_id"])
            } else if stem == "samples" {
                (generated::SAMPLES_COLUMNS, &["sample_id", "participant_id"])
            } else if stem.ends_with("_sessions") {
                (generated::SESSIONS_COLUMNS, &["session_id"])
            } else {
                continue;
            };
            let Some(rows) = self.check_tsv(f, columns, index, &described) else {
                continue;
            };
            if stem == "participants" {
                let listed: BTreeSet<String> = rows
                    .iter()
                    .filter_map(|r| r.get("participant_id").cloned())
                    .collect();
                let missing: Vec<&String> = subjects.difference(&listed).collect();
                let extra: Vec<&String> = listed.difference(&subjects).collect();
                if !missing.is_empty() || !extra.is_empty() {
                    self.issues.push(Issue::error(
                        "PARTICIPANT_ID_MISMATCH",
                        &location,
                        format!(
                            "participant_id must list exactly the sub-<label> folders; missing: {missing:?}, without a folder: {extra:?}"
                        ),
                    ));
                }
            }
        }
        let _ = data;
    }

    /// Checks one table; returns its rows as column-to-value maps, or `None` if unreadable.
    fn check_tsv(
        &mut self,
        f: &Found,
        columns: &[(&str, Level)],
        index: &[&str],
        described: &[String],
    ) -> Option<Vec<BTreeMap<String, String>>> {
        let location = loc(f);
        let text = match std::fs::read_to_string(&f.abs) {
            Ok(t) => t,
            Err(e) => {
                self.issues.push(Issue::error(
                    "FILE_READ",
                    &location,
                    format!("cannot be read as UTF-8 text: {e}"),
                ));
                return None;
            }
        };
        let mut lines = text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
        let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
        for (col, level) in columns {
            if *level == Level::Required && !header.contains(col) {
                self.issues.push(Issue::error(
                    "TSV_COLUMN_MISSING",
                    &location,
                    format!("required column {col:?} is missing: add it"),
                ));
            }
        }
        for col in &header {
            if !columns.iter().any(|(c, _)| c == col) && !described.iter().any(|d| d == col) {
                self.issues.push(Issue::warning(
                    "TSV_ADDITIONAL_COLUMNS_UNDEFINED",
                    &location,
                    format!("column {col:?} is not defined by BIDS nor described in the table's JSON sidecar: describe it there"),
                ));
            }
        }
        let mut rows = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, line) in lines.enumerate() {
            let line_no = i + 2;
            if line.is_empty() {
                continue;
            }
            let cells: Vec<&str> = line.split('\t').collect();
            if cells.len() != header.len() {
                self.issues.push(Issue::error(
                    "TSV_EQUAL_ROWS",
                    &location,
                    format!(
                        "line {line_no} has {} cells but the header has {}: separate cells with tabs and write n/a for missing values",
                        cells.len(),
                        header.len()
                    ),
                ));
            }
            let row: BTreeMap<String, String> = header
                .iter()
                .zip(cells.iter())
                .map(|(h, c)| ((*h).to_owned(), (*c).to_owned()))
                .collect();
            for (col, value) in &row {
                if value == crate::table::NA {
                    continue;
                }
                if let Some(s) = schema::column_schema(col)
                    && let Err(m) = schema::check_value(s, &Value::String(value.clone()), col)
                {
                    self.issues.push(Issue::error(
                        "TSV_VALUE_INCORRECT_TYPE",
                        &location,
                        format!("line {line_no}: {m}"),
                    ));
                }
            }
            if index.iter().all(|c| row.contains_key(*c)) {
                let key: Vec<&String> = index.iter().filter_map(|c| row.get(*c)).collect();
                if !seen.insert(format!("{key:?}")) {
                    self.issues.push(Issue::error(
                        "TSV_INDEX_VALUE_NOT_UNIQUE",
                        &location,
                        format!(
                            "line {line_no}: {} {key:?} already has a row: merge the two rows",
                            index.join(" + ")
                        ),
                    ));
                }
            }
            rows.push(row);
        }
        Some(rows)
    }

    fn finish(mut self, files: &[Found]) -> Report {
        self.issues.sort_by(|a, b| {
            (a.severity, &a.location, &a.code).cmp(&(b.severity, &b.location, &b.code))
        });
        self.issues.dedup();
        let mut subjects = BTreeSet::new();
        let mut sessions = BTreeSet::new();
        let mut samples = BTreeSet::new();
        for f in files {
            let parts: Vec<&str> = f.rel.split('/').collect();
            if let Some(s) = parts.first().and_then(|p| p.strip_prefix("sub-"))
                && parts.len() > 1
            {
                subjects.insert(s.to_owned());
            }
            if let Some(s) = parts.get(1).and_then(|p| p.strip_prefix("ses-"))
                && parts.len() > 2
            {
                sessions.insert(s.to_owned());
            }
            if let Ok(n) = parts
                .last()
                .copied()
                .unwrap_or_default()
                .parse::<MicrName>()
                && n.extension != crate::name::Extension::JSON
            {
                samples.insert((n.subject.clone(), n.sample.clone()));
            }
        }
        let errors = self
            .issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .count();
        Report {
            cache: None,
            summary: Summary {
                files: files.len(),
                bytes: files.iter().map(|f| f.size).sum(),
                subjects: subjects.into_iter().collect(),
                sessions: sessions.into_iter().collect(),
                samples: samples.len(),
                errors,
                warnings: self.issues.len() - errors,
                archives: files.iter().filter(|f| f.archive).count(),
            },
            issues: self.issues,
        }
    }
}

fn is_root_file(name: &str) -> bool {
    let base = name.split('.').next().unwrap_or(name);
    matches!(base, "README" | "CHANGES" | "LICENSE" | "CITATION") || name == "genetic_info.json"
}

fn is_table_file(depth: usize, parts: &[&str]) -> bool {
    let file = parts.last().copied().unwrap_or_default();
    match depth {
        0 => matches!(
            file,
            "participants.tsv" | "participants.json" | "samples.tsv" | "samples.json"
        ),
        1 => {
            let sub = parts[0];
            file == format!("{sub}_sessions.tsv")
                || file == format!("{sub}_sessions.json")
                || file == format!("{sub}_scans.tsv")
                || file == format!("{sub}_scans.json")
        }
        2 => {
            let prefix = format!("{}_{}", parts[0], parts[1]);
            file == format!("{prefix}_scans.tsv") || file == format!("{prefix}_scans.json")
        }
        _ => false,
    }
}

/// A sidecar placed above the datatype folder: `[entities_]<suffix>.json` with a microscopy
/// suffix and only entities microscopy files allow.
fn is_inherited_sidecar(file: &str) -> bool {
    let Some(stem) = file.strip_suffix(".json") else {
        return false;
    };
    let (entities, suffix) = stem.rsplit_once('_').unwrap_or(("", stem));
    if crate::name::Suffix::new(suffix).is_err() {
        return false;
    }
    entities.split('_').filter(|p| !p.is_empty()).all(|p| {
        p.split_once('-')
            .is_some_and(|(k, v)| schema::entity_by_key(k).is_some() && crate::name::is_label(v))
    })
}

#[cfg(test)]
mod tests {
    use super::DirJson;
    use crate::name::MicrName;
    use crate::sidecar::sidecar_applies;

    /// The index never leaves out a sidecar that applies: its candidates for an image are a
    /// superset of the folder's sidecars that `sidecar_applies` accepts.
    #[test]
    fn sidecar_index_keeps_every_applying_sidecar() {
        let files = [
            "BF.json",
            "sample-A_BF.json",
            "sub-01_sample-A_BF.json",
            "sub-01_sample-B_BF.json",
            "sub-01_BF.json",
            "sub-01_sample-A_stain-HE_BF.json",
            "stain-HE_sample-A_BF.json",
            "sample-A-x_BF.json",
            "sample-.json",
            "notes.json",
        ];
        let mut dir = DirJson::default();
        for f in files {
            dir.push(f.to_owned());
        }
        for image in [
            "sub-01_sample-A_BF.ome.zarr",
            "sub-01_sample-B_BF.ome.zarr",
            "sub-01_sample-A_stain-HE_BF.ome.zarr",
            "sub-01_sample-C_SEM.ome.zarr",
        ] {
            let name: MicrName = image.parse().expect("name");
            let mut want: Vec<&str> = files
                .iter()
                .copied()
                .filter(|f| sidecar_applies(f, &name))
                .collect();
            let mut got: Vec<&str> = dir
                .candidates(name.sample.as_str())
                .map(String::as_str)
                .filter(|f| sidecar_applies(f, &name))
                .collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "{image}");
            assert!(
                dir.candidates(name.sample.as_str()).count() < files.len(),
                "{image}"
            );
        }
    }
}

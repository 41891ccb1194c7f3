//! The section manifest: which folder under the scanner root becomes which section of the
//! dataset, with each source's fingerprint ([`plan`], [`Manifest`]).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use strata_bids::name::{Label, Suffix};
use strata_zstack::{Compression, ConvertOptions, ImageOptions, Layout, PixelSize, Section};

/// The `format` field of every manifest.
pub const FORMAT: &str = "strata-batch-manifest";
/// The manifest version this crate writes and reads.
pub const VERSION: u32 = 1;

/// How every section of a batch is converted (the flags of `strata convert` a batch uses).
/// Defaults: suffix `BF`, folder layout, 512-pixel zstd-3 chunks, all planes in one shard,
/// pixel size from the TIFFs, no QC gate, source checksums recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// Session label of every section, if the dataset uses sessions.
    pub session: Option<String>,
    /// Microscopy suffix.
    pub suffix: String,
    /// `zarr` (an `.ome.zarr` folder) or `ozx` (one file per section).
    pub layout: String,
    /// Inner chunk size in pixels.
    pub chunk: u32,
    /// zstd level of the chunks; `None` stores them uncompressed.
    pub zstd_level: Option<i32>,
    /// Planes per shard; `None`: all planes of a level in one shard.
    pub planes_per_shard: Option<u32>,
    /// Pixel size x, y, z in micrometres; `None` takes x and y from the TIFFs.
    pub pixel_size_um: Option<[f64; 3]>,
    /// The QC gate's rules; `None`: no gate.
    pub qc_gate: Option<strata_qc::Rules>,
    /// Record the SHA-256 of every source file in the provenance.
    pub checksums: bool,
    /// After publishing, copy each section to this second tier (a folder, `file:///path` or
    /// `s3://bucket/prefix`), verified ([`crate::stage_section`]); `None`: no staging.
    #[serde(default)]
    pub stage_to: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            session: None,
            suffix: "BF".into(),
            layout: "zarr".into(),
            chunk: 512,
            zstd_level: Some(3),
            planes_per_shard: None,
            pixel_size_um: None,
            qc_gate: None,
            checksums: true,
            stage_to: None,
        }
    }
}

impl Settings {
    /// Checks labels, suffix, layout and numbers.
    ///
    /// # Errors
    /// [`Error::Plan`] naming the setting.
    pub fn check(&self) -> Result<()> {
        if let Some(s) = &self.session {
            Label::new("ses", s.clone())?;
        }
        Suffix::new(&self.suffix)?;
        if !["zarr", "ozx"].contains(&self.layout.as_str()) {
            return Err(Error::Plan(format!(
                "layout {:?}: use zarr or ozx",
                self.layout
            )));
        }
        if self.chunk == 0 || self.planes_per_shard == Some(0) {
            return Err(Error::Plan(
                "chunk size and planes per shard must be at least 1".into(),
            ));
        }
        if let Some(l) = self.zstd_level
            && !(1..=22).contains(&l)
        {
            return Err(Error::Plan(format!("zstd level {l}: use 1 to 22")));
        }
        if let Some(url) = &self.stage_to {
            if self.layout == "ozx" {
                return Err(Error::Plan(format!(
                    "--stage-to {url} with the ozx layout: stage .ozx sections with strata stage"
                )));
            }
            let parsed: strata_store::StoreUrl = url
                .parse()
                .map_err(|e: strata_store::Error| Error::Plan(format!("--stage-to {url}: {e}")))?;
            if matches!(parsed, strata_store::StoreUrl::Zip(_)) {
                return Err(Error::Plan(format!(
                    "--stage-to {url}: use a folder, file:///path or s3://bucket/prefix"
                )));
            }
        }
        if let Some(p) = self.pixel_size_um
            && p.iter().any(|v| !(v.is_finite() && *v > 0.0))
        {
            return Err(Error::Plan(format!(
                "pixel size {p:?}: every value must be a positive number"
            )));
        }
        Ok(())
    }

    /// The converter's options for these settings (into the folder `bids_root`).
    #[must_use]
    pub fn convert_options(&self) -> ConvertOptions {
        ConvertOptions {
            image: ImageOptions {
                chunk: self.chunk,
                compression: self.zstd_level.map_or(Compression::None, Compression::Zstd),
                planes_per_shard: self.planes_per_shard,
                ..ImageOptions::default()
            },
            pixel_size: self.pixel_size_um.map(|[x, y, z]| PixelSize { x, y, z }),
            checksums: self.checksums,
            layout: if self.layout == "ozx" {
                Layout::Ozx
            } else {
                Layout::Folder
            },
            ..ConvertOptions::default()
        }
    }
}

/// One section of a batch: its source folder and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Entry {
    /// The source folder, relative to the scanner root.
    pub folder: String,
    /// Subject label.
    pub subject: String,
    /// Sample (section) label.
    pub sample: String,
    /// Stain label.
    pub stain: Option<String>,
    /// Focus levels (TIFF files) in the folder.
    pub planes: u32,
    /// Bytes of the source files.
    pub bytes: u64,
    /// The source's fingerprint ([`fingerprint`]).
    pub fingerprint: String,
}

/// A batch: the scanner root, the dataset, the settings and the sections, in the order the
/// array tasks take them (task `i` converts `sections[i]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The folder holding one folder per section (absolute).
    pub scanner_root: PathBuf,
    /// The BIDS dataset the sections go into (absolute).
    pub bids_root: PathBuf,
    /// How the sections are converted.
    pub settings: Settings,
    /// The sections.
    pub sections: Vec<Entry>,
}

/// What [`plan`] reads: the scanner root, the map and the options.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PlanOptions {
    /// Which folders under the scanner root are sections (a glob on the folder name, `*`
    /// and `?` and `[...]`); folders that do not match are ignored. Default `*`.
    pub pattern: String,
    /// The number of focus levels every section must have; `None`: the count most folders
    /// have (a folder with fewer or more is an error either way).
    pub planes: Option<u32>,
    /// How the sections are converted.
    pub settings: Settings,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            pattern: "*".into(),
            planes: None,
            settings: Settings::default(),
        }
    }
}

/// The fingerprint of a section's source: SHA-256 over the name, size and modification
/// time (nanoseconds) of each TIFF file, in natural order, with the file count. A changed,
/// added, removed or rewritten plane changes it; reading the pixels is not needed.
///
/// # Errors
/// The folder or a file cannot be listed or stat'ed.
pub fn fingerprint(folder: &Path) -> Result<(String, u32, u64)> {
    let files = strata_zstack::list_tiffs(folder)?;
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    for f in &files {
        let meta = std::fs::metadata(f).map_err(|e| Error::io(f, e))?;
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        hash.update(format!("{name}\0{}\0{mtime_ns}\n", meta.len()).as_bytes());
        bytes += meta.len();
    }
    hash.update(format!("files={}", files.len()).as_bytes());
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let planes = u32::try_from(files.len())
        .map_err(|_| Error::Plan(format!("{}: too many files", folder.display())))?;
    Ok((hex, planes, bytes))
}

/// One row of the folder map.
pub(crate) struct MapRow {
    pub(crate) folder: String,
    pub(crate) subject: String,
    pub(crate) sample: String,
    pub(crate) stain: Option<String>,
}

/// Reads MAP.tsv: columns `folder`, `subject`, `sample`, optional `stain` (`n/a` or empty
/// for none); other columns are ignored.
pub(crate) fn read_map(map: &Path) -> Result<Vec<MapRow>> {
    let table = strata_bids::table::Table::read(map).map_err(|e| Error::Plan(e.to_string()))?;
    let col = |name: &str| {
        table.column(name).ok_or_else(|| {
            Error::Plan(format!(
                "{}: no column {name:?} (the map needs folder, subject, sample and optionally stain)",
                map.display()
            ))
        })
    };
    let (f, s, p) = (col("folder")?, col("subject")?, col("sample")?);
    let stain = table.column("stain");
    let mut rows = Vec::new();
    for (i, row) in table.rows().iter().enumerate() {
        let cell = |c: usize| row[c].trim().to_owned();
        let line = i + 2;
        let folder = cell(f);
        if folder.is_empty() || folder.contains('/') || folder.starts_with('.') {
            return Err(Error::Plan(format!(
                "{} line {line}: folder {folder:?} must be the name of a folder directly under the scanner root",
                map.display()
            )));
        }
        let stain = stain
            .map(cell)
            .filter(|v| !v.is_empty() && v != strata_bids::table::NA);
        let (subject, sample) = (cell(s), cell(p));
        // Labels are checked here, so that a typo fails the plan, not task 4,711.
        Label::new("sub", subject.clone())
            .and_then(|_| Label::new("sample", sample.clone()))
            .and_then(|_| {
                stain
                    .clone()
                    .map_or(Ok(()), |v| Label::new("stain", v).map(|_| ()))
            })
            .map_err(|e| Error::Plan(format!("{} line {line}: {e}", map.display())))?;
        rows.push(MapRow {
            folder,
            subject,
            sample,
            stain,
        });
    }
    Ok(rows)
}

/// Discovers the sections under `scanner_root` (every folder matching the pattern), maps
/// them through `map` (MAP.tsv), fingerprints each source and returns the manifest, sections
/// in the map's order.
///
/// # Errors
/// [`Error::Plan`] for folders the map does not name, map rows without a folder, a folder
/// or a sample label named twice, a folder whose plane count differs from the others (or
/// from [`PlanOptions::planes`]), a folder without TIFF files and invalid labels.
pub fn plan(
    scanner_root: &Path,
    map: &Path,
    bids_root: &Path,
    options: &PlanOptions,
) -> Result<Manifest> {
    options.settings.check()?;
    let pattern = glob::Pattern::new(&options.pattern)
        .map_err(|e| Error::Plan(format!("pattern {:?}: {e}", options.pattern)))?;
    let scanner_root = std::path::absolute(scanner_root).map_err(|e| Error::io(scanner_root, e))?;
    let bids_root = std::path::absolute(bids_root).map_err(|e| Error::io(bids_root, e))?;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&scanner_root).map_err(|e| Error::io(&scanner_root, e))? {
        let entry = entry.map_err(|e| Error::io(&scanner_root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry
            .file_type()
            .map_err(|e| Error::io(entry.path(), e))?
            .is_dir();
        if is_dir && !name.starts_with('.') && pattern.matches(&name) {
            found.push(name);
        }
    }
    let rows = read_map(map)?;
    let mut by_folder: HashMap<&str, usize> = HashMap::new();
    let mut by_label: HashMap<(&str, &str, Option<&str>), &str> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if by_folder.insert(&r.folder, i).is_some() {
            return Err(Error::Plan(format!(
                "{}: folder {} is mapped twice",
                map.display(),
                r.folder
            )));
        }
        if let Some(other) = by_label.insert((&r.subject, &r.sample, r.stain.as_deref()), &r.folder)
        {
            return Err(Error::Plan(format!(
                "{}: folders {other} and {} are both sub-{} sample-{}{}: each section needs its own sample label",
                map.display(),
                r.folder,
                r.subject,
                r.sample,
                r.stain
                    .as_ref()
                    .map(|s| format!(" stain-{s}"))
                    .unwrap_or_default()
            )));
        }
    }
    let mut unmapped: Vec<&str> = found
        .iter()
        .map(String::as_str)
        .filter(|f| !by_folder.contains_key(f))
        .collect();
    unmapped.sort_unstable();
    if !unmapped.is_empty() {
        return Err(Error::Plan(format!(
            "{} folder(s) under {} are not in {}: {} (add a row for each, or narrow --pattern)",
            unmapped.len(),
            scanner_root.display(),
            map.display(),
            unmapped.join(", ")
        )));
    }
    let missing: Vec<&str> = rows
        .iter()
        .map(|r| r.folder.as_str())
        .filter(|f| !found.iter().any(|g| g == f))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Plan(format!(
            "{} names folder(s) not found under {} (or not matching the pattern): {}",
            map.display(),
            scanner_root.display(),
            missing.join(", ")
        )));
    }
    let mut sections = Vec::with_capacity(rows.len());
    for r in rows {
        let (fingerprint, planes, bytes) = fingerprint(&scanner_root.join(&r.folder))?;
        sections.push(Entry {
            folder: r.folder,
            subject: r.subject,
            sample: r.sample,
            stain: r.stain,
            planes,
            bytes,
            fingerprint,
        });
    }
    check_planes(&sections, options.planes)?;
    Ok(Manifest {
        format: FORMAT.into(),
        version: VERSION,
        scanner_root,
        bids_root,
        settings: options.settings.clone(),
        sections,
    })
}

/// Every section has the expected number of planes (or the count most have).
fn check_planes(sections: &[Entry], expected: Option<u32>) -> Result<()> {
    let expected = match expected {
        Some(n) => n,
        None => {
            let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
            for s in sections {
                *counts.entry(s.planes).or_default() += 1;
            }
            // The most common count (the larger one on a tie: a folder is more likely to
            // miss planes than to have extra ones).
            counts
                .iter()
                .max_by_key(|(planes, n)| (**n, **planes))
                .map_or(0, |(planes, _)| *planes)
        }
    };
    let odd: Vec<String> = sections
        .iter()
        .filter(|s| s.planes != expected)
        .map(|s| format!("{} ({} planes)", s.folder, s.planes))
        .collect();
    if odd.is_empty() {
        Ok(())
    } else {
        Err(Error::Plan(format!(
            "{} folder(s) do not have {expected} TIFF planes: {} (wait until the scanner has \
             written them all, or pass the expected count with --planes)",
            odd.len(),
            odd.join(", ")
        )))
    }
}

impl Manifest {
    /// Reads and checks a manifest.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Manifest`] for JSON that is not a manifest of this version,
    /// invalid settings or labels, or duplicate sections.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |message: String| Error::Manifest {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let m: Self = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        if m.format != FORMAT || m.version != VERSION {
            return Err(bad(format!(
                "format {:?} version {}, expected {FORMAT:?} version {VERSION}",
                m.format, m.version
            )));
        }
        m.settings.check().map_err(|e| bad(e.to_string()))?;
        if !m.scanner_root.is_absolute() || !m.bids_root.is_absolute() {
            return Err(bad(
                "scanner_root and bids_root must be absolute paths".into()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, s) in m.sections.iter().enumerate() {
            m.section(i).map_err(|e| bad(format!("section {i}: {e}")))?;
            if s.folder.is_empty() || s.folder.contains('/') || s.folder.starts_with('.') {
                return Err(bad(format!("section {i}: folder {:?}", s.folder)));
            }
            if !seen.insert((&s.subject, &s.sample, &s.stain)) {
                return Err(bad(format!(
                    "section {i}: sub-{} sample-{} appears twice",
                    s.subject, s.sample
                )));
            }
        }
        Ok(m)
    }

    /// Writes the manifest atomically (temporary file, fsync, rename).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(|e| Error::Plan(e.to_string()))?;
        text.push(b'\n');
        strata_fs::write_atomic(path, &text)?;
        Ok(())
    }

    /// The dataset target of section `i`.
    ///
    /// # Errors
    /// [`Error::Name`] for an invalid label; [`Error::Plan`] for an index out of range.
    pub fn section(&self, i: usize) -> Result<Section> {
        let e = self.sections.get(i).ok_or_else(|| {
            Error::Plan(format!(
                "task index {i}: the manifest has {} sections (0 to {})",
                self.sections.len(),
                self.sections.len().saturating_sub(1)
            ))
        })?;
        Ok(Section::from_labels(
            self.bids_root.clone(),
            &e.subject,
            self.settings.session.as_deref(),
            &e.sample,
            e.stain.as_deref(),
            &self.settings.suffix,
        )?)
    }

    /// The source folder of section `i`.
    #[must_use]
    pub fn source(&self, i: usize) -> PathBuf {
        self.sections.get(i).map_or_else(
            || self.scanner_root.clone(),
            |e| self.scanner_root.join(&e.folder),
        )
    }

    /// Where the published image of section `i` is (folder or `.ozx`).
    ///
    /// # Errors
    /// As [`Manifest::section`].
    pub fn image(&self, i: usize) -> Result<PathBuf> {
        let path = self.section(i)?.image_path();
        Ok(if self.settings.layout == "ozx" {
            path.with_extension("").with_extension("ozx")
        } else {
            path
        })
    }
}

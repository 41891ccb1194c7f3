//! The images of a BIDS microscopy dataset on a POSIX file system, selected by subject,
//! session, sample and stain: the input of a [`PatchSampler`](crate::PatchSampler) over a
//! whole dataset.

use std::fs;
use std::path::{Path, PathBuf};

use strata_bids::name::MicrName;

use crate::error::{Error, Result};

/// Which images of a dataset to take: each list empty (the default) takes every value, else
/// only the listed ones. Values are labels (`"01"`; `"sub-01"` is accepted too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Selection {
    /// Subject labels.
    pub subjects: Vec<String>,
    /// Session labels.
    pub sessions: Vec<String>,
    /// Sample labels.
    pub samples: Vec<String>,
    /// Stain labels.
    pub stains: Vec<String>,
}

impl Selection {
    /// Every image.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// Only these subjects.
    #[must_use]
    pub fn subjects<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> Self {
        self.subjects = labels.into_iter().map(Into::into).collect();
        self
    }

    /// Only these sessions.
    #[must_use]
    pub fn sessions<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> Self {
        self.sessions = labels.into_iter().map(Into::into).collect();
        self
    }

    /// Only these samples.
    #[must_use]
    pub fn samples<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> Self {
        self.samples = labels.into_iter().map(Into::into).collect();
        self
    }

    /// Only these stains.
    #[must_use]
    pub fn stains<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> Self {
        self.stains = labels.into_iter().map(Into::into).collect();
        self
    }

    /// Whether `name` is selected.
    #[must_use]
    pub fn matches(&self, name: &MicrName) -> bool {
        let ok = |wanted: &[String], key: &str| {
            wanted.is_empty()
                || name.get(key).is_some_and(|v| {
                    wanted.iter().any(|w| {
                        w.strip_prefix(key)
                            .and_then(|r| r.strip_prefix('-'))
                            .unwrap_or(w)
                            == v
                    })
                })
        };
        ok(&self.subjects, "sub")
            && ok(&self.sessions, "ses")
            && ok(&self.samples, "sample")
            && ok(&self.stains, "stain")
    }
}

/// One image of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatasetImage {
    /// Its path: an `.ome.zarr` folder or an `.ozx` archive.
    pub path: PathBuf,
    /// Its parsed BIDS name (an archive's name read as its `.ome.zarr` twin).
    pub name: MicrName,
}

/// The OME-Zarr images (`.ome.zarr` folders and `.ozx` archives) under
/// `root/sub-*/[ses-*/]micr/` that `selection` takes, in path order. Entries whose names are
/// not valid BIDS microscopy names are skipped (`strata validate` reports them).
///
/// # Errors
/// [`Error::Location`] when `root` is not a readable folder with a `dataset_description.json`.
pub fn dataset_images(root: &Path, selection: &Selection) -> Result<Vec<DatasetImage>> {
    let bad = |reason: String| Error::Location {
        location: root.display().to_string(),
        reason,
    };
    if !root.join("dataset_description.json").is_file() {
        return Err(bad(
            "not a BIDS dataset (no dataset_description.json); give the dataset's root folder"
                .into(),
        ));
    }
    let mut micr = Vec::new();
    for sub in children(root, "sub-").map_err(|e| bad(e.to_string()))? {
        micr.push(sub.join("micr"));
        for ses in children(&sub, "ses-").map_err(|e| bad(e.to_string()))? {
            micr.push(ses.join("micr"));
        }
    }
    let mut out = Vec::new();
    for dir in micr {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let file = entry.file_name().to_string_lossy().into_owned();
            let as_zarr = if let Some(stem) = file.strip_suffix(".ozx") {
                format!("{stem}.ome.zarr")
            } else if file.ends_with(".ome.zarr") {
                file.clone()
            } else {
                continue;
            };
            let Ok(rel) = dir.strip_prefix(root) else {
                continue;
            };
            let Ok(name) = MicrName::parse_path(&rel.join(&as_zarr)) else {
                continue;
            };
            if selection.matches(&name) {
                out.push(DatasetImage { path, name });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The sub-folders of `dir` whose names start with `prefix`.
fn children(dir: &Path, prefix: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(prefix) && entry.path().is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

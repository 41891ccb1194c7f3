//! The images of a BIDS microscopy dataset in a folder or under an S3 prefix, selected by
//! subject, session, sample and stain: the input of a [`PatchSampler`](crate::PatchSampler)
//! over a whole dataset.

use std::fs;
use std::path::{Path, PathBuf};

use strata_bids::name::MicrName;
use strata_store::{ListableStore, ObjectStoreBackend, S3Options, StoreExt, StoreKey, block_on};

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
    /// Where it is, as [`Image::open`](crate::Image::open) takes it: the path of an
    /// `.ome.zarr` folder or `.ozx` archive, or its `s3://bucket/key`.
    pub location: String,
    /// Its path relative to the dataset root (`sub-01/micr/sub-01_sample-A_BF.ome.zarr`).
    pub relative: PathBuf,
    /// Its parsed BIDS name (an archive's name read as its `.ome.zarr` twin).
    pub name: MicrName,
}

/// The OME-Zarr images (`.ome.zarr` folders and `.ozx` archives) under
/// `root/sub-*/[ses-*/]micr/` that `selection` takes, in path order. `root` is a folder (or
/// `file:///path`) or `s3://bucket/prefix` (endpoint and credentials from the environment, as
/// for [`Image::open`](crate::Image::open)). Entries whose names are not valid BIDS
/// microscopy names are skipped (`strata validate` reports them).
///
/// # Errors
/// [`Error::Location`] when `root` is not a dataset (no `dataset_description.json`) or cannot
/// be listed.
pub fn dataset_images(root: &str, selection: &Selection) -> Result<Vec<DatasetImage>> {
    let bad = |reason: String| Error::Location {
        location: root.to_owned(),
        reason,
    };
    let not_bids =
        || bad("not a BIDS dataset (no dataset_description.json); give the dataset's root".into());
    let mut out = Vec::new();
    if let Some(rest) = root.strip_prefix("s3://") {
        let rest = rest.trim_end_matches('/');
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let mut store =
            ObjectStoreBackend::s3(&S3Options::from_env(bucket)).map_err(|e| bad(e.to_string()))?;
        if !prefix.is_empty() {
            store = store.with_prefix(&StoreKey::new(prefix).map_err(|e| bad(e.to_string()))?);
        }
        let description =
            StoreKey::new("dataset_description.json").map_err(|e| bad(e.to_string()))?;
        if !block_on(store.exists(&description)).map_err(|e| bad(e.to_string()))? {
            return Err(not_bids());
        }
        let base = format!("s3://{rest}");
        // Keys relative to the prefix. An image folder is found by its group metadata, an
        // archive by its name.
        for meta in block_on(store.list(None)).map_err(|e| bad(e.to_string()))? {
            let key = meta.key.as_str();
            let image = key
                .strip_suffix("/zarr.json")
                .filter(|r| r.ends_with(".ome.zarr"))
                .unwrap_or(key);
            if let Some(found) = image_at(Path::new(image), selection) {
                out.push(DatasetImage {
                    location: format!("{base}/{image}"),
                    ..found
                });
            }
        }
    } else {
        let root_path = Path::new(root.strip_prefix("file://").unwrap_or(root));
        if !root_path.join("dataset_description.json").is_file() {
            return Err(not_bids());
        }
        let mut micr = Vec::new();
        for sub in children(root_path, "sub-").map_err(|e| bad(e.to_string()))? {
            micr.push(sub.join("micr"));
            for ses in children(&sub, "ses-").map_err(|e| bad(e.to_string()))? {
                micr.push(ses.join("micr"));
            }
        }
        for dir in micr {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(rel) = path.strip_prefix(root_path) else {
                    continue;
                };
                if let Some(found) = image_at(rel, selection) {
                    out.push(DatasetImage {
                        location: path.to_string_lossy().into_owned(),
                        ..found
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(out)
}

/// The image at `rel` (relative to the dataset root) if it is an OME-Zarr image with a valid
/// name in its subject's (and session's) `micr` folder that `selection` takes; `location` is
/// left for the caller.
fn image_at(rel: &Path, selection: &Selection) -> Option<DatasetImage> {
    let file = rel.file_name()?.to_str()?;
    let as_zarr = if let Some(stem) = file.strip_suffix(".ozx") {
        format!("{stem}.ome.zarr")
    } else if file.ends_with(".ome.zarr") {
        file.to_owned()
    } else {
        return None;
    };
    let name = MicrName::parse_path(&rel.with_file_name(as_zarr)).ok()?;
    // Exactly sub-*/[ses-*/]micr/<name>: parse_path checked the folders it was given.
    if rel.components().count() < 3 {
        return None;
    }
    selection.matches(&name).then(|| DatasetImage {
        location: String::new(),
        relative: rel.to_path_buf(),
        name,
    })
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

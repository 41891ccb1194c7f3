//! Where an image lives: a folder, an `.ozx` archive, or a prefix of an S3 bucket, opened as a
//! read-only strata store rooted at the image's group.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_store::{
    ObjectStoreBackend, OzxStore, PosixStore, ReadableStore, S3Options, StoreKey, block_on,
};

use crate::error::{Error, Result};

/// An image's location, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An `.ome.zarr` folder.
    Folder(PathBuf),
    /// A single-file OME-Zarr archive (`.ozx`) on a POSIX file system.
    Archive(PathBuf),
    /// An image under a key prefix of an S3 bucket (`s3://bucket/prefix/x.ome.zarr`); a key
    /// ending in `.ozx` is an archive read by ranges. Endpoint, region and credentials come
    /// from the environment (`STRATA_S3_ENDPOINT` or `AWS_ENDPOINT_URL`, `AWS_DEFAULT_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
    S3 {
        /// The bucket.
        bucket: String,
        /// The image's key (its group prefix, or the archive's key).
        key: String,
    },
}

impl Location {
    /// Parses `s`: `s3://bucket/key`, `zip:///path/x.ozx`, `file:///path`, or a plain path
    /// (an `.ozx` file is an archive, anything else a folder).
    ///
    /// # Errors
    /// [`Error::Location`] for an empty string, an unknown scheme or an S3 URL without a key.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Location {
            location: s.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = s.strip_prefix("s3://") {
            let rest = rest.trim_end_matches('/');
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("the URL names no bucket"));
            }
            if key.is_empty() {
                return Err(bad("the URL names no image under the bucket"));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            });
        }
        if let Some(rest) = s.strip_prefix("zip://") {
            if rest.is_empty() {
                return Err(bad("the URL names no archive"));
            }
            return Ok(Self::Archive(PathBuf::from(rest)));
        }
        let path = s.strip_prefix("file://").unwrap_or(s);
        if path.contains("://") {
            return Err(bad("unknown scheme"));
        }
        if path.is_empty() {
            return Err(bad("the location is empty"));
        }
        let path = PathBuf::from(path.trim_end_matches('/'));
        if path.extension().is_some_and(|e| e == "ozx") && !path.is_dir() {
            Ok(Self::Archive(path))
        } else {
            Ok(Self::Folder(path))
        }
    }

    /// The location as a string for messages.
    #[must_use]
    pub fn display(&self) -> String {
        match self {
            Self::Folder(p) | Self::Archive(p) => p.display().to_string(),
            Self::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }

    /// Opens the image's store (rooted at its group) and, where there is one, the store and
    /// key of the BIDS sidecar beside it (`x.ome.zarr` or `x.ozx` next to `x.json`).
    pub(crate) fn open(&self) -> Result<Opened> {
        let image = self.display();
        let store_err = |source| Error::Store {
            image: image.clone(),
            source,
        };
        match self {
            Self::Folder(path) => {
                if !path.is_dir() {
                    return Err(Error::Location {
                        location: image.clone(),
                        reason: "no such folder".into(),
                    });
                }
                let store: Arc<dyn ReadableStore> =
                    Arc::new(PosixStore::open(path).map_err(store_err)?);
                let sidecar = local_sidecar(path)?;
                Ok(Opened { store, sidecar })
            }
            Self::Archive(path) => {
                let (dir, name) = split(path, &image)?;
                let parent: Arc<dyn ReadableStore> =
                    Arc::new(PosixStore::open(&dir).map_err(store_err)?);
                let archive = key(&name, &image)?;
                let store: Arc<dyn ReadableStore> = Arc::new(
                    block_on(OzxStore::open(Arc::clone(&parent), archive)).map_err(store_err)?,
                );
                let sidecar = sidecar_name(&name)
                    .and_then(|n| key(&n, &image).ok())
                    .map(|k| (parent, k));
                Ok(Opened { store, sidecar })
            }
            Self::S3 { bucket, key: k } => {
                let bucket_store: Arc<dyn ReadableStore> = Arc::new(
                    ObjectStoreBackend::s3(&S3Options::from_env(bucket)).map_err(store_err)?,
                );
                let image_key = key(k, &image)?;
                let sidecar = sidecar_name(k).and_then(|n| key(&n, &image).ok());
                let store: Arc<dyn ReadableStore> = if k.ends_with(".ozx") {
                    Arc::new(
                        block_on(OzxStore::open(Arc::clone(&bucket_store), image_key))
                            .map_err(store_err)?,
                    )
                } else {
                    Arc::new(
                        ObjectStoreBackend::s3(&S3Options::from_env(bucket))
                            .map_err(store_err)?
                            .with_prefix(&image_key),
                    )
                };
                Ok(Opened {
                    store,
                    sidecar: sidecar.map(|k| (bucket_store, k)),
                })
            }
        }
    }
}

/// An opened location.
pub(crate) struct Opened {
    /// The image's group, read-only.
    pub(crate) store: Arc<dyn ReadableStore>,
    /// Where the BIDS sidecar would be.
    pub(crate) sidecar: Option<(Arc<dyn ReadableStore>, StoreKey)>,
}

fn key(s: &str, image: &str) -> Result<StoreKey> {
    StoreKey::new(s).map_err(|source| Error::Store {
        image: image.to_owned(),
        source,
    })
}

fn split(path: &Path, image: &str) -> Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Location {
            location: image.to_owned(),
            reason: "the path has no file name".into(),
        })?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((dir.to_owned(), name.to_owned()))
}

/// `sub-A_sample-B_BF.ome.zarr` or `.ozx` -> `sub-A_sample-B_BF.json` (same folder).
fn sidecar_name(name: &str) -> Option<String> {
    let stem = name
        .strip_suffix(".ome.zarr")
        .or_else(|| name.strip_suffix(".ozx"))?;
    Some(format!("{stem}.json"))
}

fn local_sidecar(folder: &Path) -> Result<Option<(Arc<dyn ReadableStore>, StoreKey)>> {
    let image = folder.display().to_string();
    let Ok((dir, name)) = split(folder, &image) else {
        return Ok(None);
    };
    let Some(json) = sidecar_name(&name) else {
        return Ok(None);
    };
    if !dir.join(&json).is_file() {
        return Ok(None);
    }
    let store: Arc<dyn ReadableStore> =
        Arc::new(PosixStore::open(&dir).map_err(|source| Error::Store {
            image: image.clone(),
            source,
        })?);
    Ok(Some((store, key(&json, &image)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            Location::parse("s3://b/p/x.ome.zarr/").ok(),
            Some(Location::S3 {
                bucket: "b".into(),
                key: "p/x.ome.zarr".into()
            })
        );
        assert_eq!(
            Location::parse("zip:///d/x.ozx").ok(),
            Some(Location::Archive("/d/x.ozx".into()))
        );
        assert_eq!(
            Location::parse("/nonexistent/x.ozx").ok(),
            Some(Location::Archive("/nonexistent/x.ozx".into()))
        );
        assert_eq!(
            Location::parse("file:///d/x.ome.zarr").ok(),
            Some(Location::Folder("/d/x.ome.zarr".into()))
        );
        for bad in ["", "s3://", "s3://bucket", "http://host/x", "zip://"] {
            assert!(
                matches!(Location::parse(bad), Err(Error::Location { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sidecar_names() {
        assert_eq!(sidecar_name("a_BF.ome.zarr").as_deref(), Some("a_BF.json"));
        assert_eq!(sidecar_name("a_BF.ozx").as_deref(), Some("a_BF.json"));
        assert_eq!(sidecar_name("a.zarr"), None);
    }
}

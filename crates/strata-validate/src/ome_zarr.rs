//! OME-Zarr content checks: each `.ome.zarr` image's NGFF metadata is
//! validated, cross-checked against its arrays' metadata, and its level-0 pixel size compared
//! with the BIDS sidecar's `PixelSize`. The official BIDS validator does none of this.
//!
//! Reads from a POSIX directory, or from the members of an `.ozx` archive checked as its
//! virtual `.ome.zarr` folder; metadata files are read with a size limit, so a hostile file
//! cannot make the validator allocate without bound.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_bids::name::{Extension, MicrName};
use strata_bids::validate::{DataCheck, Issue};
use strata_ngff::{ArraySummary, GroupMetadata, Severity, ValidateOptions, Version};

/// Largest metadata document read (`zarr.json`, `.zattrs`, `.zarray`).
const MAX_METADATA_BYTES: u64 = 16 << 20;

/// Relative tolerance when comparing the sidecar's pixel size with the NGFF scale.
const PIXEL_SIZE_TOLERANCE: f64 = 1e-6;

/// The OME-Zarr content check, a [`DataCheck`] for the BIDS validator: every `.ome.zarr` image's
/// NGFF metadata (`zarr.json` for 0.5, `.zattrs` for 0.4), its arrays' metadata against it, and
/// its level-0 pixel size against the sidecar's `PixelSize`. Other images pass unchecked.
#[derive(Debug, Clone, Copy, Default)]
pub struct OmeZarrCheck;

enum Doc {
    Missing,
    Invalid(String),
    Json(Value),
}

/// Where an image's files are: a folder, or an open `.ozx` archive.
enum Image {
    Folder(PathBuf),
    Archive(Box<strata_store::OzxStore>),
}

impl Image {
    /// Opens `path`: a folder, or (a file) an archive.
    fn open(path: &Path) -> Result<Self, String> {
        if !path.is_file() {
            return Ok(Self::Folder(path.to_owned()));
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            return Err("is not a file name".into());
        };
        let parent = strata_store::PosixStore::open(dir).map_err(|e| e.to_string())?;
        let key = strata_store::StoreKey::new(name).map_err(|e| e.to_string())?;
        strata_store::block_on(strata_store::OzxStore::open(Arc::new(parent), key))
            .map(|a| Self::Archive(Box::new(a)))
            .map_err(|e| e.to_string())
    }

    /// The metadata document at `rel` (`/`-separated) inside the image.
    fn doc(&self, rel: &str) -> Doc {
        match self {
            Self::Folder(dir) => read_doc(&dir.join(rel)),
            Self::Archive(archive) => read_member(archive, rel),
        }
    }
}

fn read_member(archive: &strata_store::OzxStore, rel: &str) -> Doc {
    use strata_store::ReadableStore;
    let Ok(key) = strata_store::StoreKey::new(rel) else {
        return Doc::Missing;
    };
    let size = match strata_store::block_on(archive.size(&key)) {
        Ok(n) => n,
        Err(e) if e.is_not_found() => return Doc::Missing,
        Err(e) => return Doc::Invalid(format!("cannot be read: {e}")),
    };
    if size > MAX_METADATA_BYTES {
        return too_large();
    }
    match strata_store::block_on(archive.get(&key)) {
        Ok(bytes) => parse(&bytes),
        Err(e) => Doc::Invalid(format!("cannot be read: {e}")),
    }
}

fn too_large() -> Doc {
    Doc::Invalid(format!(
        "is larger than {} MiB, which no metadata document needs",
        MAX_METADATA_BYTES >> 20
    ))
}

fn parse(bytes: &[u8]) -> Doc {
    match strata_ngff::parse_json(bytes) {
        Ok(v) => Doc::Json(v),
        Err(e) => Doc::Invalid(e.to_string()),
    }
}

fn read_doc(path: &Path) -> Doc {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Doc::Missing,
        Err(e) => return Doc::Invalid(format!("cannot be read: {e}")),
    };
    // Sized from the file (one read and one at the end, not a growing buffer's many), at most
    // the limit.
    let expected = file
        .metadata()
        .map_or(0, |m| m.len())
        .min(MAX_METADATA_BYTES);
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0) + 1);
    if let Err(e) = file.take(MAX_METADATA_BYTES + 1).read_to_end(&mut bytes) {
        return Doc::Invalid(format!("cannot be read: {e}"));
    }
    if bytes.len() as u64 > MAX_METADATA_BYTES {
        return too_large();
    }
    parse(&bytes)
}

/// Micrometres per unit, for the length units NGFF and BIDS use.
fn micrometres(unit: &str) -> Option<f64> {
    Some(match unit {
        "angstrom" => 1e-4,
        "nanometer" | "nm" => 1e-3,
        "micrometer" | "um" => 1.0,
        "millimeter" | "mm" => 1e3,
        "centimeter" => 1e4,
        "meter" => 1e6,
        _ => return None,
    })
}

impl DataCheck for OmeZarrCheck {
    /// The crate's version: a new release may judge the same files differently.
    fn cache_id(&self) -> Option<String> {
        Some(format!(
            "strata-validate/ome-zarr/{}",
            env!("CARGO_PKG_VERSION")
        ))
    }

    fn check(
        &self,
        path: &Path,
        location: &str,
        name: &MicrName,
        sidecar: &Map<String, Value>,
    ) -> Vec<Issue> {
        let mut issues = Vec::new();
        if name.extension != Extension::OME_ZARR {
            return issues;
        }
        let image = match Image::open(path) {
            Ok(image) => image,
            Err(why) => {
                issues.push(Issue::error(
                    "OZX_INVALID",
                    location,
                    format!("the .ozx archive presented as this folder {why}; rewrite it"),
                ));
                return issues;
            }
        };
        let (doc_name, version, doc) = match image.doc("zarr.json") {
            Doc::Missing => ("/.zattrs", Version::V0_4, image.doc(".zattrs")),
            other => ("/zarr.json", Version::V0_5, other),
        };
        let doc_location = format!("{}{}", location.trim_end_matches('/'), doc_name);
        let doc = match doc {
            Doc::Json(v) => v,
            Doc::Missing => {
                issues.push(Issue::error(
                    "NGFF_METADATA_MISSING",
                    location,
                    "neither zarr.json (OME-Zarr 0.5) nor .zattrs (0.4) is present: the image was not written completely; rewrite it",
                ));
                return issues;
            }
            Doc::Invalid(why) => {
                issues.push(Issue::error(
                    "NGFF_METADATA_INVALID",
                    &doc_location,
                    format!("the metadata {why}; rewrite it"),
                ));
                return issues;
            }
        };
        let options = ValidateOptions::new().version(version);
        let (report, group) = GroupMetadata::validated(&doc, &options);
        for v in &report.violations {
            let message = format!(
                "{}: {}",
                if v.path.is_empty() { "/" } else { &v.path },
                v.message
            );
            issues.push(match v.severity {
                Severity::Error => Issue::error("NGFF_INVALID", &doc_location, message),
                _ => Issue::warning("NGFF_WARNING", &doc_location, message),
            });
        }
        let Some(group) = group else {
            return issues;
        };
        let Some(multiscale) = group.ome().multiscales.as_ref().and_then(|m| m.first()) else {
            return issues;
        };
        let mut arrays = BTreeMap::new();
        for dataset in &multiscale.datasets {
            let meta = if version == Version::V0_5 {
                "zarr.json"
            } else {
                ".zarray"
            };
            // Dataset paths were validated as relative; still never leave the image.
            if dataset.path.split('/').any(|p| p == ".." || p.is_empty()) {
                continue;
            }
            match image.doc(&format!("{}/{meta}", dataset.path)) {
                Doc::Json(v) => match ArraySummary::from_json(&v) {
                    Ok(summary) => {
                        arrays.insert(dataset.path.clone(), summary);
                    }
                    Err(e) => issues.push(Issue::error(
                        "NGFF_ARRAY_INVALID",
                        format!("{}/{}/{meta}", location.trim_end_matches('/'), dataset.path),
                        format!("{e}; rewrite the array metadata"),
                    )),
                },
                Doc::Invalid(why) => issues.push(Issue::error(
                    "NGFF_ARRAY_INVALID",
                    format!("{}/{}/{meta}", location.trim_end_matches('/'), dataset.path),
                    format!("the array metadata {why}"),
                )),
                Doc::Missing => {}
            }
        }
        for v in strata_ngff::cross_check(&group, &arrays).violations {
            let message = format!(
                "{}: {}",
                if v.path.is_empty() { "/" } else { &v.path },
                v.message
            );
            issues.push(match v.severity {
                Severity::Error => Issue::error("NGFF_DATA_MISMATCH", &doc_location, message),
                _ => Issue::warning("NGFF_WARNING", &doc_location, message),
            });
        }
        issues.extend(pixel_size_check(location, multiscale, sidecar));
        issues
    }
}

/// Compares the sidecar's `PixelSize` (`[x, y]` or `[x, y, z]`) with level 0's scale.
fn pixel_size_check(
    location: &str,
    multiscale: &strata_ngff::Multiscale,
    sidecar: &Map<String, Value>,
) -> Option<Issue> {
    let sizes: Vec<f64> = sidecar
        .get("PixelSize")?
        .as_array()?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let unit = micrometres(sidecar.get("PixelSizeUnits")?.as_str()?)?;
    let scale = multiscale.pixel_size(0)?;
    let mut mismatches = Vec::new();
    for (axis_name, sidecar_size) in ["x", "y", "z"].iter().zip(&sizes) {
        let Some(i) = multiscale.axis_index(axis_name) else {
            continue;
        };
        let axis = multiscale.axes.get(i)?;
        let Some(axis_unit) = axis.unit.as_deref().and_then(micrometres) else {
            return Some(Issue::warning(
                "PIXEL_SIZE_UNVERIFIED",
                location,
                format!(
                    "NGFF axis {axis_name:?} has no length unit, so PixelSize cannot be compared with the image's scale; add \"unit\": \"micrometer\""
                ),
            ));
        };
        let ngff = scale.get(i)? * axis_unit;
        let bids = sidecar_size * unit;
        if (ngff - bids).abs() > PIXEL_SIZE_TOLERANCE * ngff.abs().max(bids.abs()) {
            mismatches.push(format!("{axis_name}: sidecar {bids} um, image {ngff} um"));
        }
    }
    (!mismatches.is_empty()).then(|| {
        Issue::error(
            "PIXEL_SIZE_MISMATCH",
            location,
            format!(
                "the sidecar's PixelSize disagrees with the image's level-0 scale ({}); correct whichever is wrong",
                mismatches.join("; ")
            ),
        )
    })
}

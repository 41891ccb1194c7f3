//! Reading metadata into the typed model and upgrading 0.4 to 0.5.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::{GroupAttributes, OmeMetadata, Version, ZarrGroup};
use crate::validate::{Report, ValidateOptions, validate, validate_zarr_json};

/// Parses JSON text (for example the bytes of a `.zattrs` or `zarr.json` file).
///
/// # Errors
///
/// [`Error::Json`] with line and column when the text is not JSON.
pub fn parse_json(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json { source })
}

/// A generous cap for one metadata document: group `zarr.json` files with
/// consolidated metadata of many arrays stay well below it.
pub const MAX_METADATA_BYTES: usize = 64 * 1024 * 1024;

/// Parses JSON text after checking its size against `max_bytes`, so a reader
/// handed a huge or hostile file fails before allocating for it.
///
/// # Errors
///
/// [`Error::TooLarge`] above the limit, [`Error::Json`] when it is not JSON.
pub fn parse_json_limited(bytes: &[u8], max_bytes: usize) -> Result<Value> {
    if bytes.len() > max_bytes {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: max_bytes,
        });
    }
    parse_json(bytes)
}

fn to_model<T: serde::de::DeserializeOwned>(value: &Value, pointer: &str) -> Result<T> {
    T::deserialize(value).map_err(|source| Error::Model {
        pointer: pointer.to_owned(),
        source,
    })
}

/// Reads a 0.4 `.zattrs` object into the typed model.
///
/// # Errors
///
/// [`Error::Invalid`] with every violation when the metadata breaks 0.4.
pub fn read_zattrs(zattrs: &Value) -> Result<OmeMetadata> {
    let report = validate(zattrs, &ValidateOptions::new().version(Version::V0_4));
    if !report.is_valid() {
        return Err(Error::Invalid { report });
    }
    to_model(zattrs, "")
}

/// Reads the `zarr.json` of a Zarr v3 group with OME-NGFF 0.5 metadata.
///
/// # Errors
///
/// [`Error::Invalid`] with every violation when the document breaks 0.5.
pub fn read_zarr_json(zarr_json: &Value) -> Result<ZarrGroup> {
    let report = validate_zarr_json(zarr_json, &ValidateOptions::new().version(Version::V0_5));
    if !report.is_valid() {
        return Err(Error::Invalid { report });
    }
    to_model(zarr_json, "")
}

/// Reads a 0.4 `.zattrs` object and upgrades it to a 0.5 group `zarr.json`.
///
/// The NGFF keys move under `attributes.ome` with `"version": "0.5"`, the
/// per-object 0.4 `version` keys are dropped, and keys that are not NGFF stay
/// in `attributes` outside `ome`. The result is validated as 0.5, so 0.4
/// tolerances (for example a scale shorter than the axes) surface as errors.
///
/// # Errors
///
/// [`Error::Invalid`] when the input is not valid 0.4 or the upgraded document
/// is not valid 0.5 (the report's paths then refer to the 0.5 document).
pub fn upgrade_zattrs(zattrs: &Value) -> Result<ZarrGroup> {
    let ome = read_zattrs(zattrs)?;
    let group = upgrade(ome);
    let report = validate_zarr_json(
        &group.to_value(),
        &ValidateOptions::new().version(Version::V0_5),
    );
    if !report.is_valid() {
        return Err(Error::Invalid { report });
    }
    Ok(group)
}

/// Upgrades typed 0.4 NGFF keys to a 0.5 group, without validating.
#[must_use]
pub fn upgrade(ome: OmeMetadata) -> ZarrGroup {
    let mut ome = ome.into_v05();
    let other: Map<String, Value> = std::mem::take(&mut ome.extra);
    ZarrGroup {
        attributes: GroupAttributes { ome, extra: other },
        ..ZarrGroup::new(OmeMetadata::default())
    }
}

/// The NGFF metadata of one group, in the version it was read in.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupMetadata {
    /// 0.4: the `.zattrs` object.
    V04(OmeMetadata),
    /// 0.5: the group `zarr.json`.
    V05(ZarrGroup),
}

impl GroupMetadata {
    /// Validates `value` as the version `options` names (0.5: a group `zarr.json`, the
    /// default; 0.4: a `.zattrs` object) and, when it is valid, reads it: one validation pass
    /// where [`validate_zarr_json`] followed by [`GroupMetadata::from_json`] makes two.
    #[must_use]
    pub fn validated(value: &Value, options: &ValidateOptions) -> (Report, Option<Self>) {
        if options.version == Some(Version::V0_4) {
            let report = validate(value, options);
            let group = report
                .is_valid()
                .then(|| to_model(value, "").ok().map(GroupMetadata::V04))
                .flatten();
            (report, group)
        } else {
            let report = validate_zarr_json(value, options);
            let group = report
                .is_valid()
                .then(|| to_model(value, "").ok().map(GroupMetadata::V05))
                .flatten();
            (report, group)
        }
    }

    /// Reads either a 0.4 `.zattrs` object or a 0.5 group `zarr.json`
    /// (recognised by its `zarr_format` key).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] with every violation.
    pub fn from_json(value: &Value) -> Result<Self> {
        if value.get("zarr_format").is_some() {
            read_zarr_json(value).map(GroupMetadata::V05)
        } else {
            read_zattrs(value).map(GroupMetadata::V04)
        }
    }

    /// The version.
    #[must_use]
    pub fn version(&self) -> Version {
        match self {
            GroupMetadata::V04(_) => Version::V0_4,
            GroupMetadata::V05(_) => Version::V0_5,
        }
    }

    /// The NGFF keys.
    #[must_use]
    pub fn ome(&self) -> &OmeMetadata {
        match self {
            GroupMetadata::V04(o) => o,
            GroupMetadata::V05(g) => &g.attributes.ome,
        }
    }

    /// JSON pointer of the NGFF keys inside the document this was read from
    /// (`""` for `.zattrs`, `"/attributes/ome"` for `zarr.json`).
    #[must_use]
    pub fn ome_pointer(&self) -> &'static str {
        match self {
            GroupMetadata::V04(_) => "",
            GroupMetadata::V05(_) => "/attributes/ome",
        }
    }

    /// The metadata as a 0.5 group `zarr.json` (upgrading 0.4, without validating).
    #[must_use]
    pub fn into_v05(self) -> ZarrGroup {
        match self {
            GroupMetadata::V04(o) => upgrade(o),
            GroupMetadata::V05(g) => g,
        }
    }
}

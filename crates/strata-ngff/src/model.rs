//! Typed models of OME-NGFF 0.4 and 0.5 metadata.
//!
//! The same types describe both versions: 0.4 keeps the NGFF keys at the top
//! of `.zattrs` and puts a `version` into each multiscale, plate, well and
//! image-label; 0.5 keeps them under `attributes.ome` of a Zarr v3 `zarr.json`
//! with a single `version`. Every object keeps the keys it does not know in an
//! `extra` map, so a read followed by a write loses nothing.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

/// OME-NGFF metadata versions this crate reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// OME-NGFF 0.4: Zarr v2, metadata in `.zattrs`.
    V0_4,
    /// OME-NGFF (OME-Zarr) 0.5: Zarr v3, metadata under `attributes.ome` in `zarr.json`.
    V0_5,
}

impl Version {
    /// The version string as written in the metadata (`"0.4"` or `"0.5"`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_4 => "0.4",
            Version::V0_5 => "0.5",
        }
    }

    /// Parses `"0.4"` or `"0.5"`.
    #[must_use]
    pub fn from_str_exact(s: &str) -> Option<Self> {
        match s {
            "0.4" => Some(Version::V0_4),
            "0.5" => Some(Version::V0_5),
            _ => None,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The NGFF keys of one Zarr group.
///
/// For 0.4 this is the whole `.zattrs` object; for 0.5 it is the `ome`
/// object inside the group's `attributes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OmeMetadata {
    /// `"0.5"` in 0.5 metadata; absent in 0.4, whose versions sit in the sub-objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Multiscale images (image pyramids) stored in this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiscales: Option<Vec<Multiscale>>,
    /// Transitional OMERO rendering metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omero: Option<Omero>,
    /// Names of the label images in a `labels` group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Present when this multiscale image is a label image (segmentation).
    #[serde(
        default,
        rename = "image-label",
        skip_serializing_if = "Option::is_none"
    )]
    pub image_label: Option<ImageLabel>,
    /// High-content screening plate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<Plate>,
    /// One well of a plate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub well: Option<Well>,
    /// `bioformats2raw.layout` marker (the value is 3).
    #[serde(
        default,
        rename = "bioformats2raw.layout",
        skip_serializing_if = "Option::is_none"
    )]
    pub bioformats2raw_layout: Option<Number>,
    /// Image series paths of a bioformats2raw `OME` group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<String>>,
    /// Keys this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl OmeMetadata {
    /// NGFF keys of a single-image group: one multiscale, version 0.5.
    #[must_use]
    pub fn image_v05(multiscale: Multiscale) -> Self {
        OmeMetadata {
            version: Some(Version::V0_5.as_str().to_owned()),
            multiscales: Some(vec![multiscale]),
            ..OmeMetadata::default()
        }
    }

    /// Converts 0.4 NGFF keys to their 0.5 form.
    ///
    /// Sets the single top-level `version` to `"0.5"` and drops the per-object
    /// `version` keys of multiscales, plate, well and image-label. Everything
    /// else is kept as is (the shapes of these objects did not change between
    /// 0.4 and 0.5). Keys unknown to NGFF stay in [`OmeMetadata::extra`]; use
    /// [`crate::upgrade_zattrs`] to move them out of the `ome` namespace.
    #[must_use]
    pub fn into_v05(mut self) -> Self {
        self.version = Some(Version::V0_5.as_str().to_owned());
        for m in self.multiscales.iter_mut().flatten() {
            m.version = None;
        }
        if let Some(p) = self.plate.as_mut() {
            p.version = None;
        }
        if let Some(w) = self.well.as_mut() {
            w.version = None;
        }
        if let Some(l) = self.image_label.as_mut() {
            l.version = None;
        }
        self
    }
}

/// The `zarr.json` of a Zarr v3 group carrying OME-NGFF 0.5 metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZarrGroup {
    /// Always 3.
    pub zarr_format: u8,
    /// Always `"group"`.
    pub node_type: String,
    /// Group attributes; the NGFF keys are under `ome`.
    pub attributes: GroupAttributes,
    /// Other `zarr.json` keys (for example `consolidated_metadata`), kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ZarrGroup {
    /// A group `zarr.json` (`zarr_format` 3, `node_type` `"group"`) holding `ome`.
    #[must_use]
    pub fn new(ome: OmeMetadata) -> Self {
        ZarrGroup {
            zarr_format: 3,
            node_type: "group".to_owned(),
            attributes: GroupAttributes {
                ome,
                extra: Map::new(),
            },
            extra: Map::new(),
        }
    }

    /// The document as a JSON value, ready to be written as `zarr.json`.
    #[must_use]
    pub fn to_value(&self) -> Value {
        // Serialising these types cannot fail: all map keys are strings and
        // all numbers are finite or already JSON numbers.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The `attributes` of a Zarr v3 group with OME-NGFF 0.5 metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAttributes {
    /// The OME-NGFF namespace.
    pub ome: OmeMetadata,
    /// Attributes outside the `ome` namespace, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One multiscale image: a pyramid of arrays sharing axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Multiscale {
    /// 0.4 only: the version of this multiscale (`"0.4"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Name of the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The axes, in array dimension order.
    pub axes: Vec<Axis>,
    /// Pyramid levels from the highest to the lowest resolution.
    pub datasets: Vec<Dataset>,
    /// Transformations applied to every level after its own.
    #[serde(
        default,
        rename = "coordinateTransformations",
        skip_serializing_if = "Option::is_none"
    )]
    pub coordinate_transformations: Option<Vec<CoordinateTransformation>>,
    /// Downscaling method (for example `"gaussian"`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub downscale_type: Option<String>,
    /// Free-form description of the downscaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Multiscale {
    /// The scale vector of dataset `index`, if that dataset exists.
    #[must_use]
    pub fn dataset_scale(&self, index: usize) -> Option<&[f64]> {
        self.datasets.get(index).and_then(Dataset::scale)
    }

    /// The physical size of one pixel of dataset `index` along each axis:
    /// the dataset's scale times the multiscale-level scale, if any.
    ///
    /// This is what a BIDS sidecar's `PixelSize` should match at level 0.
    #[must_use]
    pub fn pixel_size(&self, index: usize) -> Option<Vec<f64>> {
        let own = self.dataset_scale(index)?;
        let common = self
            .coordinate_transformations
            .iter()
            .flatten()
            .find_map(|t| match t {
                CoordinateTransformation::Scale(s) => Some(s.scale.as_slice()),
                CoordinateTransformation::Translation(_) => None,
            });
        Some(match common {
            Some(c) if c.len() == own.len() => own.iter().zip(c).map(|(a, b)| a * b).collect(),
            _ => own.to_vec(),
        })
    }

    /// Position of the axis called `name`.
    #[must_use]
    pub fn axis_index(&self, name: &str) -> Option<usize> {
        self.axes.iter().position(|a| a.name == name)
    }
}

/// An axis of a multiscale image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// Unique name, for example `"x"`.
    pub name: String,
    /// Axis type; absent means an untyped (custom) axis.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub axis_type: Option<AxisType>,
    /// Physical unit, for example `"micrometer"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Axis {
    /// An axis with a name, type and optional unit.
    #[must_use]
    pub fn new(name: impl Into<String>, axis_type: AxisType, unit: Option<&str>) -> Self {
        Axis {
            name: name.into(),
            axis_type: Some(axis_type),
            unit: unit.map(str::to_owned),
            extra: Map::new(),
        }
    }
}

/// The type of an axis.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AxisType {
    /// `"space"`.
    Space,
    /// `"time"`.
    Time,
    /// `"channel"`.
    Channel,
    /// Any other type string.
    Custom(String),
}

impl AxisType {
    /// The type as written in the metadata.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            AxisType::Space => "space",
            AxisType::Time => "time",
            AxisType::Channel => "channel",
            AxisType::Custom(s) => s,
        }
    }

    /// Parses a type string; unknown strings become [`AxisType::Custom`].
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s {
            "space" => AxisType::Space,
            "time" => AxisType::Time,
            "channel" => AxisType::Channel,
            other => AxisType::Custom(other.to_owned()),
        }
    }
}

impl Serialize for AxisType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AxisType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(AxisType::parse(&s))
    }
}

/// One pyramid level: an array path and its transformations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Path of the array relative to the group.
    pub path: String,
    /// Exactly one scale, optionally followed by one translation.
    #[serde(rename = "coordinateTransformations")]
    pub coordinate_transformations: Vec<CoordinateTransformation>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Dataset {
    /// The scale vector of this level (the first `scale` transformation).
    #[must_use]
    pub fn scale(&self) -> Option<&[f64]> {
        self.coordinate_transformations
            .iter()
            .find_map(|t| match t {
                CoordinateTransformation::Scale(s) => Some(s.scale.as_slice()),
                CoordinateTransformation::Translation(_) => None,
            })
    }

    /// The translation vector of this level, if any.
    #[must_use]
    pub fn translation(&self) -> Option<&[f64]> {
        self.coordinate_transformations
            .iter()
            .find_map(|t| match t {
                CoordinateTransformation::Translation(s) => Some(s.translation.as_slice()),
                CoordinateTransformation::Scale(_) => None,
            })
    }
}

/// A coordinate transformation (0.4/0.5 allow `scale` and `translation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CoordinateTransformation {
    /// `{"type": "scale", "scale": [...]}`.
    Scale(Scale),
    /// `{"type": "translation", "translation": [...]}`.
    Translation(Translation),
}

impl CoordinateTransformation {
    /// A scale transformation.
    #[must_use]
    pub fn scale(scale: Vec<f64>) -> Self {
        CoordinateTransformation::Scale(Scale {
            scale,
            extra: Map::new(),
        })
    }

    /// A translation transformation.
    #[must_use]
    pub fn translation(translation: Vec<f64>) -> Self {
        CoordinateTransformation::Translation(Translation {
            translation,
            extra: Map::new(),
        })
    }
}

/// Body of a scale transformation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scale {
    /// One factor per axis.
    pub scale: Vec<f64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of a translation transformation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Translation {
    /// One offset per axis.
    pub translation: Vec<f64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Transitional OMERO rendering metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Omero {
    /// One entry per channel.
    pub channels: Vec<Channel>,
    /// Keys this crate does not model (`id`, `name`, `rdefs`, `version`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Rendering settings of one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Display window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Channel name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Mapping family, for example `"linear"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Colour as six hex digits, for example `"FF0000"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Whether the channel is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Keys this crate does not model (`coefficient`, `inverted`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Display window of a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Start of the displayed range.
    pub start: f64,
    /// Minimum of the data range.
    pub min: f64,
    /// End of the displayed range.
    pub end: f64,
    /// Maximum of the data range.
    pub max: f64,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Marks a multiscale image as a label image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageLabel {
    /// 0.4 only: `"0.4"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Display colours per label value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colors: Option<Vec<LabelColor>>,
    /// Arbitrary properties per label value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Vec<LabelProperty>>,
    /// The image this label image annotates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<LabelSource>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Display colour of one label value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelColor {
    /// The pixel value.
    #[serde(rename = "label-value")]
    pub label_value: Number,
    /// Red, green, blue, alpha (0-255).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_rgba"
    )]
    pub rgba: Option<[u8; 4]>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Properties of one label value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelProperty {
    /// The pixel value.
    #[serde(rename = "label-value")]
    pub label_value: Number,
    /// The properties (any keys).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Reference from a label image to its image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelSource {
    /// Relative path of the image group, for example `"../../"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A high-content screening plate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plate {
    /// 0.4 only: `"0.4"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Plate name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Acquisitions (runs) of the plate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquisitions: Option<Vec<Acquisition>>,
    /// Column names.
    pub columns: Vec<NamedEntry>,
    /// Row names.
    pub rows: Vec<NamedEntry>,
    /// Wells that have data.
    pub wells: Vec<PlateWell>,
    /// Maximum number of fields per well.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_u64"
    )]
    pub field_count: Option<u64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A row or column of a plate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedEntry {
    /// Alphanumeric name.
    pub name: String,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One acquisition of a plate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acquisition {
    /// Identifier, unique within the plate.
    #[serde(deserialize_with = "lenient::u64")]
    pub id: u64,
    /// Maximum number of fields of view in this acquisition.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_u64"
    )]
    pub maximumfieldcount: Option<u64>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Start, epoch time.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_u64"
    )]
    pub starttime: Option<u64>,
    /// End, epoch time.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_u64"
    )]
    pub endtime: Option<u64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A well entry of a plate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateWell {
    /// `"<row>/<column>"`.
    pub path: String,
    /// Index into [`Plate::rows`].
    #[serde(rename = "rowIndex", deserialize_with = "lenient::u64")]
    pub row_index: u64,
    /// Index into [`Plate::columns`].
    #[serde(rename = "columnIndex", deserialize_with = "lenient::u64")]
    pub column_index: u64,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A well: the fields of view imaged in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Well {
    /// 0.4 only: `"0.4"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Fields of view.
    pub images: Vec<WellImage>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One field of view of a well.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WellImage {
    /// Path of the image group, alphanumeric.
    pub path: String,
    /// Acquisition identifier.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub acquisition: Option<i64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// JSON Schema `integer` accepts `1.0`; serde's integers do not. These
/// helpers accept any number with no fractional part that fits the target.
mod lenient {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};
    use serde_json::Number;

    fn to_u64(n: &Number) -> Option<u64> {
        n.as_u64().or_else(|| {
            let f = n.as_f64()?;
            // 2^64 as f64; values below it with no fraction convert exactly.
            (f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f))
                .then_some(f as u64)
        })
    }

    fn to_i64(n: &Number) -> Option<i64> {
        n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            (f.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f))
            .then_some(f as i64)
        })
    }

    pub(super) fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let n = Number::deserialize(d)?;
        to_u64(&n)
            .ok_or_else(|| D::Error::custom(format!("expected a non-negative integer, found {n}")))
    }

    pub(super) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        u64(d).map(Some)
    }

    pub(super) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let n = Number::deserialize(d)?;
        to_i64(&n)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected an integer, found {n}")))
    }

    pub(super) fn opt_rgba<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 4]>, D::Error> {
        let v = Vec::<Number>::deserialize(d)?;
        let mut out = [0u8; 4];
        if v.len() != 4 {
            return Err(D::Error::custom(format!(
                "expected 4 RGBA components, found {}",
                v.len()
            )));
        }
        for (slot, n) in out.iter_mut().zip(&v) {
            *slot = to_u64(n)
                .and_then(|x| u8::try_from(x).ok())
                .ok_or_else(|| D::Error::custom(format!("RGBA component {n} is not in 0..=255")))?;
        }
        Ok(Some(out))
    }
}

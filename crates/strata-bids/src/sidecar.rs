//! Microscopy JSON sidecars: typed fields, unknown fields preserved, and the inheritance
//! principle (sidecars at dataset, subject and session level merged into the file's own).

use crate::error::{Error, Result};
use crate::name::MicrName;
use crate::schema::{self, Condition, Level, generated};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Unit of `PixelSize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PixelSizeUnits {
    /// Millimetre.
    #[serde(rename = "mm")]
    Millimetre,
    /// Micrometre.
    #[serde(rename = "um")]
    Micrometre,
    /// Nanometre.
    #[serde(rename = "nm")]
    Nanometre,
}

impl PixelSizeUnits {
    /// The unit as written in BIDS (`mm`, `um`, `nm`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Millimetre => "mm",
            Self::Micrometre => "um",
            Self::Nanometre => "nm",
        }
    }

    /// Size of one unit in micrometres.
    #[must_use]
    pub fn micrometres(self) -> f64 {
        match self {
            Self::Millimetre => 1000.0,
            Self::Micrometre => 1.0,
            Self::Nanometre => 0.001,
        }
    }
}

/// `SampleEnvironment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SampleEnvironment {
    /// In a living organism.
    #[serde(rename = "in vivo")]
    InVivo,
    /// Outside the organism.
    #[serde(rename = "ex vivo")]
    ExVivo,
    /// In an artificial environment.
    #[serde(rename = "in vitro")]
    InVitro,
}

/// A string or a list of strings (`SampleStaining`, antibodies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

/// The sidecar of a microscopy image (`*_<suffix>.json`).
///
/// Keys BIDS defines are typed; every other key is kept in [`extra`](Self::extra) and written
/// back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MicroscopySidecar {
    /// REQUIRED: `[x, y]` or `[x, y, z]` physical size of a pixel.
    pub pixel_size: Vec<f64>,
    /// REQUIRED: unit of `PixelSize`.
    pub pixel_size_units: PixelSizeUnits,
    /// RECOMMENDED: scanner manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// RECOMMENDED: scanner model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturers_model_name: Option<String>,
    /// RECOMMENDED: scanner serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_serial_number: Option<String>,
    /// RECOMMENDED: station name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station_name: Option<String>,
    /// RECOMMENDED: acquisition software versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_versions: Option<String>,
    /// RECOMMENDED: institution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institution_name: Option<String>,
    /// RECOMMENDED: institution address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institution_address: Option<String>,
    /// RECOMMENDED: department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institutional_department_name: Option<String>,
    /// RECOMMENDED: body part (DICOM Body Part Examined, e.g. `BRAIN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_part: Option<String>,
    /// RECOMMENDED: body part details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_part_details: Option<String>,
    /// OPTIONAL: ontology URI of the body part details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_part_details_ontology: Option<String>,
    /// RECOMMENDED: in vivo, ex vivo or in vitro.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_environment: Option<SampleEnvironment>,
    /// OPTIONAL: embedding medium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_embedding: Option<String>,
    /// OPTIONAL: fixation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_fixation: Option<String>,
    /// RECOMMENDED: staining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_staining: Option<OneOrMany>,
    /// RECOMMENDED: primary antibody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_primary_antibody: Option<OneOrMany>,
    /// RECOMMENDED: secondary antibody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_secondary_antibody: Option<OneOrMany>,
    /// OPTIONAL: slice thickness in micrometres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice_thickness: Option<f64>,
    /// OPTIONAL: tissue deformation scaling factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tissue_deformation_scaling: Option<f64>,
    /// OPTIONAL: extraction protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_extraction_protocol: Option<String>,
    /// OPTIONAL: extraction institution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_extraction_institution: Option<String>,
    /// OPTIONAL: immersion medium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immersion: Option<String>,
    /// OPTIONAL: numerical aperture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerical_aperture: Option<f64>,
    /// OPTIONAL: magnification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub magnification: Option<f64>,
    /// OPTIONAL: acquisition protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_acquisition_protocol: Option<String>,
    /// OPTIONAL: other acquisition parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_acquisition_parameters: Option<String>,
    /// RECOMMENDED with `chunk-<index>`: 3x3 (2-D) or 4x4 (3-D) affine of the chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_transformation_matrix: Option<Vec<Vec<f64>>>,
    /// REQUIRED when `ChunkTransformationMatrix` is present: its axes, e.g. `["Z", "Y", "X"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_transformation_matrix_axis: Option<Vec<String>>,
    /// Keys BIDS does not define here, preserved on round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MicroscopySidecar {
    /// A sidecar with the required fields only.
    #[must_use]
    pub fn new(pixel_size: Vec<f64>, pixel_size_units: PixelSizeUnits) -> Self {
        Self {
            pixel_size,
            pixel_size_units,
            manufacturer: None,
            manufacturers_model_name: None,
            device_serial_number: None,
            station_name: None,
            software_versions: None,
            institution_name: None,
            institution_address: None,
            institutional_department_name: None,
            body_part: None,
            body_part_details: None,
            body_part_details_ontology: None,
            sample_environment: None,
            sample_embedding: None,
            sample_fixation: None,
            sample_staining: None,
            sample_primary_antibody: None,
            sample_secondary_antibody: None,
            slice_thickness: None,
            tissue_deformation_scaling: None,
            sample_extraction_protocol: None,
            sample_extraction_institution: None,
            immersion: None,
            numerical_aperture: None,
            magnification: None,
            image_acquisition_protocol: None,
            other_acquisition_parameters: None,
            chunk_transformation_matrix: None,
            chunk_transformation_matrix_axis: None,
            extra: Map::new(),
        }
    }

    /// Parses a sidecar from JSON text and checks it.
    ///
    /// # Errors
    /// [`Error::Json`] for malformed JSON or wrong types, [`Error::Invalid`] for rule breaks.
    pub fn from_json(text: &str) -> Result<Self> {
        let s: Self = serde_json::from_str(text).map_err(|source| Error::Json {
            path: "sidecar".into(),
            source,
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Renders the sidecar as pretty JSON.
    ///
    /// # Errors
    /// [`Error::Invalid`] if it breaks a rule (it is never written that way).
    pub fn to_json(&self) -> Result<String> {
        self.validate()?;
        serde_json::to_string_pretty(self).map_err(|source| Error::Json {
            path: "sidecar".into(),
            source,
        })
    }

    /// Checks every field against the schema's value rules and the cross-field rules.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field and the problem.
    pub fn validate(&self) -> Result<()> {
        let value = serde_json::to_value(self).map_err(|source| Error::Json {
            path: "sidecar".into(),
            source,
        })?;
        let violations = check_fields(value.as_object().unwrap_or(&Map::new()));
        if let Some((field, message)) = violations.into_iter().next() {
            return Err(Error::Invalid {
                what: field,
                message,
            });
        }
        if self.chunk_transformation_matrix.is_some()
            && self.chunk_transformation_matrix_axis.is_none()
        {
            return Err(Error::Invalid {
                what: "ChunkTransformationMatrixAxis".into(),
                message: "required when ChunkTransformationMatrix is present; name its axes, e.g. [\"Y\", \"X\"]".into(),
            });
        }
        if let (Some(m), Some(axis)) = (
            &self.chunk_transformation_matrix,
            &self.chunk_transformation_matrix_axis,
        ) && m.len() != axis.len() + 1
        {
            return Err(Error::Invalid {
                what: "ChunkTransformationMatrixAxis".into(),
                message: format!(
                    "{} axes for a {}x{} matrix; an affine over n axes is (n+1)x(n+1)",
                    axis.len(),
                    m.len(),
                    m.len()
                ),
            });
        }
        Ok(())
    }
}

/// Checks every key of a sidecar object that BIDS defines against its value schema.
/// Returns `(field, message)` for each violation.
#[must_use]
pub fn check_fields(obj: &Map<String, Value>) -> Vec<(String, String)> {
    obj.iter()
        .filter(|(k, _)| {
            generated::MICR_SIDECAR_FIELDS
                .iter()
                .any(|f| f.name == k.as_str())
        })
        .filter_map(|(k, v)| {
            let s = schema::metadata_schema(k)?;
            schema::check_value(s, v, k).err().map(|m| (k.clone(), m))
        })
        .collect()
}

/// The sidecar field rules that apply to a file, given its name and merged sidecar.
pub fn applicable_rules<'a>(
    name: &'a MicrName,
    sidecar: &'a Map<String, Value>,
) -> impl Iterator<Item = &'static schema::FieldRule> + 'a {
    generated::MICR_SIDECAR_FIELDS.iter().filter(move |rule| {
        rule.when.iter().all(|c| match c {
            Condition::NotPhoto => !name.suffix.is_photo(),
            Condition::Photo => name.suffix.is_photo(),
            Condition::HasChunk => name.chunk.is_some(),
            Condition::HasChunkTransformationMatrix => {
                sidecar.contains_key("ChunkTransformationMatrix")
            }
        })
    })
}

/// Fields a file's merged sidecar lacks, with their levels (required first).
#[must_use]
pub fn missing_fields(name: &MicrName, sidecar: &Map<String, Value>) -> Vec<(&'static str, Level)> {
    let mut out: Vec<(&'static str, Level)> = applicable_rules(name, sidecar)
        .filter(|r| matches!(r.level, Level::Required | Level::Recommended))
        .filter(|r| !sidecar.contains_key(r.name))
        .map(|r| (r.name, r.level))
        .collect();
    out.sort_by_key(|(_, l)| *l);
    out
}

/// True if a sidecar named `candidate` (a file name without folders) applies to `data` under
/// the inheritance principle: same suffix, `.json`, and every entity it has equals the data's.
#[must_use]
pub fn sidecar_applies(candidate: &str, data: &MicrName) -> bool {
    let Some(stem) = candidate.strip_suffix(".json") else {
        return false;
    };
    let (entities, suffix) = stem.rsplit_once('_').unwrap_or(("", stem));
    if suffix != data.suffix.as_str() {
        return false;
    }
    entities.split('_').filter(|p| !p.is_empty()).all(|part| {
        part.split_once('-')
            .is_some_and(|(k, v)| data.get(k) == Some(v))
    })
}

/// Merges sidecars from the top of the dataset down: later layers override earlier keys.
#[must_use]
pub fn merge(layers: &[Map<String, Value>]) -> Map<String, Value> {
    let mut out = Map::new();
    for layer in layers {
        for (k, v) in layer {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_round_trip() {
        let text = r#"{"PixelSize":[0.5,0.5],"PixelSizeUnits":"um","Manufacturer":"Acme","ScannerLamp":{"hours":12}}"#;
        let s = MicroscopySidecar::from_json(text).expect("valid");
        assert_eq!(s.manufacturer.as_deref(), Some("Acme"));
        assert_eq!(s.extra.get("ScannerLamp"), Some(&json!({"hours": 12})));
        let back: Value = serde_json::from_str(&s.to_json().expect("json")).expect("parse");
        let orig: Value = serde_json::from_str(text).expect("parse");
        assert_eq!(back, orig);
    }

    #[test]
    fn rule_breaks_are_named() {
        let bad_unit = r#"{"PixelSize":[1,1],"PixelSizeUnits":"cm"}"#;
        assert!(MicroscopySidecar::from_json(bad_unit).is_err());
        let missing = r#"{"PixelSizeUnits":"um"}"#;
        let e = MicroscopySidecar::from_json(missing)
            .expect_err("missing")
            .to_string();
        assert!(e.contains("PixelSize"), "{e}");
        let neg = r#"{"PixelSize":[-1,1],"PixelSizeUnits":"um"}"#;
        let e = MicroscopySidecar::from_json(neg)
            .expect_err("negative")
            .to_string();
        assert!(e.contains("PixelSize"), "{e}");
        let no_axis = r#"{"PixelSize":[1,1],"PixelSizeUnits":"um","ChunkTransformationMatrix":[[1,0,0],[0,1,0],[0,0,1]]}"#;
        let e = MicroscopySidecar::from_json(no_axis)
            .expect_err("axis")
            .to_string();
        assert!(e.contains("ChunkTransformationMatrixAxis"), "{e}");
        let with_axis = r#"{"PixelSize":[1,1],"PixelSizeUnits":"um","ChunkTransformationMatrix":[[1,0,0],[0,1,0],[0,0,1]],"ChunkTransformationMatrixAxis":["Y","X"]}"#;
        assert!(MicroscopySidecar::from_json(with_axis).is_ok());
    }

    #[test]
    fn inheritance() {
        let data: MicrName = "sub-01_ses-01_sample-A_BF.ome.zarr".parse().expect("name");
        assert!(sidecar_applies("BF.json", &data));
        assert!(sidecar_applies("sample-A_BF.json", &data));
        assert!(sidecar_applies("sub-01_ses-01_sample-A_BF.json", &data));
        assert!(!sidecar_applies("sample-B_BF.json", &data));
        assert!(!sidecar_applies("sample-A_SEM.json", &data));
        let top = json!({"PixelSize": [1, 1], "PixelSizeUnits": "um", "Manufacturer": "A"});
        let leaf = json!({"Manufacturer": "B"});
        let merged = merge(&[
            top.as_object().cloned().unwrap_or_default(),
            leaf.as_object().cloned().unwrap_or_default(),
        ]);
        assert_eq!(merged.get("Manufacturer"), Some(&json!("B")));
        assert_eq!(merged.get("PixelSizeUnits"), Some(&json!("um")));
        assert!(
            missing_fields(&data, &merged)
                .iter()
                .all(|(_, l)| *l != Level::Required)
        );
        let missing = missing_fields(&data, &Map::new());
        assert_eq!(missing[0], ("PixelSize", Level::Required));
    }
}

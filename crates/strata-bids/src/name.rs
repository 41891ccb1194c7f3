//! Microscopy file names: `sub-<label>[_ses-<label>]_sample-<label>[_acq-<label>][_stain-<label>]
//! [_run-<index>][_chunk-<index>]_<suffix><extension>`.
//!
//! Entity order, which entities a suffix allows, the suffixes and the extensions all come from
//! the generated schema tables. Labels are `[0-9a-zA-Z+]+` and indices `[0-9]+`, so a parsed or
//! built name can never hold `/`, `..` or an absolute path.

use crate::schema::{EntityFormat, Level, entity_by_key, generated};
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The datatype folder of microscopy files.
pub const DATATYPE: &str = "micr";

/// Returns true if `s` is a valid BIDS label (`[0-9a-zA-Z+]+`).
#[must_use]
pub fn is_label(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+')
}

/// Returns true if `s` is a valid BIDS index (`[0-9]+`).
#[must_use]
pub fn is_index(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Why a file name is not a valid microscopy name. Each variant names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name has no `_<suffix>` part.
    #[error("no `_<suffix>` part: a microscopy name ends in e.g. `_BF.ome.zarr`")]
    NoSuffix,
    /// A part before the suffix is not `key-value`.
    #[error("`{part}` is not an entity: write `key-value`, e.g. `sample-01`")]
    MalformedEntity {
        /// The offending part.
        part: String,
    },
    /// An entity key that BIDS does not define, or does not allow for this file.
    #[error("entity `{key}` is not allowed in a `{suffix}` file name; allowed: {allowed}")]
    EntityNotAllowed {
        /// Entity key.
        key: String,
        /// Suffix of the file.
        suffix: String,
        /// Allowed keys, in order.
        allowed: String,
    },
    /// An entity appears after one that must follow it.
    #[error("entity `{key}` must come before `{after}`; the order is {order}")]
    EntityOutOfOrder {
        /// The misplaced entity key.
        key: String,
        /// The entity it was found after.
        after: String,
        /// The required order.
        order: String,
    },
    /// The same entity appears twice.
    #[error("entity `{key}` appears twice")]
    DuplicateEntity {
        /// Entity key.
        key: String,
    },
    /// A value breaks the entity's grammar.
    #[error("`{key}-{value}`: {key} must be {expected}")]
    InvalidValue {
        /// Entity key.
        key: String,
        /// Offending value.
        value: String,
        /// What the grammar allows.
        expected: &'static str,
    },
    /// A required entity is missing.
    #[error("required entity `{key}-<label>` is missing")]
    MissingEntity {
        /// Entity key.
        key: &'static str,
    },
    /// The suffix is not a microscopy suffix.
    #[error("suffix `{suffix}` is not a microscopy suffix; use one of {allowed}")]
    UnknownSuffix {
        /// Offending suffix.
        suffix: String,
        /// Allowed suffixes.
        allowed: String,
    },
    /// The extension is not allowed for the suffix.
    #[error("extension `{extension}` is not allowed for `{suffix}` files; use one of {allowed}")]
    UnknownExtension {
        /// Offending extension (empty if none).
        extension: String,
        /// Suffix of the file.
        suffix: String,
        /// Allowed extensions.
        allowed: String,
    },
    /// A path component does not fit `sub-<label>/[ses-<label>/]micr/<name>`.
    #[error("path component `{component}` does not fit sub-<label>/[ses-<label>/]micr/<file>")]
    BadLocation {
        /// Offending component.
        component: String,
    },
}

/// A validated BIDS label (`[0-9a-zA-Z+]+`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(String);

impl Label {
    /// Validates a label.
    ///
    /// # Errors
    /// [`NameError::InvalidValue`] if `value` is empty or holds other characters.
    pub fn new(key: &str, value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
        if is_label(&value) {
            Ok(Self(value))
        } else {
            Err(NameError::InvalidValue {
                key: key.to_owned(),
                value,
                expected: "letters, digits or `+` ([0-9a-zA-Z+]+)",
            })
        }
    }

    /// The label text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated BIDS index (`[0-9]+`); leading zeros are kept so names round-trip.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Index(String);

impl Index {
    /// Validates an index.
    ///
    /// # Errors
    /// [`NameError::InvalidValue`] if `value` is empty or not all digits.
    pub fn new(key: &str, value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
        if is_index(&value) {
            Ok(Self(value))
        } else {
            Err(NameError::InvalidValue {
                key: key.to_owned(),
                value,
                expected: "digits ([0-9]+)",
            })
        }
    }

    /// An index from a number, without padding.
    #[must_use]
    pub fn from_number(n: u64) -> Self {
        Self(n.to_string())
    }

    /// The index text, leading zeros included.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The numeric value, or `None` if it does not fit a `u64`.
    #[must_use]
    pub fn value(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A microscopy suffix (`BF`, `SEM`, ...) or `photo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Suffix(&'static str);

impl Suffix {
    /// Brightfield microscopy, the suffix of Strata's whole-slide scans.
    pub const BF: Self = Self("BF");
    /// A photo of the sample.
    pub const PHOTO: Self = Self("photo");

    /// Looks up a suffix in the schema tables.
    ///
    /// # Errors
    /// [`NameError::UnknownSuffix`] if it is not a microscopy suffix nor `photo`.
    pub fn new(s: &str) -> Result<Self, NameError> {
        if s == Self::PHOTO.0 {
            return Ok(Self::PHOTO);
        }
        generated::MICR_SUFFIXES
            .iter()
            .find(|x| **x == s)
            .map(|x| Self(x))
            .ok_or_else(|| NameError::UnknownSuffix {
                suffix: s.to_owned(),
                allowed: format!("{}, photo", generated::MICR_SUFFIXES.join(", ")),
            })
    }

    /// The suffix text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// True for `photo`.
    #[must_use]
    pub fn is_photo(self) -> bool {
        self == Self::PHOTO
    }

    /// Extensions the schema allows for this suffix, without the directory marker `/`.
    pub fn extensions(self) -> impl Iterator<Item = &'static str> {
        let list = if self.is_photo() {
            generated::PHOTO_EXTENSIONS
        } else {
            generated::MICR_EXTENSIONS
        };
        list.iter().map(|e| e.trim_end_matches('/'))
    }

    fn level(self, rule: &crate::schema::EntityRule) -> Level {
        if self.is_photo() {
            rule.photo
        } else {
            rule.micr
        }
    }
}

impl fmt::Display for Suffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A file extension allowed for some microscopy suffix (`.ome.zarr`, `.json`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Extension(&'static str);

impl Extension {
    /// OME-Zarr, a directory that counts as one file.
    pub const OME_ZARR: Self = Self(".ome.zarr");
    /// JSON sidecar.
    pub const JSON: Self = Self(".json");
    /// Plain TIFF.
    pub const TIF: Self = Self(".tif");
    /// OME-TIFF.
    pub const OME_TIF: Self = Self(".ome.tif");

    /// Looks up an extension allowed for `suffix`.
    ///
    /// # Errors
    /// [`NameError::UnknownExtension`] if the schema does not allow it.
    pub fn new(ext: &str, suffix: Suffix) -> Result<Self, NameError> {
        suffix
            .extensions()
            .find(|e| *e == ext)
            .map(Self)
            .ok_or_else(|| NameError::UnknownExtension {
                extension: ext.to_owned(),
                suffix: suffix.as_str().to_owned(),
                allowed: suffix.extensions().collect::<Vec<_>>().join(", "),
            })
    }

    /// The extension text, with its leading dot.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// True if files with this extension are directories (`.ome.zarr`).
    #[must_use]
    pub fn is_directory(self) -> bool {
        generated::MICR_EXTENSIONS
            .iter()
            .any(|e| e.strip_suffix('/') == Some(self.0))
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A parsed microscopy file name.
///
/// ```
/// use strata_bids::name::{MicrName, Suffix, Extension};
/// let n: MicrName = "sub-01_ses-2_sample-0042_stain-HE_BF.ome.zarr".parse()?;
/// assert_eq!(n.sample.as_str(), "0042");
/// assert_eq!(n.suffix, Suffix::BF);
/// assert_eq!(n.extension, Extension::OME_ZARR);
/// assert_eq!(n.relative_path().to_str(), Some("sub-01/ses-2/micr/sub-01_ses-2_sample-0042_stain-HE_BF.ome.zarr"));
/// # Ok::<(), strata_bids::name::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MicrName {
    /// `sub-<label>` (required).
    pub subject: Label,
    /// `ses-<label>`.
    pub session: Option<Label>,
    /// `sample-<label>` (required).
    pub sample: Label,
    /// `acq-<label>`.
    pub acquisition: Option<Label>,
    /// `stain-<label>` (not allowed for photos).
    pub stain: Option<Label>,
    /// `run-<index>` (not allowed for photos).
    pub run: Option<Index>,
    /// `chunk-<index>` (not allowed for photos).
    pub chunk: Option<Index>,
    /// The suffix.
    pub suffix: Suffix,
    /// The extension.
    pub extension: Extension,
}

impl MicrName {
    /// A name with the required entities only.
    #[must_use]
    pub fn new(subject: Label, sample: Label, suffix: Suffix, extension: Extension) -> Self {
        Self {
            subject,
            session: None,
            sample,
            acquisition: None,
            stain: None,
            run: None,
            chunk: None,
            suffix,
            extension,
        }
    }

    /// The entity values present, keyed by entity key, in the specification's order.
    #[must_use]
    pub fn entities(&self) -> Vec<(&'static str, &str)> {
        generated::ENTITIES
            .iter()
            .filter_map(|e| self.get(e.key).map(|v| (e.key, v)))
            .collect()
    }

    /// The value of an entity by key.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        match key {
            "sub" => Some(self.subject.as_str()),
            "ses" => self.session.as_ref().map(Label::as_str),
            "sample" => Some(self.sample.as_str()),
            "acq" => self.acquisition.as_ref().map(Label::as_str),
            "stain" => self.stain.as_ref().map(Label::as_str),
            "run" => self.run.as_ref().map(Index::as_str),
            "chunk" => self.chunk.as_ref().map(Index::as_str),
            _ => None,
        }
    }

    /// The same name with another extension (e.g. the `.json` sidecar of an image).
    #[must_use]
    pub fn with_extension(&self, extension: Extension) -> Self {
        Self {
            extension,
            ..self.clone()
        }
    }

    /// The path relative to the dataset root: `sub-<s>/[ses-<x>/]micr/<name>`.
    #[must_use]
    pub fn relative_path(&self) -> PathBuf {
        let mut p = PathBuf::from(format!("sub-{}", self.subject));
        if let Some(ses) = &self.session {
            p.push(format!("ses-{ses}"));
        }
        p.push(DATATYPE);
        p.push(self.to_string());
        p
    }

    /// Parses a path relative to the dataset root (or a bare file name) and checks that the
    /// folders agree with the name's subject and session.
    ///
    /// # Errors
    /// A [`NameError`] naming the offending part.
    pub fn parse_path(path: &Path) -> Result<Self, NameError> {
        let mut comps = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(s) => comps.push(s.to_string_lossy().into_owned()),
                Component::CurDir => {}
                other => {
                    return Err(NameError::BadLocation {
                        component: other.as_os_str().to_string_lossy().into_owned(),
                    });
                }
            }
        }
        let file = comps.pop().ok_or(NameError::NoSuffix)?;
        let name: Self = file.parse()?;
        if comps.is_empty() {
            return Ok(name);
        }
        let mut expected = vec![format!("sub-{}", name.subject)];
        if let Some(ses) = &name.session {
            expected.push(format!("ses-{ses}"));
        }
        expected.push(DATATYPE.to_owned());
        if comps != expected {
            let component = comps
                .iter()
                .zip(expected.iter().map(Some).chain(std::iter::repeat(None)))
                .find(|(c, e)| Some(*c) != *e)
                .map_or_else(|| comps.join("/"), |(c, _)| c.clone());
            return Err(NameError::BadLocation { component });
        }
        Ok(name)
    }
}

impl fmt::Display for MicrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in self.entities() {
            write!(f, "{key}-{value}_")?;
        }
        write!(f, "{}{}", self.suffix, self.extension)
    }
}

impl std::str::FromStr for MicrName {
    type Err = NameError;

    fn from_str(name: &str) -> Result<Self, NameError> {
        let (entities_part, last) = name.rsplit_once('_').ok_or(NameError::NoSuffix)?;
        let (suffix_text, ext_text) = last.find('.').map_or((last, ""), |i| last.split_at(i));
        let suffix = Suffix::new(suffix_text)?;
        let extension = Extension::new(ext_text, suffix)?;

        let mut values: Vec<Option<String>> = vec![None; generated::ENTITIES.len()];
        let mut last_pos: Option<usize> = None;
        for part in entities_part.split('_') {
            let (key, value) = part
                .split_once('-')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| NameError::MalformedEntity {
                    part: part.to_owned(),
                })?;
            let allowed = || {
                generated::ENTITIES
                    .iter()
                    .filter(|e| suffix.level(e) != Level::NotAllowed)
                    .map(|e| e.key)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let (pos, rule) = entity_by_key(key)
                .filter(|(_, r)| suffix.level(r) != Level::NotAllowed)
                .ok_or_else(|| NameError::EntityNotAllowed {
                    key: key.to_owned(),
                    suffix: suffix.as_str().to_owned(),
                    allowed: allowed(),
                })?;
            if values[pos].is_some() {
                return Err(NameError::DuplicateEntity {
                    key: key.to_owned(),
                });
            }
            if let Some(prev) = last_pos.filter(|p| *p > pos) {
                return Err(NameError::EntityOutOfOrder {
                    key: key.to_owned(),
                    after: generated::ENTITIES[prev].key.to_owned(),
                    order: allowed(),
                });
            }
            let valid = match rule.format {
                EntityFormat::Label => Label::new(key, value).map(|_| ()),
                EntityFormat::Index => Index::new(key, value).map(|_| ()),
            };
            valid?;
            values[pos] = Some(value.to_owned());
            last_pos = Some(pos);
        }
        for (i, rule) in generated::ENTITIES.iter().enumerate() {
            if suffix.level(rule) == Level::Required && values[i].is_none() {
                return Err(NameError::MissingEntity { key: rule.key });
            }
        }
        let take =
            |key: &str| entity_by_key(key).and_then(|(i, _)| values.get(i).cloned().flatten());
        let label = |key: &str| take(key).map(|v| Label::new(key, v)).transpose();
        let index = |key: &str| take(key).map(|v| Index::new(key, v)).transpose();
        Ok(Self {
            subject: label("sub")?.ok_or(NameError::MissingEntity { key: "sub" })?,
            session: label("ses")?,
            sample: label("sample")?.ok_or(NameError::MissingEntity { key: "sample" })?,
            acquisition: label("acq")?,
            stain: label("stain")?,
            run: index("run")?,
            chunk: index("chunk")?,
            suffix,
            extension,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn struct_covers_every_generated_entity() {
        let name: MicrName = "sub-1_ses-2_sample-3_acq-4_stain-5_run-6_chunk-7_BF.tif"
            .parse()
            .expect("full name");
        for e in generated::ENTITIES {
            assert!(name.get(e.key).is_some(), "MicrName lacks entity {}", e.key);
        }
    }

    #[test]
    fn errors_name_the_part() {
        let cases = [
            ("sub-01_sample-A_B_BF.tif", "`B`"),
            ("sub-01_sample-A_ses-01_BF.tif", "`ses`"),
            ("sub-01_sample-A_XYZ.png", "`XYZ`"),
            ("sub-01_sample-A_BF.bmp", "`.bmp`"),
            ("sub-01_sample-A.B_BF.tif", "`sample-A.B`"),
            ("sub-01_BF.tif", "`sample-<label>`"),
            ("sub-01_sample-A_task-rest_BF.tif", "`task`"),
            ("sub-01_sample-A_run-x_BF.tif", "`run-x`"),
            ("sub-01_sample-A_stain-HE_photo.jpg", "`stain`"),
            ("sub-01_sample-A_sample-B_BF.tif", "`sample`"),
            ("BF.tif", "suffix"),
        ];
        for (name, part) in cases {
            let err = name.parse::<MicrName>().expect_err(name).to_string();
            assert!(err.contains(part), "{name}: {err}");
        }
    }

    #[test]
    fn extension_constants_are_in_the_schema() {
        for e in [
            Extension::OME_ZARR,
            Extension::JSON,
            Extension::TIF,
            Extension::OME_TIF,
        ] {
            assert_eq!(Extension::new(e.as_str(), Suffix::BF), Ok(e));
        }
        assert!(Extension::OME_ZARR.is_directory());
        assert!(!Extension::TIF.is_directory());
        for s in [Suffix::BF, Suffix::PHOTO] {
            assert_eq!(Suffix::new(s.as_str()), Ok(s));
        }
    }

    #[test]
    fn location_must_agree() {
        let ok = Path::new("sub-01/ses-02/micr/sub-01_ses-02_sample-A_BF.ome.zarr");
        assert!(MicrName::parse_path(ok).is_ok());
        for bad in [
            "sub-02/ses-02/micr/sub-01_ses-02_sample-A_BF.ome.zarr",
            "sub-01/micr/sub-01_ses-02_sample-A_BF.ome.zarr",
            "sub-01/ses-02/anat/sub-01_ses-02_sample-A_BF.ome.zarr",
            "/sub-01/ses-02/micr/sub-01_ses-02_sample-A_BF.ome.zarr",
            "../sub-01/ses-02/micr/sub-01_ses-02_sample-A_BF.ome.zarr",
        ] {
            assert!(MicrName::parse_path(Path::new(bad)).is_err(), "{bad}");
        }
    }

    fn label() -> impl Strategy<Value = String> {
        "[0-9a-zA-Z+]{1,8}"
    }
    fn index() -> impl Strategy<Value = String> {
        "[0-9]{1,4}"
    }

    fn name() -> impl Strategy<Value = MicrName> {
        let micr_suffix = proptest::sample::select(generated::MICR_SUFFIXES.to_vec());
        (
            (
                label(),
                proptest::option::of(label()),
                label(),
                proptest::option::of(label()),
            ),
            (
                proptest::option::of(label()),
                proptest::option::of(index()),
                proptest::option::of(index()),
            ),
            micr_suffix,
            0usize..8,
        )
            .prop_map(
                |((sub, ses, sample, acq), (stain, run, chunk), suffix, ext)| {
                    let suffix = Suffix::new(suffix).expect("generated suffix");
                    let exts: Vec<&str> = suffix.extensions().collect();
                    let extension = Extension::new(exts[ext % exts.len()], suffix).expect("ext");
                    MicrName {
                        subject: Label::new("sub", sub).expect("label"),
                        session: ses.map(|s| Label::new("ses", s).expect("label")),
                        sample: Label::new("sample", sample).expect("label"),
                        acquisition: acq.map(|s| Label::new("acq", s).expect("label")),
                        stain: stain.map(|s| Label::new("stain", s).expect("label")),
                        run: run.map(|s| Index::new("run", s).expect("index")),
                        chunk: chunk.map(|s| Index::new("chunk", s).expect("index")),
                        suffix,
                        extension,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(n in name()) {
            let text = n.to_string();
            let back: MicrName = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(&back, &n);
            let path = n.relative_path();
            prop_assert_eq!(MicrName::parse_path(&path).ok(), Some(n.clone()));
            for c in path.components() {
                prop_assert!(matches!(c, Component::Normal(_)), "{:?}", path);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<MicrName>();
            let _ = MicrName::parse_path(Path::new(&s));
        }

        #[test]
        fn labels_reject_path_characters(s in "[^0-9a-zA-Z+]{1,4}") {
            prop_assert!(Label::new("sub", s).is_err());
        }
    }
}

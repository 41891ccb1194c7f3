//! Validation of OME-NGFF 0.4 and 0.5 metadata that reports every violation.
//!
//! The validator works on a [`serde_json::Value`], so it can describe
//! documents that the typed model cannot hold (wrong types, missing keys).
//! Each [`Violation`] carries a JSON pointer into the document passed in, a
//! [`Severity`] and a message that says what to change.
//!
//! # What is an error and what is a warning
//!
//! * Everything the published OME-NGFF JSON schemas reject is an
//!   [`Severity::Error`].
//! * Rules the specification states with MUST but the schemas cannot express
//!   are errors too: unique axis names, axis order (time, then channel or
//!   custom, then space), at most one time and one channel/custom axis, one
//!   scale then at most one translation, datasets ordered from high to low
//!   resolution, unique dataset/row/column/well/image paths, well indices inside
//!   the plate, relative dataset paths.
//! * Recommendations (SHOULD) are warnings: units from the UDUNITS-2 lists,
//!   the fields the `strict_*` schemas require (`name`, `type`, `metadata`,
//!   per-object `version` in 0.4, plate `name`, acquisition `name` and
//!   `maximumfieldcount`, label `colors`). With
//!   [`ValidateOptions::strict`] those become errors, as in the strict schemas.
//! * Two MUST rules are warnings for 0.4 input only, because the 0.4
//!   conformance suite accepts documents that break them: a scale or
//!   translation whose length differs from the number of axes (0.4
//!   `image_suite`) and a well path that is not `"<row name>/<column name>"`
//!   (0.4 `plate_suite`). For 0.5 both are errors, as the 0.5 suite expects.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::{Map, Value};

use crate::model::Version;
use crate::units::{is_space_unit, is_time_unit};

/// How serious a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The metadata does not conform; readers may reject it.
    Error,
    /// The metadata conforms but ignores a recommendation.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// What kind of rule a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ViolationKind {
    /// A JSON value has the wrong type (for example a number where a string is required).
    WrongType,
    /// A required key is missing.
    Missing,
    /// A value is not one of the allowed values or outside its range.
    NotAllowed,
    /// An array has too few or too many items.
    Count,
    /// Two items that must differ are equal.
    Duplicate,
    /// A string does not match the required pattern.
    Pattern,
    /// The version is missing, unsupported or inconsistent.
    Version,
    /// Values that must agree with each other do not (lengths, order, indices).
    Inconsistent,
    /// A recommendation of the specification is not followed.
    Recommendation,
    /// Metadata disagrees with the arrays it describes (see [`crate::cross_check`]).
    Data,
}

/// One problem found in the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer (RFC 6901) of the offending value in the document passed in;
    /// `""` is the document itself.
    pub path: String,
    /// Error or warning.
    pub severity: Severity,
    /// The kind of rule broken.
    pub kind: ViolationKind,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(document root)"
        } else {
            &self.path
        };
        write!(f, "{} at {}: {}", self.severity, path, self.message)
    }
}

/// All violations found in one document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Violations in document order.
    pub violations: Vec<Violation>,
}

impl Report {
    /// `true` when there are no errors (warnings are allowed).
    #[must_use]
    pub fn is_valid(&self) -> bool {
        !self
            .violations
            .iter()
            .any(|v| v.severity == Severity::Error)
    }

    /// `true` when there are neither errors nor warnings.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(|v| v.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(|v| v.severity == Severity::Warning)
    }

    /// Appends the violations of `other`.
    pub fn extend(&mut self, other: Report) {
        self.violations.extend(other.violations);
    }

    pub(crate) fn push(
        &mut self,
        path: String,
        severity: Severity,
        kind: ViolationKind,
        message: String,
    ) {
        self.violations.push(Violation {
            path,
            severity,
            kind,
            message,
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.violations.is_empty() {
            return f.write_str("no violations");
        }
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

/// The kind of NGFF group a document is expected to describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupKind {
    /// A multiscale image (`multiscales`).
    Image,
    /// A label image (`image-label`).
    Label,
    /// The `labels` group listing label images.
    Labels,
    /// A plate (`plate`).
    Plate,
    /// A well (`well`).
    Well,
    /// A bioformats2raw container (`bioformats2raw.layout`).
    Bioformats2Raw,
    /// The bioformats2raw `OME` group (`series`).
    Series,
}

impl GroupKind {
    fn key(self) -> &'static str {
        match self {
            GroupKind::Image => "multiscales",
            GroupKind::Label => "image-label",
            GroupKind::Labels => "labels",
            GroupKind::Plate => "plate",
            GroupKind::Well => "well",
            GroupKind::Bioformats2Raw => "bioformats2raw.layout",
            GroupKind::Series => "series",
        }
    }
}

/// Options of [`validate`] and [`validate_zarr_json`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidateOptions {
    /// Version to validate against; `None` detects it (`ome` key: 0.5, otherwise 0.4).
    pub version: Option<Version>,
    /// Kind of group expected; its key becomes required. `None` accepts any
    /// kind and checks every NGFF key present.
    pub kind: Option<GroupKind>,
    /// Treat the fields the `strict_*` schemas require as errors instead of warnings.
    pub strict: bool,
}

impl ValidateOptions {
    /// Default options: detect the version, accept any kind, not strict.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates against `version`.
    #[must_use]
    pub fn version(mut self, version: Version) -> Self {
        self.version = Some(version);
        self
    }

    /// Expects a group of `kind`.
    #[must_use]
    pub fn kind(mut self, kind: GroupKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Sets strict mode.
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }
}

const NGFF_KEYS: [&str; 8] = [
    "multiscales",
    "omero",
    "image-label",
    "labels",
    "plate",
    "well",
    "bioformats2raw.layout",
    "series",
];

/// Detects the version of group attributes (`.zattrs` or `zarr.json` `attributes`).
///
/// An `ome` object means 0.5; otherwise any top-level NGFF key means 0.4.
#[must_use]
pub fn detect_version(attributes: &Value) -> Option<Version> {
    let m = attributes.as_object()?;
    if m.get("ome").is_some_and(Value::is_object) {
        return Some(Version::V0_5);
    }
    NGFF_KEYS
        .iter()
        .any(|k| m.contains_key(*k))
        .then_some(Version::V0_4)
}

/// Validates group attributes: a 0.4 `.zattrs` object or the `attributes` of a
/// 0.5 `zarr.json` (the object holding `ome`).
///
/// Paths in the report are relative to `attributes`.
#[must_use]
pub fn validate(attributes: &Value, options: &ValidateOptions) -> Report {
    let mut v = Validator::new(options);
    v.attributes(attributes, "");
    v.report
}

/// Validates the `zarr.json` of a Zarr v3 group carrying OME-NGFF metadata
/// (0.5 unless [`ValidateOptions::version`] says otherwise).
///
/// Paths in the report are relative to the `zarr.json` document, for example
/// `/attributes/ome/multiscales/0/axes/2/unit`.
#[must_use]
pub fn validate_zarr_json(zarr_json: &Value, options: &ValidateOptions) -> Report {
    let mut opts = options.clone();
    if opts.version.is_none() {
        opts.version = Some(Version::V0_5);
    }
    let mut v = Validator::new(&opts);
    let Some(m) = v.object(zarr_json, "", "a Zarr v3 group zarr.json") else {
        return v.report;
    };
    match m.get("zarr_format") {
        None => v.error(
            "/zarr_format".into(),
            ViolationKind::Missing,
            "missing `zarr_format`; a Zarr v3 zarr.json has \"zarr_format\": 3".into(),
        ),
        Some(f) if f.as_u64() == Some(3) => {}
        Some(f) if f.as_u64() == Some(2) => v.error(
            "/zarr_format".into(),
            ViolationKind::Version,
            "zarr_format is 2; OME-NGFF 0.5 needs Zarr v3 (zarr_format 3); 0.4 metadata of a Zarr v2 group lives in .zattrs".into(),
        ),
        Some(f) => v.error(
            "/zarr_format".into(),
            ViolationKind::NotAllowed,
            format!("zarr_format must be 3, found {}", short(f)),
        ),
    }
    match m.get("node_type") {
        None => v.error(
            "/node_type".into(),
            ViolationKind::Missing,
            "missing `node_type`; NGFF metadata lives on a group: \"node_type\": \"group\"".into(),
        ),
        Some(Value::String(s)) if s == "group" => {}
        Some(Value::String(s)) if s == "array" => v.error(
            "/node_type".into(),
            ViolationKind::NotAllowed,
            "this is an array's zarr.json; OME-NGFF metadata lives in the zarr.json of the enclosing group".into(),
        ),
        Some(other) => v.error(
            "/node_type".into(),
            ViolationKind::NotAllowed,
            format!("node_type must be \"group\", found {}", short(other)),
        ),
    }
    match m.get("attributes") {
        None => v.error(
            "/attributes".into(),
            ViolationKind::Missing,
            "missing `attributes`; OME-NGFF 0.5 metadata lives in attributes.ome".into(),
        ),
        Some(a) => v.attributes(a, "/attributes"),
    }
    v.report
}

pub(crate) fn child(base: &str, key: &str) -> String {
    let mut s = String::with_capacity(base.len() + key.len() + 1);
    s.push_str(base);
    s.push('/');
    for c in key.chars() {
        match c {
            '~' => s.push_str("~0"),
            '/' => s.push_str("~1"),
            c => s.push(c),
        }
    }
    s
}

pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}/{i}")
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a value for messages.
pub(crate) fn short(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let mut out: String = s.chars().take(40).collect();
            if s.chars().count() > 40 {
                out.push_str("...");
            }
            format!("{out:?}")
        }
        Value::Array(_) | Value::Object(_) => type_name(v).to_owned(),
        other => other.to_string(),
    }
}

/// JSON Schema `integer`: a number with no fractional part.
fn as_integer(v: &Value) -> Option<f64> {
    let n = v.as_number()?;
    if n.is_i64() || n.is_u64() {
        return n.as_f64();
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0).then_some(f)
}

/// Canonical text of a value, equal for values JSON Schema considers equal
/// (`1` and `1.0` are equal; object key order does not matter).
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    // Exact: |f| < 2^53.
                    out.push_str(&format!("{}", f as i64));
                } else {
                    out.push_str(&format!("{f:e}"));
                }
            }
        }
        Value::Array(a) => {
            out.push('[');
            for x in a {
                canonical(x, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Object(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            out.push('{');
            for (k, x) in sorted {
                out.push_str(&format!("{k:?}:"));
                canonical(x, out);
                out.push(',');
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Pairs `(first, duplicate)` of indices of equal items.
/// Above this many items, duplicates are found by hashing canonical forms; below it, by
/// comparing pairs (no allocation: the arrays of real metadata hold a handful of items).
const PAIRWISE_ITEMS: usize = 32;

/// A number as JSON Schema compares numbers: by value, so `1` equals `1.0` (the same rule
/// as [`canonical`]).
#[derive(PartialEq)]
enum NumberKey {
    Int(i128),
    Float(u64),
}

fn number_key(n: &serde_json::Number) -> NumberKey {
    if let Some(i) = n.as_i64() {
        NumberKey::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        NumberKey::Int(i128::from(u))
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            // Exact: |f| < 2^53.
            NumberKey::Int(f as i128)
        } else {
            NumberKey::Float(f.to_bits())
        }
    }
}

/// Equality of JSON values as `uniqueItems` defines it: numbers by value, objects whatever
/// their key order.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_key(x) == number_key(y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Pairs `(first, i)`: item `i` equals the earlier item `first` (its first occurrence).
fn duplicates(items: &[Value]) -> Vec<(usize, usize)> {
    if items.len() <= PAIRWISE_ITEMS {
        return (1..items.len())
            .filter_map(|i| {
                (0..i)
                    .find(|&j| json_equal(&items[j], &items[i]))
                    .map(|j| (j, i))
            })
            .collect();
    }
    duplicates_hashed(items)
}

/// [`duplicates`] by hashing each item's canonical form.
fn duplicates_hashed(items: &[Value]) -> Vec<(usize, usize)> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut key = String::new();
        canonical(item, &mut key);
        match seen.get(&key) {
            Some(&first) => out.push((first, i)),
            None => {
                seen.insert(key, i);
            }
        }
    }
    out
}

fn is_alnum(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Axis class for ordering: 0 time, 1 channel or custom, 2 space.
fn axis_rank(axis_type: Option<&str>) -> u8 {
    match axis_type {
        Some("time") => 0,
        Some("space") => 2,
        _ => 1,
    }
}

struct AxisInfo {
    name: Option<String>,
    axis_type: Option<String>,
}

struct Validator<'o> {
    opts: &'o ValidateOptions,
    version: Version,
    report: Report,
}

impl<'o> Validator<'o> {
    fn new(opts: &'o ValidateOptions) -> Self {
        Validator {
            opts,
            version: opts.version.unwrap_or(Version::V0_5),
            report: Report::default(),
        }
    }

    fn v04(&self) -> bool {
        self.version == Version::V0_4
    }

    fn error(&mut self, path: String, kind: ViolationKind, message: String) {
        self.report.push(path, Severity::Error, kind, message);
    }

    fn warn(&mut self, path: String, kind: ViolationKind, message: String) {
        self.report.push(path, Severity::Warning, kind, message);
    }

    /// Error for 0.5, warning for 0.4 (rules the 0.4 suite does not enforce).
    fn error_from_05(&mut self, path: String, kind: ViolationKind, message: String) {
        if self.v04() {
            self.warn(
                path,
                kind,
                format!("{message} (accepted in 0.4, an error from 0.5 on)"),
            );
        } else {
            self.error(path, kind, message);
        }
    }

    /// A field the strict schemas require.
    fn recommended(&mut self, m: &Map<String, Value>, base: &str, key: &str, what: &str) {
        if !m.contains_key(key) {
            let severity = if self.opts.strict {
                Severity::Error
            } else {
                Severity::Warning
            };
            self.report.push(
                child(base, key),
                severity,
                ViolationKind::Missing,
                format!("missing `{key}`: {what} should have it (required by the strict schema)"),
            );
        }
    }

    fn object<'a>(
        &mut self,
        v: &'a Value,
        path: &str,
        what: &str,
    ) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.error(
                    path.to_owned(),
                    ViolationKind::WrongType,
                    format!("{what} must be an object, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn array<'a>(&mut self, v: &'a Value, path: &str, what: &str) -> Option<&'a Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            other => {
                self.error(
                    path.to_owned(),
                    ViolationKind::WrongType,
                    format!("{what} must be an array, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn required<'a>(
        &mut self,
        m: &'a Map<String, Value>,
        base: &str,
        key: &str,
        what: &str,
    ) -> Option<&'a Value> {
        let v = m.get(key);
        if v.is_none() {
            self.error(
                child(base, key),
                ViolationKind::Missing,
                format!("missing required key `{key}` in {what}"),
            );
        }
        v
    }

    /// Checks an optional string; returns it if present and a string.
    fn opt_string<'a>(
        &mut self,
        m: &'a Map<String, Value>,
        base: &str,
        key: &str,
    ) -> Option<&'a str> {
        match m.get(key)? {
            Value::String(s) => Some(s),
            other => {
                self.error(
                    child(base, key),
                    ViolationKind::WrongType,
                    format!("`{key}` must be a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn req_string<'a>(
        &mut self,
        m: &'a Map<String, Value>,
        base: &str,
        key: &str,
        what: &str,
    ) -> Option<&'a str> {
        self.required(m, base, key, what)?;
        self.opt_string(m, base, key)
    }

    /// Checks an optional integer with a lower bound (inclusive or exclusive)
    /// that must fit the model's integer type.
    fn opt_integer(
        &mut self,
        m: &Map<String, Value>,
        base: &str,
        key: &str,
        minimum: Option<(f64, bool)>,
    ) -> Option<f64> {
        let v = m.get(key)?;
        let path = child(base, key);
        let Some(i) = as_integer(v) else {
            self.error(
                path,
                ViolationKind::WrongType,
                format!("`{key}` must be an integer, found {}", short(v)),
            );
            return None;
        };
        if let Some((min, exclusive)) = minimum {
            if (exclusive && i <= min) || (!exclusive && i < min) {
                let bound = if exclusive {
                    format!("greater than {min}")
                } else {
                    format!("at least {min}")
                };
                self.error(
                    path,
                    ViolationKind::NotAllowed,
                    format!("`{key}` must be {bound}, found {}", short(v)),
                );
                return None;
            }
            if i >= 18_446_744_073_709_551_616.0 {
                self.error(
                    path,
                    ViolationKind::NotAllowed,
                    format!("`{key}` is too large ({}); the maximum is 2^64-1", short(v)),
                );
                return None;
            }
        } else if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&i) {
            self.error(
                path,
                ViolationKind::NotAllowed,
                format!("`{key}` is out of the 64-bit integer range ({})", short(v)),
            );
            return None;
        }
        Some(i)
    }

    /// Checks `version` of a 0.4 sub-object, or a stray `version` in 0.5.
    fn sub_version(&mut self, m: &Map<String, Value>, base: &str, what: &str) {
        let path = child(base, "version");
        if self.v04() {
            match m.get("version") {
                None => self.recommended(m, base, "version", what),
                Some(Value::String(s)) if s == "0.4" => {}
                Some(Value::String(s)) if s == "0.5" => self.error(
                    path,
                    ViolationKind::Version,
                    format!("version \"0.5\" in 0.4 metadata: in 0.5 the version is attributes.ome.version of a Zarr v3 zarr.json; for a .zattrs file write \"0.4\" in {what}"),
                ),
                Some(Value::String(s)) => self.error(
                    path,
                    ViolationKind::Version,
                    format!("unsupported version {s:?} in {what}; supported are \"0.4\" (.zattrs) and \"0.5\" (zarr.json)"),
                ),
                Some(other) => self.error(
                    path,
                    ViolationKind::WrongType,
                    format!("version must be the string \"0.4\", found {}", short(other)),
                ),
            }
        } else if let Some(v) = m.get("version") {
            if !v.is_string() {
                // Readers type `version` as a string in every NGFF version;
                // a number or object here is not a harmless leftover.
                self.error(
                    path,
                    ViolationKind::WrongType,
                    format!(
                        "`version` inside {what} must be a string, found {}; remove it (0.5 uses attributes.ome.version only)",
                        short(v)
                    ),
                );
                return;
            }
            let msg = if v.as_str() == Some("0.5") {
                format!(
                    "`version` inside {what} is a 0.4 leftover; 0.5 readers use attributes.ome.version only"
                )
            } else {
                format!(
                    "`version` {} inside {what} conflicts with attributes.ome.version \"0.5\"; remove it",
                    short(v)
                )
            };
            self.warn(path, ViolationKind::Version, msg);
        }
    }

    fn attributes(&mut self, doc: &Value, base: &str) {
        let Some(root) = self.object(doc, base, "group attributes") else {
            return;
        };
        let detected = detect_version(doc);
        let version = match (self.opts.version, detected) {
            (Some(v), _) | (None, Some(v)) => v,
            (None, None) => {
                self.error(
                    base.to_owned(),
                    ViolationKind::Missing,
                    "no OME-NGFF metadata: expected `ome` (0.5, zarr.json attributes) or one of multiscales, plate, well, image-label, labels, bioformats2raw.layout, series (0.4, .zattrs)".into(),
                );
                return;
            }
        };
        self.version = version;
        match version {
            Version::V0_5 => {
                let legacy: Vec<&str> = NGFF_KEYS
                    .iter()
                    .copied()
                    .filter(|k| root.contains_key(*k))
                    .collect();
                let Some(ome_value) = root.get("ome") else {
                    let hint = if legacy.is_empty() {
                        String::new()
                    } else {
                        "; the keys found look like OME-NGFF 0.4 (.zattrs), which upgrade_zattrs converts".to_owned()
                    };
                    self.error(
                        child(base, "ome"),
                        ViolationKind::Missing,
                        format!(
                            "missing `ome`: OME-NGFF 0.5 metadata lives under attributes.ome{hint}"
                        ),
                    );
                    return;
                };
                let ome_path = child(base, "ome");
                for k in legacy {
                    self.warn(
                        child(base, k),
                        ViolationKind::Version,
                        format!("`{k}` outside `ome` is 0.4 layout; 0.5 readers ignore it, move it into attributes.ome"),
                    );
                }
                let Some(ome) = self.object(ome_value, &ome_path, "`ome`") else {
                    return;
                };
                let vpath = child(&ome_path, "version");
                match ome.get("version") {
                    None => self.error(
                        vpath,
                        ViolationKind::Missing,
                        "missing `version` in `ome`; write \"version\": \"0.5\"".into(),
                    ),
                    Some(Value::String(s)) if s == "0.5" => {}
                    Some(Value::String(s)) if s == "0.4" => self.error(
                        vpath,
                        ViolationKind::Version,
                        "version \"0.4\" under `ome`: 0.4 metadata has no `ome` namespace (it lives in .zattrs); under `ome` the version must be \"0.5\"".into(),
                    ),
                    Some(other) => self.error(
                        vpath,
                        ViolationKind::Version,
                        format!("unsupported version {} under `ome`; this validator supports \"0.5\" here (and 0.4 in .zattrs)", short(other)),
                    ),
                }
                self.ngff_keys(ome, &ome_path);
            }
            Version::V0_4 => {
                if root.contains_key("ome") {
                    self.warn(
                        child(base, "ome"),
                        ViolationKind::Version,
                        "`ome` is the 0.5 namespace; validating the top-level keys as 0.4".into(),
                    );
                }
                if let Some(v) = root.get("version").filter(|v| !v.is_string()) {
                    // 0.4 puts versions inside each object; a top-level
                    // `version` is tolerated only in the string form readers expect.
                    self.error(
                        child(base, "version"),
                        ViolationKind::WrongType,
                        format!(
                            "top-level `version` must be a string, found {}; in 0.4 the version belongs inside each multiscale, plate, well and image-label",
                            short(v)
                        ),
                    );
                }
                self.ngff_keys(root, base);
            }
        }
    }

    fn ngff_keys(&mut self, m: &Map<String, Value>, base: &str) {
        if let Some(kind) = self.opts.kind {
            let key = kind.key();
            if !m.contains_key(key) {
                self.error(
                    child(base, key),
                    ViolationKind::Missing,
                    format!("missing `{key}`, required for a {kind:?} group"),
                );
            }
        } else if !NGFF_KEYS.iter().any(|k| m.contains_key(*k)) {
            self.error(
                base.to_owned(),
                ViolationKind::Missing,
                "no OME-NGFF content: expected one of multiscales, plate, well, image-label, labels, bioformats2raw.layout, series".into(),
            );
        }
        if let Some(v) = m.get("multiscales") {
            self.multiscales(v, &child(base, "multiscales"));
        }
        if let Some(v) = m.get("omero") {
            self.omero(v, &child(base, "omero"));
            if !m.contains_key("multiscales") {
                self.warn(
                    child(base, "omero"),
                    ViolationKind::Inconsistent,
                    "`omero` describes channels of a multiscale image, but this group has no `multiscales`".into(),
                );
            }
        }
        if let Some(v) = m.get("image-label") {
            self.image_label(v, &child(base, "image-label"));
            if !m.contains_key("multiscales") {
                self.warn(
                    child(base, "image-label"),
                    ViolationKind::Inconsistent,
                    "a label image is a multiscale image: this group should also have `multiscales`".into(),
                );
            }
        }
        if let Some(v) = m.get("labels") {
            self.string_list(v, &child(base, "labels"), "labels", true);
        }
        if let Some(v) = m.get("plate") {
            self.plate(v, &child(base, "plate"));
        }
        if let Some(v) = m.get("well") {
            self.well(v, &child(base, "well"));
        }
        if let Some(v) = m.get("bioformats2raw.layout") {
            let path = child(base, "bioformats2raw.layout");
            match v.as_f64() {
                Some(3.0) => {}
                Some(_) => self.error(
                    path,
                    ViolationKind::NotAllowed,
                    format!("bioformats2raw.layout must be 3, found {}", short(v)),
                ),
                None => self.error(
                    path,
                    ViolationKind::WrongType,
                    format!(
                        "bioformats2raw.layout must be the number 3, found {}",
                        type_name(v)
                    ),
                ),
            }
        }
        if let Some(v) = m.get("series") {
            self.string_list(v, &child(base, "series"), "series", false);
        }
    }

    fn string_list(&mut self, v: &Value, path: &str, what: &str, unique: bool) {
        let Some(a) = self.array(v, path, &format!("`{what}`")) else {
            return;
        };
        for (i, item) in a.iter().enumerate() {
            if !item.is_string() {
                self.error(
                    index(path, i),
                    ViolationKind::WrongType,
                    format!(
                        "entries of `{what}` must be strings, found {}",
                        type_name(item)
                    ),
                );
            }
        }
        if unique {
            for (first, dup) in duplicates(a) {
                self.error(
                    index(path, dup),
                    ViolationKind::Duplicate,
                    format!("duplicate entry (same as entry {first})"),
                );
            }
        }
    }

    fn unique_items(&mut self, a: &[Value], path: &str, what: &str) {
        for (first, dup) in duplicates(a) {
            self.error(
                index(path, dup),
                ViolationKind::Duplicate,
                format!("{what} {dup} is identical to {what} {first}; entries must be unique"),
            );
        }
    }

    fn multiscales(&mut self, v: &Value, path: &str) {
        let Some(a) = self.array(v, path, "`multiscales`") else {
            return;
        };
        if a.is_empty() {
            self.error(
                path.to_owned(),
                ViolationKind::Count,
                "`multiscales` is empty; it must list at least one multiscale image".into(),
            );
        }
        self.unique_items(a, path, "multiscale");
        for (i, item) in a.iter().enumerate() {
            self.multiscale(item, &index(path, i));
        }
    }

    fn multiscale(&mut self, v: &Value, path: &str) {
        let Some(m) = self.object(v, path, "a multiscale") else {
            return;
        };
        self.opt_string(m, path, "name");
        self.recommended(m, path, "name", "a multiscale");
        self.sub_version(m, path, "a multiscale");
        self.opt_string(m, path, "type");
        self.recommended(m, path, "type", "a multiscale (downscaling method)");
        match m.get("metadata") {
            None => self.recommended(m, path, "metadata", "a multiscale (downscaling details)"),
            Some(Value::Object(_)) => {}
            Some(other) => self.error(
                child(path, "metadata"),
                ViolationKind::WrongType,
                format!("`metadata` must be an object, found {}", type_name(other)),
            ),
        }
        let axes = self
            .required(m, path, "axes", "a multiscale")
            .and_then(|a| self.axes(a, &child(path, "axes")));
        let naxes = axes.as_ref().map(Vec::len).filter(|n| (2..=5).contains(n));
        let mut scales: Vec<Option<Vec<f64>>> = Vec::new();
        if let Some(d) = self.required(m, path, "datasets", "a multiscale") {
            let dpath = child(path, "datasets");
            if let Some(datasets) = self.array(d, &dpath, "`datasets`") {
                if datasets.is_empty() {
                    self.error(
                        dpath.clone(),
                        ViolationKind::Count,
                        "`datasets` is empty; list at least one array (the full-resolution level)"
                            .into(),
                    );
                }
                let mut paths: HashMap<&str, usize> = HashMap::new();
                for (i, ds) in datasets.iter().enumerate() {
                    let ipath = index(&dpath, i);
                    let Some(dm) = self.object(ds, &ipath, "a dataset") else {
                        scales.push(None);
                        continue;
                    };
                    if let Some(p) = self.req_string(dm, &ipath, "path", "a dataset") {
                        self.dataset_path(p, &child(&ipath, "path"));
                        if let Some(first) = paths.insert(p, i) {
                            self.error(
                                child(&ipath, "path"),
                                ViolationKind::Duplicate,
                                format!("dataset path {p:?} is already used by dataset {first}; each level needs its own array"),
                            );
                        }
                    }
                    let scale = self
                        .required(dm, &ipath, "coordinateTransformations", "a dataset")
                        .and_then(|ct| {
                            self.transformations(
                                ct,
                                &child(&ipath, "coordinateTransformations"),
                                naxes,
                            )
                        });
                    scales.push(scale);
                }
            }
        }
        if let Some(ct) = m.get("coordinateTransformations") {
            self.transformations(ct, &child(path, "coordinateTransformations"), naxes);
        }
        // Levels from high to low resolution: scales of space axes must not shrink.
        if let Some(axes) = &axes {
            for i in 1..scales.len() {
                let (Some(Some(prev)), Some(Some(cur))) = (scales.get(i - 1), scales.get(i)) else {
                    continue;
                };
                for (k, axis) in axes.iter().enumerate() {
                    if axis.axis_type.as_deref() != Some("space") {
                        continue;
                    }
                    if let (Some(p), Some(c)) = (prev.get(k), cur.get(k))
                        && c < p
                    {
                        let name = axis.name.as_deref().unwrap_or("?");
                        self.error(
                                format!("{path}/datasets/{i}/coordinateTransformations"),
                                ViolationKind::Inconsistent,
                                format!("dataset {i} has a finer scale on axis `{name}` ({c}) than dataset {} ({p}); order datasets from the highest to the lowest resolution", i - 1),
                            );
                    }
                }
            }
        }
    }

    fn dataset_path(&mut self, p: &str, path: &str) {
        let bad = p.is_empty()
            || p.starts_with('/')
            || p.contains('\\')
            || p.split('/')
                .any(|seg| seg.is_empty() || seg == "." || seg == "..");
        if bad {
            self.error(
                path.to_owned(),
                ViolationKind::Pattern,
                format!("dataset path {p:?} must be a relative path inside the group (non-empty segments separated by '/', no '.', '..' or leading '/')"),
            );
        }
    }

    fn axes(&mut self, v: &Value, path: &str) -> Option<Vec<AxisInfo>> {
        let a = self.array(v, path, "`axes`")?;
        if a.len() < 2 || a.len() > 5 {
            self.error(
                path.to_owned(),
                ViolationKind::Count,
                format!(
                    "an image has 2 to 5 axes (at most t, c, z, y, x), found {}",
                    a.len()
                ),
            );
        }
        self.unique_items(a, path, "axis");
        // The schema's `contains`: objects whose name (if any) is a string,
        // type (if any) is "space" and unit (if any) is a string.
        let loose_space = a
            .iter()
            .filter(|x| {
                x.as_object().is_some_and(|o| {
                    o.get("name").is_none_or(Value::is_string)
                        && o.get("type").is_none_or(|t| t.as_str() == Some("space"))
                        && o.get("unit").is_none_or(Value::is_string)
                })
            })
            .count();
        let schema_space_ok = (2..=3).contains(&loose_space);
        if !a.is_empty() && !schema_space_ok {
            self.error(
                path.to_owned(),
                ViolationKind::Count,
                format!("an image needs 2 or 3 axes of type \"space\" (e.g. y, x or z, y, x), found {loose_space}"),
            );
        }
        let mut infos = Vec::with_capacity(a.len());
        let mut ok = true;
        for (i, item) in a.iter().enumerate() {
            let ipath = index(path, i);
            let Some(m) = self.object(item, &ipath, "an axis") else {
                ok = false;
                infos.push(AxisInfo {
                    name: None,
                    axis_type: None,
                });
                continue;
            };
            let name = self.req_string(m, &ipath, "name", "an axis");
            if name.is_none() {
                ok = false;
            }
            let axis_type = self.opt_string(m, &ipath, "type");
            if m.get("type").is_some() && axis_type.is_none() {
                ok = false;
            }
            let unit = self.opt_string(m, &ipath, "unit");
            if m.contains_key("units") && !m.contains_key("unit") {
                self.warn(
                    child(&ipath, "units"),
                    ViolationKind::Recommendation,
                    "unknown key `units`; the NGFF key is `unit`, readers ignore `units`".into(),
                );
            }
            if let Some(u) = unit {
                match axis_type {
                    Some("space") if !is_space_unit(u) => self.warn(
                        child(&ipath, "unit"),
                        ViolationKind::Recommendation,
                        format!("unit {u:?} of a space axis is not a UDUNITS-2 length unit; use e.g. \"micrometer\", \"nanometer\", \"millimeter\""),
                    ),
                    Some("time") if !is_time_unit(u) => self.warn(
                        child(&ipath, "unit"),
                        ViolationKind::Recommendation,
                        format!("unit {u:?} of a time axis is not a UDUNITS-2 time unit; use e.g. \"second\", \"millisecond\""),
                    ),
                    _ => {}
                }
            }
            infos.push(AxisInfo {
                name: name.map(str::to_owned),
                axis_type: axis_type.map(str::to_owned),
            });
        }
        if !ok {
            return None;
        }
        // Specification rules beyond the schema.
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, info) in infos.iter().enumerate() {
            if let Some(n) = info.name.as_deref()
                && let Some(first) = names.insert(n, i)
            {
                self.error(
                        child(&index(path, i), "name"),
                        ViolationKind::Duplicate,
                        format!("axis name {n:?} is also the name of axis {first}; axis names must be unique"),
                    );
            }
        }
        let explicit_space = infos
            .iter()
            .filter(|x| x.axis_type.as_deref() == Some("space"))
            .count();
        if schema_space_ok && !(2..=3).contains(&explicit_space) {
            self.error(
                path.to_owned(),
                ViolationKind::Count,
                format!("an image needs 2 or 3 axes with \"type\": \"space\", found {explicit_space} (untyped axes are custom axes)"),
            );
        }
        let time = infos
            .iter()
            .filter(|x| x.axis_type.as_deref() == Some("time"))
            .count();
        if time > 1 {
            self.error(
                path.to_owned(),
                ViolationKind::Count,
                format!("at most one axis may have type \"time\", found {time}"),
            );
        }
        let other = infos
            .iter()
            .filter(|x| axis_rank(x.axis_type.as_deref()) == 1)
            .count();
        if other > 1 {
            self.error(
                path.to_owned(),
                ViolationKind::Count,
                format!("at most one axis may be a channel or custom axis, found {other}"),
            );
        }
        for i in 1..infos.len() {
            let (Some(prev), Some(cur)) = (infos.get(i - 1), infos.get(i)) else {
                continue;
            };
            if axis_rank(cur.axis_type.as_deref()) < axis_rank(prev.axis_type.as_deref()) {
                self.error(
                    index(path, i),
                    ViolationKind::Inconsistent,
                    format!(
                        "axis {:?} ({}) comes after axis {:?} ({}); order axes as time, then channel or custom, then space (e.g. t, c, z, y, x)",
                        cur.name.as_deref().unwrap_or("?"),
                        cur.axis_type.as_deref().unwrap_or("untyped"),
                        prev.name.as_deref().unwrap_or("?"),
                        prev.axis_type.as_deref().unwrap_or("untyped"),
                    ),
                );
            }
        }
        Some(infos)
    }

    /// Validates a `coordinateTransformations` list; returns the scale vector if valid.
    fn transformations(&mut self, v: &Value, path: &str, naxes: Option<usize>) -> Option<Vec<f64>> {
        let a = self.array(v, path, "`coordinateTransformations`")?;
        if a.is_empty() {
            self.error(
                path.to_owned(),
                ViolationKind::Count,
                "`coordinateTransformations` is empty; it needs exactly one scale (optionally followed by one translation)".into(),
            );
            return None;
        }
        let vector_ok = |x: Option<&Value>| {
            x.is_none_or(|s| {
                s.as_array()
                    .is_some_and(|s| s.len() >= 2 && s.iter().all(Value::is_number))
            })
        };
        let contains = a
            .iter()
            .filter(|x| {
                x.as_object().is_some_and(|o| {
                    o.get("type").is_none_or(|t| t.as_str() == Some("scale"))
                        && vector_ok(o.get("scale"))
                })
            })
            .count();
        if contains == 0 {
            self.error(
                path.to_owned(),
                ViolationKind::Count,
                "no scale transformation; add exactly one {\"type\": \"scale\", \"scale\": [...]} with one factor per axis".into(),
            );
        } else if contains > 1 {
            self.error(
                path.to_owned(),
                ViolationKind::Count,
                format!("{contains} scale transformations; exactly one is allowed"),
            );
        }
        let mut scale: Option<Vec<f64>> = None;
        let mut seen_scale = false;
        let mut translations = 0usize;
        let mut all_ok = true;
        for (i, item) in a.iter().enumerate() {
            let ipath = index(path, i);
            let Some(m) = self.object(item, &ipath, "a coordinate transformation") else {
                all_ok = false;
                continue;
            };
            let Some(t) = self.req_string(m, &ipath, "type", "a coordinate transformation") else {
                all_ok = false;
                continue;
            };
            let key = match t {
                "scale" => "scale",
                "translation" => "translation",
                other => {
                    all_ok = false;
                    self.error(
                        child(&ipath, "type"),
                        ViolationKind::NotAllowed,
                        format!("transformation type {other:?} is not allowed here; OME-NGFF 0.4/0.5 datasets use \"scale\" and \"translation\""),
                    );
                    continue;
                }
            };
            if key == "scale" {
                seen_scale = true;
            }
            let Some(vec) = self.vector(m, &ipath, key) else {
                all_ok = false;
                continue;
            };
            if let Some(n) = naxes
                && vec.len() != n
            {
                self.error_from_05(
                    child(&ipath, key),
                    ViolationKind::Inconsistent,
                    format!(
                        "{key} has {} values but the image has {n} axes; give one value per axis",
                        vec.len()
                    ),
                );
            }
            if key == "scale" {
                for (k, x) in vec.iter().enumerate() {
                    if *x <= 0.0 {
                        self.warn(
                            format!("{ipath}/scale/{k}"),
                            ViolationKind::Recommendation,
                            format!("scale factor {x} is not positive; pixel sizes are positive"),
                        );
                    }
                }
                if scale.is_none() {
                    scale = Some(vec);
                }
            } else {
                translations += 1;
                if translations > 1 {
                    self.error(
                        ipath.clone(),
                        ViolationKind::Count,
                        "more than one translation; at most one is allowed".into(),
                    );
                }
                if !seen_scale && contains >= 1 {
                    self.error(
                        ipath,
                        ViolationKind::Inconsistent,
                        "translation comes before scale; the scale must be listed first".into(),
                    );
                }
            }
        }
        if all_ok && contains == 1 { scale } else { None }
    }

    fn vector(&mut self, m: &Map<String, Value>, base: &str, key: &str) -> Option<Vec<f64>> {
        let v = self.required(m, base, key, &format!("a {key} transformation"))?;
        let path = child(base, key);
        let a = self.array(v, &path, &format!("`{key}`"))?;
        let mut out = Vec::with_capacity(a.len());
        let mut ok = true;
        for (i, x) in a.iter().enumerate() {
            match x.as_f64() {
                Some(f) => out.push(f),
                None => {
                    ok = false;
                    self.error(
                        index(&path, i),
                        ViolationKind::WrongType,
                        format!("{key} values must be numbers, found {}", short(x)),
                    );
                }
            }
        }
        if a.len() < 2 {
            ok = false;
            self.error(
                path,
                ViolationKind::Count,
                format!(
                    "{key} needs one value per axis (at least 2), found {}",
                    a.len()
                ),
            );
        }
        ok.then_some(out)
    }

    fn omero(&mut self, v: &Value, path: &str) {
        let Some(m) = self.object(v, path, "`omero`") else {
            return;
        };
        let Some(c) = self.required(m, path, "channels", "`omero`") else {
            return;
        };
        let cpath = child(path, "channels");
        let Some(channels) = self.array(c, &cpath, "`channels`") else {
            return;
        };
        for (i, ch) in channels.iter().enumerate() {
            let ipath = index(&cpath, i);
            let Some(cm) = self.object(ch, &ipath, "a channel") else {
                continue;
            };
            match cm.get("window") {
                None if self.v04() => self.error(
                    child(&ipath, "window"),
                    ViolationKind::Missing,
                    "missing required key `window` in a 0.4 omero channel (start, min, end, max)"
                        .into(),
                ),
                None => {}
                Some(w) => {
                    let wpath = child(&ipath, "window");
                    if let Some(wm) = self.object(w, &wpath, "`window`") {
                        for key in ["start", "min", "end", "max"] {
                            if let Some(x) = self.required(wm, &wpath, key, "`window`")
                                && !x.is_number()
                            {
                                self.error(
                                    child(&wpath, key),
                                    ViolationKind::WrongType,
                                    format!("window `{key}` must be a number, found {}", short(x)),
                                );
                            }
                        }
                    }
                }
            }
            self.opt_string(cm, &ipath, "label");
            self.opt_string(cm, &ipath, "family");
            if self.v04() {
                self.required(cm, &ipath, "color", "a 0.4 omero channel");
            }
            if let Some(color) = self.opt_string(cm, &ipath, "color")
                && !(color.len() == 6 && color.chars().all(|c| c.is_ascii_hexdigit()))
            {
                self.warn(
                    child(&ipath, "color"),
                    ViolationKind::Recommendation,
                    format!("color {color:?} should be six hex digits RRGGBB, e.g. \"FF0000\""),
                );
            }
            if let Some(x) = cm.get("active")
                && !x.is_boolean()
            {
                self.error(
                    child(&ipath, "active"),
                    ViolationKind::WrongType,
                    format!("`active` must be true or false, found {}", short(x)),
                );
            }
        }
    }

    fn image_label(&mut self, v: &Value, path: &str) {
        let Some(m) = self.object(v, path, "`image-label`") else {
            return;
        };
        self.sub_version(m, path, "`image-label`");
        self.recommended(m, path, "colors", "`image-label`");
        if let Some(c) = m.get("colors") {
            let cpath = child(path, "colors");
            if let Some(colors) = self.array(c, &cpath, "`colors`") {
                if colors.is_empty() {
                    self.error(
                        cpath.clone(),
                        ViolationKind::Count,
                        "`colors` is empty; list at least one label value or omit the key".into(),
                    );
                }
                self.unique_items(colors, &cpath, "color entry");
                let mut values: HashMap<String, usize> = HashMap::new();
                for (i, item) in colors.iter().enumerate() {
                    let ipath = index(&cpath, i);
                    let Some(cm) = self.object(item, &ipath, "a color entry") else {
                        continue;
                    };
                    if let Some(lv) = self.required(cm, &ipath, "label-value", "a color entry") {
                        match lv.as_number() {
                            None => self.error(
                                child(&ipath, "label-value"),
                                ViolationKind::WrongType,
                                format!("`label-value` must be a number, found {}", short(lv)),
                            ),
                            Some(n) => {
                                if as_integer(lv).is_none() {
                                    self.warn(
                                        child(&ipath, "label-value"),
                                        ViolationKind::Recommendation,
                                        format!("label value {n} is not an integer; label images hold integers"),
                                    );
                                }
                                let mut key = String::new();
                                canonical(lv, &mut key);
                                if let Some(first) = values.insert(key, i) {
                                    self.warn(
                                        child(&ipath, "label-value"),
                                        ViolationKind::Duplicate,
                                        format!("label value {n} already has a color (entry {first}); readers will pick one"),
                                    );
                                }
                            }
                        }
                    }
                    if let Some(rgba) = cm.get("rgba") {
                        let rpath = child(&ipath, "rgba");
                        if let Some(ra) = self.array(rgba, &rpath, "`rgba`") {
                            if ra.len() != 4 {
                                self.error(
                                    rpath.clone(),
                                    ViolationKind::Count,
                                    format!("`rgba` needs exactly 4 integers (red, green, blue, alpha), found {}", ra.len()),
                                );
                            }
                            for (k, x) in ra.iter().enumerate() {
                                match as_integer(x) {
                                    Some(c) if (0.0..=255.0).contains(&c) => {}
                                    _ => self.error(
                                        index(&rpath, k),
                                        ViolationKind::NotAllowed,
                                        format!(
                                            "RGBA components are integers from 0 to 255, found {}",
                                            short(x)
                                        ),
                                    ),
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(p) = m.get("properties") {
            let ppath = child(path, "properties");
            if let Some(props) = self.array(p, &ppath, "`properties`") {
                if props.is_empty() {
                    self.error(
                        ppath.clone(),
                        ViolationKind::Count,
                        "`properties` is empty; list at least one label value or omit the key"
                            .into(),
                    );
                }
                self.unique_items(props, &ppath, "property entry");
                for (i, item) in props.iter().enumerate() {
                    let ipath = index(&ppath, i);
                    let Some(pm) = self.object(item, &ipath, "a property entry") else {
                        continue;
                    };
                    if let Some(lv) = self.required(pm, &ipath, "label-value", "a property entry")
                        && as_integer(lv).is_none()
                    {
                        self.error(
                            child(&ipath, "label-value"),
                            ViolationKind::WrongType,
                            format!("`label-value` must be an integer, found {}", short(lv)),
                        );
                    }
                }
            }
        }
        if let Some(s) = m.get("source") {
            let spath = child(path, "source");
            if let Some(sm) = self.object(s, &spath, "`source`") {
                self.opt_string(sm, &spath, "image");
            }
        }
    }

    fn names(
        &mut self,
        m: &Map<String, Value>,
        base: &str,
        key: &str,
    ) -> Option<Vec<Option<String>>> {
        let v = self.required(m, base, key, "a plate")?;
        let path = child(base, key);
        let a = self.array(v, &path, &format!("`{key}`"))?;
        if a.is_empty() {
            self.error(
                path.clone(),
                ViolationKind::Count,
                format!("`{key}` is empty; a plate has at least one"),
            );
        }
        self.unique_items(a, &path, &format!("{key} entry"));
        let mut out = Vec::with_capacity(a.len());
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, item) in a.iter().enumerate() {
            let ipath = index(&path, i);
            let Some(im) = self.object(item, &ipath, &format!("a {key} entry")) else {
                out.push(None);
                continue;
            };
            let name = self.req_string(im, &ipath, "name", &format!("a {key} entry"));
            if let Some(n) = name {
                if !is_alnum(n) {
                    self.error(
                        child(&ipath, "name"),
                        ViolationKind::Pattern,
                        format!("name {n:?} must be alphanumeric (A-Z, a-z, 0-9)"),
                    );
                }
                if let Some(first) = seen.insert(n, i) {
                    self.error(
                        child(&ipath, "name"),
                        ViolationKind::Duplicate,
                        format!("name {n:?} is also used by entry {first}; names must be unique"),
                    );
                }
            }
            out.push(name.map(str::to_owned));
        }
        Some(out)
    }

    fn plate(&mut self, v: &Value, path: &str) {
        let Some(m) = self.object(v, path, "`plate`") else {
            return;
        };
        self.sub_version(m, path, "`plate`");
        self.opt_string(m, path, "name");
        self.recommended(m, path, "name", "a plate");
        self.opt_integer(m, path, "field_count", Some((0.0, true)));
        if let Some(acq) = m.get("acquisitions") {
            let apath = child(path, "acquisitions");
            if let Some(a) = self.array(acq, &apath, "`acquisitions`") {
                let mut ids: HashMap<String, usize> = HashMap::new();
                for (i, item) in a.iter().enumerate() {
                    let ipath = index(&apath, i);
                    let Some(am) = self.object(item, &ipath, "an acquisition") else {
                        continue;
                    };
                    if self.required(am, &ipath, "id", "an acquisition").is_some()
                        && let Some(id) = self.opt_integer(am, &ipath, "id", Some((0.0, false)))
                        && let Some(first) = ids.insert(format!("{id}"), i)
                    {
                        self.error(
                                    child(&ipath, "id"),
                                    ViolationKind::Duplicate,
                                    format!("acquisition id {id} is also used by acquisition {first}; ids must be unique within the plate"),
                                );
                    }
                    self.opt_integer(am, &ipath, "maximumfieldcount", Some((0.0, true)));
                    self.recommended(am, &ipath, "maximumfieldcount", "an acquisition");
                    self.opt_string(am, &ipath, "name");
                    self.recommended(am, &ipath, "name", "an acquisition");
                    self.opt_string(am, &ipath, "description");
                    self.opt_integer(am, &ipath, "starttime", Some((0.0, false)));
                    self.opt_integer(am, &ipath, "endtime", Some((0.0, false)));
                }
            }
        }
        let columns = self.names(m, path, "columns");
        let rows = self.names(m, path, "rows");
        let Some(w) = self.required(m, path, "wells", "a plate") else {
            return;
        };
        let wpath = child(path, "wells");
        let Some(wells) = self.array(w, &wpath, "`wells`") else {
            return;
        };
        if wells.is_empty() {
            self.error(
                wpath.clone(),
                ViolationKind::Count,
                "`wells` is empty; list the wells that hold images".into(),
            );
        }
        self.unique_items(wells, &wpath, "well");
        let mut paths: HashMap<&str, usize> = HashMap::new();
        for (i, item) in wells.iter().enumerate() {
            let ipath = index(&wpath, i);
            let Some(wm) = self.object(item, &ipath, "a well entry") else {
                continue;
            };
            let wp = self.req_string(wm, &ipath, "path", "a well entry");
            if let Some(p) = wp {
                let ok = p
                    .split_once('/')
                    .is_some_and(|(r, c)| is_alnum(r) && is_alnum(c));
                if !ok {
                    self.error(
                        child(&ipath, "path"),
                        ViolationKind::Pattern,
                        format!("well path {p:?} must be \"<row>/<column>\" with alphanumeric names, e.g. \"A/1\""),
                    );
                }
                if let Some(first) = paths.insert(p, i) {
                    self.error(
                        child(&ipath, "path"),
                        ViolationKind::Duplicate,
                        format!("well path {p:?} is also used by well {first}"),
                    );
                }
            }
            let has_row = self
                .required(wm, &ipath, "rowIndex", "a well entry")
                .is_some();
            let ri = if has_row {
                self.opt_integer(wm, &ipath, "rowIndex", Some((0.0, false)))
            } else {
                None
            };
            let has_col = self
                .required(wm, &ipath, "columnIndex", "a well entry")
                .is_some();
            let ci = if has_col {
                self.opt_integer(wm, &ipath, "columnIndex", Some((0.0, false)))
            } else {
                None
            };
            let row = self.lookup(rows.as_deref(), ri, &child(&ipath, "rowIndex"), "rows");
            let col = self.lookup(
                columns.as_deref(),
                ci,
                &child(&ipath, "columnIndex"),
                "columns",
            );
            if let (Some(p), Some(r), Some(c)) = (wp, row, col) {
                let expected = format!("{r}/{c}");
                if p != expected {
                    self.error_from_05(
                        child(&ipath, "path"),
                        ViolationKind::Inconsistent,
                        format!("well path {p:?} does not match its row and column: rowIndex and columnIndex name {expected:?}"),
                    );
                }
            }
        }
    }

    fn lookup(
        &mut self,
        names: Option<&[Option<String>]>,
        idx: Option<f64>,
        path: &str,
        what: &str,
    ) -> Option<String> {
        let (names, idx) = (names?, idx?);
        let found = if idx >= 0.0 && idx < names.len() as f64 {
            names.get(idx as usize)
        } else {
            None
        };
        match found {
            Some(n) => n.clone(),
            None => {
                self.error(
                    path.to_owned(),
                    ViolationKind::Inconsistent,
                    format!(
                        "index {idx} is outside `{what}`, which has {} entries",
                        names.len()
                    ),
                );
                None
            }
        }
    }

    fn well(&mut self, v: &Value, path: &str) {
        let Some(m) = self.object(v, path, "`well`") else {
            return;
        };
        self.sub_version(m, path, "`well`");
        let Some(imgs) = self.required(m, path, "images", "`well`") else {
            return;
        };
        let ipath = child(path, "images");
        let Some(images) = self.array(imgs, &ipath, "`images`") else {
            return;
        };
        if images.is_empty() {
            self.error(
                ipath.clone(),
                ViolationKind::Count,
                "`images` is empty; list the fields of view of this well".into(),
            );
        }
        self.unique_items(images, &ipath, "image");
        let mut paths: HashMap<&str, usize> = HashMap::new();
        for (i, item) in images.iter().enumerate() {
            let p = index(&ipath, i);
            let Some(im) = self.object(item, &p, "a well image") else {
                continue;
            };
            if let Some(s) = self.req_string(im, &p, "path", "a well image") {
                if !is_alnum(s) {
                    self.error(
                        child(&p, "path"),
                        ViolationKind::Pattern,
                        format!("field path {s:?} must be alphanumeric, e.g. \"0\""),
                    );
                }
                if let Some(first) = paths.insert(s, i) {
                    self.error(
                        child(&p, "path"),
                        ViolationKind::Duplicate,
                        format!("field path {s:?} is also used by image {first}"),
                    );
                }
            }
            self.opt_integer(im, &p, "acquisition", None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{duplicates, duplicates_hashed};
    use serde_json::{Value, json};

    /// Comparing pairs finds exactly the duplicates hashing canonical forms finds: numbers by
    /// value, objects in any key order, nested arrays.
    #[test]
    fn pairwise_and_hashed_duplicates_agree() {
        let pool = [
            json!(1),
            json!(1.0),
            json!(-0.0),
            json!(0),
            json!(2.5),
            json!(u64::MAX),
            json!("1"),
            json!(null),
            json!([1, 2]),
            json!([1.0, 2]),
            json!([2, 1]),
            json!({"a": 1, "b": [true]}),
            json!({"b": [true], "a": 1.0}),
            json!({"a": 1}),
        ];
        // Every sequence of 4 items drawn from the pool, by a fixed stride walk.
        for start in 0..pool.len() {
            for stride in 1..pool.len() {
                let items: Vec<Value> = (0..4)
                    .map(|k| pool[(start + k * stride) % pool.len()].clone())
                    .collect();
                assert_eq!(duplicates(&items), duplicates_hashed(&items), "{items:?}");
            }
        }
        let items = vec![json!({"a": 1, "b": 2}), json!(3), json!({"b": 2.0, "a": 1})];
        assert_eq!(duplicates(&items), vec![(0, 2)]);
    }
}

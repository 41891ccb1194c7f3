//! Cross-checks of NGFF metadata against the metadata of the arrays it names.
//!
//! Pure: the caller reads each dataset's `zarr.json` (Zarr v3) or `.zarray`
//! (Zarr v2), turns it into an [`ArraySummary`] with
//! [`ArraySummary::from_json`], and passes the summaries in.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{Axis, Multiscale, Omero};
use crate::read::GroupMetadata;
use crate::validate::{Report, Severity, ViolationKind, child, index, short, type_name};

/// What the cross-check needs to know about one array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArraySummary {
    /// Zarr format of the array (2 or 3).
    pub zarr_format: u8,
    /// Shape, one extent per dimension.
    pub shape: Vec<u64>,
    /// Data type in Zarr v3 spelling (`"uint8"`, `"float32"`, ...); Zarr v2
    /// dtypes are translated (`"<u2"` becomes `"uint16"`), others kept verbatim.
    pub data_type: String,
    /// Zarr v3 `dimension_names` (entries may be null), if present.
    pub dimension_names: Option<Vec<Option<String>>>,
}

impl ArraySummary {
    /// Summarises a Zarr v3 array `zarr.json` or a Zarr v2 `.zarray` document.
    ///
    /// # Errors
    ///
    /// [`Error::ArrayMetadata`] naming the JSON path of a missing or malformed key.
    pub fn from_json(value: &Value) -> Result<Self> {
        let m = value.as_object().ok_or_else(|| {
            bad(
                "",
                format!(
                    "array metadata must be an object, found {}",
                    type_name(value)
                ),
            )
        })?;
        let format = match m.get("zarr_format").and_then(Value::as_u64) {
            Some(2) => 2u8,
            Some(3) => 3u8,
            _ => {
                return Err(bad(
                    "/zarr_format",
                    format!(
                        "zarr_format must be 2 (.zarray) or 3 (zarr.json), found {}",
                        m.get("zarr_format")
                            .map_or_else(|| "nothing".to_owned(), short)
                    ),
                ));
            }
        };
        if format == 3 {
            match m.get("node_type").and_then(Value::as_str) {
                Some("array") => {}
                _ => {
                    return Err(bad(
                        "/node_type",
                        "node_type must be \"array\" for a dataset".to_owned(),
                    ));
                }
            }
        }
        let shape_v = m
            .get("shape")
            .ok_or_else(|| bad("/shape", "missing `shape`".to_owned()))?;
        let shape_a = shape_v.as_array().ok_or_else(|| {
            bad(
                "/shape",
                format!("`shape` must be an array, found {}", type_name(shape_v)),
            )
        })?;
        let mut shape = Vec::with_capacity(shape_a.len());
        for (i, x) in shape_a.iter().enumerate() {
            let n = x.as_u64().ok_or_else(|| {
                bad(
                    &index("/shape", i),
                    format!("extents must be non-negative integers, found {}", short(x)),
                )
            })?;
            shape.push(n);
        }
        let (data_type, dimension_names) = if format == 3 {
            let dt = match m.get("data_type") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Object(o)) => match o.get("name") {
                    Some(Value::String(s)) => s.clone(),
                    _ => {
                        return Err(bad(
                            "/data_type/name",
                            "extension data type needs a string `name`".to_owned(),
                        ));
                    }
                },
                Some(other) => {
                    return Err(bad(
                        "/data_type",
                        format!("`data_type` must be a string, found {}", type_name(other)),
                    ));
                }
                None => return Err(bad("/data_type", "missing `data_type`".to_owned())),
            };
            let names = match m.get("dimension_names") {
                None | Some(Value::Null) => None,
                Some(Value::Array(a)) => {
                    let mut out = Vec::with_capacity(a.len());
                    for (i, x) in a.iter().enumerate() {
                        match x {
                            Value::Null => out.push(None),
                            Value::String(s) => out.push(Some(s.clone())),
                            other => {
                                return Err(bad(
                                    &index("/dimension_names", i),
                                    format!(
                                        "dimension names are strings or null, found {}",
                                        short(other)
                                    ),
                                ));
                            }
                        }
                    }
                    Some(out)
                }
                Some(other) => {
                    return Err(bad(
                        "/dimension_names",
                        format!(
                            "`dimension_names` must be an array, found {}",
                            type_name(other)
                        ),
                    ));
                }
            };
            (dt, names)
        } else {
            let dt = match m.get("dtype") {
                Some(Value::String(s)) => v2_dtype(s),
                Some(other) => other.to_string(),
                None => return Err(bad("/dtype", "missing `dtype`".to_owned())),
            };
            (dt, None)
        };
        Ok(ArraySummary {
            zarr_format: format,
            shape,
            data_type,
            dimension_names,
        })
    }

    /// `true` for signed and unsigned integer data types.
    #[must_use]
    pub fn is_integer(&self) -> bool {
        is_integer_type(&self.data_type)
    }
}

fn bad(pointer: &str, message: String) -> Error {
    Error::ArrayMetadata {
        pointer: pointer.to_owned(),
        message,
    }
}

/// `true` for `int8` ... `int64` and `uint8` ... `uint64`.
#[must_use]
pub fn is_integer_type(data_type: &str) -> bool {
    matches!(
        data_type,
        "int8" | "int16" | "int32" | "int64" | "uint8" | "uint16" | "uint32" | "uint64"
    )
}

/// Translates a Zarr v2 dtype (`"<u2"`, `"|b1"`, ...) to its Zarr v3 name;
/// anything else is returned unchanged.
fn v2_dtype(s: &str) -> String {
    let mut chars = s.chars();
    let (Some(order), Some(kind)) = (chars.next(), chars.next()) else {
        return s.to_owned();
    };
    if !matches!(order, '<' | '>' | '|' | '=') {
        return s.to_owned();
    }
    let size = chars.as_str();
    let name = match (kind, size) {
        ('b', "1") => "bool",
        ('i', "1") => "int8",
        ('i', "2") => "int16",
        ('i', "4") => "int32",
        ('i', "8") => "int64",
        ('u', "1") => "uint8",
        ('u', "2") => "uint16",
        ('u', "4") => "uint32",
        ('u', "8") => "uint64",
        ('f', "2") => "float16",
        ('f', "4") => "float32",
        ('f', "8") => "float64",
        ('c', "8") => "complex64",
        ('c', "16") => "complex128",
        _ => return s.to_owned(),
    };
    name.to_owned()
}

/// Checks every multiscale of `group` against the arrays it names.
///
/// `arrays` maps dataset paths (as written in `datasets[].path`) to the
/// summaries of the arrays found there; a path missing from the map is
/// reported as a missing array. Checks: every dataset path is an array; its
/// rank equals the number of axes; its `dimension_names` (if any) equal the
/// axis names; each level's shape is the previous level's shape divided by
/// the ratio of their scales (rounded up or down); the data type is the same
/// on every level; a label image (`image-label`) has an integer data type;
/// `omero.channels` has one entry per channel.
///
/// Paths in the report point into the group document (`.zattrs` for 0.4,
/// `zarr.json` for 0.5).
#[must_use]
pub fn cross_check(group: &GroupMetadata, arrays: &BTreeMap<String, ArraySummary>) -> Report {
    let mut report = Report::default();
    let ome = group.ome();
    let base = group.ome_pointer();
    let is_label = ome.image_label.is_some();
    for (mi, ms) in ome.multiscales.iter().flatten().enumerate() {
        let mpath = index(&child(base, "multiscales"), mi);
        check_levels(&mut report, &mpath, ms, arrays, is_label);
        if let Some(omero) = &ome.omero {
            check_omero_channels(&mut report, base, omero, ms, arrays);
        }
    }
    report
}

/// Adds an error about the data.
fn error(report: &mut Report, path: String, message: String) {
    report.push(path, Severity::Error, ViolationKind::Data, message);
}

/// A pyramid level that has an array and a scale.
#[derive(Clone, Copy)]
struct Level<'a> {
    /// Position in `datasets`.
    index: usize,
    array: &'a ArraySummary,
    scale: &'a [f64],
}

/// Checks each dataset of one multiscale (at `mpath`) against its array, and each level's
/// shape against the level before it.
fn check_levels(
    report: &mut Report,
    mpath: &str,
    ms: &Multiscale,
    arrays: &BTreeMap<String, ArraySummary>,
    is_label: bool,
) {
    let mut prev: Option<Level<'_>> = None;
    let mut first_dtype: Option<(usize, &str)> = None;
    for (di, ds) in ms.datasets.iter().enumerate() {
        let at = child(&index(&child(mpath, "datasets"), di), "path");
        let Some(arr) = arrays.get(&ds.path) else {
            error(
                report,
                at,
                format!(
                    "dataset path {:?} has no array (no {0}/zarr.json or {0}/.zarray found)",
                    ds.path
                ),
            );
            continue;
        };
        check_rank(report, &at, &ds.path, arr, ms.axes.len());
        check_dimension_names(report, &at, &ds.path, arr, &ms.axes);
        match first_dtype {
            None => first_dtype = Some((di, &arr.data_type)),
            Some((fi, dt)) if dt != arr.data_type => error(
                report,
                at.clone(),
                format!(
                    "array {:?} has data type {} but dataset {fi} has {dt}; all levels must share one data type",
                    ds.path, arr.data_type
                ),
            ),
            Some(_) => {}
        }
        if is_label && !arr.is_integer() {
            error(
                report,
                at.clone(),
                format!(
                    "label image array {:?} has data type {}; label images need an integer data type",
                    ds.path, arr.data_type
                ),
            );
        }
        let Some(scale) = ds.scale() else {
            continue;
        };
        let level = Level {
            index: di,
            array: arr,
            scale,
        };
        if let Some(p) = prev {
            check_downsampling(report, &at, &ms.axes, p, level);
        }
        prev = Some(level);
    }
}

/// The array at `path` (reported at `at`) has one dimension per axis.
fn check_rank(report: &mut Report, at: &str, path: &str, arr: &ArraySummary, naxes: usize) {
    if arr.shape.len() != naxes {
        error(
            report,
            at.to_owned(),
            format!(
                "array {path:?} has {} dimensions but the multiscale has {naxes} axes",
                arr.shape.len()
            ),
        );
    }
}

/// The array's `dimension_names`, if any, equal the axis names; Zarr v3 arrays without them
/// get a warning.
fn check_dimension_names(
    report: &mut Report,
    at: &str,
    path: &str,
    arr: &ArraySummary,
    axes: &[Axis],
) {
    let naxes = axes.len();
    let Some(names) = &arr.dimension_names else {
        if arr.zarr_format == 3 {
            report.push(
                at.to_owned(),
                Severity::Warning,
                ViolationKind::Data,
                format!("array {path:?} has no dimension_names; set them to the axis names"),
            );
        }
        return;
    };
    if names.len() != naxes {
        error(
            report,
            at.to_owned(),
            format!(
                "array {path:?} has {} dimension_names but the multiscale has {naxes} axes",
                names.len()
            ),
        );
        return;
    }
    for (k, (name, axis)) in names.iter().zip(axes).enumerate() {
        if let Some(n) = name
            && *n != axis.name
        {
            error(
                report,
                at.to_owned(),
                format!(
                    "array {path:?} names dimension {k} {n:?} but axis {k} is {:?}; dimension_names must equal the axis names",
                    axis.name
                ),
            );
        }
    }
}

/// Each extent of `level` is the extent of `prev` divided by the ratio of their scales,
/// rounded up or down (checked only when both arrays have one dimension per axis).
fn check_downsampling(
    report: &mut Report,
    at: &str,
    axes: &[Axis],
    prev: Level<'_>,
    level: Level<'_>,
) {
    let naxes = axes.len();
    let (parr, arr) = (prev.array, level.array);
    if parr.shape.len() != arr.shape.len() || arr.shape.len() != naxes {
        return;
    }
    for k in 0..naxes {
        let (Some(&ps), Some(&cs), Some(&pn), Some(&cn)) = (
            prev.scale.get(k),
            level.scale.get(k),
            parr.shape.get(k),
            arr.shape.get(k),
        ) else {
            continue;
        };
        if !(ps.is_finite() && cs.is_finite() && ps > 0.0 && cs > 0.0) {
            continue;
        }
        let ratio = cs / ps;
        let expected = pn as f64 / ratio;
        let lo = (expected - 1e-6).floor().max(0.0);
        let hi = (expected + 1e-6).ceil();
        let got = cn as f64;
        if got < lo || got > hi {
            let name = axes.get(k).map_or("?", |a| a.name.as_str());
            let (di, pi) = (level.index, prev.index);
            error(
                report,
                at.to_owned(),
                format!(
                    "axis {name:?}: level {di} has {cn} pixels, but level {pi} has {pn} and the scale grows by {ratio}, so {lo} to {hi} were expected"
                ),
            );
        }
    }
}

/// `omero.channels` has one entry per element of the channel axis of the multiscale's first
/// level (a warning otherwise).
fn check_omero_channels(
    report: &mut Report,
    base: &str,
    omero: &Omero,
    ms: &Multiscale,
    arrays: &BTreeMap<String, ArraySummary>,
) {
    let Some(ds0) = ms.datasets.first() else {
        return;
    };
    let caxis = ms.axes.iter().position(|a| {
        a.axis_type
            .as_ref()
            .is_some_and(|t| t.as_str() == "channel")
    });
    if let (Some(k), Some(arr)) = (caxis, arrays.get(&ds0.path))
        && let Some(&n) = arr.shape.get(k)
        && omero.channels.len() as u64 != n
    {
        report.push(
            child(&child(base, "omero"), "channels"),
            Severity::Warning,
            ViolationKind::Data,
            format!(
                "omero lists {} channels but the channel axis has {n}",
                omero.channels.len()
            ),
        );
    }
}

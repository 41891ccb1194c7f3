//! Malformed JSON, wrong types, missing keys, huge or negative numbers and
//! wrong versions give errors naming the JSON path, never a panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use strata_ngff::{
    ArraySummary, Error, GroupMetadata, ValidateOptions, Version, cross_check, parse_json,
    read_zarr_json, read_zattrs, upgrade_zattrs, validate, validate_zarr_json,
};

/// Everything a reader of untrusted bytes would call. Panics only when an
/// invariant breaks: metadata that validates must convert to the model.
fn exercise(value: &Value) {
    for opts in [
        ValidateOptions::new(),
        ValidateOptions::new().version(Version::V0_4),
        ValidateOptions::new().version(Version::V0_5).strict(true),
    ] {
        let _ = validate(value, &opts).to_string();
        let _ = validate_zarr_json(value, &opts).to_string();
    }
    if validate(value, &ValidateOptions::new().version(Version::V0_4)).is_valid() {
        if let Err(e) = read_zattrs(value) {
            panic!("valid 0.4 metadata does not read: {e}\n{value}");
        }
        let _ = upgrade_zattrs(value);
    }
    if validate_zarr_json(value, &ValidateOptions::new()).is_valid()
        && let Err(e) = read_zarr_json(value)
    {
        panic!("valid 0.5 metadata does not read: {e}\n{value}");
    }
    let _ = ArraySummary::from_json(value);
    if let Ok(group) = GroupMetadata::from_json(value) {
        let mut arrays = BTreeMap::new();
        for ms in group.ome().multiscales.iter().flatten() {
            for (k, ds) in ms.datasets.iter().enumerate() {
                let n = u64::try_from(k).unwrap_or(0);
                arrays.insert(
                    ds.path.clone(),
                    ArraySummary {
                        zarr_format: 3,
                        shape: ms.axes.iter().map(|_| 1000 >> n.min(9)).collect(),
                        data_type: "uint8".into(),
                        dimension_names: Some(
                            ms.axes.iter().map(|a| Some(a.name.clone())).collect(),
                        ),
                    },
                );
            }
        }
        let _ = cross_check(&group, &arrays).to_string();
        let _ = group.into_v05().to_value();
    }
}

fn error_at(report: &strata_ngff::Report, path: &str) -> bool {
    report.errors().any(|v| v.path == path)
}

fn base_v05() -> Value {
    json!({"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"version": "0.5",
        "multiscales": [{"name": "m", "axes": [
            {"name": "c", "type": "channel"},
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"}],
          "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 0.5, 0.5]}, {"type": "translation", "translation": [0, 0, 0]}]},
            {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]}]}],
        "omero": {"channels": [{"color": "FFFFFF", "window": {"start": 0, "end": 1, "min": 0, "max": 1}}]},
        "image-label": {"colors": [{"label-value": 1, "rgba": [1, 2, 3, 4]}], "properties": [{"label-value": 1}]},
        "plate": {"columns": [{"name": "1"}], "rows": [{"name": "A"}], "wells": [{"path": "A/1", "rowIndex": 0, "columnIndex": 0}],
                  "acquisitions": [{"id": 0, "maximumfieldcount": 1, "starttime": 5}], "field_count": 1},
        "well": {"images": [{"path": "0", "acquisition": 0}]},
        "bioformats2raw.layout": 3, "series": ["0"], "labels": ["cells"]}}})
}

#[test]
fn malformed_json_is_an_error_with_position() {
    for text in [
        "",
        "{",
        "{\"a\": }",
        "[1, 2",
        "nul",
        "{\"a\": 1e999}",
        "\u{0}",
    ] {
        match parse_json(text.as_bytes()) {
            Err(Error::Json { source }) => assert!(source.line() >= 1, "{text:?}"),
            other => panic!("{text:?}: expected a JSON error, got {other:?}"),
        }
    }
    assert!(matches!(
        strata_ngff::parse_json_limited(b"{\"a\": 1}", 4),
        Err(Error::TooLarge { size: 8, limit: 4 })
    ));
    assert!(strata_ngff::parse_json_limited(b"{}", strata_ngff::MAX_METADATA_BYTES).is_ok());
    // Deep nesting hits the parser's recursion limit instead of the stack.
    let deep = "[".repeat(100_000);
    assert!(parse_json(deep.as_bytes()).is_err());
}

#[test]
fn base_document_is_valid() {
    let doc = base_v05();
    let r = validate_zarr_json(&doc, &ValidateOptions::new());
    assert!(r.is_valid(), "{r}");
    exercise(&doc);
}

#[test]
fn wrong_types_and_missing_keys_name_their_path() {
    let ome = "/attributes/ome";
    let cases: Vec<(&str, Value, String)> = vec![
        (
            "/attributes/ome/multiscales/0/axes/1/unit",
            json!(5),
            format!("{ome}/multiscales/0/axes/1/unit"),
        ),
        (
            "/attributes/ome/multiscales/0/axes/2/name",
            json!(null),
            format!("{ome}/multiscales/0/axes/2/name"),
        ),
        (
            "/attributes/ome/multiscales/0/datasets/1/path",
            json!(["1"]),
            format!("{ome}/multiscales/0/datasets/1/path"),
        ),
        (
            "/attributes/ome/multiscales/0/datasets/0/coordinateTransformations/0/scale/2",
            json!("0.5"),
            format!("{ome}/multiscales/0/datasets/0/coordinateTransformations/0/scale/2"),
        ),
        (
            "/attributes/ome/multiscales/0/datasets/0/coordinateTransformations/1/translation",
            json!([0, 0]),
            format!("{ome}/multiscales/0/datasets/0/coordinateTransformations/1/translation"),
        ),
        (
            "/attributes/ome/omero/channels/0/window/max",
            json!("1"),
            format!("{ome}/omero/channels/0/window/max"),
        ),
        (
            "/attributes/ome/image-label/colors/0/rgba/3",
            json!(-1),
            format!("{ome}/image-label/colors/0/rgba/3"),
        ),
        (
            "/attributes/ome/image-label/properties/0/label-value",
            json!(1.5),
            format!("{ome}/image-label/properties/0/label-value"),
        ),
        (
            "/attributes/ome/plate/wells/0/rowIndex",
            json!(1e30),
            format!("{ome}/plate/wells/0/rowIndex"),
        ),
        (
            "/attributes/ome/plate/wells/0/columnIndex",
            json!(-3),
            format!("{ome}/plate/wells/0/columnIndex"),
        ),
        (
            "/attributes/ome/plate/acquisitions/0/starttime",
            json!(-1),
            format!("{ome}/plate/acquisitions/0/starttime"),
        ),
        (
            "/attributes/ome/plate/field_count",
            json!(0),
            format!("{ome}/plate/field_count"),
        ),
        (
            "/attributes/ome/well/images/0/acquisition",
            json!(1e300),
            format!("{ome}/well/images/0/acquisition"),
        ),
        (
            "/attributes/ome/bioformats2raw.layout",
            json!(-3),
            format!("{ome}/bioformats2raw.layout"),
        ),
        (
            "/attributes/ome/series/0",
            json!(0),
            format!("{ome}/series/0"),
        ),
        (
            "/attributes/ome/labels",
            json!("cells"),
            format!("{ome}/labels"),
        ),
        (
            "/attributes/ome/version",
            json!("0.4"),
            format!("{ome}/version"),
        ),
        (
            "/attributes/ome/version",
            json!(0.5),
            format!("{ome}/version"),
        ),
        (
            "/attributes/ome/multiscales/0/version",
            json!("0.3"),
            String::new(),
        ),
        (
            "/attributes/ome/image-label/version",
            json!(-24_153_443_964_046_i64),
            format!("{ome}/image-label/version"),
        ),
        (
            "/attributes/ome/multiscales/0/version",
            json!(false),
            format!("{ome}/multiscales/0/version"),
        ),
        ("/zarr_format", json!(2), "/zarr_format".to_owned()),
        ("/node_type", json!("array"), "/node_type".to_owned()),
        ("/attributes", json!([]), "/attributes".to_owned()),
    ];
    for (pointer, value, expected) in cases {
        let mut doc = base_v05();
        if let Some(slot) = doc.pointer_mut(pointer) {
            *slot = value;
        } else {
            let (parent, key) = pointer.rsplit_once('/').unwrap_or_default();
            let parent = doc.pointer_mut(parent).and_then(Value::as_object_mut);
            parent
                .unwrap_or_else(|| panic!("no parent of {pointer}"))
                .insert(key.to_owned(), value);
        }
        let r = validate_zarr_json(&doc, &ValidateOptions::new());
        if expected.is_empty() {
            // A stray 0.4 version inside a 0.5 multiscale is only a warning.
            assert!(
                r.is_valid()
                    && r.warnings()
                        .any(|w| w.path.ends_with("/multiscales/0/version")),
                "{pointer}: {r}"
            );
        } else {
            assert!(
                error_at(&r, &expected),
                "{pointer}: expected an error at {expected}:\n{r}"
            );
            assert!(
                matches!(read_zarr_json(&doc), Err(Error::Invalid { .. })),
                "{pointer}"
            );
        }
        exercise(&doc);
    }
    // Missing keys.
    for (parent, key) in [
        ("/attributes/ome/multiscales/0", "axes"),
        ("/attributes/ome/multiscales/0", "datasets"),
        (
            "/attributes/ome/multiscales/0/datasets/0",
            "coordinateTransformations",
        ),
        ("/attributes/ome/multiscales/0/datasets/0", "path"),
        ("/attributes/ome/omero", "channels"),
        ("/attributes/ome/plate", "rows"),
        ("/attributes/ome/plate/wells/0", "path"),
        ("/attributes/ome/well", "images"),
        ("/attributes/ome", "version"),
        ("/attributes", "ome"),
        ("", "attributes"),
    ] {
        let mut doc = base_v05();
        let removed = doc
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .and_then(|m| m.remove(key));
        assert!(removed.is_some(), "{parent}/{key}");
        let r = validate_zarr_json(&doc, &ValidateOptions::new());
        assert!(
            error_at(&r, &format!("{parent}/{key}")),
            "{parent}/{key}:\n{r}"
        );
        exercise(&doc);
    }
}

#[test]
fn wrong_versions_in_0_4() {
    for (v, needle) in [("0.5", "0.5"), ("0.3", "unsupported"), ("", "unsupported")] {
        let zattrs = json!({"multiscales": [{"version": v, "axes": [
            {"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}]}]}]});
        let r = validate(&zattrs, &ValidateOptions::new());
        assert!(
            r.errors()
                .any(|e| e.path == "/multiscales/0/version" && e.message.contains(needle)),
            "{v}: {r}"
        );
        assert!(matches!(read_zattrs(&zattrs), Err(Error::Invalid { .. })));
    }
    let r = validate(&json!({"something": 1}), &ValidateOptions::new());
    assert!(error_at(&r, ""), "{r}");
    let r = validate(&json!(42), &ValidateOptions::new());
    assert!(error_at(&r, ""), "{r}");
}

#[test]
fn every_violation_is_reported_not_just_the_first() {
    let mut doc = base_v05();
    for (p, v) in [
        ("/attributes/ome/multiscales/0/axes/1/unit", json!(1)),
        ("/attributes/ome/multiscales/0/datasets/1/path", json!(1)),
        ("/attributes/ome/plate/field_count", json!(-1)),
        ("/attributes/ome/well/images/0/path", json!("a/b")),
    ] {
        if let Some(slot) = doc.pointer_mut(p) {
            *slot = v;
        }
    }
    let r = validate_zarr_json(&doc, &ValidateOptions::new());
    // The non-string unit also leaves the image with one usable space axis.
    assert_eq!(r.errors().count(), 5, "{r}");
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("0.4"),
            Just("0.5"),
            Just("space"),
            Just("time"),
            Just("channel"),
            Just("scale"),
            Just("translation"),
            Just("A/1"),
            Just("0"),
            Just("micrometer"),
            Just(""),
            Just("../x")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
        "[a-z0-9/.]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("ome"),
                        Just("version"),
                        Just("multiscales"),
                        Just("axes"),
                        Just("datasets"),
                        Just("name"),
                        Just("type"),
                        Just("unit"),
                        Just("path"),
                        Just("scale"),
                        Just("translation"),
                        Just("coordinateTransformations"),
                        Just("omero"),
                        Just("channels"),
                        Just("window"),
                        Just("plate"),
                        Just("wells"),
                        Just("rows"),
                        Just("columns"),
                        Just("rowIndex"),
                        Just("columnIndex"),
                        Just("well"),
                        Just("images"),
                        Just("image-label"),
                        Just("colors"),
                        Just("label-value"),
                        Just("rgba"),
                        Just("zarr_format"),
                        Just("node_type"),
                        Just("attributes"),
                        Just("shape"),
                        Just("data_type"),
                        Just("dtype"),
                        Just("x")
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(
                kv.into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>()
            )),
        ]
    })
}

/// All JSON pointers in `v`.
fn pointers(v: &Value, base: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{base}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{base}/{i}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        exercise(&v);
        exercise(&json!({"zarr_format": 3, "node_type": "group", "attributes": {"ome": v.clone()}}));
        exercise(&json!({"multiscales": [v]}));
    }

    #[test]
    fn mutated_valid_documents_never_panic(pick in any::<prop::sample::Index>(), replacement in arb_json(), delete in any::<bool>()) {
        let mut doc = base_v05();
        let mut ptrs = Vec::new();
        pointers(&doc, String::new(), &mut ptrs);
        let target = pick.get(&ptrs).clone();
        if delete {
            if let Some((parent, key)) = target.rsplit_once('/') {
                match doc.pointer_mut(parent) {
                    Some(Value::Object(m)) => { m.remove(key); }
                    Some(Value::Array(a)) => {
                        if let Ok(i) = key.parse::<usize>() && i < a.len() { a.remove(i); }
                    }
                    _ => {}
                }
            }
        } else if let Some(slot) = doc.pointer_mut(&target) {
            *slot = replacement;
        }
        exercise(&doc);
        // The same document as 0.4 .zattrs.
        if let Some(ome) = doc.pointer("/attributes/ome") {
            let mut zattrs = ome.clone();
            if let Some(m) = zattrs.as_object_mut() {
                m.remove("version");
            }
            exercise(&zattrs);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(v) = parse_json(&bytes) {
            exercise(&v);
        }
    }
}

#[test]
fn large_label_values_and_transformation_order() {
    // uint64 label images can use values above i64::MAX.
    let zattrs = json!({"image-label": {"version": "0.4", "colors": [{"label-value": 18_446_744_073_709_551_615u64}],
        "properties": [{"label-value": 18_446_744_073_709_551_615u64}]}});
    let r = validate(&zattrs, &ValidateOptions::new());
    assert!(r.is_valid(), "{r}");
    assert!(read_zattrs(&zattrs).is_ok());

    let mut doc = base_v05();
    if let Some(ct) =
        doc.pointer_mut("/attributes/ome/multiscales/0/datasets/0/coordinateTransformations")
    {
        *ct = json!([{"type": "translation", "translation": [0, 0, 0]}, {"type": "scale", "scale": [1, 0.5, 0.5]}]);
    }
    let r = validate_zarr_json(&doc, &ValidateOptions::new());
    assert!(
        r.errors()
            .any(|v| v.path.ends_with("/coordinateTransformations/0")
                && v.message.contains("before scale")),
        "{r}"
    );
}

//! Cross-checks of NGFF metadata against array metadata, and array summaries.

use std::collections::BTreeMap;

use serde_json::json;
use strata_ngff::{ArraySummary, Error, GroupMetadata, cross_check};

fn group(extra_ome: serde_json::Value) -> GroupMetadata {
    let mut doc = json!({
        "zarr_format": 3, "node_type": "group",
        "attributes": {"ome": {"version": "0.5", "multiscales": [{
            "name": "img",
            "axes": [
                {"name": "c", "type": "channel"},
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"}
            ],
            "datasets": [
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 0.5, 0.5]}]},
                {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [1, 1.0, 1.0]}]},
                {"path": "2", "coordinateTransformations": [{"type": "scale", "scale": [1, 2.0, 2.0]}]}
            ]
        }]}}
    });
    if let (Some(ome), Some(extra)) = (
        doc.pointer_mut("/attributes/ome")
            .and_then(|v| v.as_object_mut()),
        extra_ome.as_object(),
    ) {
        for (k, v) in extra {
            ome.insert(k.clone(), v.clone());
        }
    }
    GroupMetadata::from_json(&doc).expect("valid group")
}

fn arr(shape: &[u64], dt: &str) -> ArraySummary {
    ArraySummary {
        zarr_format: 3,
        shape: shape.to_vec(),
        data_type: dt.into(),
        dimension_names: Some(vec![Some("c".into()), Some("y".into()), Some("x".into())]),
    }
}

fn good() -> BTreeMap<String, ArraySummary> {
    BTreeMap::from([
        ("0".to_owned(), arr(&[2, 101, 100], "uint16")),
        ("1".to_owned(), arr(&[2, 51, 50], "uint16")),
        ("2".to_owned(), arr(&[2, 25, 25], "uint16")),
    ])
}

fn error_paths(r: &strata_ngff::Report) -> Vec<String> {
    r.errors()
        .map(|v| format!("{} {}", v.path, v.message))
        .collect()
}

#[test]
fn consistent_arrays_pass() {
    let r = cross_check(&group(json!({})), &good());
    assert!(r.is_clean(), "{r}");
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let mut arrays = good();
    arrays.remove("2");
    arrays.insert(
        "1".into(),
        ArraySummary {
            zarr_format: 3,
            shape: vec![2, 90, 50],
            data_type: "uint8".into(),
            dimension_names: Some(vec![Some("c".into()), Some("x".into()), Some("y".into())]),
        },
    );
    let r = cross_check(&group(json!({})), &arrays);
    let errs = error_paths(&r);
    let base = "/attributes/ome/multiscales/0/datasets";
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{base}/2/path")) && e.contains("no array")),
        "{r}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{base}/1/path")) && e.contains("data type uint8")),
        "{r}"
    );
    assert!(errs.iter().any(|e| e.contains("dimension 1 \"x\"")), "{r}");
    assert!(
        errs.iter()
            .any(|e| e.contains("axis \"y\": level 1 has 90 pixels")),
        "{r}"
    );
}

#[test]
fn rank_mismatch_and_missing_dimension_names() {
    let mut arrays = good();
    arrays.insert(
        "0".into(),
        ArraySummary {
            zarr_format: 3,
            shape: vec![101, 100],
            data_type: "uint16".into(),
            dimension_names: None,
        },
    );
    let r = cross_check(&group(json!({})), &arrays);
    assert!(
        error_paths(&r)
            .iter()
            .any(|e| e.contains("has 2 dimensions but the multiscale has 3 axes")),
        "{r}"
    );
    assert!(
        r.warnings()
            .any(|w| w.message.contains("no dimension_names")),
        "{r}"
    );
}

#[test]
fn label_images_need_integers_and_omero_counts_channels() {
    let mut arrays = good();
    for a in arrays.values_mut() {
        a.data_type = "float32".into();
    }
    let r = cross_check(
        &group(json!({"image-label": {"colors": [{"label-value": 1}]}})),
        &arrays,
    );
    assert_eq!(
        r.errors()
            .filter(|v| v.message.contains("integer data type"))
            .count(),
        3,
        "{r}"
    );

    let omero = json!({"omero": {"channels": [{"color": "FF0000", "window": {"start": 0, "end": 1, "min": 0, "max": 1}}]}});
    let r = cross_check(&group(omero), &good());
    assert!(r.is_valid());
    assert!(
        r.warnings()
            .any(|w| w.path == "/attributes/ome/omero/channels"),
        "{r}"
    );
}

#[test]
fn array_summaries_from_v3_and_v2() {
    let v3 = json!({"zarr_format": 3, "node_type": "array", "shape": [1, 30, 4096, 4096], "data_type": "uint8",
        "dimension_names": ["c", "z", null, "x"], "chunk_grid": {}, "codecs": []});
    let s = ArraySummary::from_json(&v3).expect("valid");
    assert_eq!(s.shape, [1, 30, 4096, 4096]);
    assert_eq!(s.data_type, "uint8");
    assert_eq!(
        s.dimension_names,
        Some(vec![
            Some("c".into()),
            Some("z".into()),
            None,
            Some("x".into())
        ])
    );
    assert!(s.is_integer());

    for (dtype, name) in [
        (">u1", "uint8"),
        ("<u2", "uint16"),
        ("<i8", "int64"),
        ("<f4", "float32"),
        ("|b1", "bool"),
        ("<M8[ns]", "<M8[ns]"),
    ] {
        let v2 = json!({"zarr_format": 2, "shape": [64, 64], "chunks": [64, 64], "dtype": dtype});
        let s = ArraySummary::from_json(&v2).expect("valid");
        assert_eq!(s.data_type, name);
        assert_eq!(s.dimension_names, None);
    }

    for (bad, pointer) in [
        (json!([]), ""),
        (json!({"zarr_format": 4}), "/zarr_format"),
        (
            json!({"zarr_format": 3, "node_type": "group"}),
            "/node_type",
        ),
        (
            json!({"zarr_format": 3, "node_type": "array", "data_type": "uint8"}),
            "/shape",
        ),
        (
            json!({"zarr_format": 3, "node_type": "array", "shape": [1, -2], "data_type": "uint8"}),
            "/shape/1",
        ),
        (
            json!({"zarr_format": 3, "node_type": "array", "shape": [1], "data_type": 7}),
            "/data_type",
        ),
        (
            json!({"zarr_format": 3, "node_type": "array", "shape": [1], "data_type": "int8", "dimension_names": [1]}),
            "/dimension_names/0",
        ),
        (json!({"zarr_format": 2, "shape": [1e300]}), "/shape/0"),
        (json!({"zarr_format": 2, "shape": [1]}), "/dtype"),
    ] {
        match ArraySummary::from_json(&bad) {
            Err(Error::ArrayMetadata { pointer: p, .. }) => assert_eq!(p, pointer, "{bad}"),
            other => panic!("{bad}: expected ArrayMetadata error, got {other:?}"),
        }
    }
}

#[test]
fn v04_group_paths_are_relative_to_zattrs() {
    let zattrs = json!({"multiscales": [{"version": "0.4", "axes": [
        {"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}]}]}]});
    let g = GroupMetadata::from_json(&zattrs).expect("valid");
    let r = cross_check(&g, &BTreeMap::new());
    assert_eq!(
        r.errors().next().map(|v| v.path.as_str()),
        Some("/multiscales/0/datasets/0/path")
    );
}

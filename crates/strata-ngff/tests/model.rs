//! Typed models: unknown keys survive round trips; 0.4 upgrades to 0.5.

use serde_json::{Value, json};
use strata_ngff::{
    Error, GroupMetadata, OmeMetadata, ValidateOptions, Version, detect_version, read_zarr_json,
    read_zattrs, upgrade_zattrs, validate_zarr_json,
};

fn full_v05() -> Value {
    json!({
        "zarr_format": 3, "node_type": "group", "consolidated_metadata": null,
        "attributes": {
            "other_tool": {"x": 1},
            "ome": {
                "version": "0.5", "@type": "ngff:Image",
                "multiscales": [{
                    "name": "m", "type": "mean", "metadata": {"k": [1, 2]}, "x-multi": true,
                    "axes": [
                        {"name": "c", "type": "channel", "x-axis": "a"},
                        {"name": "z", "type": "space", "unit": "micrometer"},
                        {"name": "y", "type": "space", "unit": "micrometer"},
                        {"name": "x", "type": "space", "unit": "micrometer"}
                    ],
                    "datasets": [{"path": "0", "x-ds": 1, "coordinateTransformations": [
                        {"type": "scale", "scale": [1.0, 2.0, 0.25, 0.25], "x-ct": "s"},
                        {"type": "translation", "translation": [0.0, 0.0, 0.5, 0.5]}
                    ]}],
                    "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0, 1.0, 1.0]}]
                }],
                "omero": {"id": 1, "rdefs": {"model": "color"}, "channels": [
                    {"color": "FF0000", "label": "BF", "active": true, "coefficient": 1.0,
                     "window": {"start": 0.0, "end": 255.0, "min": 0.0, "max": 255.0, "x-w": 0}}
                ]},
                "image-label": {"colors": [{"label-value": 1, "rgba": [255, 0, 0, 255], "x-c": 1}],
                                 "properties": [{"label-value": 1, "class": "tissue"}],
                                 "source": {"image": "../../", "x-s": 2}, "x-il": 3}
            }
        }
    })
}

#[test]
fn unknown_keys_survive_a_round_trip() {
    let doc = full_v05();
    let group = read_zarr_json(&doc).expect("valid");
    assert_eq!(group.to_value(), doc);
    let ms = &group
        .attributes
        .ome
        .multiscales
        .as_ref()
        .expect("multiscales")[0];
    assert_eq!(ms.extra["x-multi"], true);
    assert_eq!(ms.axes[0].extra["x-axis"], "a");
    assert_eq!(group.attributes.extra["other_tool"], json!({"x": 1}));
    assert_eq!(group.extra["consolidated_metadata"], Value::Null);
}

#[test]
fn plate_and_well_round_trip() {
    let zattrs = json!({
        "plate": {"version": "0.4", "name": "p", "field_count": 2, "x-p": 1,
            "acquisitions": [{"id": 0, "name": "a", "maximumfieldcount": 2, "starttime": 1343731272000u64}],
            "columns": [{"name": "1"}, {"name": "2"}], "rows": [{"name": "A"}],
            "wells": [{"path": "A/2", "rowIndex": 0, "columnIndex": 1, "x-w": 1}]}
    });
    let ome = read_zattrs(&zattrs).expect("valid");
    assert_eq!(serde_json::to_value(&ome).expect("serialisable"), zattrs);
    let plate = ome.plate.as_ref().expect("plate");
    assert_eq!(plate.wells[0].column_index, 1);

    let well = json!({"well": {"version": "0.4", "images": [{"path": "0", "acquisition": 0}, {"path": "1"}]}});
    let ome = read_zattrs(&well).expect("valid");
    assert_eq!(serde_json::to_value(&ome).expect("serialisable"), well);
}

#[test]
fn integers_written_as_floats_are_accepted() {
    // JSON Schema's `integer` includes 1.0.
    let zattrs = json!({"plate": {"columns": [{"name": "1"}], "rows": [{"name": "A"}],
        "wells": [{"path": "A/1", "rowIndex": 0.0, "columnIndex": 0}], "field_count": 2.0},
        "image-label": {"colors": [{"label-value": 3, "rgba": [255.0, 0, 0, 1]}]}});
    let ome = read_zattrs(&zattrs).expect("valid");
    assert_eq!(ome.plate.as_ref().and_then(|p| p.field_count), Some(2));
    assert_eq!(
        ome.image_label
            .as_ref()
            .and_then(|l| l.colors.as_ref())
            .map(|c| c[0].rgba),
        Some(Some([255, 0, 0, 1]))
    );
}

#[test]
fn upgrade_moves_keys_and_versions() {
    let zattrs = json!({
        "@type": "ngff:Image",
        "multiscales": [{"version": "0.4", "name": "a", "axes": [
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"}],
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}]}]}],
        "image-label": {"version": "0.4", "colors": [{"label-value": 1}]}
    });
    assert_eq!(detect_version(&zattrs), Some(Version::V0_4));
    let g = upgrade_zattrs(&zattrs).expect("upgradable").to_value();
    assert_eq!(detect_version(&g["attributes"]), Some(Version::V0_5));
    assert_eq!(g["attributes"]["@type"], "ngff:Image");
    assert!(g["attributes"]["ome"].get("@type").is_none());
    assert!(
        g["attributes"]["ome"]["image-label"]
            .get("version")
            .is_none()
    );
    assert!(
        g["attributes"]["ome"]["multiscales"][0]
            .get("version")
            .is_none()
    );
    assert!(validate_zarr_json(&g, &ValidateOptions::new()).is_valid());
    assert_eq!(
        GroupMetadata::from_json(&g).map(|m| m.version()).ok(),
        Some(Version::V0_5)
    );
}

#[test]
fn upgrade_reports_what_0_5_rejects() {
    // 0.4 tolerates a scale shorter than the axes (its suite accepts it); 0.5 does not.
    let zattrs = json!({"multiscales": [{"version": "0.4", "axes": [
        {"name": "t", "type": "time"}, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}]}]}]});
    assert!(read_zattrs(&zattrs).is_ok());
    match upgrade_zattrs(&zattrs) {
        Err(Error::Invalid { report }) => assert!(
            report.errors().any(|v| v.path
                == "/attributes/ome/multiscales/0/datasets/0/coordinateTransformations/0/scale"),
            "{report}"
        ),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn into_v05_drops_nested_versions() {
    let ome: OmeMetadata =
        serde_json::from_value(json!({"well": {"version": "0.4", "images": [{"path": "0"}]}}))
            .expect("model");
    let up = ome.into_v05();
    assert_eq!(up.version.as_deref(), Some("0.5"));
    assert_eq!(up.well.as_ref().and_then(|w| w.version.clone()), None);
}

#[test]
fn pixel_size_combines_dataset_and_multiscale_scales() {
    let ms = &read_zarr_json(&full_v05())
        .expect("valid")
        .attributes
        .ome
        .multiscales
        .expect("multiscales")[0];
    assert_eq!(ms.pixel_size(0), Some(vec![1.0, 2.0, 0.25, 0.25]));
    assert_eq!(ms.pixel_size(1), None);
    assert_eq!(ms.axis_index("y"), Some(2));

    let zattrs = json!({"multiscales": [{"version": "0.4", "axes": [
        {"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [0.5, 0.25]}]}],
        "coordinateTransformations": [{"type": "scale", "scale": [10, 10]}]}]});
    let ome = read_zattrs(&zattrs).expect("valid");
    assert_eq!(
        ome.multiscales.as_ref().map(|m| m[0].pixel_size(0)),
        Some(Some(vec![5.0, 2.5]))
    );
}

//! The multiscale Strata writes: scales, translations (pixel centres),
//! level shapes, the group zarr.json, and input errors.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, json};
use strata_ngff::{
    ArraySummary, AxisSpec, Error, GroupMetadata, MultiscaleBuilder, ValidateOptions, cross_check,
    read_zarr_json, validate_zarr_json,
};

fn strata_builder() -> MultiscaleBuilder {
    let mut meta = Map::new();
    meta.insert("method".into(), json!("strata mean 2x2"));
    MultiscaleBuilder::czyx(
        [3, 30, 1000, 1500],
        [2.0, 0.25, 0.25],
        ["micrometer"; 3],
        [1, 2, 2],
        5,
    )
    .name("section")
    .downscale_type("mean")
    .metadata(meta)
}

#[test]
fn scales_and_translations_follow_the_pixel_centre_convention() {
    let ms = strata_builder().build().expect("valid input");
    assert_eq!(ms.datasets.len(), 5);
    for (k, ds) in ms.datasets.iter().enumerate() {
        assert_eq!(ds.path, k.to_string());
        let f = f64::from(2u32.pow(u32::try_from(k).unwrap_or(0)));
        assert_eq!(ds.scale(), Some(&[1.0, 2.0, 0.25 * f, 0.25 * f][..]));
        assert_eq!(
            ds.translation(),
            Some(&[0.0, 0.0, (f - 1.0) / 2.0 * 0.25, (f - 1.0) / 2.0 * 0.25][..])
        );
    }
    let names: Vec<&str> = ms.axes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["c", "z", "y", "x"]);
    assert_eq!(ms.axes[0].unit, None);
    assert_eq!(ms.axes[3].unit.as_deref(), Some("micrometer"));
}

#[test]
fn level_shapes_round_up() {
    let shapes = strata_builder().level_shapes().expect("valid input");
    assert_eq!(
        shapes,
        vec![
            vec![3, 30, 1000, 1500],
            vec![3, 30, 500, 750],
            vec![3, 30, 250, 375],
            vec![3, 30, 125, 188],
            vec![3, 30, 63, 94],
        ]
    );
}

#[test]
fn group_zarr_json_is_clean_even_strict_and_cross_checks() {
    let b = strata_builder();
    let doc = b.group_zarr_json().expect("valid input");
    assert_eq!(doc["zarr_format"], 3);
    assert_eq!(doc["node_type"], "group");
    assert_eq!(doc["attributes"]["ome"]["version"], "0.5");
    assert!(
        doc["attributes"]["ome"]["multiscales"][0]
            .get("version")
            .is_none()
    );
    let report = validate_zarr_json(&doc, &ValidateOptions::new().strict(true));
    assert!(report.is_clean(), "{report}");

    let group = GroupMetadata::V05(read_zarr_json(&doc).expect("readable"));
    let arrays: BTreeMap<String, ArraySummary> = b
        .level_shapes()
        .expect("valid input")
        .into_iter()
        .enumerate()
        .map(|(k, shape)| {
            (
                k.to_string(),
                ArraySummary {
                    zarr_format: 3,
                    shape,
                    data_type: "uint8".into(),
                    dimension_names: Some(
                        ["c", "z", "y", "x"]
                            .iter()
                            .map(|s| Some((*s).to_owned()))
                            .collect(),
                    ),
                },
            )
        })
        .collect();
    let checked = cross_check(&group, &arrays);
    assert!(checked.is_clean(), "{checked}");
}

#[test]
fn bad_builder_input_is_an_error() {
    let cases = [
        MultiscaleBuilder::czyx([1, 1, 8, 8], [1.0; 3], ["micrometer"; 3], [1, 2, 2], 0),
        MultiscaleBuilder::czyx([1, 1, 8, 8], [1.0; 3], ["micrometer"; 3], [1, 0, 2], 2),
        MultiscaleBuilder::czyx([1, 1, 0, 8], [1.0; 3], ["micrometer"; 3], [1, 2, 2], 2),
        MultiscaleBuilder::czyx(
            [1, 1, 8, 8],
            [1.0, f64::NAN, 1.0],
            ["micrometer"; 3],
            [1, 2, 2],
            2,
        ),
        MultiscaleBuilder::czyx(
            [1, 1, 8, 8],
            [1.0, -0.5, 1.0],
            ["micrometer"; 3],
            [1, 2, 2],
            2,
        ),
        MultiscaleBuilder::czyx(
            [1, 1, 8, 8],
            [1.0; 3],
            ["micrometer"; 3],
            [1, 1 << 40, 2],
            3,
        ),
        MultiscaleBuilder::new(
            vec![AxisSpec::space("y", "micrometer", 1.0, 2)],
            vec![8, 8],
            2,
        ),
    ];
    for b in cases {
        assert!(matches!(b.build(), Err(Error::Builder { .. })), "{b:?}");
    }
    // Axes in the wrong order are caught by validation of the result.
    let wrong = MultiscaleBuilder::new(
        vec![
            AxisSpec::space("y", "micrometer", 1.0, 2),
            AxisSpec::channel("c"),
            AxisSpec::space("x", "micrometer", 1.0, 2),
        ],
        vec![8, 1, 8],
        2,
    );
    match wrong.build() {
        Err(Error::Invalid { report }) => {
            assert!(
                report
                    .errors()
                    .any(|v| v.path == "/attributes/ome/multiscales/0/axes/1"),
                "{report}"
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

proptest! {
    /// The centre of level-k pixel 0 is the mean of the centres of the f^k
    /// level-0 pixels it covers, and its size is f^k base pixels.
    #[test]
    fn translation_is_the_centre_of_the_covered_pixels(
        f in 1u64..5, levels in 1usize..6, s in 0.01f64..10.0
    ) {
        let b = MultiscaleBuilder::czyx([1, 4, 64, 64], [s, s, s], ["micrometer"; 3], [f, f, f], levels);
        let ms = b.build().expect("valid input");
        for (k, ds) in ms.datasets.iter().enumerate() {
            let n = f.pow(u32::try_from(k).unwrap_or(0));
            let mean_centre = (0..n).map(|j| j as f64 * s).sum::<f64>() / n as f64;
            let t = ds.translation().expect("translation")[3];
            let sc = ds.scale().expect("scale")[3];
            prop_assert!((t - mean_centre).abs() <= 1e-9 * (1.0 + mean_centre.abs()));
            prop_assert!((sc - n as f64 * s).abs() <= 1e-9 * sc);
        }
    }
}

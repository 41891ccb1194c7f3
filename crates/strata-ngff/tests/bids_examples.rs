//! The OME-Zarr images of the BIDS microscopy examples (`micr_SEMzarr`,
//! `micr_XPCTzarr`) are OME-NGFF 0.4 (Zarr v2). They validate, cross-check
//! against their arrays and upgrade to 0.5.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use strata_ngff::{
    ArraySummary, GroupMetadata, ValidateOptions, Version, cross_check, parse_json, read_zattrs,
    upgrade_zattrs, validate, validate_zarr_json,
};

const IMAGES: [&str; 2] = [
    "micr_SEMzarr/sub-01/ses-01/micr/sub-01_ses-01_sample-A_SPIM.ome.zarr",
    "micr_XPCTzarr/sub-01/ses-01/micr/sub-01_ses-01_sample-brain_XPCT.ome.zarr",
];

fn image(rel: &str) -> PathBuf {
    strata_testkit::bids_examples().join(rel)
}

fn json(path: &Path) -> serde_json::Value {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_json(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn bids_example_images_validate_cross_check_and_upgrade() {
    for rel in IMAGES {
        let dir = image(rel);
        let zattrs = json(&dir.join(".zattrs"));
        let report = validate(&zattrs, &ValidateOptions::new());
        assert!(report.is_valid(), "{rel}: {report}");
        // These files write `units` instead of `unit`; the validator says so.
        assert!(
            report.warnings().any(|w| w.path.ends_with("/units")),
            "{rel}: expected a warning about `units`: {report}"
        );

        let ome = read_zattrs(&zattrs).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let mut arrays = BTreeMap::new();
        for ms in ome.multiscales.iter().flatten() {
            for ds in &ms.datasets {
                let zarray = json(&dir.join(&ds.path).join(".zarray"));
                let summary =
                    ArraySummary::from_json(&zarray).unwrap_or_else(|e| panic!("{rel}: {e}"));
                arrays.insert(ds.path.clone(), summary);
            }
        }
        let group = GroupMetadata::V04(ome);
        let checked = cross_check(&group, &arrays);
        assert!(checked.is_clean(), "{rel}: {checked}");

        let upgraded = upgrade_zattrs(&zattrs).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let doc = upgraded.to_value();
        assert_eq!(doc["zarr_format"], 3);
        assert_eq!(doc["node_type"], "group");
        assert_eq!(doc["attributes"]["ome"]["version"], "0.5");
        let v05 = validate_zarr_json(&doc, &ValidateOptions::new().version(Version::V0_5));
        assert!(v05.is_valid(), "{rel}: {v05}");
        let back = GroupMetadata::from_json(&doc).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(back.version(), Version::V0_5);
        assert!(cross_check(&back, &arrays).is_valid());
    }
}

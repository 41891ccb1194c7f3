//! Bodies of the fuzz targets, as plain functions: each target in `fuzz_targets/` calls one,
//! and `tests/corpus.rs` feeds it every input under `inputs/<target>/` on stable Rust.
//!
//! | target | body | what it parses |
//! |---|---|---|
//! | `ngff_metadata` | [`ngff_metadata`] | OME-NGFF metadata (strata-ngff) |
//! | `tiff_stack` | [`tiff_stack`] | a TIFF file as a z-stack (strata-zstack) |
//! | `bids_text` | [`bids_text`] | BIDS names, sidecars, descriptions, tables (strata-bids) |
//! | `zarr_image` | [`zarr_image`] | a shard or `zarr.json` of an image (strata-access) |
//! | `ozx_reader` | [`ozx_reader`] | an `.ozx` archive (strata-store, strata-access) |
//! | `http_request` | [`http_request`] | raw bytes on a connection to `strata serve` |
//!
//! `inputs/<target>/` holds seeds and the inputs of past crashes (add each new crash there);
//! `tests/seeds.rs` regenerates the seeds that are binary files. libFuzzer's working corpus
//! (`target/fuzz-corpus/<target>/`) is not committed. `cargo xtask fuzz [TARGET...]
//! [--seconds N]` builds the targets with coverage instrumentation on stable Rust and runs
//! them (see docs/RELIABILITY.md).
//!
//! Targets that need files (TIFF, the image folder, the archive, the served dataset) write
//! them in a scratch folder of the process under the system's temporary folder.

mod bids;
mod http;
mod ozx;
mod scratch;
pub mod template;
mod tiff;
mod zarr;

pub use bids::bids_text;
pub use http::http_request;
pub use ozx::ozx_reader;
pub use tiff::tiff_stack;
pub use zarr::{zarr_image, zarr_image_template};

use std::collections::BTreeMap;

use serde_json::Value;
use strata_ngff::{
    ArraySummary, GroupMetadata, ValidateOptions, Version, cross_check, parse_json, read_zarr_json,
    read_zattrs, upgrade_zattrs, validate, validate_zarr_json,
};

/// Target `ngff_metadata`: feeds arbitrary bytes to the OME-NGFF parser, validator, reader,
/// upgrader and cross-check. Panics only on a crash or when metadata that validates cannot
/// be read into the typed model.
pub fn ngff_metadata(data: &[u8]) {
    if let Ok(value) = parse_json(data) {
        exercise(&value);
        // Also as the `ome` object of a 0.5 group.
        let wrapped = serde_json::json!({"zarr_format": 3, "node_type": "group", "attributes": {"ome": value}});
        exercise(&wrapped);
    }
}

/// Runs every metadata entry point on one JSON value.
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
            panic!("valid 0.4 metadata does not read: {e}");
        }
        let _ = upgrade_zattrs(value);
    }
    if validate_zarr_json(value, &ValidateOptions::new()).is_valid()
        && let Err(e) = read_zarr_json(value)
    {
        panic!("valid 0.5 metadata does not read: {e}");
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

//! Runs every fuzz target's body once over its committed inputs (`inputs/<target>/`: seeds
//! and the inputs of past crashes), so the targets build and their regressions stay fixed
//! on stable Rust, without libFuzzer.

use std::path::{Path, PathBuf};

/// Every file under `inputs/<target>/`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("inputs")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files.retain(|p| p.is_file());
    files.sort();
    files
}

/// Feeds each input to `body`, naming the input if it panics.
fn run(target: &str, body: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no inputs under inputs/{target}/");
    for file in files {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            panic!("fuzz target {target} panics on {}", file.display());
        }
    }
}

#[test]
fn ngff_metadata_corpus() {
    run("ngff_metadata", strata_fuzz::ngff_metadata);
}

#[test]
fn tiff_stack_corpus() {
    run("tiff_stack", strata_fuzz::tiff_stack);
}

#[test]
fn bids_text_corpus() {
    run("bids_text", strata_fuzz::bids_text);
}

#[test]
fn zarr_image_corpus() {
    run("zarr_image", strata_fuzz::zarr_image);
}

#[test]
fn ozx_reader_corpus() {
    run("ozx_reader", strata_fuzz::ozx_reader);
}

#[test]
fn http_request_corpus() {
    run("http_request", strata_fuzz::http_request);
}

//! Runs every fuzz target's body once over its committed inputs (`inputs/<target>/`: seeds
//! and the inputs of past crashes) and its committed corpus (`corpus/<target>/`, what
//! campaigns found), so the targets build and their regressions stay fixed on stable Rust,
//! without libFuzzer.

use std::path::{Path, PathBuf};

/// Every file under `inputs/<target>/` and `corpus/<target>/`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    // The inputs must be there; a target may have no corpus yet.
    for (dir, required) in [("inputs", true), ("corpus", false)] {
        let dir = base.join(dir).join(target);
        if !required && !dir.is_dir() {
            continue;
        }
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
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

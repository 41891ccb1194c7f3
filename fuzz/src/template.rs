//! The small, valid images the targets start from, written by the project's own converter.

use std::path::{Path, PathBuf};

use strata_bids::name::{Label, Suffix};
use strata_zstack::{
    ConvertOptions, ImageOptions, Layout, MemorySource, NoHook, PixelSize, SampleType, Section,
    StackInfo, convert,
};

/// Width of the template stack: three inner chunks of [`CHUNK`] across.
pub const WIDTH: u32 = 40;
/// Height of the template stack: two inner chunks down.
pub const HEIGHT: u32 = 24;
/// Planes of the template stack.
pub const PLANES: u32 = 2;
/// Inner chunk size of the template image: level 0 has 12 inner chunks in one shard, and
/// the pyramid has three levels.
pub const CHUNK: u32 = 16;

/// Converts the template stack (`uint8`, one channel, [`WIDTH`] x [`HEIGHT`] x [`PLANES`])
/// into the BIDS dataset at `root` as section `sub-BB01`, sample `sample`, in `layout`, and
/// returns the image's path (an `.ome.zarr` folder or an `.ozx` file).
///
/// # Panics
/// If the conversion fails: the template is the harness's, not an input.
#[must_use]
pub fn convert_template(root: &Path, sample: &str, layout: Layout) -> PathBuf {
    let info = StackInfo {
        width: WIDTH,
        height: HEIGHT,
        planes: PLANES,
        channels: 1,
        sample_type: SampleType::U8,
        pixel_size: None,
        plane_names: (0..PLANES).map(|z| format!("z{z}.tif")).collect(),
    };
    let planes = (0..PLANES)
        .map(|z| {
            (0..WIDTH * HEIGHT)
                .map(|i| {
                    let (x, y) = (i % WIDTH, i / WIDTH);
                    // Low byte of a pattern that differs per pixel and plane.
                    (x * 3 + y * 5 + z * 11 + (x * y) % 7).to_le_bytes()[0]
                })
                .collect()
        })
        .collect();
    let mut source = MemorySource::new(info, planes)
        .unwrap_or_else(|e| panic!("the template stack is invalid: {e}"));
    let label = |key: &str, value: &str| {
        Label::new(key, value).unwrap_or_else(|e| panic!("template label {value:?}: {e}"))
    };
    let section = Section {
        bids_root: root.to_owned(),
        subject: label("sub", "BB01"),
        session: None,
        sample: label("sample", sample),
        stain: None,
        suffix: Suffix::BF,
    };
    let options = ConvertOptions {
        image: ImageOptions {
            chunk: CHUNK,
            ..ImageOptions::default()
        },
        pixel_size: Some(PixelSize {
            x: 0.5,
            y: 0.5,
            z: 2.0,
        }),
        layout,
        ..ConvertOptions::default()
    };
    convert(&mut source, &section, &options, &mut NoHook)
        .unwrap_or_else(|e| panic!("the template conversion fails: {e}"))
        .output
}

/// Every file under `dir`, as (path relative to `dir` with `/` separators, bytes), sorted.
///
/// # Panics
/// If the folder cannot be read.
#[must_use]
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            if path.is_dir() {
                walk(&path, &rel, out);
            } else {
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                out.push((rel, bytes));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

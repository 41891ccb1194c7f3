//! The conversion the read tests share: a stack from memory into a BIDS dataset, inner chunks
//! of 128 so that small images have several chunks and levels.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use strata_bids::name::{Label, Suffix};
use strata_zstack::{
    ConvertOptions, ImageOptions, Layout, MemorySource, NoHook, PixelSize, Section, convert,
};

/// Converts `src` under `root` as section sub-BB01 sample-0042 with pixels of `pixel` um
/// (planes 2 um apart); returns the image's path.
pub(crate) fn convert_to(
    root: &Path,
    src: &mut MemorySource,
    layout: Layout,
    pixel: f64,
) -> PathBuf {
    let section = Section {
        bids_root: root.to_owned(),
        subject: Label::new("sub", "BB01").expect("label"),
        session: None,
        sample: Label::new("sample", "0042").expect("label"),
        stain: None,
        suffix: Suffix::BF,
    };
    let options = ConvertOptions {
        image: ImageOptions {
            chunk: 128,
            ..ImageOptions::default()
        },
        pixel_size: Some(PixelSize {
            x: pixel,
            y: pixel,
            z: 2.0,
        }),
        layout,
        ..ConvertOptions::default()
    };
    convert(src, &section, &options, &mut NoHook)
        .expect("convert")
        .output
}

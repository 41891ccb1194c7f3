//! Helpers shared by the converter's integration tests (each test binary uses some of them).
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use strata_bids::name::{Label, Suffix};
use strata_zstack::{SampleType, Section, StackInfo, ZStackSource};
use zarrs::array::{Array, ArraySubset};
use zarrs::filesystem::FilesystemStore;

/// Section `sub-01_sample-01_BF` of the BIDS dataset at `root`.
pub(crate) fn section(root: &Path) -> Section {
    Section {
        bids_root: root.to_owned(),
        subject: Label::new("sub", "01").expect("label"),
        session: None,
        sample: Label::new("sample", "01").expect("label"),
        stain: None,
        suffix: Suffix::BF,
    }
}

/// A synthetic z-stack's description: `planes` planes of `width` x `height` pixels of
/// `channels` samples of type `st`, plane `z` named `plane_name(z)`, no pixel size.
pub(crate) fn stack_info(
    (width, height, planes): (u32, u32, u32),
    channels: u32,
    st: SampleType,
    plane_name: impl Fn(u32) -> String,
) -> StackInfo {
    StackInfo {
        width,
        height,
        planes,
        channels,
        sample_type: st,
        pixel_size: None,
        plane_names: (0..planes).map(plane_name).collect(),
    }
}

/// Reads a whole plane of `s` in bands of `band` rows.
pub(crate) fn read_plane(s: &mut dyn ZStackSource, plane: u32, band: u32) -> Vec<u8> {
    let info = s.info().clone();
    let mut out = Vec::with_capacity(info.height as usize * info.row_bytes());
    let mut y = 0;
    while y < info.height {
        let rows = band.min(info.height - y);
        let mut buf = vec![0u8; rows as usize * info.row_bytes()];
        s.read_band(plane, y, rows, &mut buf).expect("read band");
        out.extend_from_slice(&buf);
        y += rows;
    }
    out
}

/// Level `level` of an image as zarrs (an independent Zarr v3 reader) reads it: the shape
/// `[c, z, y, x]` and every sample in C order, widened to u64.
pub(crate) fn read_level(image: &Path, level: usize, st: SampleType) -> (Vec<u64>, Vec<u64>) {
    let store = Arc::new(FilesystemStore::new(image).expect("store"));
    let array = Array::open(store, &format!("/{level}")).expect("open array");
    let shape = array.shape().to_vec();
    let subset = ArraySubset::new_with_shape(shape.clone());
    let values: Vec<u64> = match st {
        SampleType::U8 => array
            .retrieve_array_subset::<Vec<u8>>(&subset)
            .expect("read u8")
            .into_iter()
            .map(u64::from)
            .collect(),
        SampleType::U16 => array
            .retrieve_array_subset::<Vec<u16>>(&subset)
            .expect("read u16")
            .into_iter()
            .map(u64::from)
            .collect(),
    };
    (shape, values)
}

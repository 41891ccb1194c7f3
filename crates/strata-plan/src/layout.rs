//! What one section costs in the BIDS tree, counted analytically and (for small inputs)
//! enumerated path by path.

use serde::{Deserialize, Serialize};

use crate::input::{KeySeparator, Layout, PlanInput};
use crate::{Error, Result};

/// Approximate bytes of the metadata files (measured on Strata's output; they matter only for
/// the byte total, never for inode counts).
const GROUP_META_BYTES: u64 = 1600;
const LEVEL_META_BYTES: u64 = 900;
const V2_ZGROUP_BYTES: u64 = 24;
const V2_ZARRAY_BYTES: u64 = 400;
const SIDECAR_BYTES: u64 = 300;
/// Container overhead of one HDF5 or `.ozx` file (superblock / zip directories).
const CONTAINER_BYTES: u64 = 64 * 1024;

/// The cost of one section in the BIDS tree (no DataLad).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SectionCounts {
    /// Files that go to the annex (pixel data).
    pub annexed_files: u64,
    /// Files that go to git (JSON metadata, sidecar).
    pub git_files: u64,
    /// Directories the section adds (its image directory and everything inside).
    pub dirs: u64,
    /// Stored bytes of pixel data (shards, chunks, planes, containers).
    pub data_bytes: u64,
    /// Bytes of metadata files.
    pub meta_bytes: u64,
    /// Entries of the fullest directory inside the section (0 for single-file layouts).
    pub largest_dir: u64,
    /// Entries the section adds to its parent directory (`micr/` or the group directory).
    pub parent_entries: u64,
}

impl SectionCounts {
    /// Files of any kind (annexed plus git).
    #[must_use]
    pub fn files(&self) -> u64 {
        self.annexed_files.saturating_add(self.git_files)
    }
}

/// Chunk-file (or shard-file) grid of one level: `[c, z, y, x]` counts.
fn grid(input: &PlanInput, layout: Layout, h: u64, w: u64) -> [u64; 4] {
    let (cy, cx) = input.chunk;
    match layout {
        Layout::ZarrV3Sharded => {
            let (sz, sy, sx) = input.shard.unwrap_or((input.planes, h, w));
            let sz = sz.min(input.planes);
            let sy = sy.min(h.div_ceil(cy) * cy);
            let sx = sx.min(w.div_ceil(cx) * cx);
            [1, input.planes.div_ceil(sz), h.div_ceil(sy), w.div_ceil(sx)]
        }
        _ => [1, input.planes, h.div_ceil(cy), w.div_ceil(cx)],
    }
}

fn scaled(bytes: u128, ratio: f64) -> u64 {
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    #[allow(clippy::cast_sign_loss)]
    let v = (bytes as f64 * ratio).round();
    if v >= u64::MAX as f64 {
        u64::MAX
    } else {
        v as u64
    }
}

fn level_bytes(input: &PlanInput, h: u64, w: u64) -> u128 {
    u128::from(input.channels)
        * u128::from(input.planes)
        * u128::from(h)
        * u128::from(w)
        * u128::from(input.dtype_bytes)
}

/// Counts one section of `layout` analytically.
///
/// # Errors
/// [`Error::Input`] if the input is invalid.
pub fn section_counts(input: &PlanInput, layout: Layout) -> Result<SectionCounts> {
    input.validate()?;
    let levels = input.level_shapes();
    let all_levels: u128 = levels.iter().map(|&(h, w)| level_bytes(input, h, w)).sum();
    let mut c = SectionCounts::default();
    match layout {
        Layout::RawTiff => {
            c.annexed_files = input.planes;
            c.dirs = 1;
            c.data_bytes = scaled(
                level_bytes(input, input.height, input.width),
                input.compression_ratio,
            );
            c.largest_dir = input.planes;
            c.parent_entries = 1;
        }
        Layout::Hdf5 | Layout::Ozx => {
            c.annexed_files = 1;
            c.git_files = 1;
            c.data_bytes =
                scaled(all_levels, input.compression_ratio).saturating_add(CONTAINER_BYTES);
            c.meta_bytes = SIDECAR_BYTES;
            c.parent_entries = 2;
        }
        Layout::OmeZarrV2 | Layout::ZarrV3 | Layout::ZarrV3Sharded => {
            let v2 = layout == Layout::OmeZarrV2;
            // The .ome.zarr directory and the sidecar next to it.
            c.dirs = 1;
            c.git_files = 1;
            c.meta_bytes = SIDECAR_BYTES;
            c.parent_entries = 2;
            let group_files: u64 = if v2 { 2 } else { 1 };
            c.git_files += group_files;
            c.meta_bytes += if v2 {
                V2_ZGROUP_BYTES + GROUP_META_BYTES
            } else {
                GROUP_META_BYTES
            };
            c.largest_dir = group_files + levels.len() as u64;
            for &(h, w) in &levels {
                let [n0, n1, n2, n3] = grid(input, layout, h, w);
                let n01 = n0.saturating_mul(n1);
                let n012 = n01.saturating_mul(n2);
                let files = n012.saturating_mul(n3);
                c.dirs += 1;
                c.git_files += 1;
                c.meta_bytes += if v2 {
                    V2_ZARRAY_BYTES
                } else {
                    LEVEL_META_BYTES
                };
                c.annexed_files = c.annexed_files.saturating_add(files);
                let mut bytes = scaled(level_bytes(input, h, w), input.compression_ratio);
                if layout == Layout::ZarrV3Sharded {
                    let inner = input
                        .planes
                        .div_ceil(n1)
                        .saturating_mul(h.div_ceil(n2).div_ceil(input.chunk.0))
                        .saturating_mul(w.div_ceil(n3).div_ceil(input.chunk.1));
                    let index = inner.saturating_mul(16).saturating_add(4);
                    bytes = bytes.saturating_add(files.saturating_mul(index));
                }
                c.data_bytes = c.data_bytes.saturating_add(bytes);
                let level_dir = match (input.separator, v2) {
                    (KeySeparator::Dot, _) => files.saturating_add(1),
                    (KeySeparator::Slash, false) => {
                        c.dirs = c.dirs.saturating_add(1 + n0 + n01).saturating_add(n012);
                        2.max(n0).max(n1).max(n2).max(n3)
                    }
                    (KeySeparator::Slash, true) => {
                        c.dirs = c.dirs.saturating_add(n0 + n01).saturating_add(n012);
                        (1 + n0).max(n1).max(n2).max(n3)
                    }
                };
                c.largest_dir = c.largest_dir.max(level_dir);
            }
        }
    }
    Ok(c)
}

/// What a path in an enumerated tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A file that goes to git.
    GitFile,
    /// A file that goes to the annex.
    AnnexedFile,
}

/// One path of an enumerated section, relative to the section's parent directory; parents
/// come before their children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative path with `/` separators.
    pub path: String,
    /// Directory or file, and where a file goes.
    pub kind: EntryKind,
}

/// The base name of section `index` of subject `subject` (both 1-based), without extension.
#[must_use]
pub fn section_stem(subject: u64, index: u64) -> String {
    format!("sub-{subject:02}_sample-{index:04}_BF")
}

/// Enumerates every path of one section, for materialising small trees (tests, calibration).
///
/// # Errors
/// [`Error::Input`] if the input is invalid, [`Error::TooLarge`] if the section has more than
/// `limit` entries.
pub fn section_entries(
    input: &PlanInput,
    layout: Layout,
    subject: u64,
    index: u64,
    limit: u64,
) -> Result<Vec<Entry>> {
    let counts = section_counts(input, layout)?;
    let total = counts.files().saturating_add(counts.dirs).saturating_add(1);
    if total > limit {
        return Err(Error::TooLarge {
            entries: total,
            limit,
        });
    }
    let stem = section_stem(subject, index);
    let mut out = Vec::new();
    let mut push = |path: String, kind| out.push(Entry { path, kind });
    match layout {
        Layout::RawTiff => {
            let dir = format!("sample-{index:04}");
            push(dir.clone(), EntryKind::Dir);
            for z in 0..input.planes {
                push(format!("{dir}/plane-{z:02}.tif"), EntryKind::AnnexedFile);
            }
        }
        Layout::Hdf5 => {
            push(format!("{stem}.h5"), EntryKind::AnnexedFile);
            push(format!("{stem}.json"), EntryKind::GitFile);
        }
        Layout::Ozx => {
            push(format!("{stem}.ozx"), EntryKind::AnnexedFile);
            push(format!("{stem}.json"), EntryKind::GitFile);
        }
        Layout::OmeZarrV2 | Layout::ZarrV3 | Layout::ZarrV3Sharded => {
            let v2 = layout == Layout::OmeZarrV2;
            let root = format!("{stem}.ome.zarr");
            push(format!("{stem}.json"), EntryKind::GitFile);
            push(root.clone(), EntryKind::Dir);
            if v2 {
                push(format!("{root}/.zgroup"), EntryKind::GitFile);
                push(format!("{root}/.zattrs"), EntryKind::GitFile);
            } else {
                push(format!("{root}/zarr.json"), EntryKind::GitFile);
            }
            for (l, &(h, w)) in input.level_shapes().iter().enumerate() {
                let dir = format!("{root}/{l}");
                push(dir.clone(), EntryKind::Dir);
                let meta = if v2 { ".zarray" } else { "zarr.json" };
                push(format!("{dir}/{meta}"), EntryKind::GitFile);
                let [n0, n1, n2, n3] = grid(input, layout, h, w);
                let sep = match input.separator {
                    KeySeparator::Dot => '.',
                    KeySeparator::Slash => '/',
                };
                let prefix = if v2 { dir.clone() } else { format!("{dir}/c") };
                if input.separator == KeySeparator::Slash && !v2 {
                    push(prefix.clone(), EntryKind::Dir);
                }
                let join = |base: &str, i: u64| {
                    if v2 && base == dir {
                        format!("{base}/{i}")
                    } else {
                        format!("{base}{sep}{i}")
                    }
                };
                for a in 0..n0 {
                    let pa = join(&prefix, a);
                    if sep == '/' {
                        push(pa.clone(), EntryKind::Dir);
                    }
                    for b in 0..n1 {
                        let pb = format!("{pa}{sep}{b}");
                        if sep == '/' {
                            push(pb.clone(), EntryKind::Dir);
                        }
                        for y in 0..n2 {
                            let py = format!("{pb}{sep}{y}");
                            if sep == '/' {
                                push(py.clone(), EntryKind::Dir);
                            }
                            for x in 0..n3 {
                                push(format!("{py}{sep}{x}"), EntryKind::AnnexedFile);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

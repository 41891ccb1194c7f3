//! Target `zarr_image`: the image reader of strata-access over a folder in which one file
//! (a shard, a level's `zarr.json` or the group's `zarr.json`) is the input.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;
use strata_access::{Image, ImageOptions, Region};
use strata_zstack::Layout;

use crate::{scratch, template};

/// Elements one region read may cover (times the element size: at most a few MiB).
const REGION_ELEMENTS: u64 = 1 << 16;

/// One pyramid level of the template image.
struct Level {
    /// `<level>/zarr.json`.
    metadata: String,
    /// The level's (only) shard.
    shard: String,
    /// Inner chunks per shard: the shard index holds 16 bytes for each, then a crc32c.
    chunks: usize,
}

/// The template image on disk, and its files as written.
struct Template {
    image: PathBuf,
    location: String,
    files: Vec<(String, Vec<u8>)>,
    levels: Vec<Level>,
}

impl Template {
    fn original(&self, rel: &str) -> &[u8] {
        self.files
            .iter()
            .find(|(name, _)| name == rel)
            .map_or(&[][..], |(_, bytes)| bytes)
    }
}

fn template() -> &'static Mutex<Template> {
    static TEMPLATE: OnceLock<Mutex<Template>> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = scratch::folder("zarr_image");
        let image = template::convert_template(&dir, "0001", Layout::Folder);
        let files = template::files(&image);
        let mut levels = Vec::new();
        for index in 0.. {
            let metadata = format!("{index}/zarr.json");
            let Some((_, doc)) = files.iter().find(|(name, _)| *name == metadata) else {
                break;
            };
            let shard = files
                .iter()
                .map(|(name, _)| name)
                .find(|name| name.starts_with(&format!("{index}/c")))
                .cloned()
                .unwrap_or_else(|| panic!("level {index} of the template has no shard"));
            let chunks = inner_chunks(doc)
                .unwrap_or_else(|| panic!("level {index} of the template is not sharded"));
            levels.push(Level {
                metadata,
                shard,
                chunks,
            });
        }
        assert!(!levels.is_empty(), "the template image has no levels");
        let location = image
            .to_str()
            .unwrap_or_else(|| panic!("the scratch path {} is not UTF-8", image.display()))
            .to_owned();
        Mutex::new(Template {
            image,
            location,
            files,
            levels,
        })
    })
}

/// Inner chunks per shard of an array's `zarr.json` (sharded with `sharding_indexed`).
fn inner_chunks(doc: &[u8]) -> Option<usize> {
    let v: Value = serde_json::from_slice(doc).ok()?;
    let dims =
        |v: &Value| -> Option<Vec<u64>> { v.as_array()?.iter().map(Value::as_u64).collect() };
    let shard = dims(v.pointer("/chunk_grid/configuration/chunk_shape")?)?;
    let inner = dims(v.pointer("/codecs/0/configuration/chunk_shape")?)?;
    let n = shard
        .iter()
        .zip(&inner)
        .map(|(s, c)| s.div_ceil((*c).max(1)))
        .product::<u64>();
    usize::try_from(n).ok()
}

/// Target `zarr_image`: the first byte picks which file of a small valid sharded `uint8`
/// image (three levels, written by the converter) the rest of the input replaces (its low
/// two bits) and of which level (the rest, modulo the number of levels):
///
/// - `0`: the level's shard, as given (zarrs' shard index reader and the codecs);
/// - `1`: the level's shard with the crc32c of its index recomputed, so that the index
///   entries themselves are exercised;
/// - `2`: the level's `zarr.json`;
/// - `3`: the group's `zarr.json` (the multiscales).
///
/// The image is then opened ([`Image::open`] with default limits) and regions of every level
/// read, with and without the chunk cache. Errors are expected; a panic, or the two reads of
/// one region returning different pixels, is a failure.
pub fn zarr_image(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let t = scratch::lock(template());
    let level = &t.levels[usize::from(which >> 2) % t.levels.len()];
    let (rel, bytes) = match which & 3 {
        0 => (level.shard.as_str(), rest.to_vec()),
        1 => (level.shard.as_str(), with_index_crc(rest, level.chunks)),
        2 => (level.metadata.as_str(), rest.to_vec()),
        _ => ("zarr.json", rest.to_vec()),
    };
    let path = t.image.join(rel);
    scratch::write(&path, &bytes);
    read_image(|options| Image::open_with(&t.location, options));
    scratch::write(&path, t.original(rel));
}

/// The shard bytes with the last 4 bytes replaced by the crc32c of the `chunks` index
/// entries before them (unchanged when too short to hold the index).
fn with_index_crc(shard: &[u8], chunks: usize) -> Vec<u8> {
    let mut out = shard.to_vec();
    let index = chunks * 16;
    if out.len() >= index + 4 {
        let end = out.len() - 4;
        let crc = crc32c::crc32c(&out[end - index..end]);
        out[end..].copy_from_slice(&crc.to_le_bytes());
    }
    out
}

/// Opens an image with `open`, without a cache and with one, and reads regions of every
/// level from both; the same region must read the same from both. Shared with `ozx_reader`.
pub(crate) fn read_image(open: impl Fn(ImageOptions) -> strata_access::Result<Image>) {
    let Ok(plain) = open(ImageOptions::default()) else {
        return;
    };
    let _ = format!("{plain:?}");
    let _ = (
        plain.name(),
        plain.axes().len(),
        plain.planes(),
        plain.channels(),
    );
    let _ = (plain.pixel_size(), plain.sidecar(), plain.provenance());
    let cached = open(ImageOptions::default().cache_bytes(1 << 20)).ok();
    let levels: Vec<_> = plain.levels().cloned().collect();
    for (i, info) in levels.iter().enumerate() {
        for region in regions(&info.shape) {
            let a = plain.read_region(i, &region);
            let Some(cached) = &cached else { continue };
            let b = cached.read_region(i, &region);
            if let (Ok(a), Ok(b)) = (&a, &b) {
                assert!(
                    a == b,
                    "level {i}, region {region}: the cached read differs from the uncached one"
                );
            }
            if let Ok(a) = &a
                && !a.is_empty()
            {
                let mut short = vec![0u8; a.len() - 1];
                assert!(
                    cached.read_region_into(i, &region, &mut short).is_err(),
                    "level {i}, region {region}: a buffer one byte short is accepted"
                );
            }
        }
    }
    let _ = plain.read_region(levels.len(), &Region::new(Vec::new()));
    if let Some(cached) = &cached {
        let _ = cached.cached_bytes();
    }
}

/// Two regions of a level of shape `shape`, of at most [`REGION_ELEMENTS`] elements: one
/// at the origin, one from a third of each extent (not aligned to chunks).
fn regions(shape: &[u64]) -> Vec<Region> {
    let mut budget = REGION_ELEMENTS;
    let mut lens: Vec<u64> = shape
        .iter()
        .rev()
        .map(|&n| {
            let len = n.min(budget.max(1));
            budget /= len.max(1);
            len
        })
        .collect();
    lens.reverse();
    let at = |start: &dyn Fn(u64) -> u64| {
        Region::new(
            shape
                .iter()
                .zip(&lens)
                .map(|(&n, &len)| {
                    let s = start(n);
                    s..s.saturating_add(len).min(n)
                })
                .collect(),
        )
    };
    vec![at(&|_| 0), at(&|n| n / 3)]
}

/// The template image's folder (for the seed generator).
///
/// # Panics
/// If the template cannot be written.
#[must_use]
pub fn zarr_image_template() -> PathBuf {
    scratch::lock(template()).image.clone()
}

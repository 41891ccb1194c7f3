//! An opened OME-Zarr image: its levels, and region reads that decode the touched inner
//! chunks in parallel.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value;
use strata_ngff::model::{Axis, Multiscale};
use strata_store::{ReadableStore, StoreKey, block_on, zarr::SyncReader};
use zarrs::array::{
    Array, ArrayBytes, ArrayMetadata, ArrayShardedExt, ArrayShardedReadableExt,
    ArrayShardedReadableExtCache, ArraySubset, CodecOptions,
};
use zarrs::storage::ReadableStorageTraits;

use crate::cache::ChunkCache;
use crate::error::{Error, Result};
use crate::location::Location;

/// Limits and caching of an opened image. `ImageOptions::default()`: no chunk cache,
/// regions of at most 1 GiB, metadata documents of at most 16 MiB, shard indexes of at most
/// 64 MiB, inner chunks of at most 256 MiB decoded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImageOptions {
    /// Bytes of decoded inner chunks kept for later reads (least recently used out first);
    /// 0 turns the cache off.
    pub cache_bytes: usize,
    /// Largest region one read may return, in bytes.
    pub max_region_bytes: u64,
    /// Largest `zarr.json` (group or array) read.
    pub max_metadata_bytes: u64,
    /// Largest shard index a level may declare (16 bytes per inner chunk).
    pub max_index_bytes: u64,
    /// Largest decoded inner chunk a level may declare.
    pub max_chunk_bytes: u64,
}

impl Default for ImageOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 0,
            max_region_bytes: 1 << 30,
            max_metadata_bytes: 16 << 20,
            max_index_bytes: 64 << 20,
            max_chunk_bytes: 256 << 20,
        }
    }
}

impl ImageOptions {
    /// Keeps up to `bytes` of decoded inner chunks (0: no cache).
    #[must_use]
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Refuses regions larger than `bytes`.
    #[must_use]
    pub fn max_region_bytes(mut self, bytes: u64) -> Self {
        self.max_region_bytes = bytes;
        self
    }
}

/// A region of a level: one half-open range per axis, in the level's axis order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(Vec<Range<u64>>);

impl Region {
    /// A region from one range per axis.
    #[must_use]
    pub fn new(ranges: Vec<Range<u64>>) -> Self {
        Self(ranges)
    }

    /// A region of a `c, z, y, x` image (the layout Strata writes).
    #[must_use]
    pub fn czyx(c: Range<u64>, z: Range<u64>, y: Range<u64>, x: Range<u64>) -> Self {
        Self(vec![c, z, y, x])
    }

    /// The ranges, one per axis.
    #[must_use]
    pub fn ranges(&self) -> &[Range<u64>] {
        &self.0
    }

    /// Extent along each axis.
    #[must_use]
    pub fn shape(&self) -> Vec<u64> {
        self.0
            .iter()
            .map(|r| r.end.saturating_sub(r.start))
            .collect()
    }

    /// Number of elements.
    #[must_use]
    pub fn elements(&self) -> u64 {
        self.0
            .iter()
            .map(|r| r.end.saturating_sub(r.start))
            .fold(1u64, u64::saturating_mul)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}..{}", r.start, r.end)?;
        }
        f.write_str("]")
    }
}

/// What an image says about one of its levels.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LevelInfo {
    /// The array's path inside the image (`"0"`, `"1"`, ...).
    pub path: String,
    /// Shape, one extent per axis.
    pub shape: Vec<u64>,
    /// Zarr v3 data type (`"uint8"`, `"uint16"`, ...).
    pub data_type: String,
    /// Bytes per element.
    pub element_size: usize,
    /// Shape of a chunk of the array's grid (a whole shard if sharded).
    pub shard_shape: Vec<u64>,
    /// Shape of the unit of decoding (the inner chunk if sharded, else the chunk).
    pub chunk_shape: Vec<u64>,
    /// Physical size of a pixel along each axis (the level's scale).
    pub scale: Vec<f64>,
    /// Physical position of the first pixel (the level's translation; zeros if none).
    pub translation: Vec<f64>,
}

struct Level {
    info: LevelInfo,
    array: Array<dyn ReadableStorageTraits>,
    shards: ArrayShardedReadableExtCache,
}

/// An OME-Zarr image opened for reading, from any strata store. `Send + Sync`: share it
/// (in an `Arc`) between threads that read at once. Read-only by construction: it holds no
/// writable store.
pub struct Image {
    name: String,
    axes: Vec<Axis>,
    levels: Vec<Level>,
    attributes: Value,
    sidecar: Option<Value>,
    cache: Option<ChunkCache>,
    options: ImageOptions,
    codec: CodecOptions,
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("name", &self.name)
            .field("levels", &self.levels.len())
            .finish_non_exhaustive()
    }
}

impl Image {
    /// Opens the image at `location` (see [`Location::parse`]) with default options.
    ///
    /// # Errors
    /// [`Error::Location`] for a location that cannot be opened, [`Error::Store`] when its
    /// objects cannot be read, [`Error::Metadata`] for metadata that is missing, malformed or
    /// disagrees with the arrays (or declares sizes over the options' limits).
    pub fn open(location: &str) -> Result<Self> {
        Self::open_with(location, ImageOptions::default())
    }

    /// Opens the image at `location` with `options`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(location: &str, options: ImageOptions) -> Result<Self> {
        let loc = Location::parse(location)?;
        let opened = loc.open()?;
        let sidecar = match &opened.sidecar {
            Some((store, key)) => read_json_opt(store.as_ref(), key, &loc.display(), &options)?,
            None => None,
        };
        Self::from_store(opened.store, &loc.display(), sidecar, options)
    }

    /// Opens the image whose group is the root of `store`; `name` is used in messages,
    /// `sidecar` is the BIDS sidecar's JSON if the caller has it.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn from_store(
        store: Arc<dyn ReadableStore>,
        name: &str,
        sidecar: Option<Value>,
        options: ImageOptions,
    ) -> Result<Self> {
        let meta_err = |reason: String| Error::Metadata {
            image: name.to_owned(),
            reason,
        };
        let group = read_json_opt(store.as_ref(), &key("zarr.json", name)?, name, &options)?
            .ok_or_else(|| meta_err("no zarr.json: not an OME-Zarr image".into()))?;
        let attributes = group.get("attributes").cloned().unwrap_or(Value::Null);
        let multiscale = attributes
            .get("ome")
            .and_then(|o| o.get("multiscales"))
            .or_else(|| attributes.get("multiscales"))
            .and_then(|m| m.get(0))
            .ok_or_else(|| meta_err("zarr.json has no OME-NGFF multiscales".into()))?;
        let multiscale: Multiscale = serde_json::from_value(multiscale.clone())
            .map_err(|e| meta_err(format!("the multiscales metadata is malformed: {e}")))?;
        if multiscale.datasets.is_empty() {
            return Err(meta_err("the multiscale lists no levels".into()));
        }
        let storage: Arc<dyn ReadableStorageTraits> = Arc::new(SyncReader::new(Arc::clone(&store)));
        let mut levels = Vec::with_capacity(multiscale.datasets.len());
        for (i, dataset) in multiscale.datasets.iter().enumerate() {
            levels.push(open_level(
                &storage,
                store.as_ref(),
                name,
                i,
                dataset,
                multiscale.axes.len(),
                &options,
            )?);
        }
        let cache = (options.cache_bytes > 0).then(|| ChunkCache::new(options.cache_bytes));
        Ok(Self {
            name: name.to_owned(),
            axes: multiscale.axes,
            levels,
            attributes,
            sidecar,
            cache,
            options,
            // The touched chunks are decoded in parallel here: each one on one thread.
            codec: CodecOptions::default().with_concurrent_target(1),
        })
    }

    /// The image's name (its location) as used in messages.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The axes, in array dimension order (names, types, units).
    #[must_use]
    pub fn axes(&self) -> &[Axis] {
        &self.axes
    }

    /// Every level, highest resolution first.
    pub fn levels(&self) -> impl ExactSizeIterator<Item = &LevelInfo> {
        self.levels.iter().map(|l| &l.info)
    }

    /// One level.
    ///
    /// # Errors
    /// [`Error::NoSuchLevel`].
    pub fn level(&self, level: usize) -> Result<&LevelInfo> {
        self.level_ref(level).map(|l| &l.info)
    }

    /// Extent of the axis called `name` at level 0 (1 if the image has no such axis).
    #[must_use]
    pub fn axis_len(&self, name: &str) -> u64 {
        self.axes
            .iter()
            .position(|a| a.name == name)
            .and_then(|i| self.levels.first().map(|l| l.info.shape[i]))
            .unwrap_or(1)
    }

    /// Number of focus planes (the `z` extent).
    #[must_use]
    pub fn planes(&self) -> u64 {
        self.axis_len("z")
    }

    /// Number of channels (the `c` extent).
    #[must_use]
    pub fn channels(&self) -> u64 {
        self.axis_len("c")
    }

    /// The BIDS sidecar's `PixelSize` (x, y, z in its `PixelSizeUnits`), if the image has a
    /// sidecar that records one.
    #[must_use]
    pub fn pixel_size(&self) -> Option<Vec<f64>> {
        let v = self.sidecar.as_ref()?.get("PixelSize")?.as_array()?;
        v.iter().map(Value::as_f64).collect()
    }

    /// The BIDS sidecar's JSON, if found beside the image.
    #[must_use]
    pub fn sidecar(&self) -> Option<&Value> {
        self.sidecar.as_ref()
    }

    /// The conversion's provenance record (the group attribute `strata`), if any.
    #[must_use]
    pub fn provenance(&self) -> Option<&Value> {
        self.attributes.get("strata")
    }

    /// Bytes of decoded chunks held by the cache now.
    #[must_use]
    pub fn cached_bytes(&self) -> usize {
        self.cache.as_ref().map_or(0, ChunkCache::bytes)
    }

    /// Reads `region` of `level` into a new buffer (elements in C order, native byte order).
    ///
    /// # Errors
    /// [`Error::NoSuchLevel`], [`Error::OutOfBounds`], [`Error::TooLarge`], and
    /// [`Error::Chunk`] naming the chunk that could not be read or decoded.
    pub fn read_region(&self, level: usize, region: &Region) -> Result<Vec<u8>> {
        let bytes = self.check(level, region)?;
        if self.cache.is_none() && bytes > 0 {
            // zarrs' buffer is the result: no copy.
            return self.decode_uncached(level, self.level_ref(level)?, region, bytes);
        }
        let mut out = vec![0u8; bytes];
        self.read_checked(level, region, &mut out)?;
        Ok(out)
    }

    /// Reads `region` of `level` into `out`, which must hold exactly the region's bytes.
    ///
    /// # Errors
    /// As [`read_region`](Self::read_region), and [`Error::Buffer`] for a buffer of another
    /// size.
    pub fn read_region_into(&self, level: usize, region: &Region, out: &mut [u8]) -> Result<()> {
        let bytes = self.check(level, region)?;
        if out.len() != bytes {
            return Err(Error::Buffer {
                image: self.name.clone(),
                level,
                want: bytes,
                got: out.len(),
            });
        }
        self.read_checked(level, region, out)
    }

    fn level_ref(&self, level: usize) -> Result<&Level> {
        self.levels.get(level).ok_or_else(|| Error::NoSuchLevel {
            image: self.name.clone(),
            level,
            levels: self.levels.len(),
        })
    }

    /// Checks the region against the level and the limit; returns its size in bytes.
    fn check(&self, level: usize, region: &Region) -> Result<usize> {
        let l = self.level_ref(level)?;
        let shape = &l.info.shape;
        let fits = region.0.len() == shape.len()
            && region
                .0
                .iter()
                .zip(shape)
                .all(|(r, &n)| r.start <= r.end && r.end <= n);
        if !fits {
            return Err(Error::OutOfBounds {
                image: self.name.clone(),
                level,
                region: region.to_string(),
                shape: shape.clone(),
            });
        }
        let bytes = region.elements().saturating_mul(l.info.element_size as u64);
        if bytes > self.options.max_region_bytes {
            return Err(Error::TooLarge {
                image: self.name.clone(),
                level,
                bytes,
                limit: self.options.max_region_bytes,
            });
        }
        usize::try_from(bytes).map_err(|_| Error::TooLarge {
            image: self.name.clone(),
            level,
            bytes,
            limit: usize::MAX as u64,
        })
    }

    fn read_checked(&self, level: usize, region: &Region, out: &mut [u8]) -> Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        let l = self.level_ref(level)?;
        if self.cache.is_none() {
            return self.read_uncached(level, l, region, out);
        }
        let cs = &l.info.chunk_shape;
        let first: Vec<u64> = region.0.iter().zip(cs).map(|(r, c)| r.start / c).collect();
        let end: Vec<u64> = region
            .0
            .iter()
            .zip(cs)
            .map(|(r, c)| r.end.div_ceil(*c))
            .collect();
        let mut chunks = Odometer::new(first, end);
        // Decoded in batches so that a large region holds a few decoded chunks at a time,
        // not all of them.
        let batch = 2 * rayon::current_num_threads().max(1);
        loop {
            let ids: Vec<Vec<u64>> = chunks.by_ref().take(batch).collect();
            if ids.is_empty() {
                return Ok(());
            }
            let decoded: Vec<Result<Arc<Vec<u8>>>> = if ids.len() == 1 {
                ids.iter().map(|id| self.chunk(level, l, id)).collect()
            } else {
                ids.par_iter().map(|id| self.chunk(level, l, id)).collect()
            };
            for (id, chunk) in ids.iter().zip(decoded) {
                copy_into(&chunk?, id, cs, region, l.info.element_size, out);
            }
        }
    }

    /// Without a cache, zarrs decodes the touched inner chunks (in parallel, on rayon's pool)
    /// straight into one buffer of the region.
    fn decode_uncached(
        &self,
        level: usize,
        l: &Level,
        region: &Region,
        want: usize,
    ) -> Result<Vec<u8>> {
        let subset = ArraySubset::new_with_ranges(region.ranges());
        let bytes: ArrayBytes<'static> = l
            .array
            .retrieve_array_subset_sharded_opt(&l.shards, &subset, &CodecOptions::default())
            .map_err(|e| self.region_error(level, l, region, &e.to_string()))?;
        let raw = bytes
            .into_fixed()
            .map_err(|e| self.region_error(level, l, region, &e.to_string()))?
            .into_owned();
        if raw.len() != want {
            return Err(self.region_error(
                level,
                l,
                region,
                &format!("decoded to {} bytes, the region needs {want}", raw.len()),
            ));
        }
        Ok(raw)
    }

    fn read_uncached(
        &self,
        level: usize,
        l: &Level,
        region: &Region,
        out: &mut [u8],
    ) -> Result<()> {
        let raw = self.decode_uncached(level, l, region, out.len())?;
        out.copy_from_slice(&raw);
        Ok(())
    }

    /// An error of a region read, naming the first chunk the region touches (zarrs' error
    /// says which inner chunk failed).
    fn region_error(&self, level: usize, l: &Level, region: &Region, reason: &str) -> Error {
        Error::Chunk {
            image: self.name.clone(),
            level,
            chunk: region
                .0
                .iter()
                .zip(&l.info.chunk_shape)
                .map(|(r, c)| r.start / c)
                .collect(),
            reason: reason.to_owned(),
        }
    }

    /// One decoded inner chunk, from the cache or the store.
    fn chunk(&self, level: usize, l: &Level, id: &[u64]) -> Result<Arc<Vec<u8>>> {
        let key = (level, id.to_vec());
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            return Ok(hit);
        }
        let err = |reason: String| Error::Chunk {
            image: self.name.clone(),
            level,
            chunk: id.to_vec(),
            reason,
        };
        let bytes: ArrayBytes<'static> = l
            .array
            .retrieve_subchunk_opt(&l.shards, id, &self.codec)
            .map_err(|e| err(e.to_string()))?;
        let raw = bytes
            .into_fixed()
            .map_err(|e| err(e.to_string()))?
            .into_owned();
        let want = l.info.chunk_shape.iter().product::<u64>() * l.info.element_size as u64;
        if raw.len() as u64 != want {
            return Err(err(format!(
                "decoded to {} bytes, the chunk shape needs {want}",
                raw.len()
            )));
        }
        let chunk = Arc::new(raw);
        if let Some(c) = &self.cache {
            c.put(key, Arc::clone(&chunk));
        }
        Ok(chunk)
    }
}

/// Copies the part of a decoded chunk (grid indices `id`, shape `cs`) that lies inside
/// `region` to its place in `out` (the region's buffer), one contiguous run per row.
fn copy_into(chunk: &[u8], id: &[u64], cs: &[u64], region: &Region, elem: usize, out: &mut [u8]) {
    let n = cs.len();
    let origin: Vec<u64> = id.iter().zip(cs).map(|(i, c)| i * c).collect();
    let lo: Vec<u64> = (0..n).map(|d| region.0[d].start.max(origin[d])).collect();
    let hi: Vec<u64> = (0..n)
        .map(|d| region.0[d].end.min(origin[d] + cs[d]))
        .collect();
    if (0..n).any(|d| lo[d] >= hi[d]) {
        return;
    }
    let rshape = region.shape();
    let strides = |shape: &[u64]| {
        let mut s = vec![1u64; n];
        for d in (0..n.saturating_sub(1)).rev() {
            s[d] = s[d + 1] * shape[d + 1];
        }
        s
    };
    let (cstride, rstride) = (strides(cs), strides(&rshape));
    let run = ((hi[n - 1] - lo[n - 1]) as usize) * elem;
    // Every position of the intersection but the last axis: one run each.
    let mut rows = Odometer::new(lo[..n - 1].to_vec(), hi[..n - 1].to_vec());
    let mut row = Vec::new();
    while rows.next_into(&mut row) {
        let (mut src, mut dst) = (0u64, 0u64);
        for d in 0..n - 1 {
            src += (row[d] - origin[d]) * cstride[d];
            dst += (row[d] - region.0[d].start) * rstride[d];
        }
        src += lo[n - 1] - origin[n - 1];
        dst += lo[n - 1] - region.0[n - 1].start;
        let (s, t) = (src as usize * elem, dst as usize * elem);
        out[t..t + run].copy_from_slice(&chunk[s..s + run]);
    }
}

/// Every index vector in `start..end` (per axis), last axis fastest.
struct Odometer {
    next: Option<Vec<u64>>,
    start: Vec<u64>,
    end: Vec<u64>,
}

impl Odometer {
    fn new(start: Vec<u64>, end: Vec<u64>) -> Self {
        let empty = start.iter().zip(&end).any(|(s, e)| s >= e);
        Self {
            next: (!empty).then(|| start.clone()),
            start,
            end,
        }
    }

    /// Writes the next index into `into`; false when done.
    fn next_into(&mut self, into: &mut Vec<u64>) -> bool {
        match self.next() {
            Some(v) => {
                *into = v;
                true
            }
            None => false,
        }
    }
}

impl Iterator for Odometer {
    type Item = Vec<u64>;

    fn next(&mut self) -> Option<Vec<u64>> {
        let current = self.next.take()?;
        let mut following = current.clone();
        let mut d = following.len();
        let advanced = loop {
            if d == 0 {
                break false;
            }
            d -= 1;
            following[d] += 1;
            if following[d] < self.end[d] {
                break true;
            }
            following[d] = self.start[d];
        };
        if advanced {
            self.next = Some(following);
        }
        Some(current)
    }
}

fn key(s: &str, image: &str) -> Result<StoreKey> {
    StoreKey::new(s).map_err(|source| Error::Store {
        image: image.to_owned(),
        source,
    })
}

/// Reads and parses a JSON document of at most `max_metadata_bytes`; `None` if absent.
fn read_json_opt(
    store: &dyn ReadableStore,
    key: &StoreKey,
    image: &str,
    options: &ImageOptions,
) -> Result<Option<Value>> {
    let store_err = |source| Error::Store {
        image: image.to_owned(),
        source,
    };
    let size = match block_on(store.size(key)) {
        Ok(n) => n,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(store_err(e)),
    };
    if size > options.max_metadata_bytes {
        return Err(Error::Metadata {
            image: image.to_owned(),
            reason: format!(
                "{key} is {size} bytes, over the limit of {} for a metadata document",
                options.max_metadata_bytes
            ),
        });
    }
    let bytes = block_on(store.get(key)).map_err(store_err)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Metadata {
            image: image.to_owned(),
            reason: format!("{key} is not valid JSON: {e}"),
        })
}

fn open_level(
    storage: &Arc<dyn ReadableStorageTraits>,
    store: &dyn ReadableStore,
    name: &str,
    index: usize,
    dataset: &strata_ngff::model::Dataset,
    ndim: usize,
    options: &ImageOptions,
) -> Result<Level> {
    let path = dataset.path.trim_matches('/').to_owned();
    let bad = |reason: String| Error::Metadata {
        image: name.to_owned(),
        reason: format!("level {index} ({path}): {reason}"),
    };
    let doc_key = key(&format!("{path}/zarr.json"), name)?;
    let doc = read_json_opt(store, &doc_key, name, options)?
        .ok_or_else(|| bad("the level's zarr.json is missing".into()))?;
    let data_type = doc
        .get("data_type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let metadata: ArrayMetadata = serde_json::from_value(doc)
        .map_err(|e| bad(format!("the array metadata is malformed: {e}")))?;
    let array = Array::new_with_metadata(Arc::clone(storage), &format!("/{path}"), metadata)
        .map_err(|e| bad(format!("the array cannot be read: {e}")))?;
    let shape = array.shape().to_vec();
    if shape.len() != ndim {
        return Err(bad(format!(
            "the array has {} dimensions, the multiscale {ndim} axes",
            shape.len()
        )));
    }
    let element_size = array
        .data_type()
        .fixed_size()
        .ok_or_else(|| bad(format!("data type {data_type:?} has no fixed size")))?;
    let shard_shape: Vec<u64> = array
        .chunk_shape(&vec![0; ndim])
        .map_err(|e| bad(e.to_string()))?
        .iter()
        .map(|n| n.get())
        .collect();
    let chunk_shape: Vec<u64> = array.effective_subchunk_shape().map_or_else(
        || shard_shape.clone(),
        |s| s.iter().map(|n| n.get()).collect(),
    );
    let chunk_bytes = chunk_shape
        .iter()
        .try_fold(element_size as u64, |a, &n| a.checked_mul(n));
    if chunk_bytes.is_none_or(|b| b > options.max_chunk_bytes) {
        return Err(bad(format!(
            "inner chunks of {chunk_shape:?} are over the limit of {} bytes decoded",
            options.max_chunk_bytes
        )));
    }
    if array.is_sharded() {
        let per_shard = shard_shape
            .iter()
            .zip(&chunk_shape)
            .try_fold(16u64, |a, (s, c)| a.checked_mul(s.div_ceil(*c)));
        if per_shard.is_none_or(|b| b > options.max_index_bytes) {
            return Err(bad(format!(
                "shards of {shard_shape:?} in chunks of {chunk_shape:?} need an index over the limit of {} bytes",
                options.max_index_bytes
            )));
        }
    }
    let scale = dataset
        .scale()
        .map_or_else(|| vec![1.0; ndim], <[f64]>::to_vec);
    let translation = dataset
        .translation()
        .map_or_else(|| vec![0.0; ndim], <[f64]>::to_vec);
    let shards = ArrayShardedReadableExtCache::new(&array);
    Ok(Level {
        info: LevelInfo {
            path,
            shape,
            data_type,
            element_size,
            shard_shape,
            chunk_shape,
            scale,
            translation,
        },
        array,
        shards,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odometer_walks_last_axis_fastest() {
        let all: Vec<_> = Odometer::new(vec![0, 1], vec![2, 3]).collect();
        assert_eq!(all, vec![vec![0, 1], vec![0, 2], vec![1, 1], vec![1, 2]]);
        assert_eq!(Odometer::new(vec![0, 3], vec![2, 3]).count(), 0);
        assert_eq!(Odometer::new(vec![], vec![]).count(), 1);
    }

    #[test]
    fn copies_the_intersection_of_a_chunk() {
        // A 4 x 4 chunk at grid (1, 0) of 4 x 4 chunks: rows 4..8, columns 0..4.
        let chunk: Vec<u8> = (0..16).collect();
        let region = Region::new(vec![5..7, 2..6]);
        let mut out = vec![0xff; 8];
        copy_into(&chunk, &[1, 0], &[4, 4], &region, 1, &mut out);
        // Rows 5, 6 (chunk rows 1, 2), columns 2, 3 (chunk columns 2, 3); columns 4, 5 are
        // another chunk's.
        assert_eq!(out, vec![6, 7, 0xff, 0xff, 10, 11, 0xff, 0xff]);
    }
}

//! Writing the arrays of one OME-Zarr image in a single read of the z-stack.
//!
//! The stack is read plane by plane, band by band (a band is one row of inner chunks), and
//! each band as column segments when the source reads regions cheaply (tiled TIFF, memory).
//! Each segment feeds the level-0 shard writer, the pyramid (its 2 x 2 mean goes into level
//! 1's band buffer; a level band's columns, as they complete, cascade down and are queued)
//! and the band hook (quality control).
//! Memory is three segments, one band per pyramid level and the chunks in flight:
//! bounded by the band, never by the plane or the shard, and with segments the level-0 part
//! does not grow with the plane width. The calling thread reads and queues one encoding job
//! per inner chunk on the rayon pool; the jobs append the encoded chunks in the order they
//! were queued into the shards' put streams of the target store (see [`write_arrays_to`]).

use crate::band::{BandShape, chunk_bytes, downsample_columns, downsample_window};
use crate::error::{Error, Result};
use crate::shard::{ChunkEncoder, Compression, ShardOutput, ShardWriter, sharding_codec_json};
use crate::source::{Region, StackInfo, ZStackSource};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use strata_store::{Bytes, PosixOptions, PosixStore, PutStream, StoreKey, WritableStore, block_on};

/// How the arrays are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageOptions {
    /// Inner chunk height and width in pixels (one plane, all channels per chunk).
    pub chunk: u32,
    /// Inner-chunk compression.
    pub compression: Compression,
    /// Planes per shard; `None` puts every plane of a level in one shard.
    pub planes_per_shard: Option<u32>,
    /// Inner chunks per column segment, for sources that read regions; `None` chooses (8, or
    /// 2 per core if more). The output bytes are the same for every value.
    pub segment_chunks: Option<u32>,
}

impl Default for ImageOptions {
    fn default() -> Self {
        Self {
            chunk: 512,
            compression: Compression::Zstd(3),
            planes_per_shard: None,
            segment_chunks: None,
        }
    }
}

/// Receives level 0 as it is read (quality control plugs in here): each band (one row of inner
/// chunks) arrives whole or as column segments, left to right, before the next band.
pub trait BandHook: Send {
    /// The pixels of `region` of level 0, laid out as [`ZStackSource::read_region`] gives
    /// them (row-major, `region.cols` pixels per row).
    fn band(&mut self, info: &StackInfo, region: Region, data: &[u8]);

    /// Called after the last band of a plane.
    fn plane_done(&mut self, _info: &StackInfo, _plane: u32) {}
}

/// A hook that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl BandHook for NoHook {
    fn band(&mut self, _: &StackInfo, _: Region, _: &[u8]) {}
}

/// A shard's put stream, as the [`ShardWriter`]'s output.
struct StreamOut(Box<dyn PutStream>);

impl ShardOutput for StreamOut {
    fn put(&mut self, bytes: Vec<u8>) -> Result<()> {
        block_on(self.0.write(Bytes::from(bytes))).map_err(Error::from)
    }
}

/// What was written for one level.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LevelSummary {
    /// Array shape `[c, z, y, x]`.
    pub shape: [u64; 4],
    /// Shard files written.
    pub shards: u32,
    /// Bytes written (shards only).
    pub bytes: u64,
}

/// What was written for the image's arrays.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArraysSummary {
    /// One entry per pyramid level, level 0 first.
    pub levels: Vec<LevelSummary>,
    /// Uncompressed bytes of level 0 (what was read).
    pub bytes_in: u64,
    /// Bytes written in all levels.
    pub bytes_out: u64,
}

/// Level shapes `(height, width)` from level 0 down to the first level that fits one chunk
/// ([`strata_ngff::pyramid_shapes`]).
#[must_use]
pub fn level_shapes(height: u32, width: u32, chunk: u32) -> Vec<(u32, u32)> {
    strata_ngff::pyramid_shapes(height.into(), width.into(), chunk.into(), None)
        .into_iter()
        // Each level is at most level 0's size, which fits u32.
        .map(|(h, w)| (h as u32, w as u32))
        .collect()
}

/// The Zarr key of a level's shard `zs` (chunk key encoding `default` with separator `.`: the
/// whole key is one file name, so a shard costs one inode and no directories).
#[must_use]
pub fn shard_key(zs: u32) -> String {
    format!("c.0.{zs}.0.0")
}

/// A buffer lent to encoding jobs: it goes back to its pool when the last job using it ends.
struct Lent {
    data: Vec<u8>,
    home: mpsc::Sender<Vec<u8>>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        // Given back as it is (its length kept: a segment read into it again overwrites every
        // byte, so it need not be zeroed again). The pool is gone only when the conversion
        // has ended: nothing to give back to.
        let _ = self.home.send(std::mem::take(&mut self.data));
    }
}

/// At most `most` buffers, lent out and given back: what bounds the reader's lead over the
/// encoders.
struct Buffers {
    home: mpsc::Sender<Vec<u8>>,
    back: mpsc::Receiver<Vec<u8>>,
    made: usize,
    most: usize,
    capacity: usize,
}

impl Buffers {
    fn new(most: usize, capacity: usize) -> Self {
        let (home, back) = mpsc::channel();
        Self {
            home,
            back,
            made: 0,
            most,
            capacity,
        }
    }

    /// A free buffer (of any length): one given back, a new one while under the limit, or
    /// else the next one the encoders give back.
    fn take(&mut self) -> Vec<u8> {
        if let Ok(b) = self.back.try_recv() {
            return b;
        }
        if self.made < self.most {
            self.made += 1;
            return Vec::with_capacity(self.capacity);
        }
        // `home` is held here, so the channel stays open and a buffer comes once a job ends.
        loop {
            match rayon::yield_now() {
                // Called on a thread of the pool (a caller converting inside `install` or a
                // parallel iterator): the jobs may be queued on this very thread, so it runs
                // them while it waits rather than block (with one thread, or every thread
                // converting, blocking would never end).
                Some(rayon::Yield::Executed) => {
                    if let Ok(b) = self.back.try_recv() {
                        return b;
                    }
                }
                Some(rayon::Yield::Idle) => {
                    if let Ok(b) = self.back.recv_timeout(std::time::Duration::from_millis(1)) {
                        return b;
                    }
                }
                None => return self.back.recv().unwrap_or_default(),
            }
        }
    }

    fn lend(&self, data: Vec<u8>) -> Arc<Lent> {
        Arc::new(Lent {
            data,
            home: self.home.clone(),
        })
    }
}

/// One pyramid level's band (levels 1 and up; level 0 is encoded straight from the segment
/// read). One buffer per level: a band's chunks are copied out and queued as its columns
/// complete, during the level-0 band that completes it, so the next band can fill the same
/// buffer.
struct Level {
    shape: BandShape,
    height: usize,
    gx: usize,
    band: Vec<u8>,
    /// Rows filled before the level-0 band being read.
    rows: usize,
    /// The level's row (in its plane) of the band's first row.
    y0: usize,
    /// Rows the band holds once the level-0 band being read is done.
    after: usize,
    /// Columns of the next level already written from this band (while it completes).
    fed: usize,
    /// Chunks of this band already queued (while it completes).
    queued: usize,
}

/// One encoded inner chunk: its level, plane, chunk row and column, and bytes.
struct EncodedChunk {
    level: usize,
    z: u32,
    cy: usize,
    cx: usize,
    bytes: Vec<u8>,
}

/// Appends encoded chunks to the shards in the order they were queued, whichever encoder
/// finishes first: the job that encodes the next chunk in that order appends it and the
/// chunks after it that are ready. So the bytes are the same on every run, and no writer
/// thread has to be woken for every chunk.
struct InOrder<'f, 's> {
    state: Mutex<Appending<'f, 's>>,
    /// Set on the first error, so that the reader stops queueing work.
    failed: AtomicBool,
}

struct Appending<'f, 's> {
    files: &'f mut ShardFiles<'s>,
    /// Chunks encoded before their turn (at most the chunks queued at once).
    early: BTreeMap<u64, EncodedChunk>,
    next: u64,
    error: Option<Error>,
}

impl InOrder<'_, '_> {
    /// Takes encoded chunk `id` (or the error encoding it) and appends what is now in order.
    fn put(&self, id: u64, chunk: Result<EncodedChunk>) {
        // Poisoned only by a panic in another job, which the pool passes on to the reader.
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let state = &mut *state;
        if state.error.is_some() {
            return;
        }
        let appended = chunk.and_then(|c| {
            state.early.insert(id, c);
            while let Some(c) = state.early.remove(&state.next) {
                state.files.append(c)?;
                state.next += 1;
            }
            Ok(())
        });
        if let Err(e) = appended {
            state.error = Some(e);
            state.early.clear();
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    /// After the last job: the first error, or the shards to finish.
    fn finish(&self) -> Result<()> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| Error::Codec("an encoding job panicked".into()))?;
        match state.error.take() {
            Some(e) => Err(e),
            None if !state.early.is_empty() => Err(Error::Codec(format!(
                "{} encoded chunks were never appended (chunk {} is missing)",
                state.early.len(),
                state.next
            ))),
            None => state.files.finish(),
        }
    }

    /// Closes the channel to the completing thread, which then ends (whatever happened).
    fn close(&self) {
        match self.state.lock() {
            Ok(mut state) => state.files.completions = None,
            Err(poisoned) => poisoned.into_inner().files.completions = None,
        }
    }
}

/// Closes the channel to the completing thread when dropped.
struct Closing<'a, 'f, 's>(&'a InOrder<'f, 's>);

impl Drop for Closing<'_, '_, '_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Level-0 rows ready to encode: chunk `i` of `data` is chunk `cx_base + i` of the level.
struct FullBand {
    z: u32,
    cy: usize,
    rows: usize,
    shape: BandShape,
    cx_base: usize,
    chunks: usize,
    data: Arc<Lent>,
}

/// One pyramid chunk copied out of its level's band, ready to encode.
struct LevelChunk {
    level: usize,
    z: u32,
    cy: usize,
    cx: usize,
    data: Vec<u8>,
}

/// Hands chunks to the pool for encoding, numbering them in the order they are handed out:
/// the writer appends them to the shards in that order, so the bytes are the same on every
/// run whichever encoder finishes first.
struct Encoders<'e, 'f, 's> {
    encoder: &'e ChunkEncoder,
    chunk: usize,
    appender: &'e InOrder<'f, 's>,
    next: u64,
}

impl<'e> Encoders<'e, '_, '_> {
    /// One job per chunk of the level-0 `band`, queued on the pool.
    fn spawn<'s>(&mut self, scope: &rayon::Scope<'s>, band: &FullBand)
    where
        'e: 's,
    {
        let (encoder, chunk) = (self.encoder, self.chunk);
        for cx in 0..band.chunks {
            let (id, appender, data) = (self.next, self.appender, Arc::clone(&band.data));
            self.next += 1;
            let (z, cy, rows, shape) = (band.z, band.cy, band.rows, band.shape);
            let cx_level = band.cx_base + cx;
            scope.spawn(move |_| {
                let encoded =
                    encoder.encode(chunk_bytes(&data.data, rows, shape, cx, chunk, chunk));
                // The segment goes back to its pool before the chunk waits for its turn.
                drop(data);
                let encoded = encoded.map(|bytes| EncodedChunk {
                    level: 0,
                    z,
                    cy,
                    cx: cx_level,
                    bytes,
                });
                appender.put(id, encoded);
            });
        }
    }

    /// One job per pyramid chunk, queued on the pool in the order given.
    fn spawn_level<'s>(&mut self, scope: &rayon::Scope<'s>, chunks: Vec<LevelChunk>)
    where
        'e: 's,
    {
        let encoder = self.encoder;
        for c in chunks {
            let (id, appender) = (self.next, self.appender);
            self.next += 1;
            scope.spawn(move |_| {
                let LevelChunk {
                    level,
                    z,
                    cy,
                    cx,
                    data,
                } = c;
                let encoded = encoder.encode(data).map(|bytes| EncodedChunk {
                    level,
                    z,
                    cy,
                    cx,
                    bytes,
                });
                appender.put(id, encoded);
            });
        }
    }
}

/// The pyramid levels' bands, filled from level-0 segments.
///
/// A level band completes during the level-0 band that brings its last rows (and with it the
/// bands of the levels below it that it completes in turn). During that level-0 band, each
/// segment completes the columns above it on every completing level: their 2 x 2 mean goes
/// to the next level and their chunks are copied out and queued, so no band is held twice.
struct Pyramid {
    levels: Vec<Level>,
    chunk: usize,
    /// Levels (from level 1) whose band the level-0 band being read completes.
    completing: usize,
}

impl Pyramid {
    /// Before the first segment of a level-0 band of `rows` rows: which level bands it
    /// completes and how many rows each level that receives rows will then hold.
    fn start_band(&mut self, rows: usize) {
        let chunk = self.chunk;
        let mut add = rows.div_ceil(2);
        self.completing = 0;
        for level in &mut self.levels {
            level.fed = 0;
            level.queued = 0;
        }
        for level in &mut self.levels {
            level.after = level.rows + add;
            let need = level.after * level.shape.row_bytes();
            if level.band.len() < need {
                level.band.resize(need, 0);
            }
            if level.after < chunk && level.y0 + level.after < level.height {
                break;
            }
            self.completing += 1;
            add = level.after.div_ceil(2);
        }
    }

    /// Adds the 2 x 2 mean of a level-0 segment to level 1's band.
    fn add_segment(&mut self, region: Region, data: &[u8], level0: BandShape) {
        let Some(l1) = self.levels.first_mut() else {
            return;
        };
        let rows = region.rows as usize;
        let shape = BandShape {
            width: region.cols as usize,
            ..level0
        };
        let rb = l1.shape.row_bytes();
        let px = shape.channels * shape.sample_type.bytes();
        let x = region.x0 as usize / 2 * px;
        downsample_window(data, rows, shape, &mut l1.band[l1.rows * rb..], rb, x);
    }

    /// After a segment of plane `z` whose last level-0 column is `end` (`last`: the band's
    /// last segment) went into level 1: on each completing level, the columns now complete
    /// add their mean to the next level, and their chunks are returned, copied, to be
    /// encoded, in column order.
    fn segment_done(&mut self, z: u32, end: usize, last: bool) -> Vec<LevelChunk> {
        let chunk = self.chunk;
        let mut out = Vec::new();
        let Some(first) = self.levels.first() else {
            return out;
        };
        // Columns of level 1 with every row of the band (a segment starts at an even column).
        let mut done = if last { first.shape.width } else { end / 2 };
        for l in 0..self.completing {
            let (upper, lower) = self.levels.split_at_mut(l + 1);
            let level = &mut upper[l];
            let complete = done == level.shape.width;
            let mut next_done = 0;
            if let Some(next) = lower.first_mut() {
                let m = if complete { next.shape.width } else { done / 2 };
                if m > level.fed {
                    let px = level.shape.channels * level.shape.sample_type.bytes();
                    let cols = (2 * m).min(level.shape.width) - 2 * level.fed;
                    let window = BandShape {
                        width: cols,
                        ..level.shape
                    };
                    let nrb = next.shape.row_bytes();
                    downsample_columns(
                        &level.band,
                        level.shape.row_bytes(),
                        2 * level.fed * px,
                        level.after,
                        window,
                        &mut next.band[next.rows * nrb..],
                        nrb,
                        level.fed * px,
                    );
                    level.fed = m;
                }
                next_done = m;
            }
            while level.queued < level.gx && (complete || (level.queued + 1) * chunk <= done) {
                let cx = level.queued;
                out.push(LevelChunk {
                    level: l + 1,
                    z,
                    cy: level.y0 / chunk,
                    cx,
                    data: chunk_bytes(&level.band, level.after, level.shape, cx, chunk, chunk),
                });
                level.queued += 1;
            }
            done = next_done;
        }
        out
    }

    /// After the last segment of a level-0 band: the completed bands start again at the
    /// next rows of their level (or plane); the first level not completed keeps its rows.
    fn band_done(&mut self) {
        let completing = self.completing;
        for (l, level) in self.levels.iter_mut().enumerate() {
            if l < completing {
                level.y0 += level.after;
                if level.y0 >= level.height {
                    level.y0 = 0;
                }
                level.rows = 0;
            } else {
                if l == completing {
                    level.rows = level.after;
                }
                break;
            }
        }
        self.completing = 0;
    }
}

/// Inner chunks per column segment when the source reads regions: 8 chunks of 512 are 4096
/// pixels, so a segment of a 4k plane is the whole band and wider planes cost no more memory.
const SEGMENT_CHUNKS: usize = 8;

/// Level-0 segments read ahead of (or being) encoded. A pyramid band's chunks come all at
/// once; with two buffers the reader then waited and the encoders ran dry more often (writer
/// at 79-83% of the compression bound on 2 cores against 84-85% with three, same runs).
const SEGMENT_BUFFERS: usize = 3;

/// Width of the column segments level 0 is read in: whole rows unless the source reads
/// regions cheaply on a tile grid the bands follow; then a multiple of the inner chunk and
/// the tile width (even, so segments start at even columns for the 2 x 2 mean).
fn segment_width(
    info: &StackInfo,
    tile: Option<(u32, u32)>,
    chunk: usize,
    chunks: Option<u32>,
) -> u32 {
    let Some((tw, th)) = tile else {
        return info.width;
    };
    let (tw, th) = (tw as usize, th as usize);
    if tw == 0 || th == 0 || !chunk.is_multiple_of(th) {
        return info.width;
    }
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut step = chunk / gcd(chunk, tw) * tw;
    if !step.is_multiple_of(2) {
        step *= 2;
    }
    let want = chunks.map_or_else(
        || SEGMENT_CHUNKS.max(2 * rayon::current_num_threads()),
        |n| (n as usize).max(1),
    ) * chunk;
    let width = want.div_ceil(step).saturating_mul(step);
    u32::try_from(width)
        .ok()
        .filter(|&w| w < info.width)
        .unwrap_or(info.width)
}

/// The shards of one level.
struct LevelFiles {
    /// The level's key (`<image>/<level>`).
    key: String,
    gx: usize,
    gy: usize,
    shard: Option<OpenShard>,
    shards: u32,
    bytes: u64,
}

struct OpenShard {
    zs: u32,
    writer: ShardWriter<StreamOut>,
    key: String,
}

/// Finished shard streams, completed on a thread of their own in the order handed over
/// (each batch at once), so that the encoders never wait for a shard's last writes and sync.
type Completions = mpsc::Sender<Vec<Box<dyn PutStream>>>;

/// Completes batches of streams in order; returns the first error.
fn complete_streams(batches: &mpsc::Receiver<Vec<Box<dyn PutStream>>>) -> Result<()> {
    let mut first = None;
    for batch in batches {
        if first.is_some() {
            // After an error nothing more is published: the streams are dropped (aborted).
            continue;
        }
        let done = block_on(futures::future::join_all(
            batch.into_iter().map(PutStream::complete),
        ));
        first = done.into_iter().find_map(std::result::Result::err);
    }
    first.map_or(Ok(()), |e| Err(e.into()))
}

/// Appends encoded bands to the levels' shards, in the order received (so the bytes are the
/// same on every run); hands every finished shard to the completing thread.
struct ShardFiles<'s> {
    levels: Vec<LevelFiles>,
    pps: u32,
    store: &'s dyn WritableStore,
    completions: Option<Completions>,
}

impl ShardFiles<'_> {
    fn append(&mut self, chunk: EncodedChunk) -> Result<()> {
        let zs = chunk.z / self.pps;
        let chunks = self.pps as usize;
        let level = &mut self.levels[chunk.level];
        if level.shard.as_ref().is_none_or(|s| s.zs != zs) {
            let finished = finish_shard(level)?;
            self.hand_over(finished.into_iter().collect())?;
            let level = &mut self.levels[chunk.level];
            let key = format!("{}/{}", level.key, shard_key(zs));
            let stream = block_on(self.store.put_stream(&StoreKey::new(key.as_str())?))?;
            let writer = ShardWriter::new(StreamOut(stream), chunks * level.gy * level.gx);
            level.shard = Some(OpenShard { zs, writer, key });
        }
        let level = &mut self.levels[chunk.level];
        let zi = (chunk.z % self.pps) as usize;
        let (gx, gy) = (level.gx, level.gy);
        if let Some(open) = level.shard.as_mut() {
            open.writer
                .append((zi * gy + chunk.cy) * gx + chunk.cx, chunk.bytes)
                .map_err(|e| with_key(e, &open.key))?;
        }
        Ok(())
    }

    fn hand_over(&self, streams: Vec<Box<dyn PutStream>>) -> Result<()> {
        if streams.is_empty() {
            return Ok(());
        }
        self.completions
            .as_ref()
            .and_then(|c| c.send(streams).ok())
            .ok_or_else(|| Error::Codec("the shard-completing thread has stopped".into()))
    }

    /// Writes every open shard's index and hands them over, level 0 first, as one batch.
    fn finish(&mut self) -> Result<()> {
        let mut last = Vec::new();
        for level in &mut self.levels {
            last.extend(finish_shard(level)?);
        }
        self.hand_over(last)
    }
}

fn with_key(e: Error, key: &str) -> Error {
    match e {
        Error::Io { source, .. } => Error::io(key, source),
        other => other,
    }
}

/// Writes the open shard's index; returns its stream, to be completed.
fn finish_shard(level: &mut LevelFiles) -> Result<Option<Box<dyn PutStream>>> {
    let Some(open) = level.shard.take() else {
        return Ok(None);
    };
    let (out, size) = open.writer.finish().map_err(|e| with_key(e, &open.key))?;
    level.shards += 1;
    level.bytes += size;
    Ok(Some(out.0))
}

/// Array metadata (`zarr.json`) of one level.
fn array_json(
    info: &StackInfo,
    h: u32,
    w: u32,
    opts: &ImageOptions,
    pps: u32,
) -> serde_json::Value {
    let c = u64::from(info.channels);
    let chunk = u64::from(opts.chunk);
    let (hp, wp) = (
        u64::from(h).div_ceil(chunk) * chunk,
        u64::from(w).div_ceil(chunk) * chunk,
    );
    serde_json::json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": [c, info.planes, h, w],
        "data_type": info.sample_type.zarr_name(),
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [c, pps, hp, wp]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "."}},
        "fill_value": 0,
        "codecs": [sharding_codec_json(&[c, 1, chunk, chunk], opts.compression)],
        "dimension_names": ["c", "z", "y", "x"],
        "attributes": {}
    })
}

/// Reads the whole stack once and writes every pyramid level as `<dir>/<level>/` (shards,
/// then the level's `zarr.json`) through a POSIX store with direct I/O. The group metadata is
/// the caller's to write, last.
///
/// # Errors
/// Source, I/O and codec errors; a stack with no planes or an empty plane.
pub fn write_arrays(
    source: &mut dyn ZStackSource,
    dir: &Path,
    opts: &ImageOptions,
    hook: &mut dyn BandHook,
) -> Result<ArraysSummary> {
    let store = PosixStore::create(dir, PosixOptions::default().direct_io(true))?;
    write_arrays_to(source, &store, None, opts, hook)
}

/// Reads the whole stack once and writes every pyramid level into `store` under `image`
/// (`<image>/<level>/<shard>`, then each level's `<image>/<level>/zarr.json`; `None` writes
/// the levels at the store's root, e.g. inside an `.ozx` archive). Every shard is one
/// [`WritableStore::put_stream`] (multipart upload on object storage, aligned direct-I/O
/// blocks on a POSIX store with [`PosixOptions::direct_io`]), completed as soon as its last
/// chunk is written. The group metadata is the caller's to write, last.
///
/// Call it from a plain thread, not an async task: the store's futures are driven with
/// [`block_on`].
///
/// # Errors
/// Source, store and codec errors; a stack with no planes or an empty plane.
pub fn write_arrays_to(
    source: &mut dyn ZStackSource,
    store: &dyn WritableStore,
    image: Option<&StoreKey>,
    opts: &ImageOptions,
    hook: &mut dyn BandHook,
) -> Result<ArraysSummary> {
    let info = source.info().clone();
    if info.planes == 0 || info.width == 0 || info.height == 0 {
        return Err(Error::Config(
            "the z-stack is empty (no planes or no pixels)".into(),
        ));
    }
    if opts.chunk == 0 {
        return Err(Error::Config("the chunk size must be at least 1".into()));
    }
    let chunk = opts.chunk as usize;
    let pps = opts
        .planes_per_shard
        .unwrap_or(info.planes)
        .clamp(1, info.planes);
    let encoder = ChunkEncoder::new(opts.compression);
    let shapes = level_shapes(info.height, info.width, opts.chunk);
    let band_shape = |w: u32| BandShape {
        width: w as usize,
        channels: info.channels as usize,
        sample_type: info.sample_type,
    };
    let mut files = ShardFiles {
        levels: Vec::with_capacity(shapes.len()),
        pps,
        store,
        completions: None,
    };
    for (i, &(h, w)) in shapes.iter().enumerate() {
        files.levels.push(LevelFiles {
            key: match image {
                Some(k) => format!("{k}/{i}"),
                None => i.to_string(),
            },
            gx: (w as usize).div_ceil(chunk),
            gy: (h as usize).div_ceil(chunk),
            shard: None,
            shards: 0,
            bytes: 0,
        });
    }
    let seg = segment_width(&info, source.region_tile(), chunk, opts.segment_chunks);
    let mut pyramid = Pyramid {
        levels: shapes[1..]
            .iter()
            .map(|&(h, w)| {
                let shape = band_shape(w);
                Level {
                    shape,
                    height: h as usize,
                    gx: (w as usize).div_ceil(chunk),
                    band: Vec::with_capacity(chunk * shape.row_bytes()),
                    rows: 0,
                    y0: 0,
                    after: 0,
                    fed: 0,
                    queued: 0,
                }
            })
            .collect(),
        chunk,
        completing: 0,
    };

    // The calling thread reads segment after segment (decoding on the pool), adds each one's
    // 2 x 2 mean to the pyramid and queues one encoding job per chunk on the pool, level-0
    // chunks and full pyramid bands' alike; the jobs append the encoded chunks to the shards
    // in the order they were queued ([`InOrder`]) to their put streams; a thread completes
    // the finished shards (their last writes and syncs). Nothing waits for a whole batch to finish (fork-join steps with one barrier per
    // segment left about 8% of the cores' time idle): the encoders always have work while the
    // reader is ahead. The reader's lead is bounded by its segment buffers (a buffer comes
    // back when its last chunk is encoded) and each level's band. Memory is those
    // buffers, the chunks encoded ahead of their turn and the streams' write buffers.
    let seg_bytes = chunk * seg as usize * info.pixel_bytes();
    let appender = InOrder {
        state: Mutex::new(Appending {
            files: &mut files,
            early: BTreeMap::new(),
            next: 0,
            error: None,
        }),
        failed: AtomicBool::new(false),
    };
    std::thread::scope(|scope| -> Result<()> {
        let (completions, batches) = mpsc::channel();
        let completing = scope.spawn(move || complete_streams(&batches));
        if let Ok(state) = appender.state.lock().as_deref_mut() {
            state.files.completions = Some(completions);
        }
        // Ends the completing thread when this scope ends, even by a panic (the scope would
        // otherwise wait for it forever).
        let closing = Closing(&appender);
        let mut encoders = Encoders {
            encoder: &encoder,
            chunk,
            appender: &appender,
            next: 0,
        };
        let level0 = band_shape(info.width);
        let mut segments = Buffers::new(SEGMENT_BUFFERS, seg_bytes);
        let read = rayon::in_place_scope(|s| -> Result<()> {
            for region in level0_regions(&info, chunk, seg) {
                if appender.failed.load(Ordering::Relaxed) {
                    // Appending failed; that error is the one reported.
                    return Ok(());
                }
                let mut buf = segments.take();
                read_into(source, &info, region, &mut buf)?;
                hook.band(&info, region, &buf);
                if region.x0 == 0 {
                    pyramid.start_band(region.rows as usize);
                }
                pyramid.add_segment(region, &buf, level0);
                let ends_row = region.ends_row(&info);
                let end = (region.x0 + region.cols) as usize;
                let level_chunks = pyramid.segment_done(region.plane, end, ends_row);
                let band = FullBand {
                    z: region.plane,
                    cy: region.y0 as usize / chunk,
                    rows: region.rows as usize,
                    shape: BandShape {
                        width: region.cols as usize,
                        ..level0
                    },
                    cx_base: region.x0 as usize / chunk,
                    chunks: (region.cols as usize).div_ceil(chunk),
                    data: segments.lend(buf),
                };
                encoders.spawn(s, &band);
                encoders.spawn_level(s, level_chunks);
                if ends_row {
                    pyramid.band_done();
                    if region.y0 + region.rows == info.height {
                        hook.plane_done(&info, region.plane);
                    }
                }
            }
            Ok(())
        });
        // Every job has ended. Unless reading failed, the last shards are handed over; the
        // completing thread ends with the appender (its channel closes) whatever happened,
        // and reports its first error. Shards of a failed conversion are never completed.
        let finished = read.and_then(|()| appender.finish());
        drop(closing);
        let completed = completing
            .join()
            .unwrap_or_else(|_| Err(Error::Codec("the shard-completing thread panicked".into())));
        // An error completing a shard comes first: the writer's own is then only its echo.
        completed.and(finished)
    })?;

    let mut summary = ArraysSummary {
        levels: Vec::new(),
        bytes_in: u64::from(info.planes) * u64::from(info.height) * info.row_bytes() as u64,
        bytes_out: 0,
    };
    let mut metadata = Vec::with_capacity(shapes.len());
    for (level, &(h, w)) in files.levels.iter().zip(&shapes) {
        let text = serde_json::to_vec_pretty(&array_json(&info, h, w, opts, pps))
            .map_err(|e| Error::Codec(e.to_string()))?;
        metadata.push((StoreKey::new(format!("{}/zarr.json", level.key))?, text));
        summary.bytes_out += level.bytes;
        summary.levels.push(LevelSummary {
            shape: [
                u64::from(info.channels),
                u64::from(info.planes),
                u64::from(h),
                u64::from(w),
            ],
            shards: level.shards,
            bytes: level.bytes,
        });
    }
    // Written (and synced) together, so the file system can commit them at once.
    let written =
        block_on(futures::future::join_all(metadata.into_iter().map(
            |(key, text)| async move { store.put(&key, Bytes::from(text)).await },
        )));
    written
        .into_iter()
        .try_for_each(|r| r.map_err(Error::from))?;
    Ok(summary)
}

/// The regions level 0 is read in: plane by plane, band by band, segment by segment.
fn level0_regions(info: &StackInfo, chunk: usize, seg: u32) -> impl Iterator<Item = Region> {
    let (planes, height, width) = (info.planes, info.height, info.width);
    (0..planes).flat_map(move |plane| {
        (0..height).step_by(chunk).flat_map(move |y0| {
            (0..width).step_by(seg as usize).map(move |x0| Region {
                plane,
                y0,
                rows: (height - y0).min(chunk as u32),
                x0,
                cols: (width - x0).min(seg),
            })
        })
    })
}

/// Reads `region` into `buf` (resized to hold it).
fn read_into(
    source: &mut dyn ZStackSource,
    info: &StackInfo,
    region: Region,
    buf: &mut Vec<u8>,
) -> Result<()> {
    buf.resize(region.bytes(info), 0);
    source.read_region(region, buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemorySource;

    fn stack(planes: u32, side: u32) -> MemorySource {
        let info = StackInfo {
            width: side,
            height: side,
            planes,
            channels: 1,
            sample_type: crate::SampleType::U8,
            pixel_size: None,
            plane_names: (0..planes).map(|z| z.to_string()).collect(),
        };
        let n = (side * side) as usize;
        let data = (0..planes)
            .map(|z| (0..n).map(|i| (i * 7 + z as usize * 13) as u8).collect())
            .collect();
        MemorySource::new(info, data).expect("stack")
    }

    fn shard_bytes(dir: &Path) -> Vec<Vec<u8>> {
        (0..3)
            .map(|l| std::fs::read(dir.join(format!("{l}/c.0.0.0.0"))).expect("shard"))
            .collect()
    }

    /// Called on the pool's own threads (one thread; two conversions on two threads), the
    /// reader must not wait for jobs queued behind it: the conversions end, with the bytes
    /// of a conversion called from outside the pool.
    #[test]
    fn converts_on_the_pools_own_threads() {
        let opts = ImageOptions {
            chunk: 64,
            ..ImageOptions::default()
        };
        let convert = |dir: &Path| {
            write_arrays(&mut stack(3, 256), dir, &opts, &mut NoHook).expect("write");
            shard_bytes(dir)
        };
        let outside = tempfile::tempdir().expect("tempdir");
        let expected = convert(outside.path());
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(one.install(|| convert(dir.path())), expected);
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("pool");
        let (a, b) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let (ra, rb) = two.install(|| rayon::join(|| convert(a.path()), || convert(b.path())));
        assert_eq!(ra, expected);
        assert_eq!(rb, expected);
    }
    /// A stack whose read of band `fail_at` (counted from 0) fails.
    struct Failing {
        inner: MemorySource,
        reads: u32,
        fail_at: u32,
    }

    impl ZStackSource for Failing {
        fn info(&self) -> &StackInfo {
            self.inner.info()
        }

        fn read_band(&mut self, plane: u32, y0: u32, rows: u32, out: &mut [u8]) -> Result<()> {
            self.reads += 1;
            if self.reads > self.fail_at {
                return Err(Error::Input {
                    source_name: format!("plane {plane}"),
                    message: "truncated on purpose".into(),
                });
            }
            self.inner.read_band(plane, y0, rows, out)
        }
    }

    /// A read that fails part way, with encoding jobs queued and shards open, is the error
    /// returned (on a thread outside the pool and on the pool's only thread), not a hang.
    #[test]
    fn a_failed_read_part_way_is_the_error() {
        let opts = ImageOptions {
            chunk: 64,
            ..ImageOptions::default()
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        for fail_at in [0, 5, 11] {
            for on_pool in [false, true] {
                let dir = tempfile::tempdir().expect("tempdir");
                let mut source = Failing {
                    inner: stack(3, 256),
                    reads: 0,
                    fail_at,
                };
                let mut run = || write_arrays(&mut source, dir.path(), &opts, &mut NoHook);
                let result = if on_pool { one.install(run) } else { run() };
                let err = result.expect_err("the read fails");
                assert!(err.to_string().contains("truncated on purpose"), "{err}");
                assert!(
                    !dir.path().join("0/zarr.json").exists(),
                    "no metadata written"
                );
            }
        }
    }
}

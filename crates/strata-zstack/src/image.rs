//! Writing the arrays of one OME-Zarr image in a single read of the z-stack.
//!
//! The stack is read plane by plane, band by band (a band is one row of inner chunks), and
//! each band as column segments when the source reads regions cheaply (tiled TIFF, memory).
//! Each segment feeds the level-0 shard writer, the pyramid (its 2 x 2 mean goes into level
//! 1's band buffer; full level bands cascade down) and the band hook (quality control).
//! Memory is one band per pyramid level plus two segments and two steps of encoded chunks:
//! bounded by the band, never by the plane or the shard, and with segments the level-0 part
//! does not grow with the plane width. Inner chunks are encoded in parallel on all cores
//! while, on the same threads, the next segment is read and the last one written.

use crate::band::{BandShape, chunk_bytes, downsample_append, downsample_window};
use crate::error::{Error, Result};
use crate::shard::{ChunkEncoder, Compression, ShardWriter, sharding_codec_json};
use crate::source::{Region, StackInfo, ZStackSource};
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

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

/// Where the shards go: a file in the level's folder unless the sink takes them (e.g. into an
/// archive being written, so that the bytes are written once).
///
/// The writer opens a shard when its first chunk arrives and finishes it before the
/// next shard of the same level; shards of different levels are open at the same time.
pub trait ShardSink: Send {
    /// A stream for shard `key` (its file name, e.g. `c.0.0.0.0`) of level `level`, or `None`
    /// to write it as the file `<dir>/<level>/<key>`.
    ///
    /// # Errors
    /// When the stream cannot be opened; the conversion stops with this error.
    fn open(&mut self, level: usize, key: &str) -> Result<Option<Box<dyn ShardStream>>>;
}

/// A shard written to a stream: its bytes in order, then [`ShardStream::finish`].
pub trait ShardStream: Write + Send {
    /// Called after the last byte: completes the shard (e.g. the archive entry).
    ///
    /// # Errors
    /// When completing fails; the conversion stops with this error.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Every shard to a file (what [`write_arrays`] does).
#[derive(Debug, Clone, Copy, Default)]
pub struct FileShards;

impl ShardSink for FileShards {
    fn open(&mut self, _: usize, _: &str) -> Result<Option<Box<dyn ShardStream>>> {
        Ok(None)
    }
}

/// An open shard's destination.
enum ShardOut {
    File(BufWriter<File>),
    Stream(Box<dyn ShardStream>),
}

impl Write for ShardOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::File(f) => f.write(buf),
            Self::Stream(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::File(f) => f.flush(),
            Self::Stream(s) => s.flush(),
        }
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

/// Level shapes `(height, width)` from level 0 down to the first level that fits one chunk.
#[must_use]
pub fn level_shapes(height: u32, width: u32, chunk: u32) -> Vec<(u32, u32)> {
    let mut out = vec![(height, width)];
    let (mut h, mut w) = (height, width);
    while (h > chunk || w > chunk) && h > 1 && w > 1 {
        h = h.div_ceil(2);
        w = w.div_ceil(2);
        out.push((h, w));
    }
    out
}

/// The Zarr key of a level's shard `zs` (chunk key encoding `default` with separator `.`: the
/// whole key is one file name, so a shard costs one inode and no directories).
#[must_use]
pub fn shard_key(zs: u32) -> String {
    format!("c.0.{zs}.0.0")
}

/// One pyramid level's band buffer (levels 1 and up; level 0 is encoded straight from the
/// segment read).
struct Level {
    shape: BandShape,
    height: usize,
    gx: usize,
    band: Vec<u8>,
    rows: usize,
    y0: usize,
    /// A buffer for the next band, kept from a band already encoded.
    spare: Vec<u8>,
}

/// One encoded inner chunk: its level, plane, chunk row and column, and bytes.
struct EncodedChunk {
    level: usize,
    z: u32,
    cy: usize,
    cx: usize,
    bytes: Vec<u8>,
}

/// Rows of one level ready to encode: chunk `i` of `data` is chunk `cx_base + i` of the level.
struct FullBand<'a> {
    level: usize,
    z: u32,
    cy: usize,
    rows: usize,
    shape: BandShape,
    cx_base: usize,
    data: &'a [u8],
}

/// A full pyramid band waiting for its chunks to be encoded. It owns its rows, so its level
/// fills the next band meanwhile and the chunks go along with the next level-0 segments.
struct Queued {
    level: usize,
    z: u32,
    cy: usize,
    rows: usize,
    shape: BandShape,
    gx: usize,
    data: Vec<u8>,
    /// The first chunk column not yet handed out.
    next: usize,
}

/// Builds the pyramid from level-0 segments and encodes chunks on all cores.
struct Pyramid<'a> {
    levels: Vec<Level>,
    queue: std::collections::VecDeque<Queued>,
    level0: BandShape,
    chunk: usize,
    encoder: &'a ChunkEncoder,
    /// Most pyramid chunks encoded in one step, with a segment's (bounds the encoded bytes
    /// held at once; 2 per core: the pyramid is a third of the chunks).
    batch: usize,
}

impl Pyramid<'_> {
    /// Whether full pyramid bands wait to be encoded.
    fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// One step of encoding on all cores: the chunks of level-0 segment `segment` (if any),
    /// while its 2 x 2 mean goes into level 1's band, and up to `batch` chunks of the queued
    /// pyramid bands, oldest first. Returns the encoded chunks in that order.
    fn step(&mut self, segment: Option<(Region, &[u8])>) -> Result<Vec<EncodedChunk>> {
        let chunk = self.chunk;
        // Hand out the queued bands' next chunks.
        let mut taken = Vec::new();
        let mut left = self.batch;
        for (i, q) in self.queue.iter_mut().enumerate() {
            let n = (q.gx - q.next).min(left);
            if n > 0 {
                taken.push((i, q.next, n));
                q.next += n;
                left -= n;
            }
        }
        let mut bands = Vec::with_capacity(taken.len() + 1);
        let mut jobs = Vec::new();
        if let Some((region, data)) = segment {
            let width = region.cols as usize;
            bands.push(FullBand {
                level: 0,
                z: region.plane,
                cy: region.y0 as usize / chunk,
                rows: region.rows as usize,
                shape: BandShape {
                    width,
                    ..self.level0
                },
                cx_base: region.x0 as usize / chunk,
                data,
            });
            jobs.extend((0..width.div_ceil(chunk)).map(|cx| (0, cx)));
        }
        for &(i, from, n) in &taken {
            let q = &self.queue[i];
            jobs.extend((from..from + n).map(|cx| (bands.len(), cx)));
            bands.push(FullBand {
                level: q.level,
                z: q.z,
                cy: q.cy,
                rows: q.rows,
                shape: q.shape,
                cx_base: 0,
                data: &q.data,
            });
        }
        let level1 = self.levels.first_mut();
        let (encoded, ()) = rayon::join(
            || encode(self.encoder, chunk, &bands, &jobs),
            || {
                if let (Some(l1), Some((region, data))) = (level1, segment) {
                    let (rows, shape) = (region.rows as usize, bands[0].shape);
                    let rb = l1.shape.row_bytes();
                    let need = (l1.rows + rows.div_ceil(2)) * rb;
                    if l1.band.len() < need {
                        l1.band.resize(need, 0);
                    }
                    let px = shape.channels * shape.sample_type.bytes();
                    let x = region.x0 as usize / 2 * px;
                    downsample_window(data, rows, shape, &mut l1.band[l1.rows * rb..], rb, x);
                }
            },
        );
        drop(bands);
        // Encoded bands give their buffer back to their level.
        while self.queue.front().is_some_and(|q| q.next == q.gx) {
            if let Some(mut q) = self.queue.pop_front() {
                q.data.clear();
                self.levels[q.level - 1].spare = q.data;
            }
        }
        encoded
    }

    /// Called after the last segment of a level-0 band of plane `z` with `rows` rows: level
    /// 1 has its mean complete; every level band that is now full adds its mean to the level
    /// below and joins the queue.
    fn band_done(&mut self, z: u32, rows: usize) {
        let chunk = self.chunk;
        let mut filled = 0;
        let mut add = rows.div_ceil(2);
        for l in 0..self.levels.len() {
            let (done, rest) = self.levels.split_at_mut(l);
            let level = &mut rest[0];
            if let Some(above) = done.last() {
                downsample_append(&above.band, above.rows, above.shape, &mut level.band);
            }
            level.rows += add;
            if level.rows < chunk && level.y0 + level.rows < level.height {
                break;
            }
            filled += 1;
            add = level.rows.div_ceil(2);
        }
        for (l, level) in self.levels.iter_mut().enumerate().take(filled) {
            let spare = std::mem::take(&mut level.spare);
            self.queue.push_back(Queued {
                level: l + 1,
                z,
                cy: level.y0 / chunk,
                rows: level.rows,
                shape: level.shape,
                gx: level.gx,
                data: std::mem::replace(&mut level.band, spare),
                next: 0,
            });
            level.y0 += level.rows;
            if level.y0 >= level.height {
                level.y0 = 0;
            }
            level.rows = 0;
        }
    }
}

/// Encodes chunks `jobs` (`(band, chunk column)`) on all cores, in job order.
fn encode(
    encoder: &ChunkEncoder,
    chunk: usize,
    bands: &[FullBand<'_>],
    jobs: &[(usize, usize)],
) -> Result<Vec<EncodedChunk>> {
    jobs.par_iter()
        .map(|&(i, cx)| {
            let b = &bands[i];
            Ok(EncodedChunk {
                level: b.level,
                z: b.z,
                cy: b.cy,
                cx: b.cx_base + cx,
                bytes: encoder.encode(chunk_bytes(b.data, b.rows, b.shape, cx, chunk, chunk))?,
            })
        })
        .collect()
}

/// Inner chunks per column segment when the source reads regions: 8 chunks of 512 are 4096
/// pixels, so a segment of a 4k plane is the whole band and wider planes cost no more memory.
const SEGMENT_CHUNKS: usize = 8;

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

/// Write buffer per open shard file. Encoded chunks are a few hundred KiB, so a small buffer
/// costs few extra system calls, and every level has a shard open at once: 4 MiB each made
/// peak memory grow with the number of levels, i.e. with the plane size.
const SHARD_BUFFER: usize = 1 << 20;

/// Bytes a shard file may hold unsynced before the writer hands it to the sync thread, so
/// that the disk works while the encoders do and the final sync has little left to do
/// (measured: the final syncs took 9-10 ms of a 4 x 4096^2 write at 8 MiB, 4-5 ms at 2 MiB).
const SYNC_EVERY: u64 = 2 << 20;

/// The shard files of one level.
struct LevelFiles {
    dir: PathBuf,
    gx: usize,
    gy: usize,
    shard: Option<OpenShard>,
    shards: u32,
    bytes: u64,
}

struct OpenShard {
    zs: u32,
    writer: ShardWriter<ShardOut>,
    path: PathBuf,
    unsynced: u64,
}

/// Appends encoded bands to the levels' shards, in the order received (so the bytes are the
/// same on every run), syncing as it goes; finishes every shard at the end.
struct ShardFiles<'s> {
    levels: Vec<LevelFiles>,
    pps: u32,
    sink: &'s mut dyn ShardSink,
    /// The sync thread: syncs the files it is given while the writer goes on writing (a sync
    /// in the pipeline would stall it). `None` syncs nothing early.
    syncer: Option<mpsc::SyncSender<(File, PathBuf)>>,
}

impl ShardFiles<'_> {
    fn append(&mut self, chunk: &EncodedChunk) -> Result<()> {
        let zs = chunk.z / self.pps;
        let chunks = self.pps as usize;
        let level = &mut self.levels[chunk.level];
        if level.shard.as_ref().is_none_or(|s| s.zs != zs) {
            finish_shard(level)?;
            let key = shard_key(zs);
            let path = level.dir.join(&key);
            let out = match self.sink.open(chunk.level, &key)? {
                Some(stream) => ShardOut::Stream(stream),
                None => ShardOut::File(BufWriter::with_capacity(
                    SHARD_BUFFER,
                    File::create(&path).map_err(|e| Error::io(&path, e))?,
                )),
            };
            let writer = ShardWriter::new(out, chunks * level.gy * level.gx);
            level.shard = Some(OpenShard {
                zs,
                writer,
                path,
                unsynced: 0,
            });
        }
        let zi = (chunk.z % self.pps) as usize;
        let (gx, gy) = (level.gx, level.gy);
        if let Some(open) = level.shard.as_mut() {
            open.writer
                .append((zi * gy + chunk.cy) * gx + chunk.cx, &chunk.bytes)
                .map_err(|e| with_path(e, &open.path))?;
            open.unsynced += chunk.bytes.len() as u64;
            if open.unsynced >= SYNC_EVERY {
                // If the sync thread is still busy with the last request, this one is
                // skipped: the next one (or the final sync) covers these bytes.
                if let ShardOut::File(out) = open.writer.get_mut() {
                    out.flush().map_err(|e| Error::io(&open.path, e))?;
                    if let (Some(syncer), Ok(file)) = (&self.syncer, out.get_ref().try_clone()) {
                        let _ = syncer.try_send((file, open.path.clone()));
                    }
                }
                open.unsynced = 0;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.levels.iter_mut().try_for_each(finish_shard)
    }
}

fn with_path(e: Error, path: &Path) -> Error {
    match e {
        Error::Io { source, .. } => Error::io(path, source),
        other => other,
    }
}

fn finish_shard(level: &mut LevelFiles) -> Result<()> {
    if let Some(open) = level.shard.take() {
        let path = open.path;
        let (out, size) = open.writer.finish().map_err(|e| with_path(e, &path))?;
        match out {
            ShardOut::File(buf) => {
                let file = buf
                    .into_inner()
                    .map_err(|e| Error::io(&path, e.into_error()))?;
                file.sync_all().map_err(|e| Error::io(&path, e))?;
            }
            ShardOut::Stream(stream) => stream.finish()?,
        }
        level.shards += 1;
        level.bytes += size;
    }
    Ok(())
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
/// then the level's `zarr.json`). The group metadata is the caller's to write, last.
///
/// # Errors
/// Source, I/O and codec errors; a stack with no planes or an empty plane.
pub fn write_arrays(
    source: &mut dyn ZStackSource,
    dir: &Path,
    opts: &ImageOptions,
    hook: &mut dyn BandHook,
) -> Result<ArraysSummary> {
    write_arrays_to(source, dir, opts, hook, &mut FileShards)
}

/// [`write_arrays`] with the shards that `sink` takes written to its streams instead of files
/// (the levels' `zarr.json` are files in `dir` either way).
///
/// # Errors
/// As [`write_arrays`], and the sink's errors.
pub fn write_arrays_to(
    source: &mut dyn ZStackSource,
    dir: &Path,
    opts: &ImageOptions,
    hook: &mut dyn BandHook,
    sink: &mut dyn ShardSink,
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
        sink,
        syncer: None,
    };
    for (i, &(h, w)) in shapes.iter().enumerate() {
        let level_dir = dir.join(i.to_string());
        std::fs::create_dir_all(&level_dir).map_err(|e| Error::io(&level_dir, e))?;
        files.levels.push(LevelFiles {
            dir: level_dir,
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
                    spare: Vec::with_capacity(chunk * shape.row_bytes()),
                }
            })
            .collect(),
        queue: std::collections::VecDeque::new(),
        level0: band_shape(info.width),
        chunk,
        encoder: &encoder,
        batch: 2 * rayon::current_num_threads(),
    };

    // Each step encodes a level-0 segment and up to a batch of the queued pyramid bands'
    // chunks on all cores; in the same fork-join scope one task appends the previous step's
    // chunks to the shards and another reads the next segment. Reading, encoding and writing
    // overlap on the pool's threads, so no reader or writer thread competes with the
    // encoders for the cores (on 2 cores such threads preempted encoders in the middle of a
    // batch, which then waited for the preempted chunk). Only the syncs, which wait for the
    // disk, have a thread. Two segment buffers alternate: memory is two segments, two bands
    // per pyramid level and two steps of encoded chunks.
    let seg_bytes = chunk * seg as usize * info.pixel_bytes();
    let files_ref = &mut files;
    std::thread::scope(|scope| -> Result<()> {
        let (sync_tx, sync_rx) = mpsc::sync_channel::<(File, PathBuf)>(1);
        files_ref.syncer = Some(sync_tx);
        let syncer = scope.spawn(move || -> Result<()> {
            for (file, path) in sync_rx {
                file.sync_data().map_err(|e| Error::io(&path, e))?;
            }
            Ok(())
        });
        let steps = (|| -> Result<()> {
            let mut regions = level0_regions(&info, chunk, seg);
            let (mut buf, mut next_buf) =
                (Vec::with_capacity(seg_bytes), Vec::with_capacity(seg_bytes));
            let mut current = regions.next();
            if let Some(region) = current {
                read_into(source, &info, region, &mut buf)?;
            }
            let mut pending = Vec::new();
            while let Some(region) = current {
                let next = regions.next();
                pending = {
                    let (data, levels, band_hook, info) = (&buf, &mut pyramid, &mut *hook, &info);
                    let (source, into) = (&mut *source, &mut next_buf);
                    overlap(
                        files_ref,
                        pending,
                        next.map(|r| move || read_into(source, info, r, into)),
                        move || {
                            band_hook.band(info, region, data);
                            levels.step(Some((region, data)))
                        },
                    )?
                };
                std::mem::swap(&mut buf, &mut next_buf);
                current = next;
                if region.ends_row(&info) {
                    pyramid.band_done(region.plane, region.rows as usize);
                    if region.y0 + region.rows == info.height {
                        hook.plane_done(&info, region.plane);
                    }
                }
            }
            // The pyramid bands completed by the last segments.
            while pyramid.has_queued() {
                let levels = &mut pyramid;
                pending = overlap(files_ref, pending, None::<fn() -> Result<()>>, move || {
                    levels.step(None)
                })?;
            }
            pending.iter().try_for_each(|c| files_ref.append(c))
        })();
        // Ends the sync thread, whatever happened, before the final syncs.
        files_ref.syncer = None;
        let synced = syncer
            .join()
            .unwrap_or_else(|_| Err(Error::Codec("the sync thread panicked".into())));
        steps.and_then(|()| files_ref.finish()).and(synced)
    })?;

    let mut summary = ArraysSummary {
        levels: Vec::new(),
        bytes_in: u64::from(info.planes) * u64::from(info.height) * info.row_bytes() as u64,
        bytes_out: 0,
    };
    for (level, &(h, w)) in files.levels.iter().zip(&shapes) {
        let meta = level.dir.join("zarr.json");
        let text = serde_json::to_vec_pretty(&array_json(&info, h, w, opts, pps))
            .map_err(|e| Error::Codec(e.to_string()))?;
        write_synced(&meta, &text)?;
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

/// One step of the pipeline: runs `work` (encoding, on all cores) while, in the same
/// fork-join scope, `pending` (the previous step's chunks) is appended to the shards and
/// `read` fetches the next segment. Returns what `work` encoded; the first error of the three.
fn overlap<R, W>(
    files: &mut ShardFiles<'_>,
    pending: Vec<EncodedChunk>,
    read: Option<R>,
    work: W,
) -> Result<Vec<EncodedChunk>>
where
    R: FnOnce() -> Result<()> + Send,
    W: FnOnce() -> Result<Vec<EncodedChunk>> + Send,
{
    let (mut read_result, mut write_result) = (Ok(()), Ok(()));
    let encoded = rayon::scope(|s| {
        // Spawned first, so an idle thread takes them before helping with the encoding.
        if let Some(read) = read {
            let read_result = &mut read_result;
            s.spawn(move |_| *read_result = read());
        }
        if !pending.is_empty() {
            let write_result = &mut write_result;
            s.spawn(move |_| *write_result = pending.iter().try_for_each(|c| files.append(c)));
        }
        work()
    });
    read_result.and(write_result).and(encoded)
}

/// Writes a small file and syncs it.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_goes_down_to_one_chunk() {
        assert_eq!(
            level_shapes(4096, 4096, 512),
            [(4096, 4096), (2048, 2048), (1024, 1024), (512, 512)]
        );
        assert_eq!(level_shapes(1000, 300, 512), [(1000, 300), (500, 150)]);
        assert_eq!(level_shapes(100, 100, 512), [(100, 100)]);
        assert_eq!(level_shapes(5000, 1, 512), [(5000, 1)]);
    }
}

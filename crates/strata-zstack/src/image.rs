//! Writing the arrays of one OME-Zarr image in a single read of the z-stack.
//!
//! The stack is read plane by plane, band by band (a band is one row of inner chunks). Each
//! band feeds the level-0 shard writer, the pyramid (the band's 2 x 2 mean goes into level 1's
//! band buffer, and so on down), and the band hook (quality control). Memory is one band per
//! level plus the bands in flight between the reader thread and the encoders: bounded by the
//! band size, never by the plane or the shard. Inner chunks of a band are encoded in parallel
//! on all cores while the reader thread decodes the next band.

use crate::band::{BandShape, chunk_bytes, downsample_append};
use crate::error::{Error, Result};
use crate::shard::{ChunkEncoder, Compression, ShardWriter, sharding_codec_json};
use crate::source::{StackInfo, ZStackSource};
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufWriter, Write as _};
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
}

impl Default for ImageOptions {
    fn default() -> Self {
        Self {
            chunk: 512,
            compression: Compression::Zstd(3),
            planes_per_shard: None,
        }
    }
}

/// Receives every band of level 0 as it is read (quality control plugs in here).
pub trait BandHook: Send {
    /// Rows `y0 .. y0 + rows` of plane `plane`, in the source's layout (see
    /// [`ZStackSource::read_band`]).
    fn band(&mut self, info: &StackInfo, plane: u32, y0: u32, rows: u32, data: &[u8]);

    /// Called after the last band of a plane.
    fn plane_done(&mut self, _info: &StackInfo, _plane: u32) {}
}

/// A hook that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl BandHook for NoHook {
    fn band(&mut self, _: &StackInfo, _: u32, _: u32, _: u32, _: &[u8]) {}
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
/// reader's buffer).
struct Level {
    shape: BandShape,
    height: usize,
    gx: usize,
    band: Vec<u8>,
    rows: usize,
    y0: usize,
}

/// The encoded inner chunks of one band of one level, in column order.
struct EncodedBand {
    level: usize,
    z: u32,
    cy: usize,
    chunks: Vec<Vec<u8>>,
}

/// A band ready to encode: its level, first chunk row, rows and the bytes.
struct FullBand<'a> {
    level: usize,
    cy: usize,
    rows: usize,
    shape: BandShape,
    gx: usize,
    data: &'a [u8],
}

/// Builds the pyramid band by band and encodes every full band on all cores.
struct Pyramid<'a> {
    levels: Vec<Level>,
    level0: BandShape,
    chunk: usize,
    encoder: &'a ChunkEncoder,
}

impl Pyramid<'_> {
    /// Takes level-0 band `(z, y0, rows)`: encodes it, adds its 2 x 2 mean to level 1 (and
    /// so on down while levels fill up) and encodes each level band that is complete.
    /// Returns the encoded bands, level 0 first, in a fixed order.
    fn band(&mut self, z: u32, y0: usize, rows: usize, data: &[u8]) -> Result<Vec<EncodedBand>> {
        let chunk = self.chunk;
        let first = FullBand {
            level: 0,
            cy: y0 / chunk,
            rows,
            shape: self.level0,
            gx: self.level0.width.div_ceil(chunk),
            data,
        };
        // Level 0's chunks are encoded while its mean goes down the pyramid.
        let levels = &mut self.levels;
        let (level0, filled) = rayon::join(
            || encode(self.encoder, chunk, &[first]),
            || cascade(levels, chunk, data, rows, self.level0),
        );
        let mut out = level0?;
        let full: Vec<FullBand<'_>> = filled
            .iter()
            .map(|&l| {
                let level = &self.levels[l];
                FullBand {
                    level: l + 1,
                    cy: level.y0 / chunk,
                    rows: level.rows,
                    shape: level.shape,
                    gx: level.gx,
                    data: &level.band,
                }
            })
            .collect();
        out.extend(encode(self.encoder, chunk, &full)?);
        for l in filled {
            let level = &mut self.levels[l];
            level.y0 += level.rows;
            if level.y0 == level.height {
                level.y0 = 0;
            }
            level.rows = 0;
            level.band.clear();
        }
        for band in &mut out {
            band.z = z;
        }
        Ok(out)
    }
}

/// Adds the 2 x 2 mean of a level-0 band to the pyramid's band buffers; returns the indices
/// (into `levels`, level 1 = index 0) of the bands that became complete, top down.
fn cascade(
    levels: &mut [Level],
    chunk: usize,
    data: &[u8],
    rows: usize,
    shape: BandShape,
) -> Vec<usize> {
    let mut filled = Vec::new();
    let (mut prev_rows, mut prev_shape) = (rows, shape);
    for l in 0..levels.len() {
        let (done, rest) = levels.split_at_mut(l);
        let src = match done.last() {
            Some(above) => &above.band[..],
            None => data,
        };
        let level = &mut rest[0];
        downsample_append(src, prev_rows, prev_shape, &mut level.band);
        level.rows += prev_rows.div_ceil(2);
        if level.rows < chunk && level.y0 + level.rows < level.height {
            break;
        }
        filled.push(l);
        (prev_rows, prev_shape) = (level.rows, level.shape);
    }
    filled
}

/// Encodes the inner chunks of `bands` on all cores.
fn encode(
    encoder: &ChunkEncoder,
    chunk: usize,
    bands: &[FullBand<'_>],
) -> Result<Vec<EncodedBand>> {
    let jobs: Vec<(usize, usize)> = bands
        .iter()
        .enumerate()
        .flat_map(|(i, b)| (0..b.gx).map(move |cx| (i, cx)))
        .collect();
    let mut encoded = jobs
        .into_par_iter()
        .map(|(i, cx)| {
            let b = &bands[i];
            encoder.encode(chunk_bytes(b.data, b.rows, b.shape, cx, chunk, chunk))
        })
        .collect::<Result<Vec<Vec<u8>>>>()?
        .into_iter();
    Ok(bands
        .iter()
        .map(|b| EncodedBand {
            level: b.level,
            z: 0,
            cy: b.cy,
            chunks: encoded.by_ref().take(b.gx).collect(),
        })
        .collect())
}

/// Write buffer per open shard file. Encoded chunks are a few hundred KiB, so a small buffer
/// costs few extra system calls, and every level has a shard open at once: 4 MiB each made
/// peak memory grow with the number of levels, i.e. with the plane size.
const SHARD_BUFFER: usize = 1 << 20;

/// Bytes a shard file may hold unsynced before the writer syncs it, so that the final sync
/// has little left to do and the disk works while the encoders do.
const SYNC_EVERY: u64 = 64 << 20;

/// The shard files of one level, written by the writer thread.
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
    writer: ShardWriter<BufWriter<File>>,
    path: PathBuf,
    unsynced: u64,
}

/// Appends encoded bands to the levels' shards, in the order received (so the bytes are the
/// same on every run), syncing as it goes; finishes every shard at the end.
struct ShardFiles {
    levels: Vec<LevelFiles>,
    pps: u32,
}

impl ShardFiles {
    fn append(&mut self, band: &EncodedBand) -> Result<()> {
        let zs = band.z / self.pps;
        let chunks = self.pps as usize;
        let level = &mut self.levels[band.level];
        if level.shard.as_ref().is_none_or(|s| s.zs != zs) {
            finish_shard(level)?;
            let path = level.dir.join(shard_key(zs));
            let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
            let writer = ShardWriter::new(
                BufWriter::with_capacity(SHARD_BUFFER, file),
                chunks * level.gy * level.gx,
            );
            level.shard = Some(OpenShard {
                zs,
                writer,
                path,
                unsynced: 0,
            });
        }
        let zi = (band.z % self.pps) as usize;
        let (gx, gy) = (level.gx, level.gy);
        if let Some(open) = level.shard.as_mut() {
            for (cx, bytes) in band.chunks.iter().enumerate() {
                open.writer
                    .append((zi * gy + band.cy) * gx + cx, bytes)
                    .map_err(|e| with_path(e, &open.path))?;
                open.unsynced += bytes.len() as u64;
            }
            if open.unsynced >= SYNC_EVERY {
                let out = open.writer.get_mut();
                out.flush().map_err(|e| Error::io(&open.path, e))?;
                out.get_ref()
                    .sync_data()
                    .map_err(|e| Error::io(&open.path, e))?;
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
        let (buf, size) = open.writer.finish().map_err(|e| with_path(e, &path))?;
        let file = buf
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&path, e))?;
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
                }
            })
            .collect(),
        level0: band_shape(info.width),
        chunk,
        encoder: &encoder,
    };

    // Three stages overlap: the reader thread decodes band n + 1 while the encoders work on
    // band n and the writer thread appends band n - 1 to the shard files. Two read buffers
    // circulate and an encoded band is handed to the writer directly (no queue), so memory stays at a few
    // level-0 bands however large the plane.
    let row_bytes = info.row_bytes();
    let (band_tx, band_rx) = mpsc::sync_channel::<Result<(u32, u32, u32, Vec<u8>)>>(1);
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..2 {
        let _ = free_tx.send(vec![0u8; chunk * row_bytes]);
    }
    let (out_tx, out_rx) = mpsc::sync_channel::<Vec<EncodedBand>>(0);
    let planes = info.planes;
    let height = info.height;
    let files_ref = &mut files;
    let result = std::thread::scope(|scope| -> Result<()> {
        // Owned by this closure: dropped when it returns, even early on an error, so a reader
        // blocked waiting for a free buffer wakes up and ends before the scope joins it.
        let free_tx = free_tx;
        scope.spawn(move || {
            for z in 0..planes {
                for y0 in (0..height).step_by(chunk) {
                    let rows = (height - y0).min(chunk as u32);
                    let Ok(mut buf) = free_rx.recv() else { return };
                    buf.resize(rows as usize * row_bytes, 0);
                    let item = source
                        .read_band(z, y0, rows, &mut buf)
                        .map(|()| (z, y0, rows, buf));
                    let failed = item.is_err();
                    if band_tx.send(item).is_err() || failed {
                        return;
                    }
                }
            }
        });
        let writer = scope.spawn(move || -> Result<()> {
            for bands in out_rx {
                for band in &bands {
                    files_ref.append(band)?;
                }
            }
            files_ref.finish()
        });
        let read = (|| -> Result<()> {
            for item in band_rx {
                let (z, y0, rows, buf) = item?;
                hook.band(&info, z, y0, rows, &buf);
                let encoded = pyramid.band(z, y0 as usize, rows as usize, &buf)?;
                let _ = free_tx.send(buf);
                if out_tx.send(encoded).is_err() {
                    // The writer stopped on an error, which its join reports.
                    break;
                }
                if y0 + rows == info.height {
                    hook.plane_done(&info, z);
                }
            }
            Ok(())
        })();
        drop(out_tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(Error::Codec("the shard writer thread panicked".into())));
        read.and(written)
    });
    result?;

    let mut summary = ArraysSummary {
        levels: Vec::new(),
        bytes_in: u64::from(info.planes) * u64::from(info.height) * row_bytes as u64,
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

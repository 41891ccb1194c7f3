//! Writing the arrays of one OME-Zarr image in a single read of the z-stack.
//!
//! The stack is read plane by plane, band by band (a band is one row of inner chunks). Each
//! band feeds the level-0 shard writer, the pyramid (the band's 2 x 2 mean goes into level 1's
//! band buffer, and so on down), and the band hook (quality control). Memory is one band per
//! level plus the bands in flight between the reader thread and the encoders: bounded by the
//! band size, never by the plane or the shard. Inner chunks of a band are encoded in parallel
//! on all cores while the reader thread decodes the next band.

use crate::band::{BandShape, chunk_bytes, downsample};
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

struct Level {
    shape: BandShape,
    height: usize,
    gx: usize,
    gy: usize,
    band: Vec<u8>,
    rows: usize,
    y0: usize,
    dir: PathBuf,
    shard: Option<(u32, ShardWriter<BufWriter<File>>, PathBuf)>,
    shards: u32,
    bytes: u64,
}

struct Writer<'a> {
    levels: Vec<Level>,
    chunk: usize,
    pps: u32,
    encoder: &'a ChunkEncoder,
}

impl Writer<'_> {
    /// Appends `rows` rows to level `l`'s band and flushes it when full or at the plane's end.
    fn feed(&mut self, l: usize, z: u32, src: &[u8], rows: usize) -> Result<()> {
        let level = &mut self.levels[l];
        level.band.extend_from_slice(src);
        level.rows += rows;
        if level.rows == self.chunk || level.y0 + level.rows == level.height {
            self.flush(l, z)?;
        }
        Ok(())
    }

    fn flush(&mut self, l: usize, z: u32) -> Result<()> {
        let chunk = self.chunk;
        let encoder = self.encoder;
        let has_next = l + 1 < self.levels.len();
        let level = &mut self.levels[l];
        let (band, rows, shape) = (&level.band, level.rows, level.shape);
        // Encode this band's chunks and build the next level's rows at the same time.
        let (encoded, next) = rayon::join(
            || {
                (0..level.gx)
                    .into_par_iter()
                    .map(|cx| encoder.encode(chunk_bytes(band, rows, shape, cx, chunk, chunk)))
                    .collect::<Result<Vec<Vec<u8>>>>()
            },
            || has_next.then(|| downsample(band, rows, shape)),
        );
        let encoded = encoded?;
        let zs = z / self.pps;
        if level.shard.as_ref().is_none_or(|(s, _, _)| *s != zs) {
            finish_shard(level)?;
            let path = level.dir.join(shard_key(zs));
            let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
            let chunks = self.pps as usize * level.gy * level.gx;
            let writer = ShardWriter::new(BufWriter::with_capacity(4 << 20, file), chunks);
            level.shard = Some((zs, writer, path));
        }
        let cy = level.y0 / chunk;
        let zi = (z % self.pps) as usize;
        if let Some((_, writer, path)) = level.shard.as_mut() {
            for (cx, bytes) in encoded.iter().enumerate() {
                writer
                    .append((zi * level.gy + cy) * level.gx + cx, bytes)
                    .map_err(|e| with_path(e, path))?;
            }
        }
        level.y0 += rows;
        if level.y0 == level.height {
            level.y0 = 0;
        }
        level.rows = 0;
        level.band.clear();
        if let Some(down) = next {
            self.feed(l + 1, z, &down, rows.div_ceil(2))?;
        }
        Ok(())
    }
}

fn with_path(e: Error, path: &Path) -> Error {
    match e {
        Error::Io { source, .. } => Error::io(path, source),
        other => other,
    }
}

fn finish_shard(level: &mut Level) -> Result<()> {
    if let Some((_, writer, path)) = level.shard.take() {
        let (buf, size) = writer.finish().map_err(|e| with_path(e, &path))?;
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
    let mut levels = Vec::with_capacity(shapes.len());
    for (i, &(h, w)) in shapes.iter().enumerate() {
        let level_dir = dir.join(i.to_string());
        std::fs::create_dir_all(&level_dir).map_err(|e| Error::io(&level_dir, e))?;
        let shape = BandShape {
            width: w as usize,
            channels: info.channels as usize,
            sample_type: info.sample_type,
        };
        levels.push(Level {
            shape,
            height: h as usize,
            gx: (w as usize).div_ceil(chunk),
            gy: (h as usize).div_ceil(chunk),
            band: Vec::with_capacity(chunk * shape.row_bytes()),
            rows: 0,
            y0: 0,
            dir: level_dir,
            shard: None,
            shards: 0,
            bytes: 0,
        });
    }
    let mut writer = Writer {
        levels,
        chunk,
        pps,
        encoder: &encoder,
    };

    // The reader thread decodes bands ahead of the encoders; two buffers circulate, so memory
    // stays at two level-0 bands however large the plane.
    let row_bytes = info.row_bytes();
    let (band_tx, band_rx) = mpsc::sync_channel::<Result<(u32, u32, u32, Vec<u8>)>>(1);
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..2 {
        let _ = free_tx.send(vec![0u8; chunk * row_bytes]);
    }
    let planes = info.planes;
    let height = info.height;
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
        for item in band_rx {
            let (z, y0, rows, buf) = item?;
            hook.band(&info, z, y0, rows, &buf);
            writer.feed(0, z, &buf, rows as usize)?;
            if y0 + rows == info.height {
                hook.plane_done(&info, z);
            }
            let _ = free_tx.send(buf);
        }
        Ok(())
    });
    result?;

    let mut summary = ArraysSummary {
        levels: Vec::new(),
        bytes_in: u64::from(info.planes) * u64::from(info.height) * row_bytes as u64,
        bytes_out: 0,
    };
    for (level, &(h, w)) in writer.levels.iter_mut().zip(&shapes) {
        finish_shard(level)?;
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

//! Synthetic brightfield z-stacks, so anyone can try the converter without data.
//!
//! [`SyntheticStack`] renders a deterministic tissue-like focus stack band by band (a
//! [`ZStackSource`]); [`write_sample`] writes it as one tiled TIFF per focus level with
//! [`TiledTiffWriter`].
//!
//! The picture: a bright background (the glass), tissue regions shaped by low-frequency noise,
//! a stained texture of several noise octaves inside them, and dark round nuclei on a jittered
//! grid; gray or RGB (hematoxylin-and-eosin-like colours). The focus level `in_focus_plane` is
//! sharp; every other level is the same picture blurred by a separable box filter whose
//! radius grows with the distance to the focus, plus per-plane sensor noise. Everything is a
//! pure function of the seed and the pixel position, so bands can be rendered in any order
//! and in parallel, and a 16k x 16k plane never needs more memory than a band.
//!
//! The TIFF encoder lives in [`crate::tiff_writer`]; its types are re-exported here.

use crate::error::{Error, Result};
use crate::source::{SampleType, StackInfo, ZStackSource};
use crate::tiff_writer::encode_tile;
pub use crate::tiff_writer::{TileCompression, TiledTiffSpec, TiledTiffWriter};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// What a synthetic z-stack looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    /// Plane width in pixels.
    pub width: u32,
    /// Plane height in pixels.
    pub height: u32,
    /// Number of focus levels.
    pub planes: u32,
    /// The sharp focus level (the others blur with their distance to it).
    pub in_focus_plane: u32,
    /// 1 (gray) or 3 (RGB).
    pub channels: u32,
    /// Sample type.
    pub sample_type: SampleType,
    /// Tile width and height of the written TIFFs (a multiple of 16).
    pub tile: u32,
    /// Tile compression of the written TIFFs.
    pub compression: TileCompression,
    /// Seed: the same seed gives the same pixels.
    pub seed: u64,
    /// Pixel size in micrometres (written as TIFF resolution).
    pub pixel_size_um: f64,
    /// Blur radius added per focus level away from the sharp one, in pixels (the radius is
    /// capped at 64).
    pub blur_per_plane: f64,
    /// Sensor noise, standard deviation in 8-bit grey levels.
    pub noise: f64,
    /// Write BigTIFF even when the files would fit classic TIFF.
    pub bigtiff: bool,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            width: 4096,
            height: 4096,
            planes: 30,
            in_focus_plane: 15,
            channels: 1,
            sample_type: SampleType::U8,
            tile: 512,
            compression: TileCompression::Deflate,
            seed: 7,
            pixel_size_um: 0.25,
            blur_per_plane: 1.0,
            noise: 2.0,
            bigtiff: false,
        }
    }
}

/// What [`write_sample`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SampleSummary {
    /// The files, one per focus level, in plane order (`z00.tif`, `z01.tif`, ...).
    pub files: Vec<PathBuf>,
    /// Bytes written in all files.
    pub bytes: u64,
    /// Whether the files are BigTIFF.
    pub bigtiff: bool,
}

/// A synthetic z-stack rendered on demand, band by band (see the module documentation).
#[derive(Debug, Clone)]
pub struct SyntheticStack {
    opts: SampleOptions,
    info: StackInfo,
    radii: Vec<usize>,
}

fn mix(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

#[allow(clippy::cast_sign_loss)]
fn hash(seed: u64, x: i64, y: i64, k: u64) -> u64 {
    mix(seed
        ^ (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ k.wrapping_mul(0x1656_67B1_9E37_79F9))
}

#[allow(clippy::cast_precision_loss)]
fn unit(h: u64) -> f32 {
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// Smooth value noise in 0..1 with lattice spacing `scale`.
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn value_noise(seed: u64, k: u64, x: i64, y: i64, scale: i64) -> f32 {
    let (cx, cy) = (x.div_euclid(scale), y.div_euclid(scale));
    let fx = x.rem_euclid(scale) as f32 / scale as f32;
    let fy = y.rem_euclid(scale) as f32 / scale as f32;
    let s = |t: f32| t * t * (3.0 - 2.0 * t);
    let (sx, sy) = (s(fx), s(fy));
    let v = |dx, dy| unit(hash(seed, cx + dx, cy + dy, k));
    let top = v(0, 0) + (v(1, 0) - v(0, 0)) * sx;
    let bottom = v(0, 1) + (v(1, 1) - v(0, 1)) * sx;
    top + (bottom - top) * sy
}

const NUCLEUS_CELL: i64 = 22;

/// Largest blur radius (keeps the integer box sums within 32 bits).
const MAX_RADIUS: usize = 64;

impl SyntheticStack {
    /// A stack as described; no pixel is rendered yet.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty stack, a focus level outside it, or channels other than
    /// 1 or 3.
    pub fn new(opts: SampleOptions) -> Result<Self> {
        if opts.width == 0 || opts.height == 0 || opts.planes == 0 {
            return Err(Error::Config("a sample needs pixels and planes".into()));
        }
        if opts.in_focus_plane >= opts.planes {
            return Err(Error::Config(format!(
                "in-focus plane {} is outside the {} planes",
                opts.in_focus_plane, opts.planes
            )));
        }
        if !matches!(opts.channels, 1 | 3) {
            return Err(Error::Config("channels must be 1 or 3".into()));
        }
        if !(opts.blur_per_plane.is_finite()
            && opts.blur_per_plane >= 0.0
            && opts.blur_per_plane <= 64.0)
        {
            return Err(Error::Config("blur_per_plane must be in 0..=64".into()));
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let radii = (0..opts.planes)
            .map(|z| {
                ((f64::from(z.abs_diff(opts.in_focus_plane)) * opts.blur_per_plane).round()
                    as usize)
                    .min(MAX_RADIUS)
            })
            .collect();
        let info = StackInfo {
            width: opts.width,
            height: opts.height,
            planes: opts.planes,
            channels: opts.channels,
            sample_type: opts.sample_type,
            pixel_size: Some(crate::source::PixelSize::xy(
                opts.pixel_size_um,
                opts.pixel_size_um,
            )),
            plane_names: (0..opts.planes).map(plane_name).collect(),
        };
        Ok(Self { opts, info, radii })
    }

    fn max_radius(&self) -> usize {
        self.radii.iter().copied().max().unwrap_or(0)
    }

    /// The sharp picture at (x, y): per-channel transmitted intensity in 0..1.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    fn sharp(&self, x: i64, y: i64, out: &mut [f32]) {
        let seed = self.opts.seed;
        let big = i64::from(self.opts.width.max(self.opts.height)).max(64);
        // Tissue: low-frequency noise, thresholded smoothly.
        let t = 0.65 * value_noise(seed, 1, x, y, (big / 3).max(16))
            + 0.35 * value_noise(seed, 2, x, y, (big / 9).max(8));
        let tissue = ((t - 0.42) * 8.0).clamp(0.0, 1.0);
        // Stain texture: octaves at 96, 24 and 6 pixels.
        let tex = 0.5 * value_noise(seed, 3, x, y, 96)
            + 0.3 * value_noise(seed, 4, x, y, 24)
            + 0.2 * value_noise(seed, 5, x, y, 6);
        // Nuclei: at most one per jittered cell, radius 3.5 to 7 pixels.
        let (cx, cy) = (x.div_euclid(NUCLEUS_CELL), y.div_euclid(NUCLEUS_CELL));
        let mut nucleus = 0.0f32;
        for dy in -1..=1 {
            for dx in -1..=1 {
                let h = hash(seed, cx + dx, cy + dy, 6);
                if h & 0xff > 150 {
                    continue;
                }
                let px = (cx + dx) * NUCLEUS_CELL + 4 + ((h >> 8) % 14) as i64;
                let py = (cy + dy) * NUCLEUS_CELL + 4 + ((h >> 16) % 14) as i64;
                let r = 3.5 + ((h >> 24) % 64) as f32 / 64.0 * 3.5;
                let d2 = ((x - px) * (x - px) + (y - py) * (y - py)) as f32;
                let v = 1.0 - d2 / (r * r);
                if v > 0.0 {
                    nucleus = nucleus.max(v.sqrt());
                }
            }
        }
        let eosin = tissue * (0.25 + 0.75 * tex);
        let hema = tissue * (0.9 * nucleus + 0.08 * tex);
        let i0 = 0.94 - 0.02 * value_noise(seed, 7, x, y, 512);
        if out.len() == 3 {
            // Optical densities of eosin and hematoxylin per channel (Ruifrok & Johnston).
            let od = [
                0.07 * eosin + 0.65 * hema,
                0.99 * eosin + 0.70 * hema,
                0.11 * eosin + 0.29 * hema,
            ];
            for (o, d) in out.iter_mut().zip(od) {
                *o = i0 * (-1.3 * d).exp();
            }
        } else if let Some(o) = out.first_mut() {
            *o = i0 * (-1.3 * (0.45 * eosin + 0.62 * hema)).exp();
        }
    }

    /// Renders the sharp picture for rows `y0 - m .. y0 + rows + m` and columns
    /// `-m .. width + m`, channels interleaved, as 16-bit fixed point (so that blurring is
    /// exact integer arithmetic and a band's pixels do not depend on where the band starts).
    #[allow(
        clippy::cast_possible_wrap,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    fn sharp_band(&self, y0: u32, rows: u32, m: usize) -> Vec<u16> {
        let ch = self.opts.channels as usize;
        let w = self.opts.width as usize + 2 * m;
        let n_rows = rows as usize + 2 * m;
        let mut buf = vec![0u16; w * n_rows * ch];
        buf.par_chunks_mut(w * ch).enumerate().for_each(|(r, row)| {
            let y = i64::from(y0) + r as i64 - m as i64;
            let mut v = [0f32; 3];
            for (i, px) in row.chunks_exact_mut(ch).enumerate() {
                let v = &mut v[..ch];
                self.sharp(i as i64 - m as i64, y, v);
                for (o, f) in px.iter_mut().zip(v.iter()) {
                    *o = (f.clamp(0.0, 1.0) * 65535.0).round() as u16;
                }
            }
        });
        buf
    }

    /// Renders rows `y0 .. y0 + rows` of plane `z` from the sharp band `s` (margin `m`) into
    /// `out` (native-endian samples).
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        clippy::cast_possible_wrap
    )]
    fn render(&self, s: &[u16], m: usize, z: u32, y0: u32, rows: u32, out: &mut [u8]) {
        let ch = self.opts.channels as usize;
        let w = self.opts.width as usize;
        let sw = (w + 2 * m) * ch;
        let r = self.radii.get(z as usize).copied().unwrap_or(0).min(m);
        let rows = rows as usize;
        // Horizontal box sums of the rows the vertical pass needs (exact: at most
        // 129 x 129 x 65535 < 2^32).
        let hrows = rows + 2 * r;
        let mut h = vec![0u32; hrows * w * ch];
        h.chunks_exact_mut(w * ch)
            .enumerate()
            .for_each(|(i, hrow)| {
                let srow_at = (i + m - r) * sw;
                let srow = &s[srow_at..srow_at + sw];
                for c in 0..ch {
                    let mut acc = 0u32;
                    for k in 0..=2 * r {
                        acc += u32::from(srow[(m - r + k) * ch + c]);
                    }
                    for x in 0..w {
                        hrow[x * ch + c] = acc;
                        acc += u32::from(srow[(x + m + r + 1).min(w + 2 * m - 1) * ch + c]);
                        acc -= u32::from(srow[(x + m - r) * ch + c]);
                    }
                }
            });
        // Vertical box sums, noise, quantisation.
        let max = match self.opts.sample_type {
            SampleType::U8 => 255.0f64,
            SampleType::U16 => 65535.0,
        };
        let norm = max / (((2 * r + 1) * (2 * r + 1)) as f64 * 65535.0);
        let sigma = self.opts.noise * max / 255.0;
        let seed = self.opts.seed ^ 0xA5A5;
        let mut acc = vec![0u32; w * ch];
        for k in 0..=2 * r {
            for (a, v) in acc.iter_mut().zip(&h[k * w * ch..(k + 1) * w * ch]) {
                *a += v;
            }
        }
        let bytes = self.opts.sample_type.bytes();
        for y in 0..rows {
            let row_out = &mut out[y * w * ch * bytes..(y + 1) * w * ch * bytes];
            let yy = i64::from(y0) + y as i64;
            for (i, a) in acc.iter().enumerate() {
                let hsh = hash(seed, i as i64, yy, u64::from(z));
                let g = f64::from(unit(hsh) + unit(hsh << 20) + unit(hsh << 40)) - 1.5;
                let v = (f64::from(*a) * norm + 2.0 * g * sigma)
                    .round()
                    .clamp(0.0, max);
                match self.opts.sample_type {
                    SampleType::U8 => row_out[i] = v as u8,
                    SampleType::U16 => {
                        row_out[2 * i..2 * i + 2].copy_from_slice(&(v as u16).to_ne_bytes());
                    }
                }
            }
            if y + 1 < rows {
                let (add, sub) = ((y + 2 * r + 1) * w * ch, y * w * ch);
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = *a + h[add + j] - h[sub + j];
                }
            }
        }
    }
}

fn plane_name(z: u32) -> String {
    format!("z{z:02}.tif")
}

impl ZStackSource for SyntheticStack {
    fn info(&self) -> &StackInfo {
        &self.info
    }

    fn read_band(&mut self, plane: u32, y0: u32, rows: u32, out: &mut [u8]) -> Result<()> {
        let ok_rows = y0
            .checked_add(rows)
            .is_some_and(|e| e <= self.info.height && rows > 0);
        if plane >= self.info.planes
            || !ok_rows
            || out.len() != rows as usize * self.info.row_bytes()
        {
            return Err(Error::Input {
                source_name: "synthetic".into(),
                message: format!("band {y0}+{rows} of plane {plane} is outside the stack"),
            });
        }
        let m = self.radii.get(plane as usize).copied().unwrap_or(0);
        let s = self.sharp_band(y0, rows, m);
        self.render(&s, m, plane, y0, rows, out);
        Ok(())
    }
}

/// Writes a synthetic z-stack as tiled TIFFs `z00.tif`, `z01.tif`, ... in `dir` (created if
/// missing; files of an earlier sample with the same names are replaced, any other TIFF file in
/// the folder is an error).
///
/// All planes are written together, one row of tiles at a time: the sharp picture of the band
/// is rendered once, then each plane is blurred, tiled and compressed in parallel (rayon).
/// Memory: the sharp band and one tile row per plane, whatever the plane size.
///
/// # Errors
/// [`Error::Config`] for unusable options (see [`SyntheticStack::new`], tile size) or a folder
/// holding other TIFF files;
/// [`Error::Io`] if a file cannot be written.
pub fn write_sample(dir: &Path, opts: &SampleOptions) -> Result<SampleSummary> {
    let stack = SyntheticStack::new(opts.clone())?;
    if opts.compression == TileCompression::Jpeg {
        return Err(Error::Config(
            "samples cannot be written with JPEG compression".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let spec = TiledTiffSpec {
        width: opts.width,
        height: opts.height,
        channels: opts.channels,
        sample_type: opts.sample_type,
        tile_width: opts.tile,
        tile_height: opts.tile,
        compression: opts.compression,
        pixel_size_um: Some(opts.pixel_size_um),
        bigtiff: opts.bigtiff,
        jpeg_tables: None,
    };
    let files: Vec<PathBuf> = (0..opts.planes).map(|z| dir.join(plane_name(z))).collect();
    // Other TIFF files in the folder would become planes of the stack read back from it.
    if let Ok(existing) = crate::tiff_source::list_tiffs(dir)
        && let Some(stray) = existing.iter().find(|p| !files.contains(p))
    {
        return Err(Error::Config(format!(
            "{} already holds {}, which is not part of this sample: use an empty folder",
            dir.display(),
            stray.display()
        )));
    }
    let mut writers = files
        .iter()
        .map(|p| TiledTiffWriter::create(p, spec.clone()))
        .collect::<Result<Vec<_>>>()?;
    let bigtiff = writers.first().is_some_and(TiledTiffWriter::is_bigtiff);
    let m = stack.max_radius();
    let tile = opts.tile as usize;
    let px = opts.channels as usize * opts.sample_type.bytes();
    let row_bytes = opts.width as usize * px;
    let (ta, _) = spec.tiles();
    for y0 in (0..opts.height).step_by(tile) {
        let rows = (opts.height - y0).min(opts.tile);
        let s = stack.sharp_band(y0, rows, m);
        let encoded: Vec<Result<Vec<Vec<u8>>>> = (0..opts.planes)
            .into_par_iter()
            .map(|z| {
                let mut band = vec![0u8; rows as usize * row_bytes];
                stack.render(&s, m, z, y0, rows, &mut band);
                (0..ta as usize)
                    .into_par_iter()
                    .map(|tx| {
                        let mut t = vec![0u8; spec.tile_bytes()];
                        let x0 = tx * tile * px;
                        let wb = (row_bytes - x0).min(tile * px);
                        for (y, dst) in t
                            .chunks_exact_mut(tile * px)
                            .take(rows as usize)
                            .enumerate()
                        {
                            let at = y * row_bytes + x0;
                            dst[..wb].copy_from_slice(&band[at..at + wb]);
                        }
                        encode_tile(spec.compression, spec.sample_type, &t)
                    })
                    .collect()
            })
            .collect();
        for (w, tiles) in writers.iter_mut().zip(encoded) {
            for t in tiles? {
                w.write_encoded_tile(&t)?;
            }
        }
    }
    let mut bytes = 0;
    for w in writers {
        bytes += w.finish()?;
    }
    Ok(SampleSummary {
        files,
        bytes,
        bigtiff,
    })
}

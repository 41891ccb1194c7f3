//! The filter kernels: 3x3 Laplacian, Sobel gradient, modified Laplacian and Brenner sums,
//! histograms and the thumbnail, accumulated row by row in exact integers.

use std::collections::VecDeque;

use crate::error::{Error, Result};
use crate::otsu::otsu_threshold;
use crate::pixel::PlaneGeometry;

use super::QcConfig;
use super::metrics::{
    ExposureMetrics, FocusMetrics, GrayImage, PlaneMetrics, PlaneQc, TileMap, TileStat,
    TissueMetrics,
};

/// Integer sample types.
pub(super) trait Sample: Copy + Default + std::fmt::Debug + Send + Sync + 'static {
    /// Histogram bins of the full range.
    const BINS: usize;
    /// Right shift from a value to its tile-histogram bin.
    const TILE_SHIFT: u32;
    fn v(self) -> i64;
    fn idx(self) -> usize;
    /// Adds the filter responses of the interior pixels of a row segment: `u`, `m`, `d` hold the
    /// segment's `n` pixels plus one neighbour on each side (`n + 2` samples each).
    fn interior(u: &[Self], m: &[Self], d: &[Self], acc: &mut TileSums);
    /// Interleaved copies of each tile histogram (to spread repeated increments).
    const TILE_COPIES: usize;
    /// Counts a row segment into a tile histogram of `TILE_COPIES * (BINS >> TILE_SHIFT)`
    /// counters.
    fn tile_hist_add(seg: &[Self], th: &mut [u32]);
}

/// The 8-bit kernel: `i32` arithmetic and `u32` partial sums over runs short enough not to
/// overflow (|Laplacian| <= 1020, Gx^2 + Gy^2 <= 2 * 1020^2), so the loop vectorises.
impl Sample for u8 {
    const BINS: usize = 256;
    const TILE_SHIFT: u32 = 0;
    #[inline(always)]
    fn v(self) -> i64 {
        i64::from(self)
    }
    #[inline(always)]
    fn idx(self) -> usize {
        usize::from(self)
    }
    fn interior(u: &[u8], m: &[u8], d: &[u8], acc: &mut TileSums) {
        const RUN: usize = 1024;
        let n = m.len() - 2;
        let mut s = 0;
        while s < n {
            let len = (n - s).min(RUN);
            let (u0, u1, u2) = (
                &u[s..s + len],
                &u[s + 1..s + 1 + len],
                &u[s + 2..s + 2 + len],
            );
            let (m0, m1, m2) = (
                &m[s..s + len],
                &m[s + 1..s + 1 + len],
                &m[s + 2..s + 2 + len],
            );
            let (d0, d1, d2) = (
                &d[s..s + len],
                &d[s + 1..s + 1 + len],
                &d[s + 2..s + 2 + len],
            );
            let (mut sl, mut sl2, mut sg2, mut sml, mut sb) = (0i32, 0i32, 0i32, 0i32, 0i32);
            for i in 0..len {
                // 16-bit lanes: every response fits in i16 (|x| <= 1020); the squares are
                // summed in i32 (a multiply-add of 16-bit pairs). Over RUN = 1024 pixels the
                // sums stay below 2^31 (1024 * 2 * 1020^2 < 2^31).
                let (a, b, c) = (i16::from(u0[i]), i16::from(u1[i]), i16::from(u2[i]));
                let (p, q, r) = (i16::from(m0[i]), i16::from(m1[i]), i16::from(m2[i]));
                let (x, y, z) = (i16::from(d0[i]), i16::from(d1[i]), i16::from(d2[i]));
                let lap = b + y + p + r - 4 * q;
                let gx = (c - a) + 2 * (r - p) + (z - x);
                let gy = (x + 2 * y + z) - (a + 2 * b + c);
                let ml = (2 * q - p - r).abs() + (2 * q - b - y).abs();
                sl += i32::from(lap);
                sl2 += i32::from(lap) * i32::from(lap);
                sg2 += i32::from(gx) * i32::from(gx);
                sg2 += i32::from(gy) * i32::from(gy);
                sml += i32::from(ml);
                // Brenner's pair (x - 1, x + 1): over the interior these are all pairs
                // (x, x + 2) of the row.
                sb += i32::from(r - p) * i32::from(r - p);
            }
            acc.lap += i64::from(sl);
            acc.lap2 += u64::from(sl2.unsigned_abs());
            acc.grad2 += u64::from(sg2.unsigned_abs());
            acc.ml += u64::from(sml.unsigned_abs());
            acc.brenner += u64::from(sb.unsigned_abs());
            s += len;
        }
    }
    const TILE_COPIES: usize = 4;
    fn tile_hist_add(seg: &[u8], th: &mut [u32]) {
        // `th` is 4 x 256 counters by construction (`TILE_COPIES * BINS`).
        debug_assert_eq!(th.len(), 1024);
        let Some((h0, rest)) = th.split_first_chunk_mut::<256>() else {
            return;
        };
        let Some((h1, rest)) = rest.split_first_chunk_mut::<256>() else {
            return;
        };
        let Some((h2, rest)) = rest.split_first_chunk_mut::<256>() else {
            return;
        };
        let Some((h3, _)) = rest.split_first_chunk_mut::<256>() else {
            return;
        };
        let mut quads = seg.chunks_exact(4);
        for q in &mut quads {
            h0[usize::from(q[0])] += 1;
            h1[usize::from(q[1])] += 1;
            h2[usize::from(q[2])] += 1;
            h3[usize::from(q[3])] += 1;
        }
        for &v in quads.remainder() {
            h0[usize::from(v)] += 1;
        }
    }
}

impl Sample for u16 {
    const BINS: usize = 65536;
    const TILE_SHIFT: u32 = 4;
    #[inline(always)]
    fn v(self) -> i64 {
        i64::from(self)
    }
    #[inline(always)]
    fn idx(self) -> usize {
        usize::from(self)
    }
    fn interior(u: &[u16], m: &[u16], d: &[u16], acc: &mut TileSums) {
        let n = m.len() - 2;
        let (u0, u1, u2) = (&u[..n], &u[1..=n], &u[2..n + 2]);
        let (m0, m1, m2) = (&m[..n], &m[1..=n], &m[2..n + 2]);
        let (d0, d1, d2) = (&d[..n], &d[1..=n], &d[2..n + 2]);
        let (mut sl, mut sl2, mut sg2, mut sml, mut sb) = (0i64, 0u64, 0u64, 0u64, 0u64);
        for i in 0..n {
            // i32 lanes: every response fits (|x| <= 4 * 65535); squares of the magnitudes are
            // 32 x 32 -> 64-bit unsigned products.
            let (a, b, c) = (i32::from(u0[i]), i32::from(u1[i]), i32::from(u2[i]));
            let (p, q, r) = (i32::from(m0[i]), i32::from(m1[i]), i32::from(m2[i]));
            let (x, y, z) = (i32::from(d0[i]), i32::from(d1[i]), i32::from(d2[i]));
            let lap = b + y + p + r - 4 * q;
            let gx = u64::from(((c - a) + 2 * (r - p) + (z - x)).unsigned_abs());
            let gy = u64::from(((x + 2 * y + z) - (a + 2 * b + c)).unsigned_abs());
            let ml = (2 * q - p - r).unsigned_abs() + (2 * q - b - y).unsigned_abs();
            let la = u64::from(lap.unsigned_abs());
            sl += i64::from(lap);
            sl2 += la * la;
            sg2 += gx * gx + gy * gy;
            sml += u64::from(ml);
            let bd = u64::from((r - p).unsigned_abs());
            sb += bd * bd;
        }
        acc.brenner += sb;
        acc.lap += sl;
        acc.lap2 += sl2;
        acc.grad2 += sg2;
        acc.ml += sml;
    }
    const TILE_COPIES: usize = 1;
    fn tile_hist_add(seg: &[u16], th: &mut [u32]) {
        for &v in seg {
            th[usize::from(v >> 4)] += 1;
        }
    }
}

/// Per-tile sums for the current row of tiles.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TileSums {
    brenner: u64,
    lap: i64,
    lap2: u64,
    grad2: u64,
    ml: u64,
    n: u64,
}

impl TileSums {
    #[inline(always)]
    fn add(&mut self, (l, g, m): (i64, i64, i64)) {
        self.lap += l;
        self.lap2 += (l * l) as u64;
        self.grad2 += g as u64;
        self.ml += m as u64;
    }
}

#[derive(Debug, Default)]
struct Totals {
    lap: i128,
    lap2: u128,
    grad2: u128,
    ml: u128,
    brenner: u128,
    brenner_n: u64,
}

#[derive(Debug)]
struct Stats {
    width: usize,
    height: usize,
    tile_size: usize,
    tile_cols: usize,
    tile_quantile: f64,
    hist: Vec<u64>,
    tile_bins: usize,
    /// The rows of tiles with pixels evaluated but not all of them, oldest first: one when
    /// whole rows are fed, two or three when a band arrives as column segments.
    tile_rows: VecDeque<TileRow>,
    /// Finished rows of tiles, their counters zeroed, for reuse.
    spare: Vec<TileRow>,
    totals: Totals,
    tiles: Vec<TileStat>,
    thumb: Option<ThumbBuilder>,
}

/// The counters of one row of tiles.
#[derive(Debug)]
struct TileRow {
    index: usize,
    sums: Vec<TileSums>,
    /// `tile_cols` histograms of `tile_bins` counters each.
    hist: Vec<u32>,
}

/// Box-average downsampling of the rows as they are evaluated.
#[derive(Debug)]
struct ThumbBuilder {
    factor: usize,
    width: usize,
    type_max: u32,
    /// Sums of the thumbnail rows in progress, oldest first, with their index.
    rows: VecDeque<(usize, Vec<u64>)>,
    pixels: Vec<u8>,
}

impl ThumbBuilder {
    fn new(g: PlaneGeometry, max_side: usize) -> Option<Self> {
        if max_side == 0 {
            return None;
        }
        let factor = g.width.max(g.height).div_ceil(max_side).max(1);
        let width = g.width.div_ceil(factor);
        Some(Self {
            factor,
            width,
            type_max: g.format.type_max(),
            rows: VecDeque::new(),
            pixels: Vec::with_capacity(width * g.height.div_ceil(factor)),
        })
    }

    /// Adds the samples of row `y`, columns `x0..x0 + seg.len()`.
    fn add<T: Sample>(&mut self, y: usize, x0: usize, seg: &[T]) {
        let k = y / self.factor;
        let i = match self.rows.iter().position(|(r, _)| *r == k) {
            Some(i) => i,
            None => {
                self.rows.push_back((k, vec![0; self.width]));
                self.rows.len() - 1
            }
        };
        let sums = &mut self.rows[i].1;
        let f = self.factor;
        let mut x = x0;
        for part in seg.chunk_by_index(x0, f) {
            sums[x / f] += part.iter().map(|v| v.v() as u64).sum::<u64>();
            x += part.len();
        }
    }

    /// Row `y` is complete in every column: emits its thumbnail row when it is the last one.
    fn row_done(&mut self, y: usize, width: usize, height: usize) {
        let f = self.factor;
        if !((y + 1).is_multiple_of(f) || y + 1 == height) {
            return;
        }
        let Some((k, sums)) = self.rows.pop_front() else {
            return;
        };
        debug_assert_eq!(k, y / f);
        let rows_in = y + 1 - k * f;
        let full = width / f;
        for (c, s) in sums.iter().enumerate() {
            let cols = if c < full { f } else { width - full * f };
            let mean = *s as f64 / (cols * rows_in) as f64;
            self.pixels
                .push((mean * 255.0 / f64::from(self.type_max)).round() as u8);
        }
    }

    fn finish(self) -> GrayImage {
        GrayImage {
            width: self.width,
            height: self.pixels.len() / self.width.max(1),
            pixels: self.pixels,
        }
    }
}

/// Splitting a run of samples that starts at column `x0` at multiples of a block width.
trait ChunkByIndex<T> {
    fn chunk_by_index(&self, x0: usize, block: usize) -> BlockParts<'_, T>;
}

impl<T> ChunkByIndex<T> for [T] {
    fn chunk_by_index(&self, x0: usize, block: usize) -> BlockParts<'_, T> {
        BlockParts {
            rest: self,
            x: x0,
            block,
        }
    }
}

/// The parts of a run cut at the block boundaries (see [`ChunkByIndex`]).
struct BlockParts<'a, T> {
    rest: &'a [T],
    x: usize,
    block: usize,
}

impl<'a, T> Iterator for BlockParts<'a, T> {
    type Item = &'a [T];
    fn next(&mut self) -> Option<&'a [T]> {
        if self.rest.is_empty() {
            return None;
        }
        let n = (self.block - self.x % self.block).min(self.rest.len());
        let (part, rest) = self.rest.split_at(n);
        self.rest = rest;
        self.x += n;
        Some(part)
    }
}

/// The accumulator of one plane of integer samples `T`.
///
/// Bands arrive in row order, each whole or as column segments from left to right. A segment
/// of rows `r0..r1` and columns `a..b` completes the 3x3 neighbourhoods of the pixels in rows
/// `r0 - 1..r1 - 1` and columns `a - 1..b - 1` (to the plane's edges where the band or the
/// segment touches them), so every pixel is evaluated exactly once, with the same integer
/// sums, however the plane is cut.
#[derive(Debug)]
pub(super) struct Acc<T: Sample> {
    pub(super) geometry: PlaneGeometry,
    pub(super) rows_received: usize,
    /// The last two rows of the previous bands: `prev[..w]` the older, `prev[w..]` the newer.
    prev: Vec<T>,
    carried: usize,
    /// The last two rows of the band in progress, filled segment by segment.
    next: Vec<T>,
    /// The band in progress: its row count and the next column expected (0: none open).
    band_rows: usize,
    next_col: usize,
    /// The last two columns of the previous segment of this band, two samples per row.
    left: Vec<T>,
    /// The previous halo's buffer, reused for the next one.
    left_spare: Vec<T>,
    /// The pixels a segment's filters read, rows of `work_w` samples.
    work: Vec<T>,
    gray: Vec<T>,
    stats: Stats,
}

impl<T: Sample> Acc<T> {
    /// Starts a plane (geometry and configuration already validated).
    pub(super) fn new(geometry: PlaneGeometry, config: &QcConfig) -> Self {
        let w = geometry.width;
        let tile_cols = w.div_ceil(config.tile_size);
        let tile_bins = T::TILE_COPIES * (T::BINS >> T::TILE_SHIFT);
        Self {
            geometry,
            rows_received: 0,
            prev: vec![T::default(); 2 * w],
            carried: 0,
            next: vec![T::default(); 2 * w],
            band_rows: 0,
            next_col: 0,
            left: Vec::new(),
            left_spare: Vec::new(),
            work: Vec::new(),
            gray: Vec::new(),
            stats: Stats {
                width: w,
                height: geometry.height,
                tile_size: config.tile_size,
                tile_cols,
                tile_quantile: config.tile_min_tissue,
                hist: vec![0; T::BINS],
                tile_bins,
                tile_rows: VecDeque::new(),
                spare: Vec::new(),
                totals: Totals::default(),
                tiles: Vec::with_capacity(tile_cols * geometry.height.div_ceil(config.tile_size)),
                thumb: ThumbBuilder::new(geometry, config.thumbnail_max_side),
            },
        }
    }

    /// Feeds the next segment: columns `x0..x0 + cols` of the next rows, interleaved samples
    /// (`rows * cols * channels`), converting colour to gray with `to_gray`. Whole rows are
    /// the segment `(0, width)`.
    pub(super) fn push(
        &mut self,
        x0: usize,
        cols: usize,
        samples: &[T],
        to_gray: fn(&[T], &mut Vec<T>),
    ) -> Result<()> {
        let (w, h) = (self.geometry.width, self.geometry.height);
        let ch = self.geometry.format.channels();
        let y0 = self.rows_received;
        let bad = |reason: String| Error::InvalidBand {
            plane: 0,
            y0,
            reason,
        };
        if samples.is_empty() {
            return Ok(());
        }
        if cols == 0 || x0 + cols > w {
            return Err(bad(format!(
                "columns {x0}..{} are outside the plane's width {w}",
                x0 + cols
            )));
        }
        if x0 != self.next_col {
            return Err(bad(format!(
                "expected the segment starting at column {}, got {x0}",
                self.next_col
            )));
        }
        let row_len = cols * ch;
        if !samples.len().is_multiple_of(row_len) {
            return Err(bad(format!(
                "{} samples is not a whole number of rows of {row_len}",
                samples.len()
            )));
        }
        let n = samples.len() / row_len;
        if x0 > 0 && n != self.band_rows {
            return Err(bad(format!(
                "a segment of {n} rows in a band of {} rows",
                self.band_rows
            )));
        }
        if y0 + n > h {
            return Err(bad(format!("{n} rows run past the plane's height {h}")));
        }
        if ch == 1 {
            self.push_gray(x0, cols, n, samples);
        } else {
            let mut gray = std::mem::take(&mut self.gray);
            to_gray(samples, &mut gray);
            self.push_gray(x0, cols, n, &gray);
            self.gray = gray;
        }
        Ok(())
    }

    fn push_gray(&mut self, a: usize, cols: usize, n: usize, seg: &[T]) {
        let (w, h) = (self.geometry.width, self.geometry.height);
        let (r0, b) = (self.rows_received, a + cols);
        let r1 = r0 + n;
        self.band_rows = n;
        // The pixels whose neighbourhoods this segment completes, and what they read.
        let (ys, ye) = (r0.saturating_sub(1), if r1 == h { h } else { r1 - 1 });
        let (xs, xe) = (a.saturating_sub(1), if b == w { w } else { b - 1 });
        let (ry0, ry1) = (ys.max(1) - 1, (ye + 1).min(h));
        let cx0 = xs.max(1) - 1;
        if ys < ye && xs < xe {
            let up = |y: usize| if y == 0 { usize::from(h > 1) } else { y - 1 };
            let down = |y: usize| {
                if y + 1 < h {
                    y + 1
                } else if h > 1 {
                    h - 2
                } else {
                    h - 1
                }
            };
            // The columns next to the previous segment read its last two columns: those
            // pixels (at most two per row) from a small copy.
            let split = if a == 0 { xs } else { (a + 1).min(xe) };
            if xs < split {
                let (wx0, wx1) = (cx0, (split + 1).min(w));
                let ww = wx1 - wx0;
                let mut work = std::mem::take(&mut self.work);
                work.clear();
                for y in ry0..ry1 {
                    self.extend_row(&mut work, y, wx0..wx1, a, cols, seg);
                }
                let row = |y: usize| &work[(y - ry0) * ww..(y - ry0 + 1) * ww];
                for y in ys..ye {
                    self.stats
                        .row_part(row(up(y)), row(y), row(down(y)), y, xs, split, wx0);
                }
                self.work = work;
            }
            // The rest straight from the segment and the carried rows, starting at column a.
            if split < xe {
                let (prev, stats) = (&self.prev, &mut self.stats);
                let row = |y: usize| -> &[T] {
                    if y >= r0 {
                        &seg[(y - r0) * cols..(y - r0 + 1) * cols]
                    } else if y + 1 == r0 {
                        &prev[w + a..]
                    } else {
                        &prev[a..w]
                    }
                };
                for y in ys..ye {
                    stats.row_part(row(up(y)), row(y), row(down(y)), y, split, xe, a);
                }
            }
        }
        // What the next segments and bands read: the last two rows and columns.
        let mut last = std::mem::take(&mut self.work);
        for (k, y) in [r1.checked_sub(2), Some(r1 - 1)].into_iter().enumerate() {
            if let Some(y) = y {
                last.clear();
                self.extend_row(&mut last, y, a..b, a, cols, seg);
                self.next[k * w + a..k * w + b].copy_from_slice(&last);
            }
        }
        self.work = last;
        // Filled into the spare buffer: with a one-column segment the new halo reads the old.
        let mut left = std::mem::take(&mut self.left_spare);
        left.clear();
        for y in r0..r1 {
            for x in [b.wrapping_sub(2), b - 1] {
                left.push(if x < w {
                    self.pixel_at(y, x, a, cols, seg)
                } else {
                    T::default()
                });
            }
        }
        self.left_spare = std::mem::replace(&mut self.left, left);
        if b == w {
            std::mem::swap(&mut self.prev, &mut self.next);
            self.carried = (self.carried + n).min(2);
            self.rows_received = r1;
            self.next_col = 0;
        } else {
            self.next_col = b;
        }
    }

    /// Appends columns `xs` of row `y` to `out` (see [`Acc::pixel_at`] for the sources).
    fn extend_row(
        &self,
        out: &mut Vec<T>,
        y: usize,
        xs: std::ops::Range<usize>,
        a: usize,
        cols: usize,
        seg: &[T],
    ) {
        let (w, r0) = (self.geometry.width, self.rows_received);
        if y >= r0 {
            let r = y - r0;
            for x in xs.start..xs.end.min(a) {
                out.push(self.left[r * 2 + (x + 2 - a)]);
            }
            let from = xs.start.max(a) - a;
            out.extend_from_slice(&seg[r * cols + from..r * cols + (xs.end - a)]);
        } else if y + 1 == r0 {
            out.extend_from_slice(&self.prev[w + xs.start..w + xs.end]);
        } else {
            out.extend_from_slice(&self.prev[xs]);
        }
    }

    /// Sample `(y, x)` for the segment at columns `a..a + cols` of the band in progress: from
    /// the segment, the previous segment's last two columns, or the previous bands' last two
    /// rows.
    #[inline]
    fn pixel_at(&self, y: usize, x: usize, a: usize, cols: usize, seg: &[T]) -> T {
        let (w, r0) = (self.geometry.width, self.rows_received);
        if y >= r0 {
            let r = y - r0;
            if x >= a {
                seg[r * cols + (x - a)]
            } else {
                // x is a - 1 or a - 2.
                self.left[r * 2 + (x + 2 - a)]
            }
        } else if y + 1 == r0 {
            self.prev[w + x]
        } else {
            debug_assert!(self.carried >= 2);
            self.prev[x]
        }
    }

    /// Finishes the plane: the metrics.
    pub(super) fn finish(self) -> Result<PlaneQc> {
        let g = self.geometry;
        if self.rows_received != g.height {
            return Err(Error::IncompletePlane {
                plane: 0,
                received: self.rows_received,
                height: g.height,
            });
        }
        Ok(self.stats.finish(g))
    }
}

/// Filter responses at one pixel given its 3x3 neighbourhood columns (left, centre, right) of
/// the rows above, at and below.
#[inline(always)]
fn pixel(u: [i64; 3], m: [i64; 3], d: [i64; 3]) -> (i64, i64, i64) {
    let lap = u[1] + d[1] + m[0] + m[2] - 4 * m[1];
    let gx = (u[2] - u[0]) + 2 * (m[2] - m[0]) + (d[2] - d[0]);
    let gy = (d[0] + 2 * d[1] + d[2]) - (u[0] + 2 * u[1] + u[2]);
    let ml = (2 * m[1] - m[0] - m[2]).abs() + (2 * m[1] - u[1] - d[1]).abs();
    (lap, gx * gx + gy * gy, ml)
}

impl Stats {
    /// The counters of tile row `index`, opened when first needed.
    fn tile_row(&mut self, index: usize) -> &mut TileRow {
        let pos = self.tile_rows.iter().position(|r| r.index == index);
        let i = match pos {
            Some(i) => i,
            None => {
                let row = self.spare.pop().unwrap_or_else(|| TileRow {
                    index,
                    sums: vec![TileSums::default(); self.tile_cols],
                    hist: vec![0; self.tile_cols * self.tile_bins],
                });
                self.tile_rows.push_back(TileRow { index, ..row });
                self.tile_rows.len() - 1
            }
        };
        &mut self.tile_rows[i]
    }

    /// Evaluates columns `xs..xe` of row `y` (`mid`) with its upper and lower neighbours;
    /// the three slices start at column `off` and reach one column past `xe` (or the edge).
    #[allow(clippy::too_many_arguments)]
    fn row_part<T: Sample>(
        &mut self,
        up: &[T],
        mid: &[T],
        down: &[T],
        y: usize,
        xs: usize,
        xe: usize,
        off: usize,
    ) {
        let (w, h, ts, bins) = (self.width, self.height, self.tile_size, self.tile_bins);
        if T::TILE_SHIFT != 0 {
            // The tile histograms are coarser than the values: keep the exact one as well.
            for &v in &mid[xs - off..xe - off] {
                self.hist[v.idx()] += 1;
            }
        }
        let row = self.tile_row(y / ts);
        for tc in xs / ts..xe.div_ceil(ts) {
            let ps = (tc * ts).max(xs);
            let pe = ((tc + 1) * ts).min(w).min(xe);
            let th = &mut row.hist[tc * bins..(tc + 1) * bins];
            T::tile_hist_add(&mid[ps - off..pe - off], th);
            let mut acc = TileSums::default();
            let at = |r: &[T], x: usize| r[x - off].v();
            let col = |r: &[T], xl: usize, x: usize, xr: usize| [at(r, xl), at(r, x), at(r, xr)];
            if w == 1 {
                acc.add(pixel(
                    col(up, 0, 0, 0),
                    col(mid, 0, 0, 0),
                    col(down, 0, 0, 0),
                ));
            } else {
                if ps == 0 {
                    acc.add(pixel(
                        col(up, 1, 0, 1),
                        col(mid, 1, 0, 1),
                        col(down, 1, 0, 1),
                    ));
                }
                let is = ps.max(1);
                let ie = pe.min(w - 1);
                if is < ie {
                    let r = is - 1 - off..=ie - off;
                    T::interior(&up[r.clone()], &mid[r.clone()], &down[r], &mut acc);
                }
                if pe == w {
                    let (a, b) = (w - 2, w - 1);
                    acc.add(pixel(
                        col(up, a, b, a),
                        col(mid, a, b, a),
                        col(down, a, b, a),
                    ));
                }
            }
            let s = &mut row.sums[tc];
            s.lap += acc.lap;
            s.lap2 += acc.lap2;
            s.grad2 += acc.grad2;
            s.ml += acc.ml;
            s.brenner += acc.brenner;
            s.n += (pe - ps) as u64;
        }
        if let Some(t) = &mut self.thumb {
            t.add(y, xs, &mid[xs - off..xe - off]);
        }
        if xe == w {
            // Row y is now complete.
            if w >= 3 {
                self.totals.brenner_n += (w - 2) as u64;
            }
            if let Some(t) = &mut self.thumb {
                t.row_done(y, w, h);
            }
            if (y + 1).is_multiple_of(ts) || y + 1 == h {
                self.flush_tiles::<T>();
            }
        }
    }

    /// Closes the oldest open row of tiles.
    fn flush_tiles<T: Sample>(&mut self) {
        let Some(mut row) = self.tile_rows.pop_front() else {
            return;
        };
        for tc in 0..self.tile_cols {
            let s = std::mem::take(&mut row.sums[tc]);
            let th = &mut row.hist[tc * self.tile_bins..(tc + 1) * self.tile_bins];
            // Fold the interleaved copies into the first.
            let bins = self.tile_bins / T::TILE_COPIES;
            for k in 1..T::TILE_COPIES {
                let (first, rest) = th.split_at_mut(bins * k);
                for (a, b) in first[..bins].iter_mut().zip(&mut rest[..bins]) {
                    *a += *b;
                    *b = 0;
                }
            }
            let th = &mut th[..bins];
            let target = self.tile_quantile * s.n as f64;
            if T::TILE_SHIFT == 0 {
                // Exact tile histograms: the plane histogram is their sum.
                for (h, &c) in self.hist.iter_mut().zip(th.iter()) {
                    *h += u64::from(c);
                }
            }
            let mut cum = 0u64;
            let mut q = th.len() - 1;
            for (b, &c) in th.iter().enumerate() {
                cum += u64::from(c);
                if c > 0 && cum as f64 >= target {
                    q = b;
                    break;
                }
            }
            th.fill(0);
            let quantile = ((q as u32) << T::TILE_SHIFT) | ((1u32 << T::TILE_SHIFT) - 1);
            self.tiles.push(TileStat {
                focus: variance(s.n, i128::from(s.lap), u128::from(s.lap2)),
                tissue_quantile: quantile,
            });
            self.totals.lap += i128::from(s.lap);
            self.totals.lap2 += u128::from(s.lap2);
            self.totals.grad2 += u128::from(s.grad2);
            self.totals.ml += u128::from(s.ml);
            self.totals.brenner += u128::from(s.brenner);
        }
        self.spare.push(row);
    }

    fn finish(self, g: PlaneGeometry) -> PlaneQc {
        let n = g.pixels();
        let nf = n as f64;
        let (mut s1, mut s2) = (0u128, 0u128);
        for (v, &c) in self.hist.iter().enumerate() {
            let (v, c) = (v as u128, u128::from(c));
            s1 += v * c;
            s2 += v * v * c;
        }
        let min = self.hist.iter().position(|&c| c > 0).unwrap_or(0) as u32;
        let max = self.hist.iter().rposition(|&c| c > 0).unwrap_or(0) as u32;
        let mean = s1 as f64 / nf;
        let var = variance(n, s1 as i128, s2);
        let std = var.sqrt();
        let saturated: u64 = self.hist[g.max_value as usize..].iter().sum();
        let threshold = otsu_threshold(&self.hist).unwrap_or(0);
        let (tissue, class_separation) = if min == max {
            (0, 0.0)
        } else {
            let cut = threshold as usize + 1;
            let (mut n_dark, mut s_dark) = (0u64, 0u128);
            for (v, &c) in self.hist[..cut].iter().enumerate() {
                n_dark += c;
                s_dark += v as u128 * u128::from(c);
            }
            let n_bright = n - n_dark;
            let s_bright = s1 - s_dark;
            // Both classes are non-empty: min <= threshold < max.
            let sep = if n_dark == 0 || n_bright == 0 {
                0.0
            } else {
                (s_bright as f64 / n_bright as f64 - s_dark as f64 / n_dark as f64)
                    / f64::from(g.max_value)
            };
            (n_dark, sep)
        };
        let t = &self.totals;
        let metrics = PlaneMetrics {
            width: g.width,
            height: g.height,
            focus: FocusMetrics {
                variance_of_laplacian: variance(n, t.lap, t.lap2),
                tenengrad: t.grad2 as f64 / nf,
                brenner: if t.brenner_n == 0 {
                    0.0
                } else {
                    t.brenner as f64 / t.brenner_n as f64
                },
                normalized_variance: if s1 == 0 { 0.0 } else { var / mean },
                modified_laplacian: t.ml as f64 / nf,
            },
            exposure: ExposureMetrics {
                mean,
                std,
                min,
                max,
                saturated_fraction: saturated as f64 / nf,
                black_fraction: self.hist[0] as f64 / nf,
                rms_contrast: std / f64::from(g.max_value),
                michelson_contrast: if max + min == 0 {
                    0.0
                } else {
                    f64::from(max - min) / f64::from(max + min)
                },
            },
            tissue: TissueMetrics {
                otsu_threshold: threshold,
                tissue_fraction: tissue as f64 / nf,
                class_separation,
            },
        };
        PlaneQc {
            metrics,
            tiles: TileMap {
                tile_size: self.tile_size,
                cols: self.tile_cols,
                rows: g.height.div_ceil(self.tile_size),
                tiles: self.tiles,
            },
            thumbnail: self.thumb.map(ThumbBuilder::finish),
        }
    }
}

/// Population variance from exact integer sums: `(n * s2 - s1^2) / n^2`, with the numerator
/// computed exactly in 128-bit integers (one rounding to `f64`, then one division).
fn variance(n: u64, s1: i128, s2: u128) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let s1a = s1.unsigned_abs();
    let num = u128::from(n)
        .checked_mul(s2)
        .zip(s1a.checked_mul(s1a))
        .map(|(a, b)| a.saturating_sub(b));
    let nf = n as f64;
    match num {
        Some(num) => num as f64 / (nf * nf),
        None => {
            let mean = s1 as f64 / nf;
            (s2 as f64 / nf - mean * mean).max(0.0)
        }
    }
}

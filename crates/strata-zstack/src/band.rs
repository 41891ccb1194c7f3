//! Band arithmetic: cutting a band of rows into Zarr inner chunks, and the 2 x 2 mean that
//! builds the next pyramid level from it.
//!
//! A band holds full-width rows, channels interleaved (`[y][x][c]`), samples in native byte
//! order, as sources deliver them. Zarr chunks are `[c][y][x]`, little-endian.

use crate::source::SampleType;

/// Geometry of the rows held in a band buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandShape {
    /// Pixels per row.
    pub width: usize,
    /// Samples per pixel.
    pub channels: usize,
    /// Sample type.
    pub sample_type: SampleType,
}

impl BandShape {
    /// Bytes per row.
    #[must_use]
    pub fn row_bytes(&self) -> usize {
        self.width * self.channels * self.sample_type.bytes()
    }
}

/// Copies inner chunk column `cx` (pixels `cx * chunk_w ..`) of a band of `rows` rows into a
/// `[c][chunk_h][chunk_w]` little-endian buffer, zero-padded past the band's edges.
#[must_use]
pub fn chunk_bytes(
    band: &[u8],
    rows: usize,
    shape: BandShape,
    cx: usize,
    chunk_w: usize,
    chunk_h: usize,
) -> Vec<u8> {
    let bps = shape.sample_type.bytes();
    let c = shape.channels;
    let x0 = cx * chunk_w;
    let w = chunk_w.min(shape.width.saturating_sub(x0));
    let mut out = vec![0u8; c * chunk_h * chunk_w * bps];
    let row_bytes = shape.row_bytes();
    for y in 0..rows.min(chunk_h) {
        let src_row = &band[y * row_bytes..(y + 1) * row_bytes];
        if c == 1 {
            let src = &src_row[x0 * bps..(x0 + w) * bps];
            let dst = &mut out[y * chunk_w * bps..(y * chunk_w + w) * bps];
            dst.copy_from_slice(src);
        } else {
            for ch in 0..c {
                let plane_off = ch * chunk_h * chunk_w * bps;
                for x in 0..w {
                    let s = ((x0 + x) * c + ch) * bps;
                    let d = plane_off + (y * chunk_w + x) * bps;
                    out[d..d + bps].copy_from_slice(&src_row[s..s + bps]);
                }
            }
        }
    }
    if bps == 2 && cfg!(target_endian = "big") {
        for pair in out.chunks_exact_mut(2) {
            pair.swap(0, 1);
        }
    }
    out
}

/// Writes the 2 x 2 mean of a column segment (`rows` rows of `shape.width` pixels, starting at
/// an even column of its plane) into the rows of a wider band: output row `i` goes to
/// `dst[i * dst_row_bytes + dst_x ..]`. The bytes are those [`downsample_into`] gives for the
/// whole rows. It runs on the calling thread: the converter calls it on its reading thread
/// while the pool's threads encode.
///
/// # Panics
/// If `dst` holds fewer than `rows.div_ceil(2)` rows of `dst_row_bytes` bytes, or the
/// segment's output (`shape.width.div_ceil(2)` pixels) does not fit in a row after `dst_x`.
pub fn downsample_window(
    src: &[u8],
    rows: usize,
    shape: BandShape,
    dst: &mut [u8],
    dst_row_bytes: usize,
    dst_x: usize,
) {
    mean_2x2_into(src, rows, shape, dst, dst_row_bytes, dst_x);
}

/// Writes the 2 x 2 mean of a column window of a wider band: the window is `shape.width`
/// pixels starting `src_x` bytes into each of `rows` rows of `src_row_bytes` bytes (an even
/// column of its plane); output row `i` goes to `dst[i * dst_row_bytes + dst_x ..]`. The bytes
/// are those [`downsample_into`] gives for the whole rows, so a pyramid level can be built
/// from the level above column by column as its columns complete.
///
/// # Panics
/// If a window row lies outside `src`, or the output does not fit `dst` as for
/// [`downsample_window`].
#[allow(clippy::too_many_arguments)] // Two windows of two buffers, each three numbers.
pub fn downsample_columns(
    src: &[u8],
    src_row_bytes: usize,
    src_x: usize,
    rows: usize,
    shape: BandShape,
    dst: &mut [u8],
    dst_row_bytes: usize,
    dst_x: usize,
) {
    mean_2x2_strided(
        src,
        Window {
            row_bytes: src_row_bytes,
            x: src_x,
        },
        rows,
        shape,
        dst,
        dst_row_bytes,
        dst_x,
    );
}

/// Appends the 2 x 2 mean of a band of `rows` rows to `dst`: `rows.div_ceil(2)` rows of
/// `width.div_ceil(2)` pixels. At an odd edge the mean covers the pixels present. Means are
/// rounded half up: `(sum + n / 2) / n`.
pub fn downsample_into(src: &[u8], rows: usize, shape: BandShape, dst: &mut Vec<u8>) {
    let out_row = out_row_bytes(shape);
    let start = dst.len();
    dst.resize(start + rows.div_ceil(2) * out_row, 0);
    mean_2x2_into(src, rows, shape, &mut dst[start..], out_row, 0);
}

/// Bytes of one output row of the 2 x 2 mean of rows of `shape`.
fn out_row_bytes(shape: BandShape) -> usize {
    shape.width.div_ceil(2) * shape.channels * shape.sample_type.bytes()
}

/// Writes the 2 x 2 mean of `rows` rows of `src`, one output row per `dst_row_bytes` of
/// `dst`, starting `dst_x` bytes into each (the serial kernel of every downsample above).
fn mean_2x2_into(
    src: &[u8],
    rows: usize,
    shape: BandShape,
    dst: &mut [u8],
    dst_row_bytes: usize,
    dst_x: usize,
) {
    let whole = Window {
        row_bytes: shape.row_bytes(),
        x: 0,
    };
    mean_2x2_strided(src, whole, rows, shape, dst, dst_row_bytes, dst_x);
}

/// Where the rows of a source window lie in its buffer.
#[derive(Clone, Copy)]
struct Window {
    /// Bytes from one row of the buffer to the next.
    row_bytes: usize,
    /// Bytes into each row where the window starts.
    x: usize,
}

fn mean_2x2_strided(
    src: &[u8],
    window: Window,
    rows: usize,
    shape: BandShape,
    dst: &mut [u8],
    dst_row_bytes: usize,
    dst_x: usize,
) {
    let rb = shape.row_bytes();
    let out_w = out_row_bytes(shape);
    if out_w == 0 || dst_row_bytes == 0 {
        return;
    }
    let row = |y: usize| {
        let start = y * window.row_bytes + window.x;
        &src[start..start + rb]
    };
    for (oy, out_row) in dst
        .chunks_exact_mut(dst_row_bytes)
        .take(rows.div_ceil(2))
        .enumerate()
    {
        let r0 = row(2 * oy);
        // The last row of an odd band pairs with itself: the same mean as over the pixels
        // present, because (2a + 2b + 2) / 4 == (a + b + 1) / 2 for integers.
        let r1 = if 2 * oy + 1 < rows {
            row(2 * oy + 1)
        } else {
            r0
        };
        let out = &mut out_row[dst_x..dst_x + out_w];
        match shape.sample_type {
            SampleType::U8 => mean_rows_u8(r0, r1, shape.channels, out),
            SampleType::U16 => mean_rows_u16(r0, r1, shape.channels, out),
        }
    }
}

/// One output row of 8-bit samples: full 2 x 2 blocks, then an odd last column (mean of its
/// two pixels).
fn mean_rows_u8(r0: &[u8], r1: &[u8], c: usize, out: &mut [u8]) {
    let full = r0.len() / (2 * c);
    let (head, tail) = out.split_at_mut(full * c);
    match c {
        1 => mean_pairs_u8::<1>(r0, r1, head),
        2 => mean_pairs_u8::<2>(r0, r1, head),
        3 => mean_pairs_u8::<3>(r0, r1, head),
        4 => mean_pairs_u8::<4>(r0, r1, head),
        _ => mean_pairs_any_u8(r0, r1, c, head),
    }
    let x = full * 2 * c;
    for (ch, o) in tail.iter_mut().enumerate() {
        let sum = u16::from(r0[x + ch]) + u16::from(r1[x + ch]);
        *o = ((sum + 1) >> 1) as u8;
    }
}

/// The full 2 x 2 blocks of a row pair of `C`-channel pixels, in runs of 16 output pixels:
/// the two rows are summed first, then neighbouring columns, in fixed-size loops the
/// compiler turns into vector code (3.5x the speed of one pixel at a time, measured on a
/// 4096 x 512 band); the pixels after the last run one at a time.
fn mean_pairs_u8<const C: usize>(r0: &[u8], r1: &[u8], out: &mut [u8]) {
    const RUN: usize = 16;
    let runs = out.len() / (RUN * C);
    let (head, rest) = out.split_at_mut(runs * RUN * C);
    for ((o, a), b) in head
        .chunks_exact_mut(RUN * C)
        .zip(r0.chunks_exact(2 * RUN * C))
        .zip(r1.chunks_exact(2 * RUN * C))
    {
        let mut column = [[0u16; C]; 2 * RUN];
        for (i, sum) in column.iter_mut().enumerate() {
            for (ch, s) in sum.iter_mut().enumerate() {
                *s = u16::from(a[i * C + ch]) + u16::from(b[i * C + ch]);
            }
        }
        for (j, px) in o.chunks_exact_mut(C).enumerate() {
            for (ch, v) in px.iter_mut().enumerate() {
                *v = ((column[2 * j][ch] + column[2 * j + 1][ch] + 2) >> 2) as u8;
            }
        }
    }
    let done = runs * RUN * 2 * C;
    mean_pairs_any_u8(&r0[done..], &r1[done..], C, rest);
}

/// The full 2 x 2 blocks of a row pair of `c`-channel pixels, one pixel at a time.
fn mean_pairs_any_u8(r0: &[u8], r1: &[u8], c: usize, out: &mut [u8]) {
    for ((o, a), b) in out
        .chunks_exact_mut(c)
        .zip(r0.chunks_exact(2 * c))
        .zip(r1.chunks_exact(2 * c))
    {
        for ch in 0..c {
            let sum =
                u16::from(a[ch]) + u16::from(a[c + ch]) + u16::from(b[ch]) + u16::from(b[c + ch]);
            o[ch] = ((sum + 2) >> 2) as u8;
        }
    }
}

/// One output row of 16-bit samples (native byte order), as [`mean_rows_u8`].
fn mean_rows_u16(r0: &[u8], r1: &[u8], c: usize, out: &mut [u8]) {
    let get = |row: &[u8], i: usize| u32::from(u16::from_ne_bytes([row[2 * i], row[2 * i + 1]]));
    let samples = r0.len() / 2;
    let full = samples / (2 * c);
    for (k, o) in out.chunks_exact_mut(2).enumerate() {
        let (px, ch) = (k / c, k % c);
        let v = if px < full {
            let (i, j) = (2 * px * c + ch, (2 * px + 1) * c + ch);
            (get(r0, i) + get(r0, j) + get(r1, i) + get(r1, j) + 2) >> 2
        } else {
            let i = 2 * px * c + ch;
            (get(r0, i) + get(r1, i) + 1) >> 1
        };
        o.copy_from_slice(&(v as u16).to_ne_bytes());
    }
}

/// One level of an in-memory pyramid: width, height, and each plane's pixels (row-major).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLevel {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// The planes, `height` rows of `width` pixels each.
    pub planes: Vec<Vec<u8>>,
}

impl MemoryLevel {
    /// Inner chunk `(cy, cx)` of `plane` (one of this level's planes, pixels of `shape`,
    /// whose width is taken from the level) as [`chunk_bytes`] lays it out, zero-padded at the
    /// level's edges.
    #[must_use]
    pub fn chunk_bytes(
        &self,
        plane: &[u8],
        shape: BandShape,
        chunk: usize,
        cy: usize,
        cx: usize,
    ) -> Vec<u8> {
        let shape = BandShape {
            width: self.width,
            ..shape
        };
        let y0 = (cy * chunk).min(self.height);
        let rows = chunk.min(self.height - y0);
        let rb = shape.row_bytes();
        let band = plane.get(y0 * rb..(y0 + rows) * rb).unwrap_or_default();
        chunk_bytes(band, rows, shape, cx, chunk, chunk)
    }
}

/// The 2 x 2-mean pyramid of whole in-memory planes (level 0 first, down to the level that
/// fits one `chunk` x `chunk` chunk), with the converter's means. A reference for benchmarks
/// and tests: the converter itself streams bands and never holds a plane.
#[must_use]
pub fn memory_pyramid(level0: MemoryLevel, shape: BandShape, chunk: usize) -> Vec<MemoryLevel> {
    let mut levels = vec![level0];
    while let Some(l) = levels.last()
        && (l.width > chunk || l.height > chunk)
    {
        let at = BandShape {
            width: l.width,
            ..shape
        };
        let planes = l
            .planes
            .iter()
            .map(|p| {
                let mut out = Vec::new();
                downsample_into(p, l.height, at, &mut out);
                out
            })
            .collect();
        levels.push(MemoryLevel {
            width: l.width.div_ceil(2),
            height: l.height.div_ceil(2),
            planes,
        });
    }
    levels
}

/// Every inner chunk of every level, as `(level, plane, chunk row, chunk column)`.
#[must_use]
pub fn chunk_grid(
    levels: &[MemoryLevel],
    chunk: usize,
) -> Vec<(&MemoryLevel, &[u8], usize, usize)> {
    let chunk = chunk.max(1);
    levels
        .iter()
        .flat_map(|l| {
            l.planes.iter().flat_map(move |p| {
                (0..l.height.div_ceil(chunk)).flat_map(move |cy| {
                    (0..l.width.div_ceil(chunk)).map(move |cx| (l, p.as_slice(), cy, cx))
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAY8: BandShape = BandShape {
        width: 3,
        channels: 1,
        sample_type: SampleType::U8,
    };

    #[test]
    fn memory_pyramid_halves_down_to_one_chunk_and_the_grid_covers_every_level() {
        let (w, h) = (1030, 700);
        let plane: Vec<u8> = (0..w * h).map(|i| (i % 251) as u8).collect();
        let level0 = MemoryLevel {
            width: w,
            height: h,
            planes: vec![plane.clone(), plane],
        };
        let levels = memory_pyramid(level0, BandShape { width: w, ..GRAY8 }, 512);
        let sizes: Vec<(usize, usize)> = levels.iter().map(|l| (l.width, l.height)).collect();
        assert_eq!(sizes, [(1030, 700), (515, 350), (258, 175)]);
        assert!(
            levels
                .iter()
                .all(|l| l.planes.len() == 2
                    && l.planes.iter().all(|p| p.len() == l.width * l.height))
        );
        let mut first = Vec::new();
        downsample_into(
            &levels[0].planes[0],
            h,
            BandShape { width: w, ..GRAY8 },
            &mut first,
        );
        assert_eq!(levels[1].planes[0], first);
        // 3 x 2 chunks at level 0, 2 x 1 at level 1, 1 at level 2, for each of 2 planes.
        assert_eq!(chunk_grid(&levels, 512).len(), 2 * (6 + 2 + 1));
        // The last chunk of level 1: 3 rows x 512 columns of its band, zero-padded.
        let (l, p) = (&levels[1], &levels[1].planes[1]);
        let c = l.chunk_bytes(p, GRAY8, 512, 0, 1);
        assert_eq!(c.len(), 512 * 512);
        assert_eq!(c[..3], p[512..515]);
        assert!(c[3..512].iter().all(|&v| v == 0));
        assert_eq!(c[512..515], p[515 + 512..515 + 515]);
    }

    #[test]
    fn mean_rounds_half_up_and_covers_odd_edges() {
        // 3 x 3 plane.
        let src = [0u8, 1, 10, 2, 3, 20, 100, 101, 255];
        let mut dst = Vec::new();
        downsample_into(&src, 3, GRAY8, &mut dst);
        // mean(0, 1, 2, 3) = 1.5 -> 2; mean(10, 20) = 15; mean(100, 101) = 100.5 -> 101; 255.
        assert_eq!(dst, [2, 15, 101, 255]);
    }

    /// The definition: the mean of the pixels of each 2 x 2 block that exist, rounded half up.
    fn reference_mean(src: &[u8], rows: usize, shape: BandShape) -> Vec<u8> {
        let (w, c, bps) = (shape.width, shape.channels, shape.sample_type.bytes());
        let get = |y: usize, x: usize, ch: usize| {
            let i = ((y * w + x) * c + ch) * bps;
            if bps == 1 {
                u32::from(src[i])
            } else {
                u32::from(u16::from_ne_bytes([src[i], src[i + 1]]))
            }
        };
        let mut out = Vec::new();
        for oy in 0..rows.div_ceil(2) {
            for ox in 0..w.div_ceil(2) {
                for ch in 0..c {
                    let (mut sum, mut n) = (0, 0);
                    for y in (2 * oy..2 * oy + 2).filter(|&y| y < rows) {
                        for x in (2 * ox..2 * ox + 2).filter(|&x| x < w) {
                            sum += get(y, x, ch);
                            n += 1;
                        }
                    }
                    let v = (sum + n / 2) / n;
                    if bps == 1 {
                        out.push(v as u8);
                    } else {
                        out.extend_from_slice(&(v as u16).to_ne_bytes());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn mean_agrees_with_its_definition() {
        let mut seed = 12_345u32;
        for sample_type in [SampleType::U8, SampleType::U16] {
            for channels in 1..=5 {
                // Widths below, at and above the vector runs of 16 output pixels.
                for width in (1..=9).chain([31, 32, 33, 64, 65, 97]) {
                    for rows in 1..=5 {
                        let shape = BandShape {
                            width,
                            channels,
                            sample_type,
                        };
                        let src: Vec<u8> = (0..rows * shape.row_bytes())
                            .map(|_| {
                                seed ^= seed << 13;
                                seed ^= seed >> 17;
                                seed ^= seed << 5;
                                seed as u8
                            })
                            .collect();
                        let mut fast = Vec::new();
                        downsample_into(&src, rows, shape, &mut fast);
                        assert_eq!(
                            fast,
                            reference_mean(&src, rows, shape),
                            "{shape:?} x {rows}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn segment_means_equal_the_whole_rows_mean() {
        for (width, channels, sample_type) in [
            (301, 3, SampleType::U16),
            (64, 1, SampleType::U8),
            (65, 2, SampleType::U8),
        ] {
            let shape = BandShape {
                width,
                channels,
                sample_type,
            };
            let px = channels * sample_type.bytes();
            for rows in [1, 2, 63, 64, 65, 100] {
                let src: Vec<u8> = (0..rows * shape.row_bytes())
                    .map(|i| (i * 13 % 251) as u8)
                    .collect();
                let mut whole = Vec::new();
                downsample_into(&src, rows, shape, &mut whole);
                let out_rb = width.div_ceil(2) * px;
                for seg in [2, 8, 30, 64] {
                    let mut dst = vec![0u8; rows.div_ceil(2) * out_rb];
                    for x0 in (0..width).step_by(seg) {
                        let cols = seg.min(width - x0);
                        let part = BandShape {
                            width: cols,
                            ..shape
                        };
                        let piece: Vec<u8> = (0..rows)
                            .flat_map(|y| {
                                let at = y * shape.row_bytes() + x0 * px;
                                src[at..at + cols * px].to_vec()
                            })
                            .collect();
                        downsample_window(&piece, rows, part, &mut dst, out_rb, x0 / 2 * px);
                    }
                    assert_eq!(dst, whole, "{shape:?}, {rows} rows, segments of {seg}");
                    // The same windows read in place from the whole band.
                    let mut dst = vec![0u8; rows.div_ceil(2) * out_rb];
                    for x0 in (0..width).step_by(seg) {
                        let part = BandShape {
                            width: seg.min(width - x0),
                            ..shape
                        };
                        let (rb, at) = (shape.row_bytes(), x0 * px);
                        downsample_columns(&src, rb, at, rows, part, &mut dst, out_rb, at / 2);
                    }
                    assert_eq!(dst, whole, "{shape:?}, {rows} rows, windows of {seg}");
                }
            }
        }
    }

    #[test]
    fn rgb_chunks_are_planar() {
        let shape = BandShape {
            width: 2,
            channels: 3,
            sample_type: SampleType::U8,
        };
        let band = [1u8, 2, 3, 4, 5, 6];
        let c = chunk_bytes(&band, 1, shape, 0, 2, 2);
        assert_eq!(c, [1, 4, 0, 0, 2, 5, 0, 0, 3, 6, 0, 0]);
    }

    #[test]
    fn u16_chunks_are_little_endian() {
        let shape = BandShape {
            width: 1,
            channels: 1,
            sample_type: SampleType::U16,
        };
        let band = 0x0102u16.to_ne_bytes();
        assert_eq!(chunk_bytes(&band, 1, shape, 0, 1, 1), [0x02, 0x01]);
        let mut dst = Vec::new();
        let two_rows = [1000u16.to_ne_bytes(), 3001u16.to_ne_bytes()].concat();
        downsample_into(&two_rows, 2, shape, &mut dst);
        assert_eq!(u16::from_ne_bytes([dst[0], dst[1]]), 2001);
    }
}

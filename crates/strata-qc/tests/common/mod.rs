//! Shared helpers of the integration tests.
#![allow(dead_code, unreachable_pub)]

use strata_qc::{PixelFormat, PlaneAccumulator, PlaneGeometry, PlaneQc, QcConfig, Samples};

/// A deterministic generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An owned image: samples in u8 or u16.
#[derive(Clone, Debug)]
pub enum Pixels {
    U8(Vec<u8>),
    U16(Vec<u16>),
}

/// A test image.
#[derive(Clone, Debug)]
pub struct Image {
    pub name: String,
    pub geometry: PlaneGeometry,
    pub pixels: Pixels,
}

impl Image {
    pub fn samples(&self) -> Samples<'_> {
        match &self.pixels {
            Pixels::U8(v) => Samples::U8(v),
            Pixels::U16(v) => Samples::U16(v),
        }
    }

    /// Feeds the image in bands whose heights come from `rng` (1..=max_band rows).
    pub fn analyze_in_bands(&self, config: &QcConfig, rng: &mut Rng, max_band: usize) -> PlaneQc {
        let g = self.geometry;
        let row = g.width * g.format.channels();
        let mut acc = PlaneAccumulator::new(g, config).expect("geometry");
        let mut y = 0;
        while y < g.height {
            let n = (1 + rng.below(max_band.max(1) as u64) as usize).min(g.height - y);
            let band = match &self.pixels {
                Pixels::U8(v) => Samples::U8(&v[y * row..(y + n) * row]),
                Pixels::U16(v) => Samples::U16(&v[y * row..(y + n) * row]),
            };
            acc.push_band(band).expect("band");
            y += n;
        }
        acc.finish().expect("complete")
    }

    /// As [`Image::analyze_in_bands`], each band cut into column segments of random widths
    /// (at most `max_cols`) fed left to right.
    #[allow(dead_code)] // used by some of the test binaries sharing this module
    pub fn analyze_in_segments(
        &self,
        config: &QcConfig,
        rng: &mut Rng,
        max_band: usize,
        max_cols: usize,
    ) -> PlaneQc {
        let g = self.geometry;
        let ch = g.format.channels();
        let row = g.width * ch;
        let mut acc = PlaneAccumulator::new(g, config).expect("geometry");
        let mut y = 0;
        while y < g.height {
            let n = (1 + rng.below(max_band.max(1) as u64) as usize).min(g.height - y);
            let mut x = 0;
            while x < g.width {
                let c = (1 + rng.below(max_cols.max(1) as u64) as usize).min(g.width - x);
                let cut = |v: &[u16]| -> Vec<u16> {
                    (y..y + n)
                        .flat_map(|r| v[r * row + x * ch..r * row + (x + c) * ch].to_vec())
                        .collect()
                };
                match &self.pixels {
                    Pixels::U8(v) => {
                        let seg: Vec<u8> = (y..y + n)
                            .flat_map(|r| v[r * row + x * ch..r * row + (x + c) * ch].to_vec())
                            .collect();
                        acc.push_segment(x, c, Samples::U8(&seg)).expect("segment");
                    }
                    Pixels::U16(v) => {
                        acc.push_segment(x, c, Samples::U16(&cut(v)))
                            .expect("segment");
                    }
                }
                x += c;
            }
            y += n;
        }
        acc.finish().expect("complete")
    }
}

/// A brightfield-like plane: bright background with noise, darker textured tissue blobs, a few
/// saturated and black pixels. `blur` box-blurs it `blur` times (0 = sharp).
pub fn slide(name: &str, w: usize, h: usize, format: PixelFormat, seed: u64, blur: usize) -> Image {
    let mut rng = Rng(seed);
    let blobs: Vec<(f64, f64, f64)> = (0..6)
        .map(|_| {
            (
                rng.below(w as u64) as f64,
                rng.below(h as u64) as f64,
                (w.min(h) as f64) * (0.1 + 0.2 * (rng.below(1000) as f64 / 1000.0)),
            )
        })
        .collect();
    let mut v = vec![0f64; w * h];
    for y in 0..h {
        for x in 0..w {
            let inside = blobs.iter().any(|&(cx, cy, r)| {
                let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                dx * dx + dy * dy < r * r
            });
            let noise = rng.below(21) as f64 - 10.0;
            v[y * w + x] = if inside {
                let texture = if (x / 3 + y / 5) % 2 == 0 {
                    60.0
                } else {
                    140.0
                };
                texture + 2.0 * noise
            } else {
                232.0 + noise
            };
        }
    }
    for _ in 0..blur {
        let src = v.clone();
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0;
                let mut c = 0.0;
                for dy in -1i64..=1 {
                    for dx in -1i64..=1 {
                        let (xx, yy) = (x as i64 + dx, y as i64 + dy);
                        if xx >= 0 && yy >= 0 && (xx as usize) < w && (yy as usize) < h {
                            s += src[yy as usize * w + xx as usize];
                            c += 1.0;
                        }
                    }
                }
                v[y * w + x] = s / c;
            }
        }
    }
    // A few specks of saturation and of black.
    for _ in 0..(w * h / 500).max(1) {
        let i = rng.below((w * h) as u64) as usize;
        v[i] = 255.0;
        let j = rng.below((w * h) as u64) as usize;
        v[j] = 0.0;
    }
    let gray8: Vec<u8> = v
        .iter()
        .map(|&x| x.round().clamp(0.0, 255.0) as u8)
        .collect();
    let pixels = match format {
        PixelFormat::Gray8 => Pixels::U8(gray8),
        PixelFormat::Gray16 => Pixels::U16(
            gray8
                .iter()
                .map(|&x| {
                    u16::from(x) * 257
                        - if x > 0 && x < 255 {
                            rng.below(200) as u16
                        } else {
                            0
                        }
                })
                .collect(),
        ),
        PixelFormat::Rgb8 => Pixels::U8(
            gray8
                .iter()
                .flat_map(|&x| {
                    let t = if x < 200 { 25 } else { 0 };
                    [x.saturating_add(t), x.saturating_sub(t), x]
                })
                .collect(),
        ),
        PixelFormat::Rgb16 => Pixels::U16(
            gray8
                .iter()
                .flat_map(|&x| {
                    let x = u16::from(x) * 257;
                    [x, x.saturating_sub(3000), x.saturating_add(1000)]
                })
                .collect(),
        ),
    };
    Image {
        name: name.to_owned(),
        geometry: PlaneGeometry::new(w, h, format),
        pixels,
    }
}

/// Uniform noise over the full range, with the extremes present.
pub fn noise(name: &str, w: usize, h: usize, format: PixelFormat, seed: u64) -> Image {
    let mut rng = Rng(seed);
    let n = w * h * format.channels();
    let max = u64::from(format.type_max());
    let mut v: Vec<u64> = (0..n).map(|_| rng.below(max + 1)).collect();
    if n >= 2 {
        v[0] = 0;
        v[n - 1] = max;
    }
    let pixels = if format.bits() == 8 {
        Pixels::U8(v.iter().map(|&x| x as u8).collect())
    } else {
        Pixels::U16(v.iter().map(|&x| x as u16).collect())
    };
    Image {
        name: name.to_owned(),
        geometry: PlaneGeometry::new(w, h, format),
        pixels,
    }
}

//! Extreme values over long rows: the short-run integer sums of the kernels neither overflow
//! nor lose anything (checked against a plain i128 reference with BORDER_REFLECT_101).

use strata_qc::{PixelFormat, PlaneGeometry, QcConfig, Samples, analyze_plane};

fn reflect(i: i64, n: i64) -> usize {
    if n == 1 {
        return 0;
    }
    let i = if i < 0 { -i } else { i };
    (if i >= n { 2 * (n - 1) - i } else { i }) as usize
}

/// (variance of Laplacian, Tenengrad, modified Laplacian, Brenner), computed naively.
fn reference(v: &[i64], w: usize, h: usize) -> (f64, f64, f64, f64) {
    let at = |x: i64, y: i64| v[reflect(y, h as i64) * w + reflect(x, w as i64)];
    let (mut s1, mut s2, mut g, mut ml, mut b) = (0i128, 0i128, 0i128, 0i128, 0i128);
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            let l = at(x, y - 1) + at(x, y + 1) + at(x - 1, y) + at(x + 1, y) - 4 * at(x, y);
            let gx = (at(x + 1, y - 1) - at(x - 1, y - 1))
                + 2 * (at(x + 1, y) - at(x - 1, y))
                + (at(x + 1, y + 1) - at(x - 1, y + 1));
            let gy = (at(x - 1, y + 1) + 2 * at(x, y + 1) + at(x + 1, y + 1))
                - (at(x - 1, y - 1) + 2 * at(x, y - 1) + at(x + 1, y - 1));
            s1 += i128::from(l);
            s2 += i128::from(l * l);
            g += i128::from(gx * gx + gy * gy);
            ml += i128::from((2 * at(x, y) - at(x - 1, y) - at(x + 1, y)).abs())
                + i128::from((2 * at(x, y) - at(x, y - 1) - at(x, y + 1)).abs());
            if (x as usize) + 2 < w {
                let d = at(x + 2, y) - at(x, y);
                b += i128::from(d * d);
            }
        }
    }
    let n = (w * h) as f64;
    let mean = s1 as f64 / n;
    (
        s2 as f64 / n - mean * mean,
        g as f64 / n,
        ml as f64 / n,
        if w >= 3 {
            b as f64 / ((w - 2) * h) as f64
        } else {
            0.0
        },
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn extreme_patterns_over_long_rows() {
    let (w, h) = (5000usize, 4usize);
    for bits16 in [false, true] {
        let top: i64 = if bits16 { 65535 } else { 255 };
        for pattern in 0..4 {
            let v: Vec<i64> = (0..w * h)
                .map(|i| {
                    let (x, y) = (i % w, i / w);
                    let on = match pattern {
                        0 => (x + y) % 2 == 0, // checkerboard: largest Laplacian
                        1 => (x / 2) % 2 == 0, // stripes of 2: largest Sobel x and Brenner
                        2 => x % 2 == 0 && y % 2 == 0,
                        _ => (x * 7 + y * 3) % 5 < 2,
                    };
                    if on { top } else { 0 }
                })
                .collect();
            let cfg = QcConfig {
                tile_size: 4096,
                ..QcConfig::default()
            };
            let q = if bits16 {
                let s: Vec<u16> = v.iter().map(|&x| x as u16).collect();
                analyze_plane(
                    PlaneGeometry::new(w, h, PixelFormat::Gray16),
                    Samples::U16(&s),
                    &cfg,
                )
            } else {
                let s: Vec<u8> = v.iter().map(|&x| x as u8).collect();
                analyze_plane(
                    PlaneGeometry::new(w, h, PixelFormat::Gray8),
                    Samples::U8(&s),
                    &cfg,
                )
            }
            .expect("plane");
            let (vol, ten, ml, br) = reference(&v, w, h);
            let f = q.metrics.focus;
            assert!(
                close(f.variance_of_laplacian, vol),
                "{bits16} {pattern}: {} vs {vol}",
                f.variance_of_laplacian
            );
            assert!(
                close(f.tenengrad, ten),
                "{bits16} {pattern}: {} vs {ten}",
                f.tenengrad
            );
            assert!(
                close(f.modified_laplacian, ml),
                "{bits16} {pattern}: {} vs {ml}",
                f.modified_laplacian
            );
            assert!(
                close(f.brenner, br),
                "{bits16} {pattern}: {} vs {br}",
                f.brenner
            );
            assert!(f.variance_of_laplacian > 0.0);
        }
    }
}

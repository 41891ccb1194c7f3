//! The self-contained HTML report: no scripts, no external resources. Charts are inline SVG,
//! images are inline PNG data URIs.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::gate::QcReport;

/// A gray thumbnail of one plane, scaled linearly from the sample type's range to 0..=255 (so
/// an Otsu threshold `t` of 16-bit data maps to `t * 255 / 65535`).
#[derive(Debug, Clone, Copy)]
pub struct Thumbnail<'a> {
    /// Plane index.
    pub plane: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` gray pixels, row-major.
    pub pixels: &'a [u8],
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2329;\
background:#fafbfc}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;\
border-bottom:1px solid #d8dee4;padding-bottom:4px}.verdict{display:inline-block;\
padding:4px 12px;border-radius:4px;font-weight:700;color:#fff}.pass{background:#1a7f37}\
.fail{background:#cf222e}table{border-collapse:collapse;font-size:13px}\
td,th{border:1px solid #d8dee4;padding:3px 8px;text-align:right}th{background:#eef1f4}\
td.l,th.l{text-align:left}tr.best td{background:#fff8c5}td.ok{color:#1a7f37;font-weight:600}\
td.bad{color:#cf222e;font-weight:700}.grid{display:flex;flex-wrap:wrap;gap:10px}\
figure{margin:0;text-align:center;font-size:12px}figure img{display:block;\
border:3px solid transparent;image-rendering:auto}figure.best img{border-color:#cf222e}\
.pix{image-rendering:pixelated}.row{display:flex;gap:28px;flex-wrap:wrap;align-items:flex-start}\
.muted{color:#57606a;font-size:13px}";

/// Renders the report as one self-contained HTML page: verdict, the focus curve with the best
/// plane marked (SVG), the rule table, the per-plane metrics, the plane thumbnails, the tissue
/// mask of the best plane, and the tile focus heatmap.
///
/// `thumbnails` may be empty or cover only some planes; the tissue mask needs the best plane's
/// thumbnail.
///
/// # Errors
/// [`Error::Image`] if a thumbnail's buffer does not match its size.
pub fn render_html(report: &QcReport, title: &str, thumbnails: &[Thumbnail<'_>]) -> Result<String> {
    for t in thumbnails {
        if t.width == 0 || t.height == 0 || t.width.checked_mul(t.height) != Some(t.pixels.len()) {
            return Err(Error::Image(format!(
                "thumbnail of plane {}: {} pixels for {}x{}",
                t.plane,
                t.pixels.len(),
                t.width,
                t.height
            )));
        }
    }
    let mut h = String::with_capacity(64 * 1024);
    let title = esc(title);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>QC: {title}</title><style>{STYLE}</style></head><body>\n<h1>QC: {title}</h1>\n"
    );
    let (class, word) = if report.passed {
        ("pass", "PASS")
    } else {
        ("fail", "FAIL")
    };
    let _ = writeln!(
        h,
        "<p><span class=\"verdict {class}\" id=\"verdict\">{word}</span> \
         <span class=\"muted\">{} planes, {:?}, best-focus plane <b>{}</b>{}; {} of {} tiles \
         are tissue, {} out of focus</span></p>",
        report.planes.len(),
        report.format,
        report.best_plane,
        if report.peak_at_edge {
            " (at the stack edge)"
        } else {
            ""
        },
        report.tiles.tissue_tiles,
        report.tiles.cols * report.tiles.rows,
        report.tiles.out_of_focus_tiles,
    );

    h.push_str("<h2>Focus curve</h2>\n");
    h.push_str(&focus_curve_svg(&report.focus_curve, report.best_plane));

    h.push_str(
        "<h2>Rules</h2>\n<table id=\"rules\"><tr><th class=\"l\">rule</th><th>value</th>\
                <th>threshold</th><th class=\"l\">result</th><th class=\"l\">detail</th></tr>\n",
    );
    for r in &report.rules {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"l {}\">{}</td>\
             <td class=\"l\">{}</td></tr>",
            esc(&r.rule),
            num(r.value),
            esc(&r.threshold),
            if r.passed { "ok" } else { "bad" },
            if r.passed { "pass" } else { "FAIL" },
            esc(&r.message)
        );
    }
    h.push_str("</table>\n");

    h.push_str(
        "<h2>Planes</h2>\n<table id=\"planes\"><tr><th>z</th><th>var. Laplacian</th>\
         <th>Tenengrad</th><th>Brenner</th><th>norm. variance</th><th>mod. Laplacian</th>\
         <th>mean</th><th>std</th><th>saturated</th><th>black</th><th>RMS contrast</th>\
         <th>Michelson</th><th>Otsu</th><th>tissue</th></tr>\n",
    );
    for p in &report.planes {
        let m = &p.metrics;
        let _ = writeln!(
            h,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if p.index == report.best_plane {
                " class=\"best\""
            } else {
                ""
            },
            p.index,
            num(m.focus.variance_of_laplacian),
            num(m.focus.tenengrad),
            num(m.focus.brenner),
            num(m.focus.normalized_variance),
            num(m.focus.modified_laplacian),
            num(m.exposure.mean),
            num(m.exposure.std),
            pct(m.exposure.saturated_fraction),
            pct(m.exposure.black_fraction),
            num(m.exposure.rms_contrast),
            num(m.exposure.michelson_contrast),
            m.tissue.otsu_threshold,
            pct(m.tissue.tissue_fraction),
        );
    }
    h.push_str("</table>\n");

    h.push_str("<h2>Tissue and focus map</h2>\n<div class=\"row\">\n");
    let best_thumb = thumbnails.iter().find(|t| t.plane == report.best_plane);
    if let Some(t) = best_thumb {
        let threshold = report
            .planes
            .get(report.best_plane)
            .map_or(0, |p| p.metrics.tissue.otsu_threshold);
        let type_max = report.format.type_max();
        let t8 = ((f64::from(threshold) * 255.0 / f64::from(type_max)).round()) as u8;
        let mut rgb = Vec::with_capacity(t.pixels.len() * 3);
        for &v in t.pixels {
            if v <= t8 {
                rgb.extend_from_slice(&[v / 3 + 150, v / 4, v / 4 + 40]);
            } else {
                rgb.extend_from_slice(&[v, v, v]);
            }
        }
        let uri = png_data_uri(t.width, t.height, png::ColorType::Rgb, &rgb)?;
        let _ = writeln!(
            h,
            "<figure id=\"tissue-mask\"><img src=\"{uri}\" width=\"{}\" height=\"{}\" \
             alt=\"tissue mask\"><figcaption>tissue mask, plane {} (magenta: at or below Otsu \
             threshold {threshold})</figcaption></figure>",
            t.width, t.height, report.best_plane
        );
    } else {
        h.push_str("<p class=\"muted\" id=\"tissue-mask\">no thumbnail of the best plane</p>\n");
    }
    h.push_str(&heatmap(report)?);
    h.push_str("</div>\n");

    h.push_str("<h2>Planes (thumbnails)</h2>\n<div class=\"grid\" id=\"thumbnails\">\n");
    for t in thumbnails {
        let uri = png_data_uri(t.width, t.height, png::ColorType::Grayscale, t.pixels)?;
        let focus = report.focus_curve.get(t.plane).copied().unwrap_or(f64::NAN);
        let (w, hgt) = fit(t.width, t.height, 160);
        let _ = writeln!(
            h,
            "<figure{}><img src=\"{uri}\" width=\"{w}\" height=\"{hgt}\" alt=\"plane {}\">\
             <figcaption>z={} &middot; {}</figcaption></figure>",
            if t.plane == report.best_plane {
                " class=\"best\""
            } else {
                ""
            },
            t.plane,
            t.plane,
            num(focus)
        );
    }
    h.push_str(
        "</div>\n<p class=\"muted\">Focus: variance of the Laplacian (OpenCV kernel, \
                BORDER_REFLECT_101). Tissue: pixels at or below the Otsu threshold \
                (scikit-image). Generated by strata-qc.</p>\n</body></html>\n",
    );
    Ok(h)
}

/// Scales `(w, h)` so the longer side is at most `max`.
fn fit(w: usize, h: usize, max: usize) -> (usize, usize) {
    let long = w.max(h);
    if long <= max {
        (w, h)
    } else {
        ((w * max / long).max(1), (h * max / long).max(1))
    }
}

fn focus_curve_svg(curve: &[f64], best: usize) -> String {
    let (w, h) = (640.0, 280.0);
    let (l, r, t, b) = (78.0, 20.0, 16.0, 44.0);
    let n = curve.len();
    let ymax = curve
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let ymax = if ymax > 0.0 { ymax * 1.08 } else { 1.0 };
    let x = |i: usize| {
        if n <= 1 {
            l + (w - l - r) / 2.0
        } else {
            l + (w - l - r) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| t + (h - t - b) * (1.0 - (v.max(0.0) / ymax));
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg id=\"focus-curve\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" \
         height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"focus curve\">\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>"
    );
    // Grid and y ticks.
    for k in 0..=4 {
        let v = ymax * f64::from(k) / 4.0;
        let yy = y(v);
        let _ = write!(
            s,
            "<line x1=\"{l}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#e4e8ec\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" \
             fill=\"#57606a\">{}</text>",
            w - r,
            l - 6.0,
            yy + 4.0,
            num(v)
        );
    }
    // x ticks.
    let step = n.div_ceil(15).max(1);
    for i in (0..n).step_by(step) {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" \
             fill=\"#57606a\">{i}</text>",
            x(i),
            h - b + 16.0
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{l}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#57606a\"/>\
         <line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{:.1}\" stroke=\"#57606a\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">focus plane (z)</text>\
         <text x=\"14\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" \
         transform=\"rotate(-90 14 {:.1})\">variance of Laplacian</text>",
        h - b,
        w - r,
        h - b,
        h - b,
        (l + w - r) / 2.0,
        h - 8.0,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0,
    );
    if n > 0 && best < n {
        let bx = x(best);
        let _ = write!(
            s,
            "<line id=\"best-plane\" x1=\"{bx:.1}\" y1=\"{t}\" x2=\"{bx:.1}\" y2=\"{:.1}\" \
             stroke=\"#cf222e\" stroke-dasharray=\"5 4\"/><text x=\"{:.1}\" y=\"{:.1}\" \
             font-size=\"12\" fill=\"#cf222e\" text-anchor=\"{}\">best z={best}</text>",
            h - b,
            bx + if best + 1 < n || n == 1 { 6.0 } else { -6.0 },
            t + 12.0,
            if best + 1 < n || n == 1 {
                "start"
            } else {
                "end"
            },
        );
    }
    let points: Vec<String> = curve
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
        .collect();
    let _ = write!(
        s,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"2\"/>",
        points.join(" ")
    );
    for (i, &v) in curve.iter().enumerate() {
        let (fill, rad) = if i == best {
            ("#cf222e", 6)
        } else {
            ("#0969da", 4)
        };
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{rad}\" fill=\"{fill}\"><title>z={i}: {}</title>\
             </circle>",
            x(i),
            y(v),
            num(v)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Viridis-like colour map, `t` in 0..=1.
fn colormap(t: f64) -> [u8; 3] {
    const STOPS: [[f64; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let p = t * 4.0;
    let i = (p.floor() as usize).min(3);
    let f = p - i as f64;
    let mut c = [0u8; 3];
    for k in 0..3 {
        c[k] = (STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f).round() as u8;
    }
    c
}

fn heatmap(report: &QcReport) -> Result<String> {
    let tiles = &report.tiles;
    let (cols, rows) = (tiles.cols, tiles.rows);
    let n = cols.checked_mul(rows).unwrap_or(0);
    if n == 0
        || tiles.focus_at_best_plane.len() != n
        || tiles.tissue.len() != n
        || tiles.out_of_focus.len() != n
    {
        return Ok("<p class=\"muted\" id=\"heatmap\">no tile map</p>\n".into());
    }
    let block = (480 / cols.max(rows)).clamp(1, 48);
    let logs: Vec<f64> = (0..cols * rows)
        .filter(|&i| tiles.tissue[i])
        .map(|i| tiles.focus_at_best_plane[i].max(1e-12).log10())
        .collect();
    let lo = logs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (w, h) = (cols * block, rows * block);
    let mut rgb = vec![0u8; w * h * 3];
    for ty in 0..rows {
        for tx in 0..cols {
            let i = ty * cols + tx;
            let color = if tiles.tissue[i] {
                colormap((tiles.focus_at_best_plane[i].max(1e-12).log10() - lo) / span)
            } else {
                [226, 229, 233]
            };
            let outline = tiles.out_of_focus[i] && block >= 3;
            for py in 0..block {
                for px in 0..block {
                    let edge = py == 0 || px == 0 || py + 1 == block || px + 1 == block;
                    let edge2 = py <= 1 || px <= 1 || py + 2 >= block || px + 2 >= block;
                    let c = if outline && (edge || (block >= 8 && edge2)) {
                        [230, 20, 40]
                    } else if !outline && block >= 6 && edge {
                        [255, 255, 255]
                    } else {
                        color
                    };
                    let o = ((ty * block + py) * w + tx * block + px) * 3;
                    rgb[o..o + 3].copy_from_slice(&c);
                }
            }
        }
    }
    let uri = png_data_uri(w, h, png::ColorType::Rgb, &rgb)?;
    let mut s = String::new();
    let _ = write!(
        s,
        "<figure id=\"heatmap\"><img class=\"pix\" src=\"{uri}\" width=\"{w}\" height=\"{h}\" \
         alt=\"tile focus heatmap\"><figcaption>tile focus at plane {} ({}x{} tiles of {} px; \
         gray: background; red outline: out of focus at its own best plane)</figcaption>",
        report.best_plane, cols, rows, tiles.tile_size
    );
    // Colour bar.
    if !logs.is_empty() {
        s.push_str(
            "<svg width=\"260\" height=\"38\" xmlns=\"http://www.w3.org/2000/svg\" \
             id=\"heatmap-legend\"><defs><linearGradient id=\"vir\">",
        );
        for k in 0..=4 {
            let c = colormap(f64::from(k) / 4.0);
            let _ = write!(
                s,
                "<stop offset=\"{}%\" stop-color=\"rgb({},{},{})\"/>",
                k * 25,
                c[0],
                c[1],
                c[2]
            );
        }
        let _ = write!(
            s,
            "</linearGradient></defs><rect x=\"10\" y=\"2\" width=\"240\" height=\"14\" \
             fill=\"url(#vir)\"/><text x=\"10\" y=\"32\" font-size=\"11\">{}</text>\
             <text x=\"250\" y=\"32\" font-size=\"11\" text-anchor=\"end\">{}</text>\
             <text x=\"130\" y=\"32\" font-size=\"11\" text-anchor=\"middle\">var. Laplacian \
             (log)</text></svg>",
            num(10f64.powf(lo)),
            num(10f64.powf(hi))
        );
    }
    s.push_str("</figure>\n");
    Ok(s)
}

/// Formats a number compactly.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "&ndash;".into();
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if v.fract() == 0.0 && a < 1e6 {
        format!("{v:.0}")
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.3e}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Encodes 8-bit pixels as a PNG `data:` URI.
fn png_data_uri(w: usize, h: usize, color: png::ColorType, data: &[u8]) -> Result<String> {
    let err = |e: png::EncodingError| Error::Image(e.to_string());
    let (w32, h32) = (
        u32::try_from(w).map_err(|_| Error::Image("image too wide".into()))?,
        u32::try_from(h).map_err(|_| Error::Image("image too tall".into()))?,
    );
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w32, h32);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(err)?;
        writer.write_image_data(data).map_err(err)?;
        writer.finish().map_err(err)?;
    }
    Ok(format!("data:image/png;base64,{}", base64(&out)))
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= c.len() {
                s.push(char::from(A[(n >> (18 - 6 * k)) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}

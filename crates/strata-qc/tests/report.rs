//! The HTML report: structure, self-containedness, embedded images; and, when Chromium is
//! available, that it renders.

mod common;

use std::process::Command;

use common::{Image, Pixels, Rng};
use strata_qc::{
    PixelFormat, PlaneGeometry, PlaneSink, QcConfig, QcReport, Rules, Samples, StackQc,
    StackSummary, Thumbnail, render_html,
};

/// A 5-plane gray stack (best plane 2) with tissue discs on a bright background, and 4x
/// downsampled thumbnails.
type Thumbs = Vec<(usize, usize, usize, Vec<u8>)>;

fn thumbnails(t: &Thumbs) -> Vec<Thumbnail<'_>> {
    t.iter()
        .map(|(plane, width, height, pixels)| Thumbnail {
            plane: *plane,
            width: *width,
            height: *height,
            pixels,
        })
        .collect()
}

fn stack() -> (StackSummary, Thumbs) {
    let (w, h) = (384usize, 256usize);
    let mut rng = Rng(5);
    let sharp: Vec<f64> = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f64, (i / w) as f64);
            let d1 = (x - 120.0).hypot(y - 120.0);
            let d2 = (x - 270.0).hypot(y - 150.0);
            let noise = rng.below(9) as f64 - 4.0;
            if d1 < 90.0 || d2 < 70.0 {
                let t = if ((x / 4.0).floor() + (y / 6.0).floor()) % 2.0 == 0.0 {
                    70.0
                } else {
                    150.0
                };
                t + noise
            } else {
                236.0 + noise
            }
        })
        .collect();
    let mut qc = StackQc::new(QcConfig {
        tile_size: 32,
        ..QcConfig::default()
    })
    .expect("config");
    let mut thumbs = Vec::new();
    for z in 0..5usize {
        let mut v = sharp.clone();
        for _ in 0..2 * z.abs_diff(2) {
            let src = v.clone();
            for y in 0..h {
                for x in 0..w {
                    let xl = x.saturating_sub(1);
                    let xr = (x + 1).min(w - 1);
                    v[y * w + x] = (src[y * w + xl] + src[y * w + x] + src[y * w + xr]) / 3.0;
                }
            }
        }
        let px: Vec<u8> = v.iter().map(|&p| p.round() as u8).collect();
        let img = Image {
            name: format!("z{z}"),
            geometry: PlaneGeometry::new(w, h, PixelFormat::Gray8),
            pixels: Pixels::U8(px.clone()),
        };
        qc.begin_plane(z, img.geometry).expect("begin");
        for y0 in (0..h).step_by(64) {
            qc.band(z, y0, Samples::U8(&px[y0 * w..(y0 + 64) * w]))
                .expect("band");
        }
        qc.finish_plane(z).expect("finish");
        let (tw, th) = (w / 4, h / 4);
        let t: Vec<u8> = (0..tw * th)
            .map(|i| px[(i / tw) * 4 * w + (i % tw) * 4])
            .collect();
        thumbs.push((z, tw, th, t));
    }
    (qc.finish().expect("stack"), thumbs)
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64 {c}"),
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let n = chunk.iter().filter(|&&c| c != b'=').count();
        let mut acc = 0u32;
        for (k, &c) in chunk.iter().enumerate() {
            acc |= u32::from(if c == b'=' { 0 } else { val(c) }) << (18 - 6 * k);
        }
        out.extend_from_slice(&acc.to_be_bytes()[1..n]);
    }
    out
}

fn render() -> (QcReport, String) {
    let (summary, thumbs) = stack();
    let report = summary.evaluate(&Rules::default());
    let html =
        render_html(&report, "sub-01 sample-<7> & co", &thumbnails(&thumbs)).expect("render");
    (report, html)
}

#[test]
fn report_is_self_contained_and_complete() {
    let (report, html) = render();
    assert_eq!(report.best_plane, 2);
    assert!(report.passed, "{:?}", report.reasons);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(
        html.contains("sub-01 sample-&lt;7&gt; &amp; co"),
        "title is escaped"
    );
    // Nothing to fetch: no scripts, no remote URLs (the SVG namespace is an identifier only).
    assert!(!html.contains("<script"));
    let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
    for tag in ["svg", "table", "figure", "tr", "div"] {
        assert_eq!(
            html.matches(&format!("<{tag}")).count(),
            html.matches(&format!("</{tag}>")).count(),
            "unbalanced <{tag}>"
        );
    }
    // The focus curve: one point per plane, the best one marked.
    let curve = &html[html.find("id=\"focus-curve\"").expect("curve")..];
    let curve = &curve[..curve.find("</svg>").expect("end")];
    assert_eq!(curve.matches("<circle").count(), 5);
    assert!(curve.contains("id=\"best-plane\""));
    assert!(curve.contains("best z=2"));
    assert_eq!(curve.matches("fill=\"#cf222e\"><title>z=2").count(), 1);
    // The rule table: one row per rule plus the header.
    let rules = &html[html.find("id=\"rules\"").expect("rules")..];
    let rules = &rules[..rules.find("</table>").expect("end")];
    assert_eq!(rules.matches("<tr>").count(), report.rules.len() + 1);
    assert_eq!(report.rules.len(), 5);
    assert!(html.contains("id=\"tissue-mask\"><img"));
    assert!(html.contains("id=\"heatmap\"><img"));
    assert!(html.contains("id=\"heatmap-legend\""));
    // Every embedded image is a valid PNG of the announced size.
    let mut images = 0;
    for part in html.split("src=\"data:image/png;base64,").skip(1) {
        let b64 = &part[..part.find('"').expect("end of uri")];
        let bytes = decode_base64(b64);
        let reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("png");
        let info = reader.info();
        let attrs = &part[part.find('"').expect("q")..];
        assert!(attrs.contains(&format!("width=\"{}\"", info.width)) || info.width > 160);
        images += 1;
    }
    // 5 thumbnails, the tissue mask and the heatmap.
    assert_eq!(images, 7);
    assert_eq!(html.matches("<figure class=\"best\">").count(), 1);
}

#[test]
fn failing_report_lists_the_failed_rules() {
    let (summary, thumbs) = stack();
    let strict = Rules {
        min_tissue_fraction: Some(0.9),
        ..Rules::default()
    };
    let report = summary.evaluate(&strict);
    assert!(!report.passed);
    // The CLI prints JSON; it round-trips.
    let back: QcReport = serde_json::from_str(&report.to_json().expect("json")).expect("parse");
    assert_eq!(back, report);
    let html = render_html(&back, "x", &thumbnails(&thumbs)).expect("render");
    assert!(html.contains("id=\"verdict\">FAIL"));
    assert_eq!(html.matches("class=\"l bad\">FAIL</td>").count(), 1);
    assert!(html.contains("<td class=\"l\">min_tissue_fraction</td>"));
    assert!(html.contains("&gt;= 0.9"));
    let bad = Thumbnail {
        plane: 0,
        width: 3,
        height: 3,
        pixels: &[0; 8],
    };
    assert!(render_html(&report, "x", &[bad]).is_err());
    // Without thumbnails the report still renders, saying the mask is missing.
    let bare = render_html(&report, "x", &[]).expect("render");
    assert!(bare.contains("no thumbnail of the best plane"));
    // The thumbnails QC makes itself (longest side 256: 384 x 256 -> factor 2).
    let own = summary.thumbnails();
    assert_eq!(own.len(), 5);
    assert_eq!((own[2].width, own[2].height), (192, 128));
    let html = render_html(&report, "x", &own).expect("render");
    assert_eq!(html.matches("<figure class=\"best\">").count(), 1);
    assert!(html.contains("id=\"tissue-mask\"><img"));
}

#[test]
fn renders_in_headless_chromium() {
    let chromium = std::env::var("STRATA_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    if Command::new(&chromium).arg("--version").output().is_err() {
        assert!(
            std::env::var_os("STRATA_REQUIRE_CHROMIUM").is_none(),
            "STRATA_REQUIRE_CHROMIUM is set but {chromium} does not run"
        );
        eprintln!("note: {chromium} not found; skipping the rendering test");
        return;
    }
    let (_, html) = render();
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).expect("write");
    let shot = dir.path().join("shot.png");
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg("--window-size=1200,1700")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("open"),
    ))
    .read_info()
    .expect("screenshot png");
    let (w, h) = (reader.info().width, reader.info().height);
    assert_eq!((w, h), (1200, 1700));
    // The page is not blank: many distinct colours (charts, thumbnails, heatmap).
    let mut reader = reader;
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    let bpp = info.line_size / w as usize;
    let mut colours = std::collections::HashSet::new();
    for px in buf[..info.buffer_size()].chunks(bpp) {
        colours.insert(px[..3].to_vec());
    }
    assert!(
        colours.len() > 200,
        "only {} colours rendered",
        colours.len()
    );
    if let Some(out) = std::env::var_os("STRATA_QC_SCREENSHOT") {
        std::fs::copy(&shot, out).expect("copy screenshot");
    }
}

#[test]
fn inconsistent_hand_made_reports_do_not_panic() {
    let (mut summary, thumbs) = stack();
    summary.best_plane = 99;
    summary.tiles.tissue.truncate(3);
    let report = summary.evaluate(&Rules::default());
    assert!(!report.passed);
    assert!(
        report
            .reasons
            .iter()
            .any(|r| r.rule == "min_tissue_fraction" && r.value.is_nan())
    );
    let html = render_html(&report, "broken", &thumbnails(&thumbs)).expect("render");
    assert!(html.contains("no tile map"));
    assert!(html.contains("no thumbnail of the best plane"));
    // NaN values serialise as null.
    assert!(report.to_json().expect("json").contains("null"));
}

//! Agreement with OpenCV, NumPy and scikit-image (the Python peers in `tests/peers/`).
//!
//! Runs `tests/peers/qc_peer.py` with the interpreter named by `STRATA_PYTHON`; skipped when it
//! is unset, unless `STRATA_REQUIRE_PEERS` is set (then the test fails).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Image, Pixels, Rng, noise, slide};
use serde_json::{Value, json};
use strata_qc::{PixelFormat, PlaneGeometry, PlaneQc, QcConfig, luminance, otsu_threshold};

const TOLERANCE: f64 = 1e-6;

use strata_testkit::{python, python_json, run_python};

fn skimage_png(py: &Path, file: &str) -> PathBuf {
    let out = run_python(
        py,
        "-c",
        ["import os, skimage.data; print(os.path.dirname(skimage.data.__file__))"],
    );
    PathBuf::from(String::from_utf8(out.stdout).expect("utf8").trim()).join(file)
}

fn read_png(name: &str, path: &Path) -> Image {
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("open png"));
    let mut reader = png::Decoder::new(file).read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    buf.truncate(info.buffer_size());
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let format = match info.color_type {
        png::ColorType::Grayscale => PixelFormat::Gray8,
        png::ColorType::Rgb => PixelFormat::Rgb8,
        other => panic!("unexpected color type {other:?}"),
    };
    Image {
        name: name.to_owned(),
        geometry: PlaneGeometry::new(info.width as usize, info.height as usize, format),
        pixels: Pixels::U8(buf),
    }
}

fn write_raw(img: &Image, path: &Path) {
    let bytes: Vec<u8> = match &img.pixels {
        Pixels::U8(v) => v.clone(),
        Pixels::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    };
    std::fs::write(path, bytes).expect("write raw");
}

fn format_name(f: PixelFormat) -> &'static str {
    match f {
        PixelFormat::Gray8 => "gray8",
        PixelFormat::Gray16 => "gray16",
        PixelFormat::Rgb8 => "rgb8",
        PixelFormat::Rgb16 => "rgb16",
    }
}

fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / a.abs().max(b.abs())
    }
}

fn images() -> Vec<Image> {
    let mut v = vec![
        noise("noise_u8", 257, 193, PixelFormat::Gray8, 1),
        noise("noise_u16", 123, 77, PixelFormat::Gray16, 2),
        noise("noise_rgb8", 150, 101, PixelFormat::Rgb8, 3),
        noise("noise_rgb16", 64, 50, PixelFormat::Rgb16, 4),
        slide("slide_u8", 700, 530, PixelFormat::Gray8, 5, 0),
        slide("slide_u8_blurred", 700, 530, PixelFormat::Gray8, 5, 3),
        slide("slide_u16", 333, 251, PixelFormat::Gray16, 6, 1),
        slide("slide_rgb8", 300, 200, PixelFormat::Rgb8, 7, 0),
        slide("slide_rgb16", 200, 130, PixelFormat::Rgb16, 8, 0),
        noise("tiny_1x1", 1, 1, PixelFormat::Gray8, 9),
        noise("tiny_7x1", 7, 1, PixelFormat::Gray8, 10),
        noise("tiny_1x7", 1, 7, PixelFormat::Gray16, 11),
        noise("tiny_2x2", 2, 2, PixelFormat::Gray8, 12),
        noise("tiny_3x5", 3, 5, PixelFormat::Rgb8, 13),
        noise("tiny_2x9", 2, 9, PixelFormat::Gray16, 14),
    ];
    v.push(Image {
        name: "constant".into(),
        geometry: PlaneGeometry::new(20, 10, PixelFormat::Gray8),
        pixels: Pixels::U8(vec![77; 200]),
    });
    v.push(Image {
        name: "u16_max".into(),
        geometry: PlaneGeometry::new(9, 4, PixelFormat::Gray16),
        pixels: Pixels::U16(
            (0..36)
                .map(|i| if i % 3 == 0 { 65535 } else { 65534 })
                .collect(),
        ),
    });
    // Above 2^24 pixels, where scikit-image's float32 histogram counts are no longer exact.
    let (w, h) = (4200, 4100);
    let mut rng = Rng(15);
    let big: Vec<u8> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            let base = if (x / 300 + y / 260) % 3 == 0 {
                90
            } else {
                215
            };
            (base + rng.below(40) as i32 - 20) as u8
        })
        .collect();
    v.push(Image {
        name: "big_u8".into(),
        geometry: PlaneGeometry::new(w, h, PixelFormat::Gray8),
        pixels: Pixels::U8(big),
    });
    v
}

#[test]
fn metrics_agree_with_opencv_and_scikit_image() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut imgs = images();
    imgs.push(read_png("skimage_cell", &skimage_png(&py, "cell.png")));
    imgs.push(read_png("skimage_ihc", &skimage_png(&py, "ihc.png")));
    let config = QcConfig {
        tile_size: 64,
        ..QcConfig::default()
    };
    let mut entries = Vec::new();
    for img in &imgs {
        let path = dir.path().join(format!("{}.raw", img.name));
        write_raw(img, &path);
        let skimage = match img.name.as_str() {
            "skimage_cell" => json!("cell"),
            "skimage_ihc" => json!("immunohistochemistry"),
            _ => Value::Null,
        };
        entries.push(json!({
            "name": img.name,
            "path": path,
            "width": img.geometry.width,
            "height": img.geometry.height,
            "format": format_name(img.geometry.format),
            "max_value": img.geometry.max_value,
            "skimage": skimage,
        }));
    }
    // Random histograms with counts up to 3e9 (whole-slide planes), half of them mirrored to
    // make near ties.
    let mut hrng = Rng(2024);
    let histograms: Vec<Vec<u64>> = (0..2000)
        .map(|i| {
            let n = 2 + hrng.below(14) as usize;
            let mut h: Vec<u64> = (0..n).map(|_| 1 + hrng.below(3_000_000_000)).collect();
            if i % 2 == 1 {
                let mirror: Vec<u64> = h.iter().rev().map(|&c| c + hrng.below(3)).collect();
                h.extend(mirror);
            }
            h
        })
        .collect();
    let manifest = dir.path().join("manifest.json");
    std::fs::write(
        &manifest,
        json!({
            "tile_size": config.tile_size,
            "tile_min_tissue": config.tile_min_tissue,
            "images": entries,
            "histograms": histograms,
        })
        .to_string(),
    )
    .expect("manifest");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/qc_peer.py");
    let peer = python_json(&py, &script, [&manifest]);
    eprintln!("peers: {}", peer["versions"]);

    let theirs = peer["histogram_otsu"].as_array().expect("histogram_otsu");
    assert_eq!(theirs.len(), histograms.len());
    for (h, t) in histograms.iter().zip(theirs) {
        assert_eq!(
            otsu_threshold(h).map(u64::from),
            t.as_u64(),
            "Otsu of histogram {h:?} differs from skimage.filters.threshold_otsu(hist=...)"
        );
    }

    let mut worst: BTreeMap<&str, (f64, String)> = BTreeMap::new();
    let mut rng = Rng(99);
    for img in &imgs {
        let p = &peer["images"][&img.name];
        // Luminance: byte-identical to cv2.cvtColor(COLOR_RGB2GRAY).
        if img.geometry.format.channels() == 3 {
            let gray =
                std::fs::read(dir.path().join(format!("{}.raw.gray", img.name))).expect("gray");
            let ours: Vec<u8> = match &img.pixels {
                Pixels::U8(v) => v
                    .chunks_exact(3)
                    .map(|c| luminance(c[0].into(), c[1].into(), c[2].into()) as u8)
                    .collect(),
                Pixels::U16(v) => v
                    .chunks_exact(3)
                    .flat_map(|c| {
                        (luminance(c[0].into(), c[1].into(), c[2].into()) as u16).to_le_bytes()
                    })
                    .collect(),
            };
            assert!(ours == gray, "{}: luminance differs from OpenCV", img.name);
        }
        let q: PlaneQc = img.analyze_in_bands(&config, &mut rng, img.geometry.height / 3 + 1);
        let m = &q.metrics;
        let checks = [
            ("variance_of_laplacian", m.focus.variance_of_laplacian),
            ("tenengrad", m.focus.tenengrad),
            ("brenner", m.focus.brenner),
            ("normalized_variance", m.focus.normalized_variance),
            ("modified_laplacian", m.focus.modified_laplacian),
            ("mean", m.exposure.mean),
            ("std", m.exposure.std),
            ("saturated_fraction", m.exposure.saturated_fraction),
            ("black_fraction", m.exposure.black_fraction),
            ("rms_contrast", m.exposure.rms_contrast),
            ("michelson_contrast", m.exposure.michelson_contrast),
            ("tissue_fraction", m.tissue.tissue_fraction),
            ("class_separation", m.tissue.class_separation),
        ];
        for (key, ours) in checks {
            let theirs = p[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{}: no {key}", img.name));
            let e = rel(ours, theirs);
            assert!(
                e <= TOLERANCE,
                "{} {key}: ours {ours} vs peer {theirs} (relative error {e:e})",
                img.name
            );
            let w = worst.entry(key).or_insert((0.0, String::new()));
            if e >= w.0 {
                *w = (e, img.name.clone());
            }
        }
        // Exact: the same pixel count (JSON floats need not round-trip bit for bit).
        let tissue_pixels = p["tissue_pixels"].as_u64().expect("tissue_pixels");
        let pixels = p["pixels"].as_u64().expect("pixels");
        assert_eq!(
            m.tissue.tissue_fraction,
            tissue_pixels as f64 / pixels as f64,
            "{}: tissue pixels",
            img.name
        );
        assert_eq!(
            u64::from(m.exposure.min),
            p["min"].as_u64().expect("min"),
            "{}",
            img.name
        );
        assert_eq!(
            u64::from(m.exposure.max),
            p["max"].as_u64().expect("max"),
            "{}",
            img.name
        );
        assert_eq!(
            u64::from(m.tissue.otsu_threshold),
            p["otsu_threshold"].as_u64().expect("otsu"),
            "{}: Otsu threshold differs from skimage.filters.threshold_otsu",
            img.name
        );
        let tiles = p["tiles"].as_array().expect("tiles");
        assert_eq!(tiles.len(), q.tiles.tiles.len(), "{}: tile count", img.name);
        for (i, (ours, theirs)) in q.tiles.tiles.iter().zip(tiles).enumerate() {
            let f = theirs["focus"].as_f64().expect("focus");
            let e = rel(ours.focus, f);
            assert!(
                e <= TOLERANCE,
                "{} tile {i}: focus {} vs {f}",
                img.name,
                ours.focus
            );
            let w = worst.entry("tile_focus").or_insert((0.0, String::new()));
            if e >= w.0 {
                *w = (e, img.name.clone());
            }
            let quantile = theirs["quantile"].as_u64().expect("quantile") as u32;
            let expected = if img.geometry.format.bits() == 8 {
                quantile
            } else {
                quantile | 15
            };
            assert_eq!(
                ours.tissue_quantile, expected,
                "{} tile {i}: tissue quantile",
                img.name
            );
        }
    }
    eprintln!(
        "max relative error over {} images (tolerance {TOLERANCE:e}):",
        imgs.len()
    );
    for (k, (e, name)) in &worst {
        eprintln!("  {k:24} {e:.3e}  ({name})");
    }
}

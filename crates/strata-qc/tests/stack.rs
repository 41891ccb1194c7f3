//! Stack-level behaviour: the best plane on known truth, missed focus, out-of-focus tiles, the
//! gate, and the hook's error handling.

mod common;

use common::{Image, Pixels, slide};
use strata_qc::{
    Error, PixelFormat, PlaneGeometry, PlaneSink, QcConfig, Rules, Samples, StackQc, StackSummary,
};

/// Box blur of an interleaved image, `times` passes, edges clamped.
fn blur(img: &Image, times: usize) -> Image {
    let g = img.geometry;
    let (w, h, c) = (g.width, g.height, g.format.channels());
    let mut v: Vec<f64> = match &img.pixels {
        Pixels::U8(p) => p.iter().map(|&x| f64::from(x)).collect(),
        Pixels::U16(p) => p.iter().map(|&x| f64::from(x)).collect(),
    };
    for _ in 0..times {
        let src = v.clone();
        for y in 0..h {
            for x in 0..w {
                for k in 0..c {
                    let mut s = 0.0;
                    for dy in [-1i64, 0, 1] {
                        for dx in [-1i64, 0, 1] {
                            let yy = (y as i64 + dy).clamp(0, h as i64 - 1) as usize;
                            let xx = (x as i64 + dx).clamp(0, w as i64 - 1) as usize;
                            s += src[(yy * w + xx) * c + k];
                        }
                    }
                    v[(y * w + x) * c + k] = s / 9.0;
                }
            }
        }
    }
    mix(img, &v, 1.0)
}

/// `(1 - a) * img + a * other`, rounded.
fn mix(img: &Image, other: &[f64], a: f64) -> Image {
    let pixels = match &img.pixels {
        Pixels::U8(p) => Pixels::U8(
            p.iter()
                .zip(other)
                .map(|(&x, &o)| ((1.0 - a) * f64::from(x) + a * o).round() as u8)
                .collect(),
        ),
        Pixels::U16(p) => Pixels::U16(
            p.iter()
                .zip(other)
                .map(|(&x, &o)| ((1.0 - a) * f64::from(x) + a * o).round() as u16)
                .collect(),
        ),
    };
    Image {
        name: img.name.clone(),
        geometry: img.geometry,
        pixels,
    }
}

fn as_f64(img: &Image) -> Vec<f64> {
    match &img.pixels {
        Pixels::U8(p) => p.iter().map(|&x| f64::from(x)).collect(),
        Pixels::U16(p) => p.iter().map(|&x| f64::from(x)).collect(),
    }
}

/// Feeds planes through a `dyn PlaneSink`, interleaved band by band.
fn run(planes: &[Image], config: QcConfig, band: usize) -> StackSummary {
    let mut qc = StackQc::new(config).expect("config");
    let sink: &mut dyn PlaneSink = &mut qc;
    for (z, p) in planes.iter().enumerate() {
        sink.begin_plane(z, p.geometry).expect("begin");
    }
    let g = planes[0].geometry;
    let row = g.width * g.format.channels();
    let mut y0 = 0;
    while y0 < g.height {
        let n = band.min(g.height - y0);
        for (z, p) in planes.iter().enumerate() {
            let s = match &p.pixels {
                Pixels::U8(v) => Samples::U8(&v[y0 * row..(y0 + n) * row]),
                Pixels::U16(v) => Samples::U16(&v[y0 * row..(y0 + n) * row]),
            };
            sink.band(z, y0, s).expect("band");
        }
        y0 += n;
    }
    for z in 0..planes.len() {
        sink.finish_plane(z).expect("finish");
    }
    qc.finish().expect("stack")
}

#[test]
fn finds_the_known_in_focus_plane_strong_and_subtle() {
    for format in [
        PixelFormat::Gray8,
        PixelFormat::Gray16,
        PixelFormat::Rgb8,
        PixelFormat::Rgb16,
    ] {
        let sharp = slide("s", 160, 120, format, 21, 0);
        let once = as_f64(&blur(&sharp, 1));
        for (label, best, strength) in [("strong", 2usize, 1.0f64), ("subtle", 4, 0.15)] {
            // Plane z is the sharp image mixed with its blur by strength * |z - best|, capped.
            let planes: Vec<Image> = (0..7usize)
                .map(|z| {
                    let a = (strength * z.abs_diff(best) as f64).min(1.0);
                    let m = mix(&sharp, &once, a);
                    if a >= 1.0 {
                        blur(&m, z.abs_diff(best) - 1)
                    } else {
                        m
                    }
                })
                .collect();
            let s = run(
                &planes,
                QcConfig {
                    tile_size: 32,
                    ..QcConfig::default()
                },
                16,
            );
            assert_eq!(
                s.best_plane, best,
                "{format:?} {label}: curve {:?}",
                s.focus_curve
            );
            assert!(!s.peak_at_edge);
            // The curve falls off on both sides of the peak.
            for z in 1..7 {
                let (a, b) = (s.focus_curve[z - 1], s.focus_curve[z]);
                if z <= best {
                    assert!(a < b, "{format:?} {label}: not rising at {z}");
                } else {
                    assert!(a > b, "{format:?} {label}: not falling at {z}");
                }
            }
            let report = s.evaluate(&Rules::default());
            assert_eq!(report.best_plane, best);
            assert!(report.passed, "{format:?} {label}: {:?}", report.reasons);
        }
    }
}

#[test]
fn missed_focus_fails_the_gate() {
    let sharp = slide("s", 128, 96, PixelFormat::Gray8, 3, 0);
    let planes: Vec<Image> = (0..5).map(|z| blur(&sharp, z)).collect();
    let s = run(
        &planes,
        QcConfig {
            tile_size: 32,
            ..QcConfig::default()
        },
        7,
    );
    assert_eq!(s.best_plane, 0);
    assert!(s.peak_at_edge);
    // Every tissue tile peaks at plane 0 too, so all are out of focus.
    assert!(s.tiles.tissue_tiles > 0);
    assert_eq!(s.tiles.out_of_focus_fraction, 1.0);
    let report = s.evaluate(&Rules::default());
    assert!(!report.passed);
    let failed: Vec<&str> = report.reasons.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(
        failed,
        ["best_plane_not_at_edge", "max_out_of_focus_tile_fraction"]
    );
    assert_eq!(report.reasons[0].value, 0.0);
    assert_eq!(report.reasons[0].threshold, "not 0 or 4");
    let json: serde_json::Value =
        serde_json::from_str(&report.to_json().expect("json")).expect("parse");
    assert_eq!(json["best_plane"], 0);
    assert_eq!(json["passed"], false);
    assert_eq!(json["planes"].as_array().expect("planes").len(), 5);
    assert!(
        json["planes"][0]["focus"]["variance_of_laplacian"]
            .as_f64()
            .expect("vol")
            > 0.0
    );
    assert_eq!(json["reasons"][0]["rule"], "best_plane_not_at_edge");
    assert!(
        !json["tiles"]["tissue"]
            .as_array()
            .expect("tiles")
            .is_empty()
    );
    let brief: serde_json::Value =
        serde_json::from_str(&report.to_json_brief().expect("json")).expect("parse");
    assert!(
        brief["tiles"]["tissue"]
            .as_array()
            .expect("tiles")
            .is_empty()
    );
    assert_eq!(
        brief["tiles"]["tissue_tiles"],
        json["tiles"]["tissue_tiles"]
    );
    assert_eq!(brief["planes"], json["planes"]);
}

#[test]
fn a_region_blurred_in_every_plane_is_out_of_focus() {
    // Tissue everywhere: a textured dark plane; tile (0, 0) is blurred in every plane.
    let (w, h, ts) = (128usize, 128usize, 32usize);
    let mut planes = Vec::new();
    for z in 0..5usize {
        let sharpness = 1.0 / (1.0 + z.abs_diff(2) as f64);
        let v: Vec<u8> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let bright = (x * 7 + y * 13) % 5 < 2;
                let amp = if x < ts && y < ts { 0.03 } else { sharpness };
                (80.0 + if bright { 30.0 * amp } else { -10.0 * amp }).round() as u8
            })
            .collect();
        // A bright background strip on the right, so Otsu has two classes.
        let v: Vec<u8> = v
            .iter()
            .enumerate()
            .map(|(i, &p)| if i % w >= w - 8 { 240 } else { p })
            .collect();
        planes.push(Image {
            name: format!("z{z}"),
            geometry: PlaneGeometry::new(w, h, PixelFormat::Gray8),
            pixels: Pixels::U8(v),
        });
    }
    let s = run(
        &planes,
        QcConfig {
            tile_size: ts,
            ..QcConfig::default()
        },
        10,
    );
    assert_eq!(s.best_plane, 2);
    assert_eq!(s.tiles.cols * s.tiles.rows, 16);
    assert_eq!(s.tiles.tissue_tiles, 16);
    assert!(s.tiles.out_of_focus[0]);
    assert_eq!(s.tiles.out_of_focus_tiles, 1);
    assert_eq!(s.tiles.out_of_focus_fraction, 1.0 / 16.0);
    let strict = Rules {
        max_out_of_focus_tile_fraction: Some(0.05),
        ..Rules::default()
    };
    let report = s.evaluate(&strict);
    assert!(!report.passed);
    assert_eq!(report.reasons.len(), 1);
    assert_eq!(report.reasons[0].value, 0.0625);
}

#[test]
fn the_hook_can_move_to_another_thread() {
    fn send<T: Send + 'static>() {}
    send::<StackQc>();
    send::<Box<dyn PlaneSink + Send>>();
    let mut qc: Box<dyn PlaneSink + Send> =
        Box::new(StackQc::new(QcConfig::default()).expect("config"));
    let handle = std::thread::spawn(move || {
        qc.begin_plane(0, PlaneGeometry::new(2, 2, PixelFormat::Gray8))?;
        qc.band(0, 0, Samples::U8(&[1, 2, 3, 4]))?;
        qc.finish_plane(0)
    });
    assert!(handle.join().expect("thread").is_ok());
}

#[test]
fn hook_rejects_misuse() {
    let g = PlaneGeometry::new(4, 3, PixelFormat::Gray8);
    let mut qc = StackQc::new(QcConfig::default()).expect("config");
    assert!(matches!(
        qc.band(0, 0, Samples::U8(&[0; 4])),
        Err(Error::InvalidBand { .. })
    ));
    qc.begin_plane(0, g).expect("begin");
    assert!(qc.begin_plane(0, g).is_err());
    assert!(matches!(
        qc.band(0, 1, Samples::U8(&[0; 4])),
        Err(Error::InvalidBand {
            plane: 0,
            y0: 1,
            ..
        })
    ));
    qc.band(0, 0, Samples::U8(&[1; 8])).expect("two rows");
    assert!(matches!(
        qc.finish_plane(0),
        Err(Error::IncompletePlane {
            plane: 0,
            received: 2,
            height: 3
        })
    ));
    assert!(matches!(
        StackQc::new(QcConfig::default()).expect("c").finish(),
        Err(Error::InvalidStack(_))
    ));
    // A gap in the plane indices.
    let mut qc = StackQc::new(QcConfig::default()).expect("config");
    for z in [0, 2] {
        qc.begin_plane(z, g).expect("begin");
        qc.band(z, 0, Samples::U8(&[5; 12])).expect("band");
        qc.finish_plane(z).expect("finish");
    }
    assert!(matches!(qc.finish(), Err(Error::InvalidStack(m)) if m.contains("plane 1")));
    // Planes of different sizes.
    let mut qc = StackQc::new(QcConfig::default()).expect("config");
    qc.begin_plane(0, g).expect("begin");
    qc.band(0, 0, Samples::U8(&[5; 12])).expect("band");
    qc.finish_plane(0).expect("finish");
    qc.begin_plane(1, PlaneGeometry::new(3, 4, PixelFormat::Gray8))
        .expect("begin");
    qc.band(1, 0, Samples::U8(&[5; 12])).expect("band");
    qc.finish_plane(1).expect("finish");
    assert!(qc.finish().is_err());
    assert!(
        StackQc::new(QcConfig {
            tile_size: 3,
            ..QcConfig::default()
        })
        .is_err()
    );
}

#[test]
fn bytes_in_native_order_feed_16_bit_planes() {
    let g = PlaneGeometry::new(5, 4, PixelFormat::Gray16);
    let samples: Vec<u16> = (0..20u16).map(|i| i * 3000 + 7).collect();
    let bytes: Vec<u8> = samples.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let mut by_bytes = StackQc::new(QcConfig::default()).expect("c");
    let mut by_samples = StackQc::new(QcConfig::default()).expect("c");
    for z in 0..3 {
        by_bytes.begin_plane(z, g).expect("begin");
        by_bytes
            .band_bytes(z, 0, g.format, &bytes[..20])
            .expect("band");
        by_bytes
            .band_bytes(z, 2, g.format, &bytes[20..])
            .expect("band");
        by_bytes.finish_plane(z).expect("finish");
        by_samples.begin_plane(z, g).expect("begin");
        by_samples.band(z, 0, Samples::U16(&samples)).expect("band");
        by_samples.finish_plane(z).expect("finish");
    }
    assert_eq!(
        by_bytes.finish().expect("s"),
        by_samples.finish().expect("s")
    );
    let mut qc = StackQc::new(QcConfig::default()).expect("c");
    qc.begin_plane(0, g).expect("begin");
    assert!(qc.band_bytes(0, 0, g.format, &bytes[..9]).is_err());
}

#[test]
fn a_blank_noisy_slide_fails_on_class_separation() {
    // Background 235 +- 4: Otsu still splits the noise, so the tissue fraction looks fine.
    let (w, h) = (64usize, 64usize);
    let mut qc = StackQc::new(QcConfig {
        tile_size: 16,
        ..QcConfig::default()
    })
    .expect("c");
    for z in 0..3usize {
        let px: Vec<u8> = (0..w * h)
            .map(|i| (231 + (i * 7 + z * 13 + (i / w) * 3) % 9) as u8)
            .collect();
        qc.begin_plane(z, PlaneGeometry::new(w, h, PixelFormat::Gray8))
            .expect("begin");
        qc.band(z, 0, Samples::U8(&px)).expect("band");
        qc.finish_plane(z).expect("finish");
    }
    let s = qc.finish().expect("stack");
    let best = &s.planes[s.best_plane];
    assert!(best.tissue.tissue_fraction > 0.2, "{:?}", best.tissue);
    assert!(best.tissue.class_separation < 0.03, "{:?}", best.tissue);
    let rules = Rules {
        best_plane_not_at_edge: false,
        ..Rules::default()
    };
    let r = s.evaluate(&rules);
    let failed: Vec<&str> = r.reasons.iter().map(|r| r.rule.as_str()).collect();
    assert!(failed.contains(&"min_class_separation"), "{failed:?}");
    assert!(!failed.contains(&"min_tissue_fraction"));
}

#[test]
fn blank_planes_have_no_tissue() {
    let g = PlaneGeometry::new(16, 16, PixelFormat::Gray16);
    let mut qc = StackQc::new(QcConfig {
        tile_size: 8,
        ..QcConfig::default()
    })
    .expect("c");
    for z in 0..3 {
        qc.begin_plane(z, g).expect("begin");
        qc.band(z, 0, Samples::U16(&[65535; 256])).expect("band");
        qc.finish_plane(z).expect("finish");
    }
    let s = qc.finish().expect("stack");
    assert_eq!(s.tiles.tissue_tiles, 0);
    assert_eq!(s.planes[0].tissue.tissue_fraction, 0.0);
    assert_eq!(s.planes[0].tissue.class_separation, 0.0);
    assert_eq!(s.planes[0].exposure.saturated_fraction, 1.0);
    let r = s.evaluate(&Rules::default());
    let failed: Vec<&str> = r.reasons.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(
        failed,
        [
            "best_plane_not_at_edge",
            "min_tissue_fraction",
            "min_class_separation",
            "max_saturated_fraction"
        ]
    );
}

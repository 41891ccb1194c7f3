//! Misuse and malformed input give errors, never panics.

use proptest::prelude::*;
use strata_qc::{
    PixelFormat, PlaneGeometry, PlaneSink, QcConfig, Rules, Samples, StackQc, Thumbnail,
    render_html,
};

#[derive(Debug, Clone)]
enum Op {
    Begin(usize, usize, usize, u8, u32),
    Band(usize, usize, bool, usize),
    Bytes(usize, usize, u8, usize),
    Finish(usize),
}

fn format(k: u8) -> PixelFormat {
    match k % 4 {
        0 => PixelFormat::Gray8,
        1 => PixelFormat::Gray16,
        2 => PixelFormat::Rgb8,
        _ => PixelFormat::Rgb16,
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..3, 0usize..7, 0usize..7, any::<u8>(), 0u32..70000)
            .prop_map(|(p, w, h, f, m)| Op::Begin(p, w, h, f, m)),
        (0usize..3, 0usize..8, any::<bool>(), 0usize..80)
            .prop_map(|(p, y, wide, n)| Op::Band(p, y, wide, n)),
        (0usize..3, 0usize..8, any::<u8>(), 0usize..80)
            .prop_map(|(p, y, f, n)| Op::Bytes(p, y, f, n)),
        (0usize..3).prop_map(Op::Finish),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_sequence_of_calls_is_handled(ops in proptest::collection::vec(op(), 0..40), seed in any::<u16>()) {
        let mut qc = StackQc::new(QcConfig { tile_size: 8, ..QcConfig::default() }).expect("config");
        for op in ops {
            let _ = match op {
                Op::Begin(p, w, h, f, m) => {
                    let g = PlaneGeometry::new(w, h, format(f));
                    let g = if m % 3 == 0 { g.with_max_value(m) } else { g };
                    qc.begin_plane(p, g)
                }
                Op::Band(p, y0, wide, n) => {
                    if wide {
                        let v: Vec<u16> = (0..n).map(|i| (i as u16).wrapping_mul(seed)).collect();
                        qc.band(p, y0, Samples::U16(&v))
                    } else {
                        let v: Vec<u8> = (0..n).map(|i| (i as u16).wrapping_mul(seed) as u8).collect();
                        qc.band(p, y0, Samples::U8(&v))
                    }
                }
                Op::Bytes(p, y0, f, n) => {
                    let v: Vec<u8> = (0..n).map(|i| (i as u16).wrapping_mul(seed) as u8).collect();
                    qc.band_bytes(p, y0, format(f), &v)
                }
                Op::Finish(p) => qc.finish_plane(p),
            };
        }
        if let Ok(summary) = qc.finish() {
            let report = summary.evaluate(&Rules::default());
            prop_assert!(report.to_json().is_ok());
            prop_assert!(render_html(&report, "t", &[]).is_ok());
        }
    }

    #[test]
    fn rules_text_never_panics(text in "\\PC{0,80}") {
        let _ = Rules::from_toml_str(&text);
        let _ = Rules::from_json_str(&text);
    }

    #[test]
    fn thumbnails_of_any_shape(w in 0usize..40, h in 0usize..40, len in 0usize..1700) {
        let mut qc = StackQc::new(QcConfig::default()).expect("config");
        let g = PlaneGeometry::new(3, 3, PixelFormat::Gray8);
        qc.begin_plane(0, g).expect("begin");
        qc.band(0, 0, Samples::U8(&[9, 200, 3, 40, 250, 0, 7, 8, 90])).expect("band");
        qc.finish_plane(0).expect("finish");
        let report = qc.finish().expect("stack").evaluate(&Rules::default());
        let px = vec![128u8; len];
        let t = Thumbnail { plane: 0, width: w, height: h, pixels: &px };
        let r = render_html(&report, "t", &[t]);
        prop_assert_eq!(r.is_ok(), w > 0 && h > 0 && w * h == len);
    }
}

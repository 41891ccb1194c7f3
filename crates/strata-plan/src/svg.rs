//! SVG chart of inodes (after `git gc`) against subdataset size, one line per layout, with the
//! quotas as horizontal lines. Log-log axes; pure string output.

use std::fmt::Write as _;

use crate::input::{AnnexOptions, Grouping, Layout, PlanInput};
use crate::model::predict;
use crate::{Error, Result};

const W: f64 = 760.0;
const H: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 210.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 6] = [
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d",
];

#[allow(clippy::cast_precision_loss)]
fn log(v: u64) -> f64 {
    (v.max(1) as f64).log10()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders inodes after gc for each `(layout, annex options)` of `series` at each subdataset
/// size in `sizes` (sections per subdataset), with a dashed line per entry of `quotas`
/// (`(label, inodes)`). The rest of the input comes from `input`.
///
/// # Errors
/// [`Error::Input`] if the input is invalid, `series` or `sizes` is empty, or a size is 0.
pub fn render_svg(
    input: &PlanInput,
    series: &[(Layout, AnnexOptions)],
    sizes: &[u64],
    quotas: &[(&str, u64)],
) -> Result<String> {
    if series.is_empty() || sizes.is_empty() || sizes.contains(&0) {
        return Err(Error::Input(
            "chart needs series and subdataset sizes of at least 1".to_owned(),
        ));
    }
    let series = {
        let mut out = Vec::new();
        for &(layout, annex) in series {
            let input = PlanInput {
                annex,
                ..input.clone()
            };
            let mut points = Vec::new();
            for &n in sizes {
                let p = predict(&input, layout, Grouping::PerSections(n))?;
                points.push((n, p.inodes_after_gc));
            }
            let label = if annex == AnnexOptions::DEFAULT {
                layout.name().to_owned()
            } else {
                format!("{} ({})", layout.name(), annex.name())
            };
            out.push((label, points));
        }
        out
    };
    let ys = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .chain(quotas.iter().map(|&(_, q)| q));
    let (mut ymin, mut ymax) = (f64::MAX, f64::MIN);
    for y in ys {
        ymin = ymin.min(log(y));
        ymax = ymax.max(log(y));
    }
    let (ymin, ymax) = (ymin.floor(), ymax.ceil().max(ymin.floor() + 1.0));
    let xs = sizes.iter().map(|&n| log(n));
    let xmin = xs.clone().fold(f64::MAX, f64::min).floor();
    let xmax = xs.fold(f64::MIN, f64::max).ceil().max(xmin + 1.0);
    let px = |x: f64| LEFT + (x - xmin) / (xmax - xmin) * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - (y - ymin) / (ymax - ymin) * (H - TOP - BOTTOM);

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14">Inodes after git gc, {} sections x {} planes</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        input.sections,
        input.planes
    );
    // Axes with decade ticks.
    let (x0, x1, y0, y1) = (px(xmin), px(xmax), py(ymin), py(ymax));
    let _ = write!(
        s,
        r#"<path d="M{x0:.1} {y1:.1}V{y0:.1}H{x1:.1}" fill="none" stroke="black"/>"#
    );
    let mut d = xmin;
    while d <= xmax + 1e-9 {
        let x = px(d);
        let _ = write!(
            s,
            r#"<line x1="{x:.1}" y1="{y0:.1}" x2="{x:.1}" y2="{:.1}" stroke="black"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            y0 + 5.0,
            y0 + 18.0,
            decade(d)
        );
        d += 1.0;
    }
    let mut d = ymin;
    while d <= ymax + 1e-9 {
        let y = py(d);
        let _ = write!(
            s,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0,
            x0 - 6.0,
            y + 4.0,
            decade(d)
        );
        d += 1.0;
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">sections per subdataset</text>"#,
        (x0 + x1) / 2.0,
        H - 12.0
    );
    let _ = write!(
        s,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">inodes</text>"#,
        (y0 + y1) / 2.0
    );
    for &(label, q) in quotas {
        let y = py(log(q));
        let _ = write!(
            s,
            r##"<line x1="{x0:.1}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="#c00" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" fill="#c00" text-anchor="end">{} ({q})</text>"##,
            x1 - 4.0,
            y - 4.0,
            escape(label)
        );
    }
    for (i, (label, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut path = String::new();
        for (j, &(n, y)) in points.iter().enumerate() {
            let _ = write!(
                path,
                "{}{:.1} {:.1}",
                if j == 0 { "M" } else { "L" },
                px(log(n)),
                py(log(y))
            );
        }
        let _ = write!(
            s,
            r#"<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"><title>{}</title></path>"#,
            escape(label)
        );
        #[allow(clippy::cast_precision_loss)]
        let ly = TOP + 20.0 + 18.0 * i as f64;
        let _ = write!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            x1 + 4.0,
            x1 + 24.0,
            x1 + 28.0,
            ly + 4.0,
            escape(label)
        );
    }
    s.push_str("</svg>\n");
    Ok(s)
}

fn decade(d: f64) -> String {
    match d.round() {
        v if v < 3.0 => format!("{}", 10f64.powf(v)),
        v if v < 6.0 => format!("{}k", 10f64.powf(v - 3.0)),
        v if v < 9.0 => format!("{}M", 10f64.powf(v - 6.0)),
        v => format!("1e{v}"),
    }
}

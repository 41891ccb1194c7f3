//! Builds a synthetic z-stack from an RGB or gray 8-bit PNG (for instance scikit-image's
//! `ihc.png`): plane `z` is the image box-blurred `2 * |z - 5|` times, and one corner region is
//! blurred in every plane (as under an air bubble). Runs QC band by band, prints the JSON
//! report and writes the HTML report.
//!
//! `cargo run -p strata-qc --example qc_report -- IMAGE.png OUT.html`

use std::io::BufReader;

use strata_qc::{
    PixelFormat, PlaneGeometry, PlaneSink, QcConfig, Rules, Samples, StackQc, render_html,
};

fn blur(v: &[u8], w: usize, h: usize, c: usize, region: Option<(usize, usize)>) -> Vec<u8> {
    let mut out = v.to_vec();
    for y in 0..h {
        for x in 0..w {
            if let Some((rw, rh)) = region
                && (x >= rw || y >= rh)
            {
                continue;
            }
            for k in 0..c {
                let mut s = 0u32;
                for dy in [-1i64, 0, 1] {
                    for dx in [-1i64, 0, 1] {
                        let yy = (y as i64 + dy).clamp(0, h as i64 - 1) as usize;
                        let xx = (x as i64 + dx).clamp(0, w as i64 - 1) as usize;
                        s += u32::from(v[(yy * w + xx) * c + k]);
                    }
                }
                out[(y * w + x) * c + k] = ((s + 4) / 9) as u8;
            }
        }
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (input, output) = match args.as_slice() {
        [_, i, o] => (i, o),
        _ => return Err("usage: qc_report IMAGE.png OUT.html".into()),
    };
    let mut reader = png::Decoder::new(BufReader::new(std::fs::File::open(input)?)).read_info()?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("image too large")?];
    let info = reader.next_frame(&mut buf)?;
    buf.truncate(info.buffer_size());
    let (w, h) = (info.width as usize, info.height as usize);
    let (format, c) = match info.color_type {
        png::ColorType::Rgb => (PixelFormat::Rgb8, 3),
        png::ColorType::Grayscale => (PixelFormat::Gray8, 1),
        other => return Err(format!("unsupported PNG colour type {other:?}").into()),
    };
    let planes = 11usize;
    let best = 5usize;
    let bubble = (w / 4, h / 4);
    let mut qc = StackQc::new(QcConfig {
        tile_size: 64,
        ..QcConfig::default()
    })?;
    for z in 0..planes {
        let mut v = blur(&buf, w, h, c, Some(bubble));
        v = blur(&v, w, h, c, Some(bubble));
        for _ in 0..2 * z.abs_diff(best) {
            v = blur(&v, w, h, c, None);
        }
        qc.begin_plane(z, PlaneGeometry::new(w, h, format))?;
        for y0 in (0..h).step_by(100) {
            let rows = 100.min(h - y0);
            qc.band(z, y0, Samples::U8(&v[y0 * w * c..(y0 + rows) * w * c]))?;
        }
        qc.finish_plane(z)?;
    }
    let summary = qc.finish()?;
    let report = summary.evaluate(&Rules::default());
    // The thumbnails QC made while the planes streamed by.
    let thumbnails = summary.thumbnails();
    let name = std::path::Path::new(input)
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    std::fs::write(
        output,
        render_html(
            &report,
            &format!("synthetic stack from {name}"),
            &thumbnails,
        )?,
    )?;
    println!("{}", report.to_json()?);
    Ok(())
}

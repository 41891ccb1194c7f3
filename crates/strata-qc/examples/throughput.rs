//! Runs QC on one synthetic 4096 x 4096 plane `N` times (default 10) in bands of 512 rows and
//! prints the time per plane; a fixed amount of work, handy under `perf stat`.
//!
//! `cargo run --release -p strata-qc --example throughput -- [gray8|gray16|rgb8] [N]`

use std::time::Instant;

use strata_qc::{PixelFormat, PlaneAccumulator, PlaneGeometry, QcConfig, Samples};

const SIZE: usize = 4096;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let format = match args.get(1).map_or("gray8", String::as_str) {
        "gray8" => PixelFormat::Gray8,
        "gray16" => PixelFormat::Gray16,
        "rgb8" => PixelFormat::Rgb8,
        other => return Err(format!("unknown format {other}").into()),
    };
    let n: usize = args.get(2).map_or(Ok(10), |s| s.parse())?;
    let c = format.channels();
    let mut s = 0x1234_5678_u32;
    let data: Vec<u16> = (0..SIZE * SIZE * c)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let (x, y) = ((i / c) % SIZE, (i / c) / SIZE);
            let base = if (x / 700 + y / 500) % 2 == 0 {
                90
            } else {
                225
            };
            (base + (s % 24) as u16 - 12) * if format.bits() == 16 { 257 } else { 1 }
        })
        .collect();
    let bytes: Vec<u8> = data.iter().map(|&v| v as u8).collect();
    let g = PlaneGeometry::new(SIZE, SIZE, format);
    let config = QcConfig::default();
    let band = 512 * SIZE * c;
    let start = Instant::now();
    let mut check = 0.0;
    for _ in 0..n {
        let mut acc = PlaneAccumulator::new(g, &config)?;
        if format.bits() == 8 {
            for b in bytes.chunks(band) {
                acc.push_band(Samples::U8(b))?;
            }
        } else {
            for b in data.chunks(band) {
                acc.push_band(Samples::U16(b))?;
            }
        }
        check += acc.finish()?.metrics.focus.variance_of_laplacian;
    }
    let per = start.elapsed().as_secs_f64() / n as f64;
    let mib = (SIZE * SIZE * c * format.bits() as usize / 8) as f64 / (1 << 20) as f64;
    println!(
        "{format:?}: {:.1} ms per plane, {:.0} MiB/s (check {check:.3})",
        per * 1e3,
        mib / per
    );
    Ok(())
}

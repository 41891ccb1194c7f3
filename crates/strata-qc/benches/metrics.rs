//! Per-band metric throughput on a 4096 x 4096 plane (bands of 512 full-width rows).
//!
//! `cargo bench -p strata-qc --bench metrics`
#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata_qc::{PixelFormat, PlaneAccumulator, PlaneGeometry, QcConfig, Samples};

const SIZE: usize = 4096;
const BAND: usize = 512;

fn plane_u8(channels: usize) -> Vec<u8> {
    let mut s = 0x1234_5678_u32;
    (0..SIZE * SIZE * channels)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let (x, y) = ((i / channels) % SIZE, (i / channels) / SIZE);
            let base = if (x / 700 + y / 500) % 2 == 0 {
                90
            } else {
                225
            };
            (base + (s % 24) as i32 - 12) as u8
        })
        .collect()
}

fn run_u8(format: PixelFormat, data: &[u8], config: &QcConfig) -> f64 {
    let g = PlaneGeometry::new(SIZE, SIZE, format);
    let mut acc = PlaneAccumulator::new(g, config).expect("geometry");
    for band in data.chunks(BAND * SIZE * format.channels()) {
        acc.push_band(Samples::U8(band)).expect("band");
    }
    acc.finish()
        .expect("plane")
        .metrics
        .focus
        .variance_of_laplacian
}

fn bench(c: &mut Criterion) {
    let config = QcConfig::default();
    let mut group = c.benchmark_group("plane_4096");
    group.sample_size(10);

    let gray = plane_u8(1);
    group.throughput(Throughput::Bytes(gray.len() as u64));
    group.bench_function("gray8", |b| {
        b.iter(|| run_u8(PixelFormat::Gray8, &gray, &config));
    });

    let gray16: Vec<u16> = gray.iter().map(|&v| u16::from(v) * 257).collect();
    group.throughput(Throughput::Bytes(2 * gray16.len() as u64));
    group.bench_function("gray16", |b| {
        b.iter(|| {
            let g = PlaneGeometry::new(SIZE, SIZE, PixelFormat::Gray16);
            let mut acc = PlaneAccumulator::new(g, &config).expect("geometry");
            for band in gray16.chunks(BAND * SIZE) {
                acc.push_band(Samples::U16(band)).expect("band");
            }
            acc.finish()
                .expect("plane")
                .metrics
                .focus
                .variance_of_laplacian
        });
    });

    let rgb = plane_u8(3);
    group.throughput(Throughput::Bytes(rgb.len() as u64));
    group.bench_function("rgb8", |b| {
        b.iter(|| run_u8(PixelFormat::Rgb8, &rgb, &config));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

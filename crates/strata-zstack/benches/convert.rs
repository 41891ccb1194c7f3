//! The converter's hot parts, and the whole single-read writer against the compression-bound
//! limit (zstd of the same chunks, every pyramid level's, on all cores, nothing else).
//!
//! `cargo bench -p strata-zstack --bench convert`

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use std::hint::black_box;
use strata_zstack::band::{
    BandShape, MemoryLevel, chunk_bytes, chunk_grid, downsample_into, memory_pyramid,
};
use strata_zstack::shard::ChunkEncoder;
use strata_zstack::{
    Compression, ImageOptions, MemorySource, NoHook, SampleType, StackInfo, write_arrays,
};

const W: usize = 4096;
const CHUNK: usize = 512;

/// Tissue-like bytes: smooth structure plus noise, so zstd works as on real scans.
fn plane(seed: u32, w: usize, h: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let base = 170.0 + 50.0 * ((x * 0.01).sin() * (y * 0.013).cos());
            (base + (s % 24) as f32) as u8
        })
        .collect()
}

fn gray(width: usize) -> BandShape {
    BandShape {
        width,
        channels: 1,
        sample_type: SampleType::U8,
    }
}

fn band_parts(c: &mut Criterion) {
    let band = plane(1, W, CHUNK);
    let mut g = c.benchmark_group("band 4096 x 512 u8");
    g.throughput(Throughput::Bytes(band.len() as u64));
    g.bench_function("cut into chunks", |b| {
        b.iter(|| {
            for cx in 0..W / CHUNK {
                black_box(chunk_bytes(&band, CHUNK, gray(W), cx, CHUNK, CHUNK));
            }
        });
    });
    g.bench_function("2x2 mean", |b| {
        let mut out = Vec::with_capacity(band.len() / 4);
        b.iter(|| {
            out.clear();
            downsample_into(&band, CHUNK, gray(W), &mut out);
            black_box(&out);
        });
    });
    let enc = ChunkEncoder::new(Compression::Zstd(3));
    g.bench_function("zstd-3 encode, all cores", |b| {
        b.iter(|| {
            (0..W / CHUNK)
                .into_par_iter()
                .map(|cx| enc.encode(chunk_bytes(&band, CHUNK, gray(W), cx, CHUNK, CHUNK)))
                .collect::<Result<Vec<_>, _>>()
                .expect("encode")
        });
    });
    g.finish();
}

fn whole_writer(c: &mut Criterion) {
    let (planes, side) = (4u32, 4096usize);
    let info = StackInfo {
        width: side as u32,
        height: side as u32,
        planes,
        channels: 1,
        sample_type: SampleType::U8,
        pixel_size: None,
        plane_names: (0..planes).map(|z| z.to_string()).collect(),
    };
    let data: Vec<Vec<u8>> = (0..planes).map(|z| plane(z, side, side)).collect();
    let bytes = (planes as usize * side * side) as u64;
    let mut g = c.benchmark_group("4 x 4096 x 4096 u8");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    let enc = ChunkEncoder::new(Compression::Zstd(3));
    // The same bytes the writer compresses: every level's chunks (the pyramid adds a third).
    let levels = memory_pyramid(
        MemoryLevel {
            width: side,
            height: side,
            planes: data.clone(),
        },
        gray(side),
        CHUNK,
    );
    let chunks = chunk_grid(&levels, CHUNK);
    g.bench_function(
        BenchmarkId::new("compression bound", "zstd-3 of every level's chunks"),
        |b| {
            b.iter(|| {
                chunks
                    .par_iter()
                    .map(|&(l, p, cy, cx)| {
                        enc.encode(l.chunk_bytes(p, gray(l.width), CHUNK, cy, cx))
                            .map(|v| v.len())
                    })
                    .sum::<Result<usize, _>>()
                    .expect("encode")
            });
        },
    );
    g.bench_function(
        BenchmarkId::new("write_arrays", "all levels, to disk"),
        |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let source = MemorySource::new(info.clone(), data.clone()).expect("source");
                    (dir, source)
                },
                |(dir, mut source)| {
                    let summary = write_arrays(
                        &mut source,
                        dir.path(),
                        &ImageOptions::default(),
                        &mut NoHook,
                    )
                    .expect("write");
                    // Returned, so the folder is removed outside the timed part.
                    (dir, summary)
                },
                BatchSize::PerIteration,
            );
        },
    );
    g.finish();
}

criterion_group!(benches, band_parts, whole_writer);
criterion_main!(benches);

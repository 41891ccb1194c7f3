//! Patch read cost of the shard layouts: one 512 x 512 patch of one plane read from a freshly
//! opened level-0 array (so the shard index is fetched every time, as a new reader would),
//! with one shard per level (the default) and one shard per plane.
//!
//! `cargo bench -p strata-zstack --bench patch`

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::path::Path;
use std::sync::Arc;
use strata_zstack::{
    Compression, ImageOptions, MemorySource, NoHook, SampleType, StackInfo, write_arrays,
};
use zarrs::array::{Array, ArraySubset};
use zarrs::filesystem::FilesystemStore;

const SIDE: u32 = 4096;
const PLANES: u32 = 30;
const CHUNK: u64 = 512;

fn stack() -> (StackInfo, Vec<Vec<u8>>) {
    let info = StackInfo {
        width: SIDE,
        height: SIDE,
        planes: PLANES,
        channels: 1,
        sample_type: SampleType::U8,
        pixel_size: None,
        plane_names: (0..PLANES).map(|z| z.to_string()).collect(),
    };
    let planes = (0..PLANES)
        .map(|z| {
            let mut s = (z + 1).wrapping_mul(2_654_435_761) | 1;
            (0..SIDE as usize * SIDE as usize)
                .map(|i| {
                    s ^= s << 13;
                    s ^= s >> 17;
                    s ^= s << 5;
                    ((i % 4096) as u32 / 32 + s % 16) as u8
                })
                .collect()
        })
        .collect();
    (info, planes)
}

fn read_patch(image: &Path, z: u64, cy: u64, cx: u64) -> usize {
    let store = Arc::new(FilesystemStore::new(image).expect("store"));
    let array = Array::open(store, "/0").expect("open level 0");
    let subset = ArraySubset::new_with_ranges(&[
        0..1,
        z..z + 1,
        cy * CHUNK..(cy + 1) * CHUNK,
        cx * CHUNK..(cx + 1) * CHUNK,
    ]);
    array
        .retrieve_array_subset::<Vec<u8>>(&subset)
        .expect("read patch")
        .len()
}

fn patch(c: &mut Criterion) {
    let (info, planes) = stack();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("one 512 x 512 patch, 30 x 4096 x 4096 u8, cold index");
    for (name, pps) in [
        ("one shard per level", None),
        ("one shard per plane", Some(1)),
    ] {
        let image = dir.path().join(name.replace(' ', "-"));
        let mut source = MemorySource::new(info.clone(), planes.clone()).expect("source");
        let opts = ImageOptions {
            chunk: CHUNK as u32,
            compression: Compression::Zstd(3),
            planes_per_shard: pps,
            ..ImageOptions::default()
        };
        write_arrays(&mut source, &image, &opts, &mut NoHook).expect("write");
        // Zarr groups need a group zarr.json at the root for zarrs to open `/0`.
        std::fs::write(
            image.join("zarr.json"),
            r#"{"zarr_format":3,"node_type":"group","attributes":{}}"#,
        )
        .expect("group");
        let mut k = 0u64;
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                k = k.wrapping_add(7919);
                read_patch(&image, k % u64::from(PLANES), k / 3 % 8, k / 5 % 8)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, patch);
criterion_main!(benches);

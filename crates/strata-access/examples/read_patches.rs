//! Reads patches at given positions and prints patches per second as JSON; the reader of
//! `cargo xtask bench-read`.
//!
//! Usage: `read_patches IMAGE POSITIONS.json --size N [--threads T] [--cache-mib M] [--zarrs]`
//!
//! POSITIONS.json is a list of `[z, y, x]` (the patch's first pixel, level 0, channel 0).
//! `--threads` readers share one opened image, each taking every T-th position; `--zarrs`
//! reads with zarrs directly (a folder image, shard indexes cached by zarrs' sharded
//! extension) instead of strata-access.

use std::sync::Arc;
use std::time::Instant;

use strata_access::{Image, ImageOptions, Region};
use zarrs::array::{
    Array, ArrayBytes, ArrayShardedReadableExt, ArrayShardedReadableExtCache, ArraySubset,
    CodecOptions,
};
use zarrs::filesystem::FilesystemStore;

type Reader = Box<dyn Fn(u64, u64, u64, usize) -> usize + Send + Sync>;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(image), Some(positions)) = (args.get(1), args.get(2)) else {
        return Err("usage: read_patches IMAGE POSITIONS.json --size N [--threads T] [--cache-mib M] [--zarrs]".into());
    };
    let size: u64 = flag(&args, "--size")
        .unwrap_or_else(|| "512".into())
        .parse()?;
    let threads: usize = flag(&args, "--threads")
        .unwrap_or_else(|| "1".into())
        .parse()?;
    let cache_mib: usize = flag(&args, "--cache-mib")
        .unwrap_or_else(|| "0".into())
        .parse()?;
    let use_zarrs = args.iter().any(|a| a == "--zarrs");
    let positions: Vec<[u64; 3]> = serde_json::from_slice(&std::fs::read(positions)?)?;
    // Region reads decode their chunks on rayon's pool (one thread per core) whatever the
    // number of readers, as tensorstore decodes on its own pool.

    let reader: Reader = if use_zarrs {
        let store = Arc::new(FilesystemStore::new(image)?);
        let array = Arc::new(Array::open(store, "/0")?);
        let cache = Arc::new(ArrayShardedReadableExtCache::new(&array));
        let options = CodecOptions::default();
        Box::new(move |z, y, x, _| {
            let subset = ArraySubset::new_with_ranges(&[0..1, z..z + 1, y..y + size, x..x + size]);
            let bytes: ArrayBytes<'static> = array
                .retrieve_array_subset_sharded_opt(&cache, &subset, &options)
                .expect("zarrs read");
            bytes.into_fixed().map(|b| b.len()).unwrap_or(0)
        })
    } else {
        let img = Arc::new(Image::open_with(
            image,
            ImageOptions::default().cache_bytes(cache_mib << 20),
        )?);
        Box::new(move |z, y, x, _| {
            let r = Region::czyx(0..1, z..z + 1, y..y + size, x..x + size);
            img.read_region(0, &r).expect("read").len()
        })
    };
    let reader = Arc::new(reader);
    let start = Instant::now();
    let bytes: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let reader = Arc::clone(&reader);
                let positions = &positions;
                s.spawn(move || {
                    positions
                        .iter()
                        .skip(t)
                        .step_by(threads)
                        .map(|&[z, y, x]| reader(z, y, x, t))
                        .sum::<usize>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "reader": if use_zarrs { "zarrs" } else { "strata-access" },
            "patches": positions.len(),
            "seconds": secs,
            "patches_per_second": positions.len() as f64 / secs,
            "bytes": bytes,
        })
    );
    Ok(())
}

//! POSIX store throughput: writes then reads `TOTAL` MiB in objects of `OBJECT` MiB with
//! `JOBS` objects in flight, and prints MB/s per phase.
//!
//! ```text
//! cargo run --release -p strata-store --example posix_throughput -- DIR [TOTAL_MIB] [OBJECT_MIB] [JOBS] [FSYNC]
//! ```
//! FSYNC is `none`, `file` (default) or `dir`. The read phase is compared in the same run with
//! what `dd bs=OBJECT` does: plain `read(2)` calls of the same files into one buffer reused
//! for every object (the store hands each object out as its own `Bytes`). Compare writes
//! with `dd if=/dev/zero of=DIR/f bs=64M count=1 conv=fsync`, per object.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use strata_store::{
    Bytes, FsyncPolicy, PosixOptions, PosixStore, ReadableStore, StoreKey, WritableStore,
};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: posix_throughput DIR [TOTAL_MIB] [OBJECT_MIB] [JOBS] [FSYNC]")?;
    let (total, object, jobs) = (arg(2, 1024), arg(3, 64), arg(4, 1).max(1));
    let fsync = match std::env::args().nth(5).as_deref() {
        Some("none") => FsyncPolicy::None,
        Some("dir") => FsyncPolicy::FileAndDir,
        _ => FsyncPolicy::File,
    };
    let store = Arc::new(PosixStore::create(
        &dir,
        PosixOptions::default().fsync(fsync),
    )?);
    let n = total / object;
    let payload = Bytes::from(vec![0x5Au8; usize::try_from(object << 20)?]);
    let keys: Vec<StoreKey> = (0..n)
        .map(|i| StoreKey::new(format!("bench/obj-{i}")))
        .collect::<Result<_, _>>()?;

    let t = Instant::now();
    let results: Vec<_> = futures::stream::iter(keys.iter().cloned())
        .map(|k| {
            let (store, payload) = (Arc::clone(&store), payload.clone());
            async move { store.put(&k, payload).await }
        })
        .buffer_unordered(usize::try_from(jobs)?)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let w = t.elapsed().as_secs_f64();

    // The read phase five times, each followed by the peer: one buffer, allocated and
    // touched once, filled by read(2) per object.
    let mut buf = vec![1u8; usize::try_from(object << 20)?];
    let (mut store_s, mut peer_s) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        let results: Vec<_> = futures::stream::iter(keys.iter().cloned())
            .map(|k| {
                let store = Arc::clone(&store);
                async move { store.get(&k).await.map(|b| b.len()) }
            })
            .buffer_unordered(usize::try_from(jobs)?)
            .collect()
            .await;
        let read: usize = results
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .sum();
        store_s.push(t.elapsed().as_secs_f64());
        assert_eq!(read as u64, n * (object << 20));
        let t = Instant::now();
        for k in &keys {
            let mut f = std::fs::File::open(std::path::Path::new(&dir).join(k.as_str()))?;
            std::io::Read::read_exact(&mut f, &mut buf)?;
        }
        peer_s.push(t.elapsed().as_secs_f64());
    }
    store_s.sort_by(f64::total_cmp);
    peer_s.sort_by(f64::total_cmp);
    let (r, d) = (store_s[2], peer_s[2]);
    let mb = (total << 20) as f64 / 1e6;
    println!(
        "posix store: {n} x {object} MiB, {jobs} in flight, fsync {fsync:?}: write {:.0} MB/s ({w:.2} s), read {:.0} MB/s ({r:.3} s, median of 5); read(2) into one reused buffer {:.0} MB/s ({d:.3} s): store/read(2) {:.2}",
        mb / w,
        mb / r,
        mb / d,
        d / r
    );
    for k in &keys {
        store.delete(k).await?;
    }
    Ok(())
}

//! Staging throughput POSIX -> S3 -> POSIX: writes `TOTAL` MiB in objects of `OBJECT` MiB to a
//! directory, stages it to an S3 bucket and back (verified by SHA-256), prints MB/s per leg.
//!
//! ```text
//! STRATA_S3_ENDPOINT=http://127.0.0.1:5055 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//!   cargo run --release -p strata-store --example stage_throughput -- DIR BUCKET [TOTAL_MIB] [OBJECT_MIB] [JOBS]
//! ```
//! The bucket must exist.

use strata_store::conformance::pattern;
use strata_store::{
    ObjectStoreBackend, PosixOptions, PosixStore, S3Options, StageOptions, StoreKey, WritableStore,
    stage,
};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: stage_throughput DIR BUCKET [TOTAL_MIB] [OBJECT_MIB] [JOBS]";
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or(usage)?);
    let bucket = std::env::args().nth(2).ok_or(usage)?;
    let (total, object, jobs) = (arg(3, 1024), arg(4, 64), arg(5, 4));
    let src = PosixStore::create(dir.join("src"), PosixOptions::default())?;
    for i in 0..total / object {
        src.put(
            &StoreKey::new(format!("sec/c/{i}"))?,
            pattern(i, usize::try_from(object << 20)?),
        )
        .await?;
    }
    let s3 = ObjectStoreBackend::s3(&S3Options::from_env(bucket))?;
    let back = PosixStore::create(dir.join("back"), PosixOptions::default())?;
    let opts = StageOptions::default().concurrency(usize::try_from(jobs)?);
    let up = stage(&src, None, &s3, Some(&StoreKey::new("bench")?), &opts).await?;
    let down = stage(&s3, Some(&StoreKey::new("bench")?), &back, None, &opts).await?;
    for (leg, s) in [("posix -> s3", &up), ("s3 -> posix", &down)] {
        println!(
            "{leg}: {} objects, {:.0} MB in {:.2} s = {:.0} MB/s (copy + SHA-256 + read-back verify)",
            s.copied,
            s.copied_bytes as f64 / 1e6,
            s.seconds,
            s.copied_bytes as f64 / 1e6 / s.seconds
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

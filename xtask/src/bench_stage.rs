//! `cargo xtask bench-stage [--sections N] [--runs N]`: copies a dataset of N converted
//! sections (30 x 4096 x 4096, folder layout) from one POSIX folder to another with
//! `strata stage` (every object hashed on the way and read back to verify), and in the same
//! run with the peers on the same tree: `cp -r` (no verification), `cp -r` followed by
//! `sha256sum` of both trees (the same work as a verified stage, by hand) and
//! `rclone copy --checksum` (Debian's rclone, which also checks each copy's hash). Every
//! command is timed up to a `sync`, so each has put its bytes on disk; the source stays in
//! the page cache. Prints GB/s per tool, medians of the runs, alternated.

use crate::bench_convert::{convert_once, median, sample};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Runs `script` with `sh -c` (`$SRC`, `$DST`, `$WORK` set) and returns its seconds.
fn timed(script: &str, src: &Path, dst: &Path, work: &Path) -> Result<f64, String> {
    let _ = std::fs::remove_dir_all(dst);
    let _ = Command::new("sync").status();
    let start = Instant::now();
    let status = Command::new("sh")
        .args(["-c", &format!("set -e; {script}; sync")])
        .env("SRC", src)
        .env("DST", dst)
        .env("WORK", work)
        .env("RCLONE_CONFIG", work.join("rclone.conf"))
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    let took = start.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("`{script}` failed with {status}"));
    }
    Ok(took)
}

pub(crate) fn run(root: &Path, sections: usize, runs: usize) -> Result<(), String> {
    crate::setup::apt(&["rclone"])?;
    let strata = crate::build_strata(root)?;
    let work = root.join("target/bench-stage");
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    std::fs::write(work.join("rclone.conf"), b"").map_err(|e| e.to_string())?;
    let zstack = root.join("target/bench-convert/zstack-4096x4096x30");
    sample(&strata, &zstack, "4096x4096", 30)?;
    let labels: Vec<String> = (1..=sections).map(|i| format!("{i:04}")).collect();
    let samples: Vec<(&str, &str)> = labels.iter().map(|s| (s.as_str(), "zarr")).collect();
    let src = work.join(format!("src-{sections}"));
    convert_once(&strata, &zstack, &src, &samples, &[])?;
    let dst = work.join("dst");
    let bytes = tree_bytes(&src);
    let strata_cmd = format!(
        "rm -f \"$WORK/journal\"; '{}' stage \"file://$SRC\" \"file://$DST\" --json --journal \"$WORK/journal\"",
        strata.display()
    );
    let hashes = "(cd \"$SRC\" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > \"$WORK/a\"; \
                  (cd \"$DST\" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > \"$WORK/b\"; \
                  cmp \"$WORK/a\" \"$WORK/b\"";
    let tools: Vec<(&str, String)> = vec![
        ("strata stage (verified)", strata_cmd),
        ("cp -r", "cp -r \"$SRC\" \"$DST\"".into()),
        (
            "cp -r + sha256sum of both",
            format!("cp -r \"$SRC\" \"$DST\"; sync; {hashes}"),
        ),
        (
            "rclone copy --checksum",
            "rclone copy --checksum --transfers 8 \"$SRC\" \"$DST\"".into(),
        ),
    ];
    // Warm the page cache with the source.
    timed(&tools[1].1, &src, &dst, &work)?;
    let mut times = vec![Vec::new(); tools.len()];
    for _ in 0..runs {
        for (i, (_, script)) in tools.iter().enumerate() {
            times[i].push(timed(script, &src, &dst, &work)?);
        }
    }
    let _ = std::fs::remove_dir_all(&dst);
    println!(
        "bench-stage: {sections} sections, {:.2} GB ({}), POSIX to POSIX, median of {runs}",
        bytes as f64 / 1e9,
        src.display()
    );
    let ours = median(times[0].clone());
    for ((tool, _), t) in tools.iter().zip(times) {
        let t = median(t);
        println!(
            "  {tool:<28} {t:7.2} s {:6.2} GB/s  time / strata {:.2}",
            bytes as f64 / 1e9 / t,
            t / ours
        );
    }
    Ok(())
}

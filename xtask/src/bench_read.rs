//! `cargo xtask bench-read [--patches N]`: random unaligned 512 x 512 patches of one plane at
//! level 0 of a converted 30 x 4096 x 4096 section, read by strata-access (folder and `.ozx`,
//! without and with a 256 MiB chunk cache, one and two reader threads), by zarrs directly,
//! and by tensorstore (same cache budget) and zarr-python 3, on the same files and the same
//! positions in the same run; prints patches/s and the ratio to tensorstore.

use crate::bench_convert::{median, run_json, sample};
use crate::{cargo, run_cmd};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const SIZE: u64 = 512;
const CACHE_MIB: &str = "256";

/// Converts the stack into `bids` in `layout` once.
fn convert_once(strata: &Path, zstack: &Path, bids: &Path, layout: &str) -> Result<String, String> {
    let mut outputs =
        crate::bench_convert::convert_once(strata, zstack, bids, &[("0001", layout)], &[])?;
    outputs
        .pop()
        .ok_or_else(|| "the conversion printed no output".into())
}

/// `n` patch positions `[z, y, x]` from a fixed seed (the same for every reader).
fn positions(n: usize, planes: u64, side: u64) -> Vec<[u64; 3]> {
    let mut state: u64 = 0x5eed_cafe;
    let mut next = move |m: u64| {
        // SplitMix64: small, fixed, and the same on every machine.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % m
    };
    (0..n)
        .map(|_| [next(planes), next(side - SIZE), next(side - SIZE)])
        .collect()
}

fn rate(v: &Value) -> f64 {
    v["patches_per_second"].as_f64().unwrap_or_default()
}

pub(crate) fn run(root: &Path, patches: usize) -> Result<(), String> {
    crate::setup::run(root)?;
    run_cmd(cargo().current_dir(root).args([
        "build",
        "--release",
        "--package",
        "strata-cli",
        "--package",
        "strata-access",
        "--example",
        "read_patches",
    ]))?;
    // `--example` with two packages builds the example of the one that has it, and the
    // binaries of both.
    // The Python package, built in release mode as a user's `pip install ./python` builds it.
    crate::install_python_package(root, &root.join(".venv/bin"), None)?;
    let strata = root.join("target/release/strata");
    let reader = root.join("target/release/examples/read_patches");
    let python = root.join(".venv/bin/python");
    let peer = root.join("benches/peers/read_peer.py");
    let work = root.join("target/bench-read");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let zstack = root.join("target/bench-convert/zstack-4096x4096x30");
    sample(&strata, &zstack, "4096x4096", 30)?;
    let folder = convert_once(&strata, &zstack, &work.join("bids-zarr"), "zarr")?;
    let archive = convert_once(&strata, &zstack, &work.join("bids-ozx"), "ozx")?;
    let pos = work.join("positions.json");
    let list = positions(patches, 30, 4096);
    std::fs::write(&pos, serde_json::to_vec(&list).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;

    let size = SIZE.to_string();
    let ours = |image: &str, extra: &[&str]| {
        let mut c = Command::new(&reader);
        c.arg(image).arg(&pos).args(["--size", &size]).args(extra);
        c
    };
    let theirs = |tool: &str, extra: &[&str]| {
        let mut c = Command::new(&python);
        c.arg(&peer)
            .arg(tool)
            .arg(&folder)
            .arg(&pos)
            .args(["--size", &size])
            .args(extra);
        c
    };
    let cache = ["--cache-mib", CACHE_MIB];
    let mut rows: Vec<(&str, Command)> = vec![
        ("tensorstore, no cache", theirs("tensorstore", &[])),
        ("tensorstore, 256 MiB cache", theirs("tensorstore", &cache)),
        ("zarr-python 3", theirs("zarr", &[])),
        ("zarrs (Rust), folder", ours(&folder, &["--zarrs"])),
        ("strata (Python), folder", theirs("strata", &[])),
        ("strata (Python), folder, cache", theirs("strata", &cache)),
        ("strata-access, folder", ours(&folder, &[])),
        ("strata-access, folder, cache", ours(&folder, &cache)),
        ("strata-access, .ozx", ours(&archive, &[])),
        ("strata-access, .ozx, cache", ours(&archive, &cache)),
        (
            "strata-access, folder, 2 readers",
            ours(&folder, &["--threads", "2"]),
        ),
        (
            "strata-access, folder, cache, 2 readers",
            ours(&folder, &["--cache-mib", CACHE_MIB, "--threads", "2"]),
        ),
    ];
    // Rounds over every reader, so that a slower spell of the machine falls on all of them.
    let runs = 5;
    let mut rates = vec![Vec::new(); rows.len()];
    for _ in 0..runs {
        for (i, (_, cmd)) in rows.iter_mut().enumerate() {
            let (_, v) = run_json(cmd)?;
            rates[i].push(rate(&v));
        }
    }
    let results: Vec<(&str, f64)> = rows
        .iter()
        .zip(rates)
        .map(|((name, _), r)| (*name, median(r)))
        .collect();
    let base = results[0].1.max(f64::MIN_POSITIVE);
    let cached_base = results[1].1.max(f64::MIN_POSITIVE);
    println!(
        "bench-read: {patches} random {SIZE} x {SIZE} patches of one plane, level 0 of 30 x 4096 x 4096 uint8 ({folder}), median of {runs} rounds"
    );
    println!(
        "  {:<42} {:>10} {:>16} {:>16}",
        "reader", "patches/s", "vs tensorstore", "vs ts + cache"
    );
    for (name, r) in &results {
        println!(
            "  {name:<42} {r:>10.0} {:>15.2}x {:>15.2}x",
            r / base,
            r / cached_base
        );
    }
    loader(root, &strata, &work, &python)
}

/// The DataLoader-style run: 256 x 256 patches through torch's DataLoader with 2 workers over
/// 8 sections, `strata.PatchDataset` (on tissue) against a naive tensorstore loop.
fn loader(root: &Path, strata: &Path, work: &Path, python: &Path) -> Result<(), String> {
    let bids = work.join("loader-bids");
    let marker = bids.join(".complete");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&bids);
        run_json(
            Command::new(strata)
                .args(["demo", "--out"])
                .arg(&bids)
                .args([
                    "--sections",
                    "8",
                    "--size",
                    "4096x4096",
                    "--planes",
                    "4",
                    "--json",
                ]),
        )?;
        std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
    }
    let peer = root.join("benches/peers/loader_peer.py");
    let patches = "4000";
    let mut results: Vec<(&str, Vec<Value>)> = vec![
        ("strata.PatchDataset", Vec::new()),
        ("naive tensorstore loop", Vec::new()),
    ];
    for _ in 0..3 {
        for (i, tool) in ["strata", "tensorstore"].iter().enumerate() {
            let (_, v) = run_json(Command::new(python).arg(&peer).arg(tool).arg(&bids).args([
                "--patches",
                patches,
                "--workers",
                "2",
            ]))?;
            results[i].1.push(v);
        }
    }
    println!(
        "bench-read, DataLoader: {patches} random 256 x 256 patches, batches of 32, 2 workers, 8 sections of 4 x 4096 x 4096 ({}), median of 3 rounds",
        bids.display()
    );
    println!(
        "  {:<26} {:>10} {:>16} {:>10} {:>14} {:>16}",
        "loader", "patches/s", "vs tensorstore", "tissue", "main RSS MiB", "worker RSS MiB"
    );
    let summary: Vec<(f64, f64, f64, f64)> = results
        .iter()
        .map(|(_, runs)| {
            let pick = |k: &str| {
                median(
                    runs.iter()
                        .map(|v| v[k].as_f64().unwrap_or_default())
                        .collect(),
                )
            };
            (
                pick("patches_per_second"),
                pick("tissue_fraction"),
                pick("peak_rss_mib"),
                pick("worker_peak_rss_mib"),
            )
        })
        .collect();
    let base = summary[1].0.max(f64::MIN_POSITIVE);
    for ((name, _), (rate, tissue, rss, worker_rss)) in results.iter().zip(&summary) {
        println!(
            "  {name:<26} {rate:>10.0} {:>15.2}x {:>9.1}% {rss:>14.0} {worker_rss:>16.0}",
            rate / base,
            tissue * 100.0
        );
    }
    Ok(())
}

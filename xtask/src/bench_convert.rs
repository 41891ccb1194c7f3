//! `cargo xtask bench-convert [--size WxH] [--planes N]`: converts the same synthetic z-stack
//! with `strata convert` and with the Python peers (tifffile + tensorstore, tifffile +
//! zarr-python 3, `benches/peers/convert_peer.py`) into the same layout, in the same run, and
//! reports wall time, peak memory, and inodes per section; then checks that peak memory stays
//! flat when the plane grows from 4k x 4k to 16k x 16k. With `--baseline BIN` another build of
//! `strata` (e.g. the previous release) converts the same stack in the same run, its runs
//! interleaved with this build's, and the time and memory ratios are reported.

use crate::{cargo, run_cmd};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Converts `zstack` into the BIDS root `bids` once per benchmark tree: one conversion of
/// subject BB01 per `(sample, layout)` with `extra` flags, and a marker recording the outputs
/// of a finished set (a rerun reuses them; an unfinished set is started again). Returns the
/// outputs in order.
pub(crate) fn convert_once(
    strata: &Path,
    zstack: &Path,
    bids: &Path,
    samples: &[(&str, &str)],
    extra: &[&str],
) -> Result<Vec<String>, String> {
    let marker = bids.join(".complete");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        let outputs: Vec<String> = text.lines().map(str::to_owned).collect();
        if outputs.len() == samples.len() {
            return Ok(outputs);
        }
    }
    let _ = std::fs::remove_dir_all(bids);
    let mut outputs = Vec::new();
    for (sample, layout) in samples {
        let (_, v) = run_json(
            Command::new(strata)
                .arg("convert")
                .arg(zstack)
                .arg("--bids-root")
                .arg(bids)
                .args(["--subject", "BB01", "--sample", sample, "--layout", layout])
                .args(["--pixel-size", "0.25,0.25,2", "--json"])
                .args(extra),
        )?;
        outputs.push(v["output"].as_str().unwrap_or_default().to_owned());
    }
    std::fs::write(&marker, outputs.join("\n")).map_err(|e| e.to_string())?;
    Ok(outputs)
}

pub(crate) fn run_json(cmd: &mut Command) -> Result<(f64, Value), String> {
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("{shown} failed with {}", out.status));
    }
    let v = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{shown}: output is not JSON: {e}"))?;
    Ok((secs, v))
}

fn count_inodes(path: &Path) -> u64 {
    let mut n = 1;
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            n += if e.file_type().is_ok_and(|t| t.is_dir()) {
                count_inodes(&e.path())
            } else {
                1
            };
        }
    }
    n
}

pub(crate) fn sample(strata: &Path, dir: &Path, size: &str, planes: u32) -> Result<(), String> {
    let marker = dir.join(".complete");
    if marker.exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    run_cmd(
        Command::new(strata)
            .arg("sample")
            .arg(dir)
            .args(["--size", size, "--planes", &planes.to_string(), "--json"])
            .stdout(Stdio::null()),
    )?;
    std::fs::write(&marker, b"").map_err(|e| e.to_string())
}

fn convert(strata: &Path, zstack: &Path, bids: &Path) -> Result<(f64, Value), String> {
    convert_with(strata, zstack, bids, &[])
}

fn convert_with(
    strata: &Path,
    zstack: &Path,
    bids: &Path,
    extra: &[&str],
) -> Result<(f64, Value), String> {
    let _ = std::fs::remove_dir_all(bids);
    run_json(
        Command::new(strata)
            .arg("convert")
            .arg(zstack)
            .arg("--bids-root")
            .arg(bids)
            .args([
                "--subject",
                "BB01",
                "--sample",
                "0001",
                "--pixel-size",
                "0.25,0.25,2",
                "--json",
            ])
            .args(extra),
    )
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(crate) fn run(
    root: &Path,
    size: &str,
    planes: u32,
    baseline: Option<&Path>,
    runs: usize,
) -> Result<(), String> {
    crate::setup::run(root)?;
    let strata = crate::build_strata(root)?;
    run_cmd(cargo().current_dir(root).args([
        "build",
        "--release",
        "--package",
        "strata-zstack",
        "--example",
        "convert_bound",
    ]))?;
    let bound_bin = root.join("target/release/examples/convert_bound");
    let python = root.join(".venv/bin/python");
    let peer = root.join("benches/peers/convert_peer.py");
    let work = root.join("target/bench-convert");
    let zstack = work.join(format!("zstack-{size}x{planes}"));
    sample(&strata, &zstack, size, planes)?;
    // The peers take seconds each and vary little: three runs of each.
    let peer_runs = 3;

    let mut ours = Vec::new();
    let mut last = Value::Null;
    let mut base = Vec::new();
    let mut base_peak = Vec::new();
    let mut our_peak = Vec::new();
    let mut bound = Vec::new();
    for _ in 0..runs {
        let (secs, v) = convert(&strata, &zstack, &work.join("bids"))?;
        ours.push(secs);
        // The bound, interleaved: decode every tile + zstd of every chunk, nothing else.
        let (_, b) = run_json(Command::new(&bound_bin).arg(&zstack).arg("1"))?;
        bound.push(b["bound_seconds"].as_f64().unwrap_or(f64::NAN));
        our_peak.push(v["peak_memory_bytes"].as_f64().unwrap_or_default());
        last = v;
        if let Some(b) = baseline {
            let (secs, v) = convert(b, &zstack, &work.join("bids-baseline"))?;
            base.push(secs);
            base_peak.push(v["peak_memory_bytes"].as_f64().unwrap_or_default());
        }
    }
    let image = PathBuf::from(last["output"].as_str().unwrap_or_default());
    let inodes = count_inodes(&image) + 1; // + the sidecar
    let mut peers = Vec::new();
    for tool in ["tensorstore", "zarr"] {
        let mut times = Vec::new();
        let mut peak = 0;
        let mut peer_inodes = 0;
        for _ in 0..peer_runs {
            let out = work.join(format!("peer-{tool}.ome.zarr"));
            let _ = std::fs::remove_dir_all(&out);
            let (secs, v) = run_json(
                Command::new(&python)
                    .arg(&peer)
                    .arg(tool)
                    .arg(&zstack)
                    .arg(&out),
            )?;
            times.push(secs);
            peak = v["peak_memory_bytes"].as_u64().unwrap_or_default();
            peer_inodes = count_inodes(&out) + 1;
        }
        peers.push((tool, median(times), peak, peer_inodes));
    }
    let o = median(ours);
    let peak = median(our_peak.clone()) as u64;
    println!(
        "bench-convert: {planes} x {size} uint8 z-stack ({}), median of {runs} (peers: {peer_runs})",
        zstack.display()
    );
    println!(
        "  {:<34} {:>8} {:>10} {:>8} {:>8}",
        "tool", "seconds", "peak MiB", "inodes", "ratio"
    );
    println!(
        "  {:<34} {o:>8.2} {:>10} {inodes:>8} {:>8}",
        "strata convert",
        peak >> 20,
        "1.00"
    );
    let bound = median(bound);
    println!(
        "  {:<34} {bound:>8.2} {:>10} {:>8} {:>7.2}x   (strata convert at {:.0}% of its bound)",
        "bound: decode + zstd only",
        "",
        "",
        bound / o,
        100.0 * bound / o
    );
    if let Some(b) = baseline {
        let (bt, bp, op) = (median(base), median(base_peak), median(our_peak));
        println!(
            "  {:<34} {bt:>8.2} {:>10} {:>8} {:>7.3}x   (this build / baseline: time {:.3}, memory {:.3})",
            format!("baseline {}", b.display()),
            (bp as u64) >> 20,
            "",
            bt / o,
            o / bt,
            op / bp.max(1.0)
        );
    }
    for (tool, secs, peak, n) in &peers {
        println!(
            "  {:<34} {secs:>8.2} {:>10} {n:>8} {:>7.2}x",
            format!("tifffile + {tool}"),
            peak >> 20,
            secs / o
        );
    }
    println!(
        "  bytes in {} -> out {}",
        last["arrays"]["bytes_in"], last["arrays"]["bytes_out"]
    );

    // Memory is bounded by bands: a 16k x 16k plane needs about what a 4k x 4k one needs.
    let mut rss = Vec::new();
    let mut rss_qc = Vec::new();
    for side in ["4096x4096", "16384x16384"] {
        let z = work.join(format!("zstack-{side}x2"));
        sample(&strata, &z, side, 2)?;
        let (_, v) = convert(&strata, &z, &work.join("bids-rss"))?;
        rss.push((side, v["peak_memory_bytes"].as_u64().unwrap_or_default()));
        let (_, v) = convert_with(&strata, &z, &work.join("bids-rss"), &["--qc-gate"])?;
        rss_qc.push(v["peak_memory_bytes"].as_u64().unwrap_or_default());
        if let Some(b) = baseline {
            let (_, v) = convert(b, &z, &work.join("bids-rss-baseline"))?;
            let peak = v["peak_memory_bytes"].as_u64().unwrap_or_default();
            println!(
                "  baseline peak memory, 2 planes of {side}: {} MiB",
                peak >> 20
            );
        }
    }
    for (side, b) in &rss {
        println!("  peak memory, 2 planes of {side}: {} MiB", b >> 20);
    }
    println!(
        "  ratio 16k/4k: {:.2} (target: at most 2)",
        rss[1].1 as f64 / rss[0].1.max(1) as f64
    );
    println!(
        "  with --qc-gate: {} and {} MiB, ratio 16k/4k {:.2} (target: at most 1.5)",
        rss_qc[0] >> 20,
        rss_qc[1] >> 20,
        rss_qc[1] as f64 / rss_qc[0].max(1) as f64
    );
    Ok(())
}

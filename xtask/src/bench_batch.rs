//! `cargo xtask bench-batch [--sections N] [--size WxH] [--runs N]`: N small sections (30
//! planes each) converted by a serial loop of `strata convert` and, in the same run, by
//! `strata batch submit` as one array job on the one-node Slurm cluster (the same cluster
//! the tests use), timed from submission until every section is published. Prints both
//! wall times and the scheduling overhead per section (medians of the runs, alternated).
//! Then the DataLad step on two copies of the converted sections: `strata batch save` (one
//! recursive `datalad save` for all) against `strata batch save --per-section` (one per
//! section, as `strata convert --datalad` does), DataLad from the test venv. Last, `status`
//! at whole-brain scale: 7,000 published sections (the metadata of one converted section
//! copied under 7,000 names, with the batch's fingerprint) read from the dataset, and from
//! the cache.

use crate::bench_convert::{median, sample};
use crate::run_cmd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `strata batch plan SCAN --map MAP --bids-root BIDS --manifest MANIFEST`, quietly.
fn plan(
    strata: &Path,
    scan: &Path,
    map: &Path,
    bids: &Path,
    manifest: &Path,
) -> Result<(), String> {
    quiet(
        Command::new(strata)
            .args(["batch", "plan"])
            .arg(scan)
            .arg("--map")
            .arg(map)
            .arg("--bids-root")
            .arg(bids)
            .arg("--manifest")
            .arg(manifest),
    )
    .map(|_| ())
}

/// Runs `cmd` quietly; fails with its stderr.
fn quiet(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn run(
    root: &Path,
    sections: usize,
    size: &str,
    runs: usize,
    status_only: bool,
) -> Result<(), String> {
    crate::setup::run(root)?;
    let strata = crate::build_strata(root)?;
    let slurm = crate::services::start_slurm(root)?;
    let work = root.join("target/bench-batch");
    let planes = 30;
    let one = root.join(format!("target/bench-convert/zstack-{size}x{planes}"));
    sample(&strata, &one, size, planes)?;
    let scan = work.join(format!("scan-{size}-{sections}"));
    let mut map = String::from("folder\tsubject\tsample\n");
    for i in 0..sections {
        let dir = scan.join(format!("slide{i:04}"));
        if !dir.exists() {
            std::fs::create_dir_all(&scan).map_err(|e| e.to_string())?;
            run_cmd(Command::new("cp").arg("-r").arg(&one).arg(&dir))?;
        }
        map.push_str(&format!("slide{i:04}\tbench\t{i:04}\n"));
    }
    let map_path = work.join("map.tsv");
    std::fs::write(&map_path, map).map_err(|e| e.to_string())?;
    if status_only {
        drop(slurm);
        let (full, cached) = status_at_scale(&strata, &work, &scan, &map_path, 7000)?;
        println!(
            "bench-batch: status of 7,000 published sections: {full:.2} s from the dataset, {cached:.2} s from the cache"
        );
        return Ok(());
    }
    let (mut serial, mut batch, mut empty) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..runs {
        // Slurm alone: an array of as many empty tasks with the same requests.
        empty.push(empty_array(&work, sections, &slurm.conf)?);
        // The serial loop.
        let bids = work.join("serial");
        let _ = std::fs::remove_dir_all(&bids);
        let start = Instant::now();
        for i in 0..sections {
            quiet(
                Command::new(&strata)
                    .arg("convert")
                    .arg(scan.join(format!("slide{i:04}")))
                    .arg("--bids-root")
                    .arg(&bids)
                    .args(["--subject", "bench", "--sample", &format!("{i:04}")]),
            )?;
        }
        serial.push(start.elapsed().as_secs_f64());
        // The array job: plan, submit, wait.
        let bids = work.join("batch");
        let manifest = work.join("bench.json");
        let _ = std::fs::remove_dir_all(&bids);
        let _ = std::fs::remove_dir_all(work.join("bench.logs"));
        let _ = std::fs::remove_file(work.join("bench.db"));
        let start = Instant::now();
        plan(&strata, &scan, &map_path, &bids, &manifest)?;
        quiet(
            Command::new(&strata)
                .args([
                    "batch",
                    "submit",
                    "--mem",
                    "2048",
                    "--time",
                    "30",
                    "--manifest",
                ])
                .arg(&manifest)
                .env("SLURM_CONF", &slurm.conf),
        )?;
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            let s: serde_json::Value = serde_json::from_str(&quiet(
                Command::new(&strata)
                    .args(["batch", "status", "--json", "--manifest"])
                    .arg(&manifest)
                    .env("SLURM_CONF", &slurm.conf),
            )?)
            .map_err(|e| e.to_string())?;
            let published = s["counts"]["published"].as_u64().unwrap_or(0);
            if published == sections as u64 {
                break;
            }
            let busy = ["queued", "converting", "pending"]
                .iter()
                .any(|k| s["counts"].get(*k).is_some());
            if !busy {
                return Err(format!("the batch stopped short: {}", s["counts"]));
            }
            if Instant::now() > deadline {
                return Err("the batch did not finish in 30 minutes".into());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        batch.push(start.elapsed().as_secs_f64());
        eprintln!(
            "run {}: serial {:.2} s, batch {:.2} s, empty array {:.2} s",
            r + 1,
            serial[r],
            batch[r],
            empty[r]
        );
    }
    drop(slurm);
    let (one_save, per_section) = datalad_saves(root, &strata, &work, &scan, &map_path, sections)?;
    let (full, cached) = status_at_scale(&strata, &work, &scan, &map_path, 7000)?;
    let (s, b, e) = (median(serial), median(batch), median(empty));
    println!("bench-batch: {sections} sections of {size} x {planes}, medians of {runs} runs");
    println!(
        "  serial strata convert loop  {s:7.2} s  {:6.2} s/section",
        s / sections as f64
    );
    println!(
        "  strata batch (Slurm array)  {b:7.2} s  {:6.2} s/section",
        b / sections as f64
    );
    println!(
        "  scheduling overhead         {:7.2} s/section ({:.2}x the serial loop)",
        (b - s) / sections as f64,
        b / s
    );
    println!(
        "  Slurm alone (empty tasks)   {e:7.2} s  {:6.2} s/task: the cluster's own floor",
        e / sections as f64
    );
    println!(
        "  DataLad: one batch save {one_save:6.2} s, a save per section {per_section:6.2} s ({:.1}x)",
        per_section / one_save
    );
    println!(
        "  status of 7,000 published sections: {full:.2} s from the dataset, {cached:.2} s from the cache"
    );
    Ok(())
}

/// Times `strata batch status --no-queue` over `n` published sections (the group metadata
/// and sidecar of one converted section copied `n` times under new names, the manifest
/// edited to match), then `status --cached`;
/// returns both in seconds (medians of 3).
fn status_at_scale(
    strata: &Path,
    work: &Path,
    scan: &Path,
    map: &Path,
    n: usize,
) -> Result<(f64, f64), String> {
    let bids = work.join(format!("status-{n}"));
    let manifest = work.join(format!("status-{n}.json"));
    let _ = std::fs::remove_dir_all(&bids);
    let _ = std::fs::remove_dir_all(work.join(format!("status-{n}.logs")));
    let _ = std::fs::remove_file(work.join(format!("status-{n}.db")));
    plan(strata, scan, map, &bids, &manifest)?;
    quiet(
        Command::new(strata)
            .args(["batch", "run", "--index", "0", "--manifest"])
            .arg(&manifest),
    )?;
    let text = std::fs::read_to_string(&manifest).map_err(|e| e.to_string())?;
    let mut m: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let first = m["sections"][0].clone();
    let micr = bids.join("sub-bench/micr");
    let image = micr.join("sub-bench_sample-0000_BF.ome.zarr");
    let sidecar = micr.join("sub-bench_sample-0000_BF.json");
    let mut sections = Vec::with_capacity(n);
    for i in 0..n {
        let label = format!("s{i:05}");
        if i > 0 {
            // What status reads of a published section: its group metadata and sidecar (the
            // arrays are not read, so not copied: 7,000 real images would not fit here).
            let dir = micr.join(format!("sub-bench_sample-{label}_BF.ome.zarr"));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::copy(image.join("zarr.json"), dir.join("zarr.json"))
                .map_err(|e| e.to_string())?;
        }
        let mut e = first.clone();
        e["sample"] = serde_json::Value::String(if i == 0 { "0000".into() } else { label.clone() });
        e["folder"] = serde_json::Value::String(format!("slide{i:05}"));
        if i > 0 {
            std::fs::copy(
                &sidecar,
                micr.join(format!("sub-bench_sample-{label}_BF.json")),
            )
            .map_err(|e| e.to_string())?;
        }
        sections.push(e);
    }
    m["sections"] = serde_json::Value::Array(sections);
    std::fs::write(
        &manifest,
        serde_json::to_vec_pretty(&m).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let time = |extra: &str| -> Result<f64, String> {
        let mut v = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let out = quiet(
                Command::new(strata)
                    .args(["batch", "status", "--json", extra, "--manifest"])
                    .arg(&manifest),
            )?;
            v.push(start.elapsed().as_secs_f64());
            if extra == "--no-queue" && !out.contains(&format!("\"published\":{n}")) {
                return Err(format!("status did not see {n} published sections"));
            }
        }
        Ok(median(v))
    };
    let full = time("--no-queue")?;
    let cached = time("--cached")?;
    let _ = std::fs::remove_dir_all(&bids);
    Ok((full, cached))
}

/// Runs an array of `n` tasks that do nothing, with the requests `strata batch` uses here;
/// returns the seconds from submission until the queue is empty.
fn empty_array(work: &Path, n: usize, conf: &Path) -> Result<f64, String> {
    let logs = work.join("empty.logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let script = format!(
        "#!/bin/bash\n#SBATCH --job-name=strata-bench-empty\n#SBATCH --array=0-{}\n\
         #SBATCH --mem=2048M\n#SBATCH --time=30\n#SBATCH --cpus-per-task=2\n\
         #SBATCH --output={}/%a.out\ntrue\n",
        n - 1,
        logs.display()
    );
    let start = Instant::now();
    let mut child = Command::new("sbatch")
        .arg("--parsable")
        .env("SLURM_CONF", conf)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("sbatch: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, script.as_bytes()).map_err(|e| e.to_string())?;
    }
    if !child.wait().map_err(|e| e.to_string())?.success() {
        return Err("sbatch of the empty array failed".into());
    }
    loop {
        let queued = quiet(
            Command::new("squeue")
                .args(["--noheader", "--name", "strata-bench-empty"])
                .env("SLURM_CONF", conf),
        )?;
        if queued.trim().is_empty() {
            return Ok(start.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Converts the sections twice (untimed), then times `strata batch save` on one copy and
/// `strata batch save --per-section` on the other; returns (one save, per section) seconds.
fn datalad_saves(
    root: &Path,
    strata: &Path,
    work: &Path,
    scan: &Path,
    map: &Path,
    sections: usize,
) -> Result<(f64, f64), String> {
    let datalad = root.join(".venv/bin/datalad");
    let mut times = Vec::new();
    for (name, extra) in [("one", &[][..]), ("each", &["--per-section"][..])] {
        let bids = work.join(format!("datalad-{name}"));
        let manifest = work.join(format!("datalad-{name}.json"));
        let _ = std::fs::remove_dir_all(&bids);
        let _ = std::fs::remove_dir_all(work.join(format!("datalad-{name}.logs")));
        plan(strata, scan, map, &bids, &manifest)?;
        for i in 0..sections {
            quiet(
                Command::new(strata)
                    .args(["batch", "run", "--index", &i.to_string(), "--manifest"])
                    .arg(&manifest),
            )?;
        }
        let start = Instant::now();
        quiet(
            Command::new(strata)
                .args(["batch", "save", "--manifest"])
                .arg(&manifest)
                .args(extra)
                .env("STRATA_DATALAD", &datalad),
        )?;
        times.push(start.elapsed().as_secs_f64());
        let _ = std::fs::remove_dir_all(&bids);
    }
    Ok((times[0], times[1]))
}

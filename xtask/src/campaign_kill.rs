//! `cargo xtask campaign-kill [--kills N] [--seed S]`: SIGKILL at random times, N times for
//! each of `strata convert` (folder layout), `strata convert --layout ozx` and
//! `strata batch run` (an array task), each into a dataset that already holds one finished
//! section. After every kill it checks what users rely on, then reruns the command and
//! compares the result with a clean run:
//!
//! - the killed section is either not there at all (no image, no sidecar, no table row) or
//!   its image is whole: `strata validate` passes, or its errors name only that section;
//! - `samples.tsv` and `participants.tsv` parse, and hold the finished section once;
//! - the rerun succeeds and the dataset equals a clean conversion file for file (group
//!   metadata without the conversion's times, table rows in any order, lock files aside).
//!
//! Delays are drawn uniformly from 0 to 120% of a clean run (so some kills land after the
//! end: counted apart). Prints a table per command; any violation fails the command.
//! `cargo xtask test` runs a few kills per command with a seed of its own (printed, so that
//! `--seed` replays a failure).

use crate::bench_convert::sample;
use crate::bench_serve::Rng;
use crate::run_cmd;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One command under test: how to run it into a dataset, and where its section lands.
struct Case {
    name: &'static str,
    image: &'static str,
    args: fn(&Path, &Path, &Path) -> Vec<String>,
}

const SECTION: &str = "sub-K/micr/sub-K_sample-2_BF";

fn convert_args(layout: &'static str) -> impl Fn(&Path, &Path, &Path) -> Vec<String> {
    move |raw: &Path, bids: &Path, _: &Path| {
        vec![
            "convert".into(),
            raw.display().to_string(),
            "--bids-root".into(),
            bids.display().to_string(),
            "--subject".into(),
            "K".into(),
            "--sample".into(),
            "2".into(),
            "--layout".into(),
            layout.into(),
        ]
    }
}

fn zarr_args(raw: &Path, bids: &Path, m: &Path) -> Vec<String> {
    convert_args("zarr")(raw, bids, m)
}

fn ozx_args(raw: &Path, bids: &Path, m: &Path) -> Vec<String> {
    convert_args("ozx")(raw, bids, m)
}

fn batch_args(_: &Path, _: &Path, manifest: &Path) -> Vec<String> {
    vec![
        "batch".into(),
        "run".into(),
        "--manifest".into(),
        manifest.display().to_string(),
        "--index".into(),
        "0".into(),
    ]
}

/// Every file of a dataset, relative path to bytes, normalised as the module docs say.
pub(crate) fn dataset(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> Result<(), String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for e in entries {
            let e = e.map_err(|e| e.to_string())?;
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") || name == ".strata-batch" {
                continue;
            }
            if e.file_type().map_err(|e| e.to_string())?.is_dir() {
                walk(&path, root, out)?;
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .into_owned();
            let mut bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if rel.ends_with(".ome.zarr/zarr.json") {
                let mut v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                if let Some(r) = v
                    .pointer_mut("/attributes/strata")
                    .and_then(Value::as_object_mut)
                {
                    r.remove("started");
                    r.remove("finished");
                }
                bytes = serde_json::to_vec(&v).map_err(|e| e.to_string())?;
            } else if rel.ends_with(".tsv") {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.lines().collect();
                if lines.len() > 1 {
                    lines[1..].sort_unstable();
                }
                bytes = lines.join("\n").into_bytes();
            } else if rel.ends_with(".ozx") || rel.ends_with(".h5") {
                // The archive holds the group metadata with its times, an HDF5 file its
                // objects' times: compare the size (the folder-layout case compares the
                // bytes, the .ozx and HDF5 tests the content).
                bytes = bytes.len().to_string().into_bytes();
            }
            out.insert(rel, bytes);
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

/// The rows of a table after its header; an error if it does not parse (ragged rows).
fn rows(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let width = lines.next().map_or(0, |h| h.split('\t').count());
    let rows: Vec<String> = lines.map(str::to_owned).collect();
    if let Some(bad) = rows.iter().find(|r| r.split('\t').count() != width) {
        return Err(format!("{}: a torn row {bad:?}", path.display()));
    }
    Ok(rows)
}

/// The checks after a kill; `Err` describes a violation.
/// `bids` held one finished section (sample 1) before the killed command, unless `fresh`
/// (a new dataset: the tables may not exist yet).
pub(crate) fn check_after_kill(
    strata: &Path,
    bids: &Path,
    image: &str,
    fresh: bool,
) -> Result<(), String> {
    let table = |name: &str| {
        let path = bids.join(name);
        if fresh && !path.exists() {
            Ok(Vec::new())
        } else {
            rows(&path)
        }
    };
    let samples = table("samples.tsv")?;
    let participants = table("participants.tsv")?;
    if fresh && !bids.join("dataset_description.json").exists() {
        // Killed before the dataset had its description: nothing to validate yet, but no
        // section may be there either.
        return if samples.is_empty() && participants.is_empty() {
            Ok(())
        } else {
            Err("table rows without a dataset description".into())
        };
    }
    let first = samples
        .iter()
        .filter(|r| r.starts_with("sample-1\t"))
        .count();
    if first != usize::from(!fresh) {
        return Err(format!(
            "the finished section is in samples.tsv {first} times"
        ));
    }
    let second = samples
        .iter()
        .filter(|r| r.starts_with("sample-2\t"))
        .count();
    if second > 1
        || participants
            .iter()
            .filter(|r| r.starts_with("sub-K"))
            .count()
            > 1
        || !fresh && participants.is_empty()
    {
        return Err("a row appears twice".into());
    }
    let image = bids.join(image);
    let sidecar = bids.join(format!("{SECTION}.json"));
    if !image.exists() && (sidecar.exists() || second > 0) {
        return Err("a sidecar or table row without its image".into());
    }
    let out = Command::new(strata)
        .args(["validate", "--json"])
        .arg(bids)
        .output()
        .map_err(|e| format!("validate: {e}"))?;
    let report: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("validate printed no JSON: {e}"))?;
    let errors: Vec<&Value> = report["issues"]
        .as_array()
        .map(|a| a.iter().filter(|i| i["severity"] == "error").collect())
        .unwrap_or_default();
    for e in &errors {
        let at = e["location"].as_str().unwrap_or_default();
        if !at.contains("sample-2") {
            return Err(format!(
                "validate names something else than the killed section: {e}"
            ));
        }
    }
    Ok(())
}

/// Tally of one command.
#[derive(Default)]
struct Tally {
    kills: u64,
    before_end: u64,
    after_end: u64,
    published_when_killed: u64,
    violations: Vec<String>,
}

/// Runs the campaign with `strata` (default: a release build made here).
pub(crate) fn run(
    root: &Path,
    kills: u64,
    seed: u64,
    strata: Option<PathBuf>,
) -> Result<(), String> {
    let strata = match strata {
        Some(s) => s,
        None => {
            crate::setup::run(root)?;
            crate::build_strata(root)?
        }
    };
    let work = root.join("target/campaign-kill");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let first_raw = work.join("raw-1");
    let raw = work.join("raw-2");
    sample(&strata, &first_raw, "512x512", 4)?;
    sample(&strata, &raw, "2048x2048", 8)?;
    let quiet = |args: &[String]| -> Result<(), String> {
        let st = Command::new(&strata)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("strata {} failed with {st}", args.join(" ")))
        }
    };
    // The dataset every kill starts from: one finished section (sample 1).
    let template = work.join("template");
    let _ = std::fs::remove_dir_all(&template);
    quiet(&[
        "convert".into(),
        first_raw.display().to_string(),
        "--bids-root".into(),
        template.display().to_string(),
        "--subject".into(),
        "K".into(),
        "--sample".into(),
        "1".into(),
    ])?;
    // The batch: a scanner root holding the section's folder, a map, a manifest per dataset.
    let scan = work.join("scan");
    let _ = std::fs::remove_dir_all(&scan);
    std::fs::create_dir_all(&scan).map_err(|e| e.to_string())?;
    run_cmd(
        Command::new("cp")
            .arg("-r")
            .arg(&raw)
            .arg(scan.join("slide2")),
    )?;
    let map = work.join("map.tsv");
    std::fs::write(&map, "folder\tsubject\tsample\nslide2\tK\t2\n").map_err(|e| e.to_string())?;
    let plan = |bids: &Path, manifest: &Path| {
        quiet(&[
            "batch".into(),
            "plan".into(),
            scan.display().to_string(),
            "--map".into(),
            map.display().to_string(),
            "--bids-root".into(),
            bids.display().to_string(),
            "--manifest".into(),
            manifest.display().to_string(),
        ])
    };
    let cases = [
        Case {
            name: "strata convert (folder)",
            image: "sub-K/micr/sub-K_sample-2_BF.ome.zarr",
            args: zarr_args,
        },
        Case {
            name: "strata convert --layout ozx",
            image: "sub-K/micr/sub-K_sample-2_BF.ozx",
            args: ozx_args,
        },
        Case {
            name: "strata batch run",
            image: "sub-K/micr/sub-K_sample-2_BF.ome.zarr",
            args: batch_args,
        },
    ];
    let raw_for = |case: &Case| {
        if case.name.contains("batch") {
            scan.join("slide2")
        } else {
            raw.clone()
        }
    };
    let fresh = |name: &str| -> Result<PathBuf, String> {
        let bids = work.join(name);
        let _ = std::fs::remove_dir_all(&bids);
        run_cmd(Command::new("cp").arg("-a").arg(&template).arg(&bids))?;
        Ok(bids)
    };
    let mut rng = Rng(seed);
    let mut failed = false;
    println!("campaign-kill: {kills} SIGKILLs at random times per command, seed {seed}");
    println!(
        "| command | kills | before the end | after the end | image already whole when killed | violations |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for case in &cases {
        let manifest = work.join("m.json");
        let reference = fresh("reference")?;
        if case.name.contains("batch") {
            plan(&reference, &manifest)?;
        }
        let start = Instant::now();
        quiet(&(case.args)(&raw_for(case), &reference, &manifest))?;
        let whole = start.elapsed();
        let expected = dataset(&reference)?;
        let mut t = Tally::default();
        for k in 0..kills {
            let bids = fresh("killed")?;
            let manifest = work.join("killed.json");
            if case.name.contains("batch") {
                let _ = std::fs::remove_dir_all(work.join("killed.logs"));
                plan(&bids, &manifest)?;
            }
            let args = (case.args)(&raw_for(case), &bids, &manifest);
            let delay = Duration::from_micros(rng.below(whole.as_micros() as u64 * 6 / 5));
            let mut child = Command::new(&strata)
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())?;
            std::thread::sleep(delay);
            let ended = child.try_wait().map_err(|e| e.to_string())?.is_some();
            let _ = child.kill();
            let _ = child.wait();
            t.kills += 1;
            if ended {
                t.after_end += 1;
            } else {
                t.before_end += 1;
                if bids.join(case.image).exists() {
                    t.published_when_killed += 1;
                }
            }
            let verdict = check_after_kill(&strata, &bids, case.image, false).and_then(|()| {
                quiet(&args)?;
                let got = dataset(&bids)?;
                if got.keys().ne(expected.keys()) {
                    return Err(format!(
                        "after the rerun the files differ: {:?} against {:?}",
                        got.keys().collect::<Vec<_>>(),
                        expected.keys().collect::<Vec<_>>()
                    ));
                }
                match got.iter().find(|(k, v)| expected.get(*k) != Some(*v)) {
                    Some((k, _)) => Err(format!("after the rerun {k} differs from a clean run")),
                    None => Ok(()),
                }
            });
            if let Err(e) = verdict {
                t.violations.push(format!("kill {k} at {delay:?}: {e}"));
            }
        }
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            case.name,
            t.kills,
            t.before_end,
            t.after_end,
            t.published_when_killed,
            t.violations.len()
        );
        for v in &t.violations {
            eprintln!("  violation ({}): {v}", case.name);
            failed = true;
        }
    }
    if failed {
        Err("campaign-kill found violations (above)".into())
    } else {
        Ok(())
    }
}

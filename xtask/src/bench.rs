//! `cargo xtask bench-validate [--sections N]`: validates a synthetic N-section dataset with
//! `strata validate` and with the official BIDS validator (PyPI `bids-validator-deno`), on the
//! same tree in the same run, and prints both times and their ratio.

use crate::run_cmd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn time(cmd: &mut Command) -> Result<Duration, String> {
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    let took = start.elapsed();
    // Exit 1 means "errors found", which still is a complete validation.
    match status.code() {
        Some(0 | 1) => Ok(took),
        _ => Err(format!("{shown} failed with {status}")),
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()))?;
        } else {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Copies section `sub-BB01/sample-0001` to `sections` sections over 4 subjects and writes
/// the matching `samples.tsv` and `participants.tsv`.
fn replicate(tree: &Path, sections: usize) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let stem = "sub-BB01_sample-0001_stain-Nissl_BF";
    let micr = tree.join("sub-BB01/micr");
    let image = micr.join(format!("{stem}.ome.zarr"));
    let sidecar = std::fs::read(micr.join(format!("{stem}.json"))).map_err(io)?;
    let mut samples = String::from("sample_id\tparticipant_id\tsample_type\n");
    let mut participants = String::from("participant_id\n");
    let per_subject = sections.div_ceil(4).max(1);
    for i in 1..=sections {
        let subject = format!("BB{:02}", (i - 1) / per_subject + 1);
        let sample = format!("{i:04}");
        if (i - 1) % per_subject == 0 {
            participants.push_str(&format!("sub-{subject}\n"));
        }
        samples.push_str(&format!("sample-{sample}\tsub-{subject}\ttissue\n"));
        if i == 1 {
            continue;
        }
        let dir = tree.join(format!("sub-{subject}/micr"));
        let name = format!("sub-{subject}_sample-{sample}_stain-Nissl_BF");
        copy_dir(&image, &dir.join(format!("{name}.ome.zarr"))).map_err(io)?;
        std::fs::write(dir.join(format!("{name}.json")), &sidecar).map_err(io)?;
    }
    std::fs::write(tree.join("samples.tsv"), samples).map_err(io)?;
    std::fs::write(tree.join("participants.tsv"), participants).map_err(io)
}

pub(crate) fn validate(root: &Path, sections: usize) -> Result<(), String> {
    crate::setup::run(root)?;
    let strata = crate::build_strata(root)?;
    let tree = root.join(format!("target/bench-validate/{sections}"));
    // A hidden marker (ignored by validators) says the tree was generated to the end.
    let marker = tree.join(".bench-complete");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&tree);
        // One real section (converted by `strata demo`), then copies of it under new sample
        // labels, spread over 4 subjects as in a brain bank.
        run_cmd(
            Command::new(&strata)
                .args([
                    "demo",
                    "--json",
                    "--sections",
                    "1",
                    "--size",
                    "512x512",
                    "--planes",
                    "3",
                ])
                .args(["--subject", "BB01", "--out"])
                .arg(&tree)
                .stdout(Stdio::null()),
        )?;
        let _ = std::fs::remove_dir_all(tree.join("sourcedata"));
        replicate(&tree, sections)?;
        std::fs::write(&marker, b"").map_err(|e| format!("{}: {e}", marker.display()))?;
    }
    let validator = root.join(".venv/bin/bids-validator-deno");
    // Warm the page cache once so both tools read from memory.
    time(Command::new(&strata).arg("validate").arg(&tree))?;
    let runs = 3;
    let mut ours = Vec::new();
    for _ in 0..runs {
        ours.push(time(
            Command::new(&strata)
                .args(["validate", "--json"])
                .arg(&tree),
        )?);
    }
    // A daily run with `--cache`: one run fills the cache, the timed ones reuse it.
    let cache = root.join(format!("target/bench-validate/{sections}.cache"));
    let _ = std::fs::remove_file(&cache);
    let cached = |strata: &Path| {
        let mut cmd = Command::new(strata);
        cmd.args(["validate", "--json", "--cache"])
            .arg(&cache)
            .arg(&tree);
        cmd
    };
    time(&mut cached(&strata))?;
    let mut reused = Vec::new();
    for _ in 0..runs {
        reused.push(time(&mut cached(&strata))?);
    }
    let mut peer = Vec::new();
    for _ in 0..runs {
        peer.push(time(Command::new(&validator).arg("--json").arg(&tree))?);
    }
    ours.sort();
    reused.sort();
    peer.sort();
    let (o, p) = (ours[runs / 2].as_secs_f64(), peer[runs / 2].as_secs_f64());
    let c = reused[runs / 2].as_secs_f64();
    println!("bench-validate: {sections} sections ({})", tree.display());
    println!("  strata validate          median of {runs}: {o:8.3} s");
    println!("  strata validate --cache  median of {runs}: {c:8.3} s (every image unchanged)");
    println!("  bids-validator-deno 3.x  median of {runs}: {p:8.3} s");
    println!("  speed-up: {:.1}x full, {:.1}x with --cache", p / o, p / c);
    Ok(())
}

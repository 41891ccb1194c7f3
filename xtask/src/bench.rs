//! `cargo xtask bench-validate [--sections N]`: validates a synthetic N-section dataset with
//! `strata validate` and with the official BIDS validator (PyPI `bids-validator-deno`), on the
//! same tree in the same run, and prints both times and their ratio.

use crate::{cargo, run_cmd};
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

pub(crate) fn validate(root: &Path, sections: usize) -> Result<(), String> {
    crate::setup::run(root)?;
    run_cmd(
        cargo()
            .current_dir(root)
            .args(["build", "--release", "--package", "strata-cli"]),
    )?;
    let strata = root.join("target/release/strata");
    let tree = root.join(format!("target/bench-validate/{sections}"));
    // A hidden marker (ignored by validators) says the tree was generated to the end.
    let marker = tree.join(".bench-complete");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&tree);
        // Several subjects, as in a brain bank: 7,000 sections over 4 brains by default.
        let per_subject = sections.div_ceil(4).max(1);
        let mut first = 1;
        let mut subject = 1;
        while first <= sections {
            let n = per_subject.min(sections + 1 - first);
            run_cmd(
                Command::new(&strata)
                    .args(["demo", "--json", "--out"])
                    .arg(&tree)
                    .args(["--subject", &format!("BB{subject:02}")])
                    .args(["--first", &first.to_string(), "--sections", &n.to_string()])
                    .stdout(Stdio::null()),
            )?;
            first += n;
            subject += 1;
        }
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
    let mut peer = Vec::new();
    for _ in 0..runs {
        peer.push(time(Command::new(&validator).arg("--json").arg(&tree))?);
    }
    ours.sort();
    peer.sort();
    let (o, p) = (ours[runs / 2].as_secs_f64(), peer[runs / 2].as_secs_f64());
    println!("bench-validate: {sections} sections ({})", tree.display());
    println!("  strata validate          median of {runs}: {o:8.3} s");
    println!("  bids-validator-deno 3.x  median of {runs}: {p:8.3} s");
    println!("  speed-up: {:.1}x", p / o);
    Ok(())
}

//! `cargo xtask fuzz [TARGET...] [--seconds N] [--merge]`: coverage-guided fuzzing with libFuzzer on
//! stable Rust.
//!
//! The targets of `fuzz/` (package `strata-fuzz`) are built with profile `fuzz` (release
//! with debug assertions and overflow checks), LLVM's sanitizer-coverage passes and
//! `--cfg fuzzing` (what `cargo fuzz` passes on nightly, minus the sanitizer), for the host
//! target given explicitly so that build scripts and proc macros are not instrumented, in a
//! target folder of their own (`target/fuzz-lf`: the flags differ from every other build).
//! Each target then runs for N seconds (60 by default) on its working corpus
//! (`target/fuzz-corpus/<target>/`, kept between runs, not committed), the committed corpus
//! (`fuzz/corpus/<target>/`) and the committed inputs (`fuzz/inputs/<target>/`: seeds and
//! past crashes), the last two read only. `--merge` then adds to the committed corpus the
//! working corpus's inputs that reach coverage it lacks (libFuzzer's `-merge=1`), for a
//! commit after a campaign. A crash, a timeout (10 s per input) or more
//! than 2 GiB of memory fails the command, naming the input libFuzzer wrote under
//! `target/fuzz-artifacts/<target>/`; add it to `fuzz/inputs/<target>/` with the fix.
//! Prints, per target, the runs executed, the coverage (libFuzzer's `cov` and `ft`) and the
//! corpus size; libFuzzer's output is kept in `target/fuzz-logs/<target>.log`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every fuzz target of `fuzz/`, in the order they run.
pub(crate) const TARGETS: &[&str] = &[
    "http_request",
    "zarr_image",
    "ozx_reader",
    "tiff_stack",
    "bids_text",
    "ngff_metadata",
];

/// The host target, given to cargo so that only the target's own code is instrumented.
const HOST: &str = "x86_64-unknown-linux-gnu";

/// Where the instrumented build goes.
const TARGET_DIR: &str = "target/fuzz-lf";

/// The instrumentation libFuzzer needs: inline 8-bit edge counters with their PC table,
/// comparison tracing; `--cfg fuzzing` as `cargo fuzz` sets it.
const RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing";

/// What libFuzzer reported at the end of one run.
#[derive(Debug, Default)]
struct Stats {
    runs: Option<u64>,
    cov: Option<u64>,
    ft: Option<u64>,
    corp: Option<String>,
}

/// Builds the instrumented targets, then fuzzes each of `targets` (every one of [`TARGETS`]
/// if empty) for `seconds`; fails if any of them finds a crash.
pub(crate) fn run(
    root: &Path,
    targets: &[String],
    seconds: u64,
    merge: bool,
) -> Result<(), String> {
    let chosen: Vec<&str> = if targets.is_empty() {
        TARGETS.to_vec()
    } else {
        let mut chosen = Vec::new();
        for t in targets {
            let known = TARGETS.iter().find(|k| **k == t.as_str()).ok_or_else(|| {
                format!(
                    "fuzz: no target {t:?}; the targets are {}",
                    TARGETS.join(", ")
                )
            })?;
            chosen.push(*known);
        }
        chosen
    };
    let seconds = seconds.max(1);
    build(root)?;
    let mut failures = Vec::new();
    for target in chosen {
        let result = fuzz_one(root, target, seconds).and_then(|()| {
            if merge {
                merge_corpus(root, target)
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            eprintln!("xtask: {e}");
            failures.push(e);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz: {}", failures.join("; ")))
    }
}

/// `cargo build` of every target of `fuzz/` with the coverage instrumentation.
fn build(root: &Path) -> Result<(), String> {
    crate::run_cmd(
        crate::cargo()
            .current_dir(root)
            .args([
                "build",
                "--package",
                "strata-fuzz",
                "--bins",
                "--features",
                "libfuzzer",
                "--profile",
                "fuzz",
            ])
            .args(["--target-dir", TARGET_DIR])
            .args(["--target", HOST])
            // The flags above, whatever the caller's environment sets.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .env("RUSTFLAGS", RUSTFLAGS),
    )
}

/// Runs one target for `seconds` and prints what it did; an error names the crash input.
fn fuzz_one(root: &Path, target: &str, seconds: u64) -> Result<(), String> {
    let binary = root.join(TARGET_DIR).join(HOST).join("fuzz").join(target);
    let corpus = root.join("target/fuzz-corpus").join(target);
    let artifacts = root.join("target/fuzz-artifacts").join(target);
    let inputs = root.join("fuzz/inputs").join(target);
    let committed = root.join("fuzz/corpus").join(target);
    let logs = root.join("target/fuzz-logs");
    for dir in [&corpus, &artifacts, &logs] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let log = logs.join(format!("{target}.log"));
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut cmd = Command::new(&binary);
    cmd.current_dir(root)
        .arg(format!("-max_total_time={seconds}"))
        .arg("-rss_limit_mb=2048")
        .arg("-timeout=10")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&corpus)
        .args(committed.is_dir().then_some(&committed))
        .arg(&inputs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file));
    eprintln!(
        "xtask: fuzzing {target} for {seconds} s (log: {})",
        log.display()
    );
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let text = std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let summary = parse(&text);
    let corpus_files = std::fs::read_dir(&corpus).map_or(0, |d| d.flatten().count());
    let show = |v: Option<u64>| v.map_or_else(|| "?".into(), |n| n.to_string());
    println!(
        "fuzz {target}: {} runs in {seconds} s, cov {}, ft {}, corpus {corpus_files} files ({})",
        show(summary.runs),
        show(summary.cov),
        show(summary.ft),
        summary.corp.as_deref().unwrap_or("?"),
    );
    if status.success() {
        return Ok(());
    }
    let input = artifact(&text).map_or_else(
        || format!("no input written; see {}", artifacts.display()),
        |p| p.display().to_string(),
    );
    Err(format!(
        "{target} failed ({status}): crash input {input}; log {}",
        log.display()
    ))
}

/// The target's binary in the instrumented build.
fn binary(root: &Path, target: &str) -> PathBuf {
    root.join(TARGET_DIR).join(HOST).join("fuzz").join(target)
}

/// Adds to `fuzz/corpus/<target>/` the inputs of the working corpus that reach coverage the
/// committed corpus and inputs do not (libFuzzer's `-merge=1`, which keeps the smallest).
fn merge_corpus(root: &Path, target: &str) -> Result<(), String> {
    let committed = root.join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&committed).map_err(|e| format!("{}: {e}", committed.display()))?;
    let count = || std::fs::read_dir(&committed).map_or(0, |d| d.flatten().count());
    let before = count();
    let log = root
        .join("target/fuzz-logs")
        .join(format!("{target}.merge.log"));
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let status = Command::new(binary(root, target))
        .current_dir(root)
        .args(["-merge=1", "-rss_limit_mb=2048", "-timeout=10"])
        .arg(&committed)
        .arg(root.join("target/fuzz-corpus").join(target))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file))
        .status()
        .map_err(|e| format!("cannot start the {target} merge: {e}"))?;
    if !status.success() {
        return Err(format!(
            "merging the {target} corpus failed ({status}); log {}",
            log.display()
        ));
    }
    println!(
        "fuzz {target}: committed corpus {before} -> {} files ({})",
        count(),
        committed.display()
    );
    Ok(())
}

/// The numbers of libFuzzer's last status line (`#N ... cov: C ft: F corp: K/S ...`) and of
/// its `Done N runs` line.
fn parse(log: &str) -> Stats {
    let mut stats = Stats::default();
    let field = |line: &str, name: &str| -> Option<String> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == name)?;
        words.next().map(str::to_owned)
    };
    for line in log.lines() {
        if line.starts_with('#') && line.contains(" cov: ") {
            stats.cov = field(line, "cov:").and_then(|v| v.parse().ok());
            stats.ft = field(line, "ft:").and_then(|v| v.parse().ok());
            stats.corp = field(line, "corp:");
            stats.runs = line
                .split_whitespace()
                .next()
                .and_then(|w| w.trim_start_matches('#').parse().ok());
        }
        if let Some(rest) = line.strip_prefix("Done ") {
            stats.runs = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .or(stats.runs);
        }
    }
    stats
}

/// The input libFuzzer wrote for a crash, timeout or out-of-memory (`Test unit written to
/// PATH`).
fn artifact(log: &str) -> Option<PathBuf> {
    log.lines()
        .rev()
        .find_map(|l| l.split_once("Test unit written to "))
        .map(|(_, p)| PathBuf::from(p.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_final_lines() {
        let log = "INFO: Seed: 1\n#2\tINITED cov: 10 ft: 11 corp: 3/30b exec/s: 0 rss: 40Mb\n\
                   #5000\tDONE   cov: 120 ft: 340 corp: 25/1200b lim: 4096 exec/s: 83 rss: 90Mb\n\
                   Done 5000 runs in 61 second(s)\n";
        let s = parse(log);
        assert_eq!((s.runs, s.cov, s.ft), (Some(5000), Some(120), Some(340)));
        assert_eq!(s.corp.as_deref(), Some("25/1200b"));
        let crash = "==1== ERROR: libFuzzer: deadly signal\n\
                     artifact_prefix='a/'; Test unit written to a/crash-abc\n";
        assert_eq!(artifact(crash), Some(PathBuf::from("a/crash-abc")));
    }
}

//! Project chores, run as `cargo xtask <command>`:
//!
//! - `setup`: install what the tests need (Debian packages, a Python venv with the official
//!   BIDS validator and the BIDS schema).
//! - `test`: setup, then, failing on the first error:
//!   - the codegen check (the committed schema tables match the schema);
//!   - `cargo fmt --check` of the workspace;
//!   - clippy with `-D warnings`: the workspace (all targets, default features, the fuzz
//!     crate included); strata-zstack and strata-cli with feature `hdf5`; strata-store with
//!     `--no-default-features`; strata-cli with `failpoints`; the fuzz targets' entry
//!     points (strata-fuzz with `libfuzzer`);
//!   - rustdoc with `-D warnings`: the workspace, then strata-zstack and strata-cli with
//!     `hdf5`;
//!   - the workspace's tests (all targets) with every peer and service set and required
//!     (validator, Python, DataLad, Chromium, an S3 server on loopback);
//!   - the Python package (`python/`): installed into the venv by `pip install ./python`,
//!     then its pytest suite (zarr-python as the reference reader, torch's DataLoader with
//!     worker processes, the S3 server);
//!   - the real clients of `strata serve` (`crates/strata-serve/tests/clients`: zarr-python
//!     over HTTP, tensorstore's `http` kvstore, headless Chromium running zarrita from npm);
//!   - the HDF5 tests (`--features hdf5`: strata-zstack `tiff_hdf5`, `hdf5_export`,
//!     strata-cli `hdf5_cli`);
//!   - strata-store's library and tests without default features;
//!   - the doc tests;
//!   - `strata demo`, then the official BIDS validator on what it wrote;
//!   - every fuzz target under libFuzzer for 20 s (`fuzz --seconds 20`; the workspace's
//!     tests have replayed its committed inputs, `fuzz/inputs/<target>/`, before);
//!   - the crash-point matrix (`failpoints --hits 2`), last, as it rebuilds `strata` with
//!     the `failpoints` feature.
//! - `bench-batch [--sections N] [--size WxH] [--runs N] [--status-only]`: N sections through
//!   `strata batch` on the one-node Slurm cluster against a serial loop of `strata convert`,
//!   DataLad saves, and `status` over 7,000 published sections (`--status-only`: that alone).
//! - `campaign-kill [--kills N] [--seed S] [--strata BIN]`: SIGKILL at random times (N per command) of
//!   `strata convert` (folder, `.ozx`) and `strata batch run`, each checked and rerun; see
//!   docs/RELIABILITY.md.
//! - `failpoints [--hits N]`: builds `strata` with its crash points armed and kills each
//!   writing command at every point it passes (N passes per point, all by default), each
//!   checked and rerun; see docs/RELIABILITY.md.
//! - `fuzz [TARGET...] [--seconds N] [--merge]`: builds the fuzz targets with libFuzzer's
//!   coverage instrumentation (stable Rust) and runs each for N seconds (60 by default);
//!   `--merge` adds what the run found to the committed corpus (`fuzz/corpus/`); see
//!   docs/RELIABILITY.md.
//! - `with-services [--] CMD [ARGS]`: run one command (a single test, say) with the services
//!   the tests use started, as `test` starts them: the S3 server (`STRATA_S3_ENDPOINT`) and
//!   the one-node Slurm cluster (`SLURM_CONF`).
//! - `codegen [--check] [--schema PATH]`: regenerate strata-bids' schema tables.
//! - `bench-validate [--sections N]`: time `strata validate` against the official validator.
//! - `bench-convert [--size WxH] [--planes N] [--runs N] [--baseline STRATA]`: time `strata convert`
//!   against Python peers (and against another build of `strata`, interleaved).
//! - `bench-read [--patches N]`: random patch reads by strata-access against zarrs,
//!   tensorstore and zarr-python on the same converted section.
//! - `bench-serve [--seconds N] [--json] [--strata BIN]`: `strata serve` against nginx under a
//!   viewer's range requests (wrk; 1, 16 and 64 connections), on an `.ome.zarr` folder and on
//!   the virtual view of an `.ozx`.
//! - `bench-stage [--sections N] [--runs N]`: `strata stage` between POSIX folders against
//!   `cp -r`, `cp -r` + `sha256sum` and `rclone copy --checksum` on the same tree.

mod bench;
mod bench_batch;
mod bench_convert;
mod bench_read;
mod bench_serve;
mod bench_stage;
mod campaign_kill;
mod codegen;
mod failpoints;
mod fuzz;
mod services;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(&root),
        Some("test") => test(&root),
        Some("codegen") => {
            let check = args.iter().any(|a| a == "--check");
            let schema = flag_value(&args, "--schema").map(PathBuf::from);
            codegen::run(&root, schema, check)
        }
        Some("bench-validate") => {
            let sections = flag_value(&args, "--sections")
                .map(|s| s.parse::<usize>().map_err(|e| format!("--sections: {e}")))
                .transpose();
            sections.and_then(|n| bench::validate(&root, n.unwrap_or(7000)))
        }
        Some("bench-read") => {
            let patches = flag_value(&args, "--patches")
                .map(|s| s.parse::<usize>().map_err(|e| format!("--patches: {e}")))
                .transpose();
            patches.and_then(|n| bench_read::run(&root, n.unwrap_or(1000).max(1)))
        }
        Some("bench-serve") => {
            let seconds = flag_value(&args, "--seconds")
                .map(|s| s.parse::<u64>().map_err(|e| format!("--seconds: {e}")))
                .transpose();
            let json = args.iter().any(|a| a == "--json");
            let strata = flag_value(&args, "--strata").map(PathBuf::from);
            seconds.and_then(|s| {
                bench_serve::run(&root, s.unwrap_or(10).max(1), json, strata.as_deref())
            })
        }
        Some("bench-stage") => {
            let number = |flag: &str, default: usize| {
                flag_value(&args, flag)
                    .map(|s| s.parse::<usize>().map_err(|e| format!("{flag}: {e}")))
                    .transpose()
                    .map(|n| n.unwrap_or(default).max(1))
            };
            number("--sections", 4)
                .and_then(|s| number("--runs", 3).and_then(|r| bench_stage::run(&root, s, r)))
        }
        Some("bench-convert") => {
            let size = flag_value(&args, "--size").unwrap_or_else(|| "4096x4096".into());
            let planes = flag_value(&args, "--planes")
                .map(|s| s.parse::<u32>().map_err(|e| format!("--planes: {e}")))
                .transpose();
            let baseline = flag_value(&args, "--baseline").map(PathBuf::from);
            let runs = flag_value(&args, "--runs")
                .map(|s| s.parse::<usize>().map_err(|e| format!("--runs: {e}")))
                .transpose()
                .and_then(|r| match r {
                    Some(0) => Err("--runs: at least 1".to_string()),
                    r => Ok(r.unwrap_or(3)),
                });
            planes.and_then(|p| {
                runs.and_then(|r| {
                    bench_convert::run(&root, &size, p.unwrap_or(30), baseline.as_deref(), r)
                })
            })
        }
        Some("bench-batch") => {
            let num = |flag: &str, default: usize| {
                flag_value(&args, flag).map_or(Ok(default), |s| match s.parse::<usize>() {
                    Ok(0) | Err(_) => Err(format!("{flag}: a whole number of at least 1")),
                    Ok(n) => Ok(n),
                })
            };
            let size = flag_value(&args, "--size").unwrap_or_else(|| "2048x2048".into());
            num("--sections", 16).and_then(|n| {
                num("--runs", 3).and_then(|r| {
                    bench_batch::run(&root, n, &size, r, args.iter().any(|a| a == "--status-only"))
                })
            })
        }
        Some("campaign-kill") => {
            let num = |flag: &str, default: u64| {
                flag_value(&args, flag).map_or(Ok(default), |s| {
                    s.parse::<u64>().map_err(|e| format!("{flag}: {e}"))
                })
            };
            num("--kills", 50).and_then(|k| {
                num("--seed", 0x5eed).and_then(|s| {
                    campaign_kill::run(&root, k.max(1), s, flag_value(&args, "--strata").map(PathBuf::from))
                })
            })
        }
        Some("failpoints") => flag_value(&args, "--hits")
            .map_or(Ok(0), |s| s.parse::<u64>().map_err(|e| format!("--hits: {e}")))
            .and_then(|hits| {
                setup::run(&root)?;
                failpoint_matrix(&root, hits)
            }),
        Some("fuzz") => {
            let seconds = flag_value(&args, "--seconds")
                .map_or(Ok(60), |s| s.parse::<u64>().map_err(|e| format!("--seconds: {e}")));
            let mut targets = Vec::new();
            let mut rest = args[1..].iter();
            while let Some(a) = rest.next() {
                if a == "--seconds" {
                    rest.next();
                } else {
                    targets.push(a.clone());
                }
            }
            let merge = targets.iter().any(|t| t == "--merge");
            targets.retain(|t| t != "--merge");
            seconds.and_then(|s| fuzz::run(&root, &targets, s, merge))
        }
        Some("with-services") => with_services(&root, &args[1..]),
        _ => Err(
            "usage: cargo xtask <setup | test | with-services [--] CMD [ARGS] | codegen [--check] [--schema PATH] | bench-validate [--sections N] | bench-convert [--size WxH] [--planes N] [--runs N] [--baseline STRATA] | bench-read [--patches N] | bench-serve [--seconds N] [--json] [--strata BIN] | bench-stage [--sections N] [--runs N] | bench-batch [--sections N] [--size WxH] [--runs N] [--status-only] | campaign-kill [--kills N] [--seed S] [--strata BIN] | failpoints [--hits N] | fuzz [TARGET...] [--seconds N] [--merge]>"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the armed `strata` and runs the crash-point matrix with the S3 server up (a
/// bucket of its own) and the venv's DataLad; `hits` passes per point (0: all).
fn failpoint_matrix(root: &Path, hits: u64) -> Result<(), String> {
    let strata = failpoints::build(root)?;
    let s3 = services::start_s3(root)?;
    let bucket = format!("strata-failpoints-{}", std::process::id());
    services::create_bucket(&s3.endpoint, &bucket)?;
    let setup = failpoints::Setup {
        strata,
        s3: Some(failpoints::S3 {
            endpoint: s3.endpoint.clone(),
            bucket,
        }),
        datalad: Some(root.join(".venv/bin/datalad")),
    };
    let result = failpoints::run(root, &setup, hits);
    drop(s3);
    result
}

/// Runs `args` with the S3 server and the Slurm cluster up, their settings in the
/// environment.
fn with_services(root: &Path, args: &[String]) -> Result<(), String> {
    let args = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => args,
    };
    let (program, rest) = args
        .split_first()
        .ok_or("with-services: give the command to run")?;
    let s3 = services::start_s3(root)?;
    let slurm = services::start_slurm(root)?;
    let result = run_cmd(
        Command::new(program)
            .args(rest)
            .env("SLURM_CONF", &slurm.conf)
            .env("STRATA_S3_ENDPOINT", &s3.endpoint)
            .env("AWS_ACCESS_KEY_ID", "strata-test")
            .env("AWS_SECRET_ACCESS_KEY", "strata-test")
            .env("AWS_DEFAULT_REGION", "us-east-1"),
    );
    drop(slurm);
    drop(s3);
    result
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Builds `strata` in release mode and returns the path of the binary.
pub(crate) fn build_strata(root: &Path) -> Result<PathBuf, String> {
    run_cmd(
        cargo()
            .current_dir(root)
            .args(["build", "--release", "--package", "strata-cli"]),
    )?;
    Ok(root.join("target/release/strata"))
}

/// Runs a command, streaming its output, and fails with its name if it fails.
pub(crate) fn run_cmd(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: running {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed with {status}"))
    }
}

/// Formats generated Rust source with rustfmt so the committed file is stable.
pub(crate) fn rustfmt(src: &str) -> Result<String, String> {
    use std::io::Write as _;
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start rustfmt: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("rustfmt has no stdin")?
        .write_all(src.as_bytes())
        .map_err(|e| format!("rustfmt: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("rustfmt: {e}"))?;
    if !out.status.success() {
        return Err("rustfmt rejected the generated source".into());
    }
    String::from_utf8(out.stdout).map_err(|e| format!("rustfmt: {e}"))
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The Python package: `pip install ./python` into the venv (maturin builds the extension
/// with the dev profile, whose dependencies the workspace tests just built), then its pytest
/// suite against the `strata` binary of the same build, with torch and the S3 server required.
fn python_package(root: &Path, venv_bin: &Path, s3_endpoint: &str) -> Result<(), String> {
    let path = path_with(venv_bin)?;
    install_python_package(root, venv_bin, Some("dev"))?;
    run_cmd(
        Command::new(venv_bin.join("python"))
            .current_dir(root)
            .args(["-m", "pytest", "-q", "python/tests"])
            .env("PATH", &path)
            .env("STRATA_BIN", root.join("target/debug/strata"))
            .env("STRATA_S3_ENDPOINT", s3_endpoint)
            .env("AWS_ACCESS_KEY_ID", "strata-test")
            .env("AWS_SECRET_ACCESS_KEY", "strata-test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("STRATA_REQUIRE_PEERS", "1"),
    )
}

/// Real clients of `strata serve` (zarr-python over fsspec's HTTP, tensorstore's `http`
/// kvstore, headless Chromium running zarrita from npm, bundled by esbuild) against the
/// test build, on a folder and on the virtual view of an `.ozx`.
fn serve_clients(root: &Path, venv_bin: &Path) -> Result<(), String> {
    run_cmd(
        Command::new(venv_bin.join("python"))
            .current_dir(root)
            .args(["-m", "pytest", "-q", "crates/strata-serve/tests/clients"])
            .env("PATH", path_with(venv_bin)?)
            .env("STRATA_BIN", root.join("target/debug/strata"))
            .env("STRATA_REQUIRE_PEERS", "1"),
    )
}

/// `pip install ./python` into the venv (built by maturin with cargo profile `profile`, else
/// maturin's release default), replacing an installed copy.
pub(crate) fn install_python_package(
    root: &Path,
    venv_bin: &Path,
    profile: Option<&str>,
) -> Result<(), String> {
    let mut cmd = Command::new(venv_bin.join("pip"));
    cmd.current_dir(root)
        .args(["install", "--quiet", "--no-build-isolation", "--no-deps"])
        .args(["--force-reinstall", "./python"])
        .env("PATH", path_with(venv_bin)?);
    if let Some(profile) = profile {
        cmd.env("MATURIN_PEP517_ARGS", format!("--profile {profile}"));
    }
    run_cmd(&mut cmd)
}

/// `PATH` with `dir` first (maturin's build backend runs `maturin` from the venv).
pub(crate) fn path_with(dir: &Path) -> Result<std::ffi::OsString, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    std::env::join_paths(dirs).map_err(|e| format!("PATH: {e}"))
}

/// Seconds each fuzz target runs in `cargo xtask test` (the campaign in docs/RELIABILITY.md
/// ran 30 minutes each).
const FUZZ_SECONDS: u64 = 20;

/// The HDF5 features of the crates that have them (`--features` with several packages).
const HDF5_FEATURES: &str = "strata-zstack/hdf5,strata-cli/hdf5";

fn test(root: &Path) -> Result<(), String> {
    setup::run(root)?;
    let venv_bin = root.join(".venv/bin");
    codegen::run(root, None, true)?;
    run_cmd(
        cargo()
            .current_dir(root)
            .args(["fmt", "--all", "--", "--check"]),
    )?;
    // Lints, also of the code behind optional features: HDF5 on, strata-store's backends
    // off, the crash points armed (the workspace includes the fuzz crate).
    for args in [
        &["--workspace"][..],
        &[
            "--package",
            "strata-zstack",
            "--package",
            "strata-cli",
            "--features",
            HDF5_FEATURES,
        ],
        &["--package", "strata-store", "--no-default-features"],
        &["--package", "strata-cli", "--features", "failpoints"],
        &["--package", "strata-fuzz", "--features", "libfuzzer"],
    ] {
        run_cmd(cargo().current_dir(root).arg("clippy").args(args).args([
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    // Every public item is documented and every doc link resolves, with HDF5 too.
    run_cmd(
        cargo()
            .current_dir(root)
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    run_cmd(
        cargo()
            .current_dir(root)
            .args(["doc", "--no-deps", "--package", "strata-zstack"])
            .args(["--package", "strata-cli", "--features", HDF5_FEATURES])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    // Peers and services are wired in through environment variables: tests that need them
    // are skipped without them, and this command always sets them (STRATA_REQUIRE_PEERS makes
    // a missing one a failure).
    let validator = venv_bin.join("bids-validator-deno");
    let s3 = services::start_s3(root)?;
    let slurm = services::start_slurm(root)?;
    run_cmd(
        cargo()
            .current_dir(root)
            .args(["test", "--workspace", "--all-targets"])
            .env("SLURM_CONF", &slurm.conf)
            .env("STRATA_BIDS_VALIDATOR", &validator)
            .env("STRATA_PYTHON", venv_bin.join("python"))
            .env("STRATA_DATALAD", venv_bin.join("datalad"))
            .env("STRATA_CHROMIUM", "chromium")
            .env("STRATA_REQUIRE_CHROMIUM", "1")
            .env("STRATA_S3_ENDPOINT", &s3.endpoint)
            .env("AWS_ACCESS_KEY_ID", "strata-test")
            .env("AWS_SECRET_ACCESS_KEY", "strata-test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("STRATA_REQUIRE_PEERS", "1"),
    )?;
    // A few SIGKILLs at random times per writing command (the campaign runs 50 each: see
    // docs/RELIABILITY.md), with the binary the tests built; the seed is printed.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    campaign_kill::run(root, 3, seed, Some(root.join("target/debug/strata")))?;
    python_package(root, &venv_bin, &s3.endpoint)?;
    serve_clients(root, &venv_bin)?;
    drop(slurm);
    drop(s3);
    // HDF5 input and output are an optional feature (it needs the C library, installed
    // above); h5py, the independent reader, comes from the venv.
    for (package, tests) in [
        ("strata-zstack", &["tiff_hdf5", "hdf5_export"][..]),
        ("strata-cli", &["hdf5_cli"][..]),
    ] {
        let mut cmd = cargo();
        cmd.current_dir(root)
            .args(["test", "--package", package, "--features", "hdf5"]);
        for t in tests {
            cmd.args(["--test", t]);
        }
        run_cmd(
            cmd.env("STRATA_PYTHON", venv_bin.join("python"))
                .env("STRATA_DATALAD", venv_bin.join("datalad"))
                .env("STRATA_REQUIRE_PEERS", "1"),
        )?;
    }
    // strata-store without its optional backends: the library and the tests that need none.
    run_cmd(cargo().current_dir(root).args([
        "test",
        "--package",
        "strata-store",
        "--no-default-features",
        "--lib",
        "--tests",
    ]))?;
    // Doc tests are not part of --all-targets.
    run_cmd(
        cargo()
            .current_dir(root)
            .args(["test", "--workspace", "--doc"]),
    )?;
    // The README's main job, end to end, then the official validator on what it wrote.
    let out = root.join("target/xtask-demo");
    let _ = std::fs::remove_dir_all(&out);
    run_cmd(
        cargo()
            .current_dir(root)
            .args([
                "run",
                "--quiet",
                "--package",
                "strata-cli",
                "--",
                "demo",
                "--out",
            ])
            .arg(&out),
    )?;
    run_cmd(Command::new(&validator).arg(&out))?;
    // Every fuzz target under libFuzzer for a short time, from its committed inputs (the
    // workspace's tests replayed them above without instrumentation).
    fuzz::run(root, &[], FUZZ_SECONDS, false)?;
    // Last, as it rebuilds strata with its crash points armed: SIGKILL at each point a
    // writing command passes (up to 2 passes per point; `cargo xtask failpoints` runs all).
    failpoint_matrix(root, 2)?;
    println!("xtask test: all checks passed");
    Ok(())
}

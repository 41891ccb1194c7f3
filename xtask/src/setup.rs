//! Installs what the tests and benchmarks need, when it is missing: Debian packages (apt-get,
//! as root) and a Python virtual environment at `.venv` with the pinned tools of
//! `xtask/requirements.txt`.

use crate::run_cmd;
use std::path::Path;
use std::process::Command;

/// Debian packages the tests need: git-annex for the DataLad calibration of the inode planner,
/// chromium to render the QC report headless, the HDF5 library for HDF5 input, Slurm and
/// munge for the one-node cluster `strata batch` submits to.
const APT_PACKAGES: &[&str] = &[
    "git-annex",
    "chromium",
    "libhdf5-dev",
    "pkg-config",
    "slurmctld",
    "slurmd",
    "slurm-client",
    "munge",
];

pub(crate) fn run(root: &Path) -> Result<(), String> {
    apt(APT_PACKAGES)?;
    // Node and npm (the browser test bundles zarrita from npm): the machine's own when on
    // PATH (not necessarily a Debian package), else Debian's.
    if !on_path("npm") || !on_path("node") {
        apt(&["nodejs", "npm"])?;
    }
    venv(root)
}

/// Whether `program` answers `--version` (that is: it is on PATH and runs).
fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub(crate) fn apt(packages: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg")
                .args(["-s", p])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    run_cmd(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    run_cmd(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn venv(root: &Path) -> Result<(), String> {
    let venv = root.join(".venv");
    let reqs_path = root.join("xtask/requirements.txt");
    let reqs =
        std::fs::read_to_string(&reqs_path).map_err(|e| format!("{}: {e}", reqs_path.display()))?;
    let marker = venv.join(".strata-requirements");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == reqs) {
        return Ok(());
    }
    if !venv.join("bin/python").exists() {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run_cmd(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
    }
    run_cmd(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "-r"])
            .arg(&reqs_path),
    )?;
    std::fs::write(&marker, reqs).map_err(|e| format!("{}: {e}", marker.display()))
}

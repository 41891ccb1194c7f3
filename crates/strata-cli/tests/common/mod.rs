//! Helpers shared by the command's integration tests (each test binary uses some of them).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `strata` binary under test.
pub(crate) fn strata() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strata"))
}

/// Runs `cmd` to completion, naming it if it cannot start.
pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// The standard error of a run, as text.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The datalad executable named by `STRATA_DATALAD`, when it and git-annex are installed;
/// `None` (the test is skipped) otherwise, and a failure instead when `STRATA_REQUIRE_PEERS`
/// is set (`cargo xtask test` sets both).
pub(crate) fn datalad() -> Option<PathBuf> {
    let required = std::env::var_os("STRATA_REQUIRE_PEERS").is_some();
    let Some(exe) = std::env::var_os("STRATA_DATALAD").map(PathBuf::from) else {
        assert!(
            !required,
            "STRATA_REQUIRE_PEERS is set but STRATA_DATALAD is not"
        );
        eprintln!("skipped: STRATA_DATALAD is not set (point it at a datalad executable)");
        return None;
    };
    let annex = Command::new("git").args(["annex", "version"]).output();
    let ok = exe.exists() && annex.is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !required,
            "datalad ({}) or git-annex missing",
            exe.display()
        );
        eprintln!("skipped: datalad ({}) or git-annex missing", exe.display());
        return None;
    }
    Some(exe)
}

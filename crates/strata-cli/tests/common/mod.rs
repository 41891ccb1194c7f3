//! Helpers shared by the command's integration tests (each test binary uses some of them).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The `strata` binary under test.
pub(crate) fn strata() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strata"))
}

/// `strata convert <zstack> --bids-root <bids>`; the caller adds the section's flags.
pub(crate) fn convert(zstack: &Path, bids: &Path) -> Command {
    let mut c = strata();
    c.arg("convert").arg(zstack).arg("--bids-root").arg(bids);
    c
}

/// Runs `cmd` to completion, naming it if it cannot start.
pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// The standard error of a run, as text.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

//! Helpers shared by the command's integration tests (each test binary uses some of them);
//! what is not about the `strata` binary itself comes from `strata_testkit`.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

// Not every test binary uses both.
#[allow(unused_imports)]
pub(crate) use strata_testkit::{run, stderr};

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

/// Writes a synthetic z-stack into the folder `raw` with `strata sample <args> <raw>` and
/// checks that it succeeded.
pub(crate) fn sample(raw: &Path, args: &[&str]) -> Output {
    strata_testkit::run_ok(strata().arg("sample").args(args).arg(raw))
}

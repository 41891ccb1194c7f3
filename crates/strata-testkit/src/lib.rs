//! Test support shared by the Strata crates' integration tests.
//!
//! Tests that compare Strata with a peer (a Python reader, the official BIDS validator,
//! DataLad, an S3 server) find it through an environment variable that `cargo xtask test`
//! sets. Without the variable the test is skipped and says so; with `STRATA_REQUIRE_PEERS`
//! set (as `cargo xtask test` does) a missing peer is a failure, so a CI run never passes by
//! skipping.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

/// The variable that turns a missing peer from a skip into a failure.
pub const REQUIRE_PEERS: &str = "STRATA_REQUIRE_PEERS";

/// The value of `var` (a peer's executable, endpoint, ...), or `None` when it is unset or
/// empty: the caller skips its test, and this prints why.
///
/// # Panics
/// When the peer is missing and [`REQUIRE_PEERS`] is set.
#[must_use]
pub fn peer(var: &str) -> Option<OsString> {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(v) => Some(v),
        None => {
            missing(&format!("{var} is not set"));
            None
        }
    }
}

/// The Python with the peer readers (`STRATA_PYTHON`), see [`peer`].
///
/// # Panics
/// As [`peer`].
#[must_use]
pub fn python() -> Option<PathBuf> {
    peer("STRATA_PYTHON").map(PathBuf::from)
}

/// The datalad executable (`STRATA_DATALAD`), when it exists and git-annex runs too; see
/// [`peer`].
///
/// # Panics
/// As [`peer`], also when the executable or git-annex is missing.
#[must_use]
pub fn datalad() -> Option<PathBuf> {
    let exe = PathBuf::from(peer("STRATA_DATALAD")?);
    let annex = Command::new("git").args(["annex", "version"]).output();
    if exe.exists() && annex.is_ok_and(|o| o.status.success()) {
        Some(exe)
    } else {
        missing(&format!(
            "datalad ({}) or git-annex is missing",
            exe.display()
        ));
        None
    }
}

/// Reports a missing peer: a skip, or a failure under [`REQUIRE_PEERS`].
///
/// # Panics
/// When [`REQUIRE_PEERS`] is set.
pub fn missing(what: &str) {
    assert!(
        std::env::var_os(REQUIRE_PEERS).is_none(),
        "{REQUIRE_PEERS} is set but {what}"
    );
    eprintln!("skipped: {what}");
}

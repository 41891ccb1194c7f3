//! Crash points for the reliability tests: [`failpoint`] marks a step that changes durable
//! state; a build with the `failpoints` feature kills its own process there (SIGKILL, as a
//! job time limit or a node failure would) when `STRATA_KILL_AT` names it.
//!
//! `STRATA_KILL_AT=<name>` kills at the first pass through the point, `<name>@<n>` at the
//! n-th (1-based), so that a point passed once per file (an atomic write) can be hit at
//! each file in turn. [`FAILPOINT_LOG`] records the points passed. Without the feature,
//! [`failpoint`] compiles to nothing.
//!
//! Written here rather than taken from the `fail` crate: its actions are a panic, an early
//! return, a sleep or a pause, none of which is a SIGKILL; what remains is a name lookup.

/// The environment variable that names the point to die at (`<name>` or `<name>@<n>`).
pub const KILL_AT: &str = "STRATA_KILL_AT";

/// The environment variable naming a file to which an armed build appends the name of every
/// point it passes, one per line: how a test learns which points a command passes and how
/// often, to kill it at each.
pub const FAILPOINT_LOG: &str = "STRATA_FAILPOINT_LOG";

/// Marks a step that changes durable state (see the module docs). `name` is dotted, crate
/// first: `fs.atomic.renamed`, `convert.published`.
#[inline(always)]
pub fn failpoint(name: &'static str) {
    #[cfg(feature = "failpoints")]
    armed::pass(name);
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

#[cfg(feature = "failpoints")]
mod armed {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// The point to die at and at which pass, read once from the environment.
    fn target() -> Option<&'static (String, u64)> {
        static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
        TARGET
            .get_or_init(|| {
                let spec = std::env::var(super::KILL_AT).ok()?;
                Some(match spec.split_once('@') {
                    Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
                    None => (spec, 1),
                })
            })
            .as_ref()
    }

    pub(super) fn pass(name: &'static str) {
        static LOG: OnceLock<Option<std::sync::Mutex<std::fs::File>>> = OnceLock::new();
        let log = LOG.get_or_init(|| {
            let path = std::env::var_os(super::FAILPOINT_LOG)?;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
                .map(std::sync::Mutex::new)
        });
        if let Some(Ok(mut f)) = log.as_ref().map(std::sync::Mutex::lock) {
            use std::io::Write as _;
            let _ = writeln!(f, "{name}");
        }
        static PASSES: AtomicU64 = AtomicU64::new(0);
        let Some((target, nth)) = target() else {
            return;
        };
        if target != name {
            return;
        }
        if PASSES.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
            eprintln!(
                "strata: {}={name}@{nth}: killing this process",
                super::KILL_AT
            );
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::KILL,
            );
            // The signal is delivered before kill(2) returns to a process that sends it
            // to itself; do not go on in any case.
            loop {
                std::thread::park();
            }
        }
    }
}

//! Calling the async store API from synchronous code (the converter's encoding threads, the
//! command line).

use std::future::Future;
use std::sync::OnceLock;

/// Runs `future` to completion on the calling thread and returns its output.
///
/// Backends that need tokio's reactor or blocking pool (object storage, POSIX files) find it:
/// the runtime current on this thread if there is one, else a process-wide one with one
/// worker thread, started on first use. Call it from plain threads (rayon's, `main`,
/// `spawn_blocking`), not from inside an async task: that would block the task's worker.
pub fn block_on<F: Future>(future: F) -> F::Output {
    if tokio::runtime::Handle::try_current().is_ok() {
        return futures::executor::block_on(future);
    }
    match runtime() {
        Some(rt) => {
            let _entered = rt.enter();
            futures::executor::block_on(future)
        }
        // No runtime could be started (no thread to spare): backends that need one fail
        // with tokio's own message; the others still run.
        None => futures::executor::block_on(future),
    }
}

fn runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("strata-store")
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
}

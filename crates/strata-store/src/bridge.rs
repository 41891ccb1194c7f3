//! Calling the async store API from synchronous code (the converter's encoding threads, the
//! command line).

use std::future::Future;
use std::sync::{Mutex, PoisonError};

/// Runs `future` to completion on the calling thread and returns its output.
///
/// Backends that need tokio's reactor or blocking pool (object storage, POSIX files) find it:
/// the runtime current on this thread if there is one, else a process-wide one with one
/// worker thread, started on first use (by each process: a child made by `fork`, such as a
/// PyTorch loader worker, inherits no threads, so it starts its own). Call it from plain threads (rayon's, `main`,
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
    // The process that started the runtime, and the runtime (leaked: it lives as long as the
    // process; one inherited through fork is left alone, its threads do not exist there).
    static RUNTIME: Mutex<Option<(u32, Option<&'static tokio::runtime::Runtime>)>> =
        Mutex::new(None);
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((owner, rt)) = *slot
        && owner == pid
    {
        return rt;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("strata-store")
        .enable_all()
        .build()
        .ok()
        .map(|rt| &*Box::leak(Box::new(rt)));
    *slot = Some((pid, rt));
    rt
}

//! Per-process scratch folders of the targets that need real files.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, also after a panic of an earlier input (the replay test goes on after one to
/// name the input; libFuzzer stops at the first).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An empty folder `<tmp>/strata-fuzz/<target>-<pid>` for this process. Folders left by
/// processes that are gone (libFuzzer exits without running destructors) are removed first.
pub(crate) fn folder(target: &str) -> PathBuf {
    let base = std::env::temp_dir().join("strata-fuzz");
    let pid = std::process::id();
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let owner = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
            if let Some(owner) = owner
                && owner != pid
                && !Path::new("/proc").join(owner.to_string()).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = base.join(format!("{target}-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create the scratch folder {}: {e}", dir.display()));
    dir
}

/// Writes `bytes` to `path`; a harness failure (not the code under test) if it cannot.
pub(crate) fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

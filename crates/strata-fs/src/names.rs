//! The one naming convention for transient files.
//!
//! A file (or folder) being written is named `.<target name>.strata-tmp-<pid>-<n>` beside its
//! target: hidden (listings, BIDS validators and `ls` skip it), unique per process and write,
//! and recognisable by [`is_temp_name`] so that store listings skip it and a later run can
//! remove what a killed one left ([`remove_stale_temps`]). The lock file of a locked update is
//! `.<target name>.lock`. [`TEMP_GLOBS`] matches both, for exclude lists (`.gitignore`,
//! `.git/info/exclude`, rsync filters).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The marker inside every temporary name: `.<name>.strata-tmp-<pid>-<n>`. Names that hold it
/// are never published objects, so stores reject keys that contain it.
pub const TEMP_MARKER: &str = ".strata-tmp-";

/// The suffix of lock files: `.<name>.lock`, beside the file they guard. Lock files stay in
/// place (removing one would let a waiting process lock an unlinked inode).
pub const LOCK_SUFFIX: &str = ".lock";

/// Glob patterns matching every temporary and lock file this crate names, for exclude lists.
pub const TEMP_GLOBS: [&str; 2] = [".*.strata-tmp-*", ".*.lock"];

/// Glob patterns of the hidden folders a conversion stages an image in
/// (`.<image>.partial`, being written; `.<image>.replaced`, the earlier image while the new
/// one is renamed into place): see [`partial_name`] and [`replaced_name`].
pub const STAGED_GLOBS: [&str; 2] = [".*.partial", ".*.replaced"];

/// Every pattern an exclude list needs: [`TEMP_GLOBS`] and [`STAGED_GLOBS`].
#[must_use]
pub fn exclude_globs() -> Vec<&'static str> {
    TEMP_GLOBS.iter().chain(&STAGED_GLOBS).copied().collect()
}

/// The hidden name an image named `name` is written under before it is published.
#[must_use]
pub fn partial_name(name: &str) -> String {
    format!(".{name}.partial")
}

/// The hidden name an earlier image named `name` is moved to while the new one replaces it.
#[must_use]
pub fn replaced_name(name: &str) -> String {
    format!(".{name}.replaced")
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The file name of `target` (empty when it has none).
fn file_name_of(target: &Path) -> &OsStr {
    target.file_name().unwrap_or_default()
}

/// A fresh temporary name beside `target`: `.<name>.strata-tmp-<pid>-<n>`, unique within
/// this process (a counter) and across processes (the process id).
#[must_use]
pub fn temp_name(target: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = OsString::from(".");
    name.push(file_name_of(target));
    name.push(format!("{TEMP_MARKER}{}-{n}", std::process::id()));
    target.with_file_name(name)
}

/// The lock file guarding `target`: `.<name>.lock` beside it.
#[must_use]
pub fn lock_name(target: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(file_name_of(target));
    name.push(LOCK_SUFFIX);
    target.with_file_name(name)
}

/// Whether a file name (not a path) is a temporary name made by [`temp_name`].
#[must_use]
pub fn is_temp_name(name: impl AsRef<OsStr>) -> bool {
    let bytes = name.as_ref().as_encoded_bytes();
    bytes.first() == Some(&b'.')
        && bytes
            .windows(TEMP_MARKER.len())
            .any(|w| w == TEMP_MARKER.as_bytes())
}

/// Whether a file name (not a path) is a temporary name of the target named `target_name`.
#[must_use]
pub fn is_temp_of(name: impl AsRef<OsStr>, target_name: impl AsRef<OsStr>) -> bool {
    let name = name.as_ref().as_encoded_bytes();
    let target = target_name.as_ref().as_encoded_bytes();
    name.strip_prefix(b".")
        .and_then(|n| n.strip_prefix(target))
        .is_some_and(|rest| rest.starts_with(TEMP_MARKER.as_bytes()))
}

/// Whether a file name (not a path) is a lock file name made by [`lock_name`].
#[must_use]
pub fn is_lock_name(name: impl AsRef<OsStr>) -> bool {
    let bytes = name.as_ref().as_encoded_bytes();
    bytes.len() > 1 + LOCK_SUFFIX.len()
        && bytes.first() == Some(&b'.')
        && bytes.ends_with(LOCK_SUFFIX.as_bytes())
}

/// Removes the temporaries (files or whole folders) that interrupted writes of `target` left
/// beside it, and returns how many were removed. Call it only while nothing else writes
/// `target`: a write in flight would lose its temporary.
///
/// # Errors
/// [`Error::Io`] naming the folder that cannot be listed or the entry that cannot be
/// removed. A missing folder is not an error (nothing to remove).
pub fn remove_stale_temps(target: &Path) -> Result<u64> {
    let Some(name) = target.file_name() else {
        return Ok(0);
    };
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let entries = match fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("listing", parent, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", parent, e))?;
        if !is_temp_of(entry.file_name(), name) {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let result = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match result {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("removing", &path, e)),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_hidden_unique_and_recognised() {
        let a = temp_name(Path::new("/data/samples.tsv"));
        let b = temp_name(Path::new("/data/samples.tsv"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/data")));
        let name = a.file_name().expect("name");
        assert!(
            name.to_string_lossy()
                .starts_with(".samples.tsv.strata-tmp-")
        );
        assert!(is_temp_name(name));
        assert!(is_temp_of(name, "samples.tsv"));
        assert!(!is_temp_of(name, "samples"));
        assert!(!is_temp_of(name, "samples.tsv.x"));
        assert!(!is_temp_name("samples.tsv"));
        assert!(!is_temp_name("x.strata-tmp-1-2"), "temporaries are hidden");
        assert!(!is_temp_name(".samples.tsv.lock"));
        // Relative targets stay relative.
        let rel = temp_name(Path::new("x.json"));
        assert_eq!(rel.parent(), Some(Path::new("")));
        assert!(is_temp_name(rel.as_os_str()));
    }

    #[test]
    fn lock_names() {
        let l = lock_name(Path::new("a/participants.tsv"));
        assert_eq!(l, Path::new("a/.participants.tsv.lock"));
        assert!(is_lock_name(l.file_name().expect("name")));
        assert!(!is_lock_name(".lock"));
        assert!(!is_lock_name("x.lock"));
        assert!(!is_temp_name(l.file_name().expect("name")));
    }

    /// A minimal glob matcher (`*` only) to check that the patterns match the names.
    fn glob(pattern: &[u8], name: &[u8]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some((b'*', rest)) => (0..=name.len()).any(|i| glob(rest, &name[i..])),
            Some((c, rest)) => name.first() == Some(c) && glob(rest, &name[1..]),
        }
    }

    #[test]
    fn globs_match_every_transient_name() {
        let target = Path::new("d/sub-01_sample-A_BF.ome.zarr");
        for name in [temp_name(target), lock_name(target)] {
            let name = name
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            assert!(
                TEMP_GLOBS
                    .iter()
                    .any(|g| glob(g.as_bytes(), name.as_bytes())),
                "{name}"
            );
        }
        for kept in ["sub-01_sample-A_BF.ome.zarr", "samples.tsv", ".bidsignore"] {
            assert!(
                !TEMP_GLOBS
                    .iter()
                    .any(|g| glob(g.as_bytes(), kept.as_bytes())),
                "{kept}"
            );
        }
    }

    #[test]
    fn stale_temps_are_removed_files_and_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("img.ome.zarr");
        fs::write(temp_name(&target), b"x").expect("write");
        let folder = temp_name(&target);
        fs::create_dir_all(folder.join("0")).expect("mkdir");
        fs::write(folder.join("0/c"), b"x").expect("write");
        let other = temp_name(&dir.path().join("other"));
        fs::write(&other, b"x").expect("write");
        fs::write(&target, b"kept").expect("write");
        assert_eq!(remove_stale_temps(&target).expect("remove"), 2);
        assert!(other.exists());
        assert!(target.exists());
        assert_eq!(remove_stale_temps(&target).expect("remove"), 0);
        assert_eq!(
            remove_stale_temps(&dir.path().join("missing/x")).expect("missing folder"),
            0
        );
    }
}

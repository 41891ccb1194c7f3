//! The validation cache: the content checks' verdicts on an image, kept across runs and reused
//! while the image and its sidecars are unchanged.
//!
//! A daily validation of a growing repository then reads the metadata of the new and changed
//! images only; the BIDS rules (names, sidecars, tables) still run on the whole dataset, so
//! the report is the one a full run gives.
//!
//! An entry's key is a SHA-256 over the image's location, its merged sidecar, the checks'
//! [`cache_id`](super::DataCheck::cache_id)s and the fingerprint the walk takes of its files
//! (each file's name, size, inode, device, modification and change time, as git's index
//! does). A file rewritten in place changes its change time, which no tool can set back. As
//! in git, an image changed less than [`RACY_NS`] before the run started is not stored: a
//! later write in the same timestamp tick would leave its fingerprint unchanged.

use super::{Found, Issue, Stamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The cache file's format; a file of another format is discarded and rebuilt.
const FORMAT: u32 = 1;

/// Images changed within this long before the run (ns) are checked, not stored: file
/// systems keep coarse timestamps (ext4 a clock tick, some network file systems a second).
pub(crate) const RACY_NS: i128 = 2_000_000_000;

/// Largest cache file read (a brain of 7,000 sections needs about 1 MiB).
const MAX_CACHE_BYTES: u64 = 256 << 20;

/// How a run used the cache, in [`Report::cache`](super::Report::cache).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// The cache file.
    pub path: PathBuf,
    /// Images whose content checks were taken from the cache.
    pub reused: usize,
    /// Images whose content checks ran.
    pub checked: usize,
    /// Entries written back (every image seen, but those changed just before the run).
    pub stored: usize,
    /// Why the cache file could not be used, if it could not (it is then rewritten).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discarded: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    images: HashMap<String, Vec<Issue>>,
}

/// The cache during one run: the entries read, and those to write back.
pub(crate) struct Cache {
    path: PathBuf,
    /// `None`: some check has no cache id, so nothing is reused or stored.
    checks_id: Option<String>,
    old: HashMap<String, Vec<Issue>>,
    new: Mutex<HashMap<String, Vec<Issue>>>,
    started_ns: i128,
    stats: Mutex<CacheStats>,
}

impl Cache {
    /// Reads the cache at `path` (a missing file is an empty cache; an unreadable or damaged
    /// one is discarded, and says why in the stats).
    pub(crate) fn open(path: &Path, checks_id: Option<String>) -> Self {
        let started_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
        let mut stats = CacheStats {
            path: path.to_owned(),
            ..CacheStats::default()
        };
        let old = match read(path) {
            Ok(images) => images,
            Err(why) => {
                stats.discarded = Some(why);
                HashMap::new()
            }
        };
        Self {
            path: path.to_owned(),
            checks_id,
            old,
            new: Mutex::new(HashMap::new()),
            started_ns,
            stats: Mutex::new(stats),
        }
    }

    /// The key of an image's entry, if its verdicts may be cached.
    pub(crate) fn key(&self, f: &Found, merged: &Map<String, Value>) -> Option<String> {
        let checks = self.checks_id.as_ref()?;
        let stamp: &Stamp = f.stamp.as_ref()?;
        let mut h = Sha256::new();
        h.update(FORMAT.to_le_bytes());
        for part in [checks.as_bytes(), f.rel.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(stamp.digest);
        h.update(serde_json::to_vec(merged).unwrap_or_default());
        Some(
            h.finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        )
    }

    /// The cached verdicts under `key`, counted as reused.
    pub(crate) fn get(&self, key: &str) -> Option<Vec<Issue>> {
        let issues = self.old.get(key)?.clone();
        self.lock_stats().reused += 1;
        Some(issues)
    }

    /// Records fresh verdicts on an image (`key` from [`Cache::key`]), kept for the next run
    /// unless the image changed just before this one.
    pub(crate) fn put(&self, key: Option<String>, f: &Found, issues: &[Issue]) {
        self.lock_stats().checked += 1;
        let (Some(key), Some(stamp)) = (key, f.stamp.as_ref()) else {
            return;
        };
        if stamp.newest_ns < self.started_ns - RACY_NS {
            self.lock_new().insert(key, issues.to_vec());
        }
    }

    /// Keeps a reused entry for the next run.
    pub(crate) fn keep(&self, key: String, issues: &[Issue]) {
        self.lock_new().insert(key, issues.to_vec());
    }

    /// Writes the entries of this run (only: images gone from the dataset drop out)
    /// atomically and returns the run's stats.
    pub(crate) fn save(self) -> crate::Result<CacheStats> {
        let images = self.new.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut stats = self.stats.into_inner().unwrap_or_else(|p| p.into_inner());
        stats.stored = images.len();
        let bytes = serde_json::to_vec(&File {
            format: FORMAT,
            images,
        })
        .map_err(|source| crate::Error::Json {
            path: self.path.clone(),
            source,
        })?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
        }
        strata_fs::write_atomic(&self.path, &bytes)?;
        Ok(stats)
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, CacheStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_new(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Issue>>> {
        self.new.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The entries of the cache file at `path`, or why they cannot be used.
fn read(path: &Path) -> Result<HashMap<String, Vec<Issue>>, String> {
    use std::io::Read as _;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    let mut bytes = Vec::new();
    file.take(MAX_CACHE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() as u64 > MAX_CACHE_BYTES {
        return Err(format!(
            "is larger than {} MiB, which no cache needs",
            MAX_CACHE_BYTES >> 20
        ));
    }
    let file: File =
        serde_json::from_slice(&bytes).map_err(|e| format!("is not a validation cache: {e}"))?;
    if file.format != FORMAT {
        return Err(format!(
            "has format {}, this version writes {FORMAT}",
            file.format
        ));
    }
    Ok(file.images)
}

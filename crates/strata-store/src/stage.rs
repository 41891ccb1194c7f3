//! Staging: copy a dataset (or one section) between stores in parallel, verify every object
//! by SHA-256 (the checksum git-annex uses for its `SHA256E` keys), and record finished
//! objects in a journal so an interrupted stage resumes without copying them again.
//!
//! The journal is a local text file: a header naming the source and destination, then one
//! line per verified object, `<sha256>\t<size>\t<destination key>` (keys never contain tabs
//! or newlines). On resume an object is skipped when the journal lists it with the source's
//! size and the destination still holds an object of that size; anything else is copied
//! again (puts replace whole objects, so nothing is ever doubled).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::copy::{hex, sha256_object_ranged};
use crate::error::{Error, Result};
use crate::key::StoreKey;
use crate::ozx::{OzxOptions, OzxStore, OzxWriter};
use crate::posix::{PosixOptions, PosixStore};
use crate::traits::{ListableStore, ObjectMeta, ReadableStore, Store, WritableStore};

/// Callback for progress: called with the bytes of each object when it is done (copied and
/// verified, or skipped).
pub type ProgressFn = Arc<dyn Fn(&StoreKey, u64) + Send + Sync>;

/// Options of [`stage`].
#[derive(Clone)]
#[non_exhaustive]
pub struct StageOptions {
    /// Objects copied at once.
    pub concurrency: usize,
    /// Objects larger than this are copied and verified in pieces of this size (memory per
    /// object in flight is one piece).
    pub piece_size: u64,
    /// Read every copied object back from the destination and compare checksums.
    pub verify: bool,
    /// Resume journal (a local file); `None` copies everything.
    pub journal: Option<PathBuf>,
    /// Only list and count what would be copied.
    pub dry_run: bool,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for StageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageOptions")
            .field("concurrency", &self.concurrency)
            .field("piece_size", &self.piece_size)
            .field("verify", &self.verify)
            .field("journal", &self.journal)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

impl Default for StageOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            piece_size: 8 << 20,
            verify: true,
            journal: None,
            dry_run: false,
            progress: None,
        }
    }
}

impl StageOptions {
    /// Sets the number of objects copied at once (at least 1).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }
    /// Sets the piece size for large objects (at least 64 KiB).
    #[must_use]
    pub fn piece_size(mut self, bytes: u64) -> Self {
        self.piece_size = bytes.max(64 << 10);
        self
    }
    /// Turns read-back verification on or off.
    #[must_use]
    pub fn verify(mut self, on: bool) -> Self {
        self.verify = on;
        self
    }
    /// Sets the resume journal file.
    #[must_use]
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }
    /// Turns dry-run on or off.
    #[must_use]
    pub fn dry_run(mut self, on: bool) -> Self {
        self.dry_run = on;
        self
    }
    /// Sets the progress callback.
    #[must_use]
    pub fn progress(mut self, f: ProgressFn) -> Self {
        self.progress = Some(f);
        self
    }
}

/// What a stage did.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct StageSummary {
    /// Objects under the source prefix.
    pub objects: u64,
    /// Their total size.
    pub bytes: u64,
    /// Objects copied in this run.
    pub copied: u64,
    /// Bytes copied in this run.
    pub copied_bytes: u64,
    /// Objects skipped because the journal shows them finished.
    pub skipped: u64,
    /// Objects whose destination checksum was read back and matched in this run.
    pub verified: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Whether this was a dry run (nothing copied).
    pub dry_run: bool,
}

impl StageSummary {
    /// The summary as one JSON object (for `--json`).
    #[must_use]
    pub fn to_json(&self) -> String {
        format!(
            "{{\"objects\":{},\"bytes\":{},\"copied\":{},\"copied_bytes\":{},\"skipped\":{},\"verified\":{},\"seconds\":{:.3},\"dry_run\":{}}}",
            self.objects,
            self.bytes,
            self.copied,
            self.copied_bytes,
            self.skipped,
            self.verified,
            self.seconds,
            self.dry_run
        )
    }
}

fn journal_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        op: "journal",
        key: String::new(),
        path: path.to_owned(),
        source: e,
    }
}

struct Journal {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    done: HashMap<String, (u64, String)>,
}

impl Journal {
    fn open(path: &Path, header: &str) -> Result<Self> {
        let mut done = HashMap::new();
        let exists = path.exists();
        if exists {
            let f = std::fs::File::open(path).map_err(|e| journal_err(path, e))?;
            let mut lines = std::io::BufReader::new(f).lines();
            let first = lines.next().transpose().map_err(|e| journal_err(path, e))?;
            if first.as_deref() != Some(header) {
                return Err(Error::Config {
                    reason: format!(
                        "journal {path:?} belongs to another stage (its header is {first:?}, this stage's is {header:?}); use another journal file or delete it"
                    ),
                });
            }
            for line in lines {
                let line = line.map_err(|e| journal_err(path, e))?;
                // A line cut short by a crash is ignored: that object is copied again.
                let mut parts = line.splitn(3, '\t');
                if let (Some(sha), Some(size), Some(key)) =
                    (parts.next(), parts.next(), parts.next())
                    && sha.len() == 64
                    && let Ok(size) = size.parse::<u64>()
                {
                    done.insert(key.to_owned(), (size, sha.to_owned()));
                }
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| journal_err(path, e))?;
        if !exists {
            writeln!(file, "{header}").map_err(|e| journal_err(path, e))?;
        }
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(file),
            done,
        })
    }

    fn record(&self, key: &StoreKey, size: u64, sha: &str) -> Result<()> {
        let mut f = self.file.lock().map_err(|_| Error::Config {
            reason: format!("journal {:?} is unusable after a panic", self.path),
        })?;
        // One write per line (O_APPEND): a crash loses at most the line being written.
        f.write_all(format!("{sha}\t{size}\t{key}\n").as_bytes())
            .and_then(|()| f.flush())
            .map_err(|e| journal_err(&self.path, e))
    }
}

/// Copies one object, hashing the source bytes on the way.
async fn copy_hashed<S, D>(
    src: &S,
    skey: &StoreKey,
    size: u64,
    dst: &D,
    dkey: &StoreKey,
    piece: u64,
) -> Result<String>
where
    S: ReadableStore + ?Sized,
    D: WritableStore + ?Sized,
{
    let changed = |got: u64| Error::Corrupt {
        what: format!("source object {skey:?}"),
        reason: format!(
            "it changed during the stage (listed with {size} bytes, read {got}); stage again"
        ),
    };
    let mut h = Sha256::new();
    if size <= piece {
        let b = src.get(skey).await?;
        if b.len() as u64 != size {
            return Err(changed(b.len() as u64));
        }
        h.update(&b);
        dst.put(dkey, b).await?;
    } else {
        let mut s = dst.put_stream(dkey).await?;
        if let Err(e) =
            crate::copy::copy_object(src, skey, size, s.as_mut(), piece, Some(&mut h)).await
        {
            let _ = s.abort().await;
            return Err(e);
        }
        s.complete().await?;
    }
    Ok(hex(&h.finalize()))
}

fn rel_key(
    m: &ObjectMeta,
    src_prefix: Option<&StoreKey>,
    dst_prefix: Option<&StoreKey>,
) -> Result<StoreKey> {
    let rel = m.key.strip(src_prefix).ok_or_else(|| Error::Corrupt {
        what: format!(
            "listing of {:?}",
            src_prefix.map(StoreKey::as_str).unwrap_or_default()
        ),
        reason: format!(
            "it returned {:?}, which is not under the prefix",
            m.key.as_str()
        ),
    })?;
    match dst_prefix {
        Some(p) => p.join(rel),
        None => StoreKey::new(rel),
    }
}

/// Copies every object under `src_prefix` of `src` to `dst` under `dst_prefix` (keys keep
/// their path relative to the prefixes), in parallel, verified by SHA-256, resumable through
/// the journal in `options`.
///
/// # Errors
/// The first failure (naming the object and the store); objects finished before it are in
/// the journal, so running the same stage again resumes.
pub async fn stage<S, D>(
    src: &S,
    src_prefix: Option<&StoreKey>,
    dst: &D,
    dst_prefix: Option<&StoreKey>,
    options: &StageOptions,
) -> Result<StageSummary>
where
    S: ReadableStore + ListableStore + ?Sized,
    D: Store + ?Sized,
{
    let t0 = Instant::now();
    let list = src.list(src_prefix).await?;
    let mut summary = StageSummary {
        objects: list.len() as u64,
        bytes: list.iter().map(|m| m.size).sum(),
        dry_run: options.dry_run,
        ..StageSummary::default()
    };
    if options.dry_run {
        summary.seconds = t0.elapsed().as_secs_f64();
        return Ok(summary);
    }
    let header = format!(
        "# strata-stage-journal v1\tsrc={}/{}\tdst={}/{}",
        src.location(),
        src_prefix.map(StoreKey::as_str).unwrap_or_default(),
        dst.location(),
        dst_prefix.map(StoreKey::as_str).unwrap_or_default()
    )
    .replace('\n', " ");
    let journal = match &options.journal {
        Some(p) => Some(Journal::open(p, &header)?),
        None => None,
    };
    let piece = options.piece_size;
    let journal = journal.as_ref();
    let jobs = list.iter().map(|m| async move {
        let dkey = rel_key(m, src_prefix, dst_prefix)?;
        if let Some(j) = journal
            && j.done.get(dkey.as_str()).is_some_and(|(size, _)| *size == m.size)
            && dst.size(&dkey).await.ok() == Some(m.size)
        {
            if let Some(p) = &options.progress {
                p(&m.key, m.size);
            }
            return Ok::<_, Error>((false, false, 0));
        }
        let sha = copy_hashed(src, &m.key, m.size, dst, &dkey, piece).await?;
        strata_fs::failpoint("stage.copied");
        if options.verify {
            let (back, n) = sha256_object_ranged(dst, &dkey, m.size, piece).await?;
            if back != sha || n != m.size {
                return Err(Error::Corrupt {
                    what: format!("staged object {dkey:?} in {}", dst.location()),
                    reason: format!("checksum mismatch: source sha256 {sha} ({} bytes), destination sha256 {back} ({n} bytes)", m.size),
                });
            }
        }
        if let Some(j) = journal {
            j.record(&dkey, m.size, &sha)?;
            strata_fs::failpoint("stage.journaled");
        }
        if let Some(p) = &options.progress {
            p(&m.key, m.size);
        }
        Ok((true, options.verify, m.size))
    });
    let mut results = futures::stream::iter(jobs).buffer_unordered(options.concurrency.max(1));
    let mut first_err = None;
    while let Some(r) = results.next().await {
        match r {
            Ok((true, verified, bytes)) => {
                summary.copied += 1;
                summary.copied_bytes += bytes;
                summary.verified += u64::from(verified);
            }
            Ok((false, _, _)) => summary.skipped += 1,
            Err(e) => {
                // Stop: copies in flight are cancelled and not journaled, so a rerun redoes them.
                if first_err.is_none() {
                    first_err = Some(e);
                }
                break;
            }
        }
    }
    drop(results);
    if let Some(e) = first_err {
        return Err(e);
    }
    summary.seconds = t0.elapsed().as_secs_f64();
    Ok(summary)
}

/// Packs everything under `src_prefix` into a new `.ozx` archive (metadata first, see
/// [`crate::ozx::pack`]), then verifies every entry of the archive against the source by
/// SHA-256. An archive is all-or-nothing, so there is no journal.
///
/// # Errors
/// The first read, write or verification error; the archive is not published then (or is
/// reported as not matching).
pub async fn stage_to_ozx<S, D>(
    src: &S,
    src_prefix: Option<&StoreKey>,
    dst: Arc<D>,
    archive: &StoreKey,
    options: &StageOptions,
) -> Result<StageSummary>
where
    S: ReadableStore + ListableStore + ?Sized,
    D: ReadableStore + WritableStore + 'static,
{
    let t0 = Instant::now();
    let list = src.list(src_prefix).await?;
    let mut summary = StageSummary {
        objects: list.len() as u64,
        bytes: list.iter().map(|m| m.size).sum(),
        dry_run: options.dry_run,
        ..StageSummary::default()
    };
    if options.dry_run {
        summary.seconds = t0.elapsed().as_secs_f64();
        return Ok(summary);
    }
    let mut ordered: Vec<(&str, &ObjectMeta)> = list
        .iter()
        .filter_map(|m| m.key.strip(src_prefix).map(|rel| (rel, m)))
        .collect();
    ordered.sort_by(|a, b| crate::ozx::cd_order(a.0, b.0));
    let writer = OzxWriter::create(dst.as_ref(), archive, OzxOptions::default()).await?;
    let mut hashes = Vec::with_capacity(ordered.len());
    for (rel, m) in ordered {
        let inner = StoreKey::new(rel)?;
        let sha = copy_hashed(src, &m.key, m.size, &writer, &inner, options.piece_size).await?;
        hashes.push((inner, m.size, sha));
        strata_fs::failpoint("stage.ozx.entry-copied");
        if let Some(p) = &options.progress {
            p(&m.key, m.size);
        }
    }
    writer.finish().await?;
    strata_fs::failpoint("stage.ozx.published");
    summary.copied = hashes.len() as u64;
    summary.copied_bytes = summary.bytes;
    if options.verify {
        let store = OzxStore::open(dst as Arc<dyn ReadableStore>, archive.clone()).await?;
        for (inner, size, sha) in &hashes {
            let (back, n) = sha256_object_ranged(&store, inner, *size, options.piece_size).await?;
            if &back != sha || n != *size {
                return Err(Error::Corrupt {
                    what: format!("entry {inner:?} of archive {archive:?}"),
                    reason: format!(
                        "checksum mismatch: source sha256 {sha}, archive sha256 {back}"
                    ),
                });
            }
            summary.verified += 1;
        }
    }
    summary.seconds = t0.elapsed().as_secs_f64();
    Ok(summary)
}

/// Where a stage reads or writes, parsed from a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUrl {
    /// `file:///path` (or a plain path): a POSIX directory.
    File(PathBuf),
    /// `s3://bucket[/prefix]`: endpoint, region and credentials from the environment
    /// (`STRATA_S3_ENDPOINT` or `AWS_ENDPOINT_URL`, `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`).
    S3 {
        /// The bucket.
        bucket: String,
        /// Key prefix inside the bucket.
        prefix: Option<StoreKey>,
    },
    /// `zip:///path/x.ozx`: a single-file OME-Zarr archive.
    Zip(PathBuf),
}

impl FromStr for StoreUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config {
            reason: format!(
                "cannot use {s:?} as a store URL: {why}; use file:///path, s3://bucket/prefix or zip:///path/x.ozx"
            ),
        };
        if let Some(rest) = s.strip_prefix("s3://") {
            let rest = rest.trim_end_matches('/');
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket"));
            }
            let prefix = if prefix.is_empty() {
                None
            } else {
                Some(StoreKey::new(prefix)?)
            };
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix,
            });
        }
        if let Some(rest) = s.strip_prefix("zip://") {
            if rest.is_empty() {
                return Err(bad("no archive path"));
            }
            return Ok(Self::Zip(PathBuf::from(rest)));
        }
        if let Some(rest) = s.strip_prefix("file://") {
            if rest.is_empty() {
                return Err(bad("no path"));
            }
            return Ok(Self::File(PathBuf::from(rest)));
        }
        if s.contains("://") {
            return Err(bad("unknown scheme"));
        }
        if s.is_empty() {
            return Err(bad("empty"));
        }
        Ok(Self::File(PathBuf::from(s)))
    }
}

fn split_archive(path: &Path) -> Result<(PathBuf, StoreKey)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Config {
            reason: format!("archive path {path:?} has no file name"),
        })?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((dir.to_owned(), StoreKey::new(name)?))
}

#[cfg(feature = "object-store")]
fn s3(bucket: &str) -> Result<crate::object::ObjectStoreBackend> {
    crate::object::ObjectStoreBackend::s3(&crate::object::S3Options::from_env(bucket))
}

/// Stages from one URL to another (what `strata stage SRC DST` runs).
///
/// # Errors
/// As [`stage`] and [`stage_to_ozx`]; [`Error::Config`] for unusable URLs (a zip archive
/// as the source is read-only and fine; S3 needs the `object-store` feature).
pub async fn stage_urls(
    src: &StoreUrl,
    dst: &StoreUrl,
    options: &StageOptions,
) -> Result<StageSummary> {
    match src {
        StoreUrl::File(p) => {
            let s = PosixStore::open(p)?;
            stage_from(&s, None, dst, options).await
        }
        StoreUrl::Zip(p) => {
            let (dir, key) = split_archive(p)?;
            let posix: Arc<dyn ReadableStore> = Arc::new(PosixStore::open(dir)?);
            let s = OzxStore::open(posix, key).await?;
            stage_from(&s, None, dst, options).await
        }
        #[cfg(feature = "object-store")]
        StoreUrl::S3 { bucket, prefix } => {
            let s = s3(bucket)?;
            stage_from(&s, prefix.as_ref(), dst, options).await
        }
        #[cfg(not(feature = "object-store"))]
        StoreUrl::S3 { .. } => Err(Error::Config {
            reason: "S3 needs the object-store feature".into(),
        }),
    }
}

async fn stage_from<S>(
    src: &S,
    src_prefix: Option<&StoreKey>,
    dst: &StoreUrl,
    options: &StageOptions,
) -> Result<StageSummary>
where
    S: ReadableStore + ListableStore + ?Sized,
{
    match dst {
        StoreUrl::File(p) => {
            let d = if options.dry_run {
                PosixStore::open(p)?
            } else {
                PosixStore::create(p, PosixOptions::default())?
            };
            let summary = stage(src, src_prefix, &d, None, options).await?;
            if !options.dry_run {
                // Temporaries of an earlier, killed stage into the same folder.
                d.remove_temps_under(None)?;
            }
            Ok(summary)
        }
        StoreUrl::Zip(p) => {
            let (dir, key) = split_archive(p)?;
            let d = Arc::new(PosixStore::create(dir, PosixOptions::default())?);
            if !options.dry_run {
                // The archive of an earlier, killed stage.
                d.remove_stale_temps(&key)?;
            }
            stage_to_ozx(src, src_prefix, d, &key, options).await
        }
        #[cfg(feature = "object-store")]
        StoreUrl::S3 { bucket, prefix } => {
            let d = s3(bucket)?;
            stage(src, src_prefix, &d, prefix.as_ref(), options).await
        }
        #[cfg(not(feature = "object-store"))]
        StoreUrl::S3 { .. } => Err(Error::Config {
            reason: "S3 needs the object-store feature".into(),
        }),
    }
}

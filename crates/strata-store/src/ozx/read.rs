//! Reading an archive: [`OzxStore`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex as StdMutex, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    CENTRAL_SIG, DEFAULT_MAX_CENTRAL_DIRECTORY, EOCD_LEN, EOCD_SIG, EOCD64_LEN, EOCD64_SIG,
    LOCAL_SIG, LOCATOR64_LEN, LOCATOR64_SIG,
};
use crate::error::{Error, Result};
use crate::key::StoreKey;
use crate::traits::{
    ByteRange, DynObjectReader, ListableStore, ObjectHead, ObjectMeta, ObjectReader, ReadableStore,
};

#[derive(Clone, Debug)]
struct ReadEntry {
    size: u64,
    header_offset: u64,
    method: u16,
    crc: u32,
}

/// A read-only store over one `.ozx` (or any ZIP) archive stored under a key of any
/// readable store. Stored (uncompressed) entries are read with ranged reads; compressed
/// entries are listed but reading them fails with [`Error::Unsupported`].
pub struct OzxStore {
    src: Arc<dyn ReadableStore>,
    key: StoreKey,
    entries: HashMap<String, ReadEntry>,
    order: Vec<String>,
    comment: String,
    cd_end: u64,
    /// The archive's own head when it was opened.
    archive: ObjectHead,
    data_offsets: StdMutex<HashMap<String, u64>>,
    /// The archive opened once for blocking reads, where the source store can
    /// ([`ReadableStore::open_blocking`]) and it is still the version whose directory was
    /// read; `None` otherwise (reads then go through the source store by key).
    file: OnceLock<Option<DynObjectReader>>,
}

impl fmt::Debug for OzxStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OzxStore")
            .field("src", &self.src)
            .field("key", &self.key)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8], what: &'a str) -> Self {
        Self { b, pos: 0, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        match end {
            Some(e) => {
                let s = &self.b[self.pos..e];
                self.pos = e;
                Ok(s)
            }
            None => Err(Error::Corrupt {
                what: self.what.to_owned(),
                reason: format!("record truncated at byte {} (needs {n} more)", self.pos),
            }),
        }
    }
    fn u16(&mut self) -> Result<u16> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let s = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
}

fn corrupt(what: &str, reason: String) -> Error {
    Error::Corrupt {
        what: what.to_owned(),
        reason,
    }
}

/// What the end of an archive says: where the central directory is, how many entries it
/// has, the archive comment; and the tail read to find it (which often holds the whole
/// directory, saving a read).
struct EndRecords {
    count: u64,
    cd_size: u64,
    cd_offset: u64,
    comment: String,
    tail: Bytes,
    tail_start: u64,
    size: u64,
    head: ObjectHead,
}

impl EndRecords {
    /// Reads the archive's tail (the longest end record with a comment, plus the ZIP64
    /// locator and end record) and parses the end records.
    async fn find(src: &dyn ReadableStore, key: &StoreKey, what: &str) -> Result<Self> {
        let head = src.head(key).await?;
        let size = head.size;
        let tail_len = size.min((EOCD_LEN + 65_535 + LOCATOR64_LEN + EOCD64_LEN) as u64);
        let tail = src.get_range(key, ByteRange::Suffix(tail_len)).await?;
        let tail_start = size - tail.len() as u64;
        let i = find_eocd(&tail).ok_or_else(|| {
            corrupt(
                what,
                "no end-of-central-directory record (not a ZIP archive?)".into(),
            )
        })?;
        let mut c = Cursor::new(&tail[i..], what);
        c.take(4)?;
        let _disk = c.u16()?;
        let _cd_disk = c.u16()?;
        let _n_disk = c.u16()?;
        let count = u64::from(c.u16()?);
        let cd_size = u64::from(c.u32()?);
        let cd_offset = u64::from(c.u32()?);
        let clen = usize::from(c.u16()?);
        let comment = String::from_utf8_lossy(c.take(clen)?)
            .trim_end_matches('\0')
            .to_owned();
        let mut end = Self {
            count,
            cd_size,
            cd_offset,
            comment,
            tail,
            tail_start,
            size,
            head,
        };
        // ZIP64: a locator right before the end record points at the ZIP64 end record.
        if i >= LOCATOR64_LEN
            && end.tail[i - LOCATOR64_LEN..i - LOCATOR64_LEN + 4] == LOCATOR64_SIG.to_le_bytes()
        {
            end.read_zip64(src, key, what, i - LOCATOR64_LEN).await?;
        }
        Ok(end)
    }

    /// Replaces the counts and offsets by those of the ZIP64 end record that the locator at
    /// `locator` (an index into the tail) points at.
    async fn read_zip64(
        &mut self,
        src: &dyn ReadableStore,
        key: &StoreKey,
        what: &str,
        locator: usize,
    ) -> Result<()> {
        let mut l = Cursor::new(&self.tail[locator..locator + LOCATOR64_LEN], what);
        l.take(8)?;
        let eocd64_offset = l.u64()?;
        if eocd64_offset
            .checked_add(EOCD64_LEN as u64)
            .is_none_or(|e| e > self.size)
        {
            return Err(corrupt(
                what,
                format!("ZIP64 end record offset {eocd64_offset} is past the end"),
            ));
        }
        let rec = if eocd64_offset >= self.tail_start {
            let s = usize::try_from(eocd64_offset - self.tail_start)
                .map_err(|_| corrupt(what, "offset".into()))?;
            self.tail.slice(s..(s + EOCD64_LEN).min(self.tail.len()))
        } else {
            src.get_range(
                key,
                (eocd64_offset..eocd64_offset + EOCD64_LEN as u64).into(),
            )
            .await?
        };
        let mut r = Cursor::new(&rec, what);
        if r.u32()? != EOCD64_SIG {
            return Err(corrupt(
                what,
                "ZIP64 locator does not point at a ZIP64 end record".into(),
            ));
        }
        r.take(8 + 2 + 2 + 4 + 4 + 8)?;
        self.count = r.u64()?;
        self.cd_size = r.u64()?;
        self.cd_offset = r.u64()?;
        Ok(())
    }

    /// Checks where the central directory lies and its size against the limit, then returns
    /// its bytes (from the tail when it is there, else with one ranged read).
    async fn read_central_directory(
        &self,
        src: &dyn ReadableStore,
        key: &StoreKey,
        what: &str,
        max_central_directory: u64,
    ) -> Result<Bytes> {
        let (cd_offset, cd_size, size) = (self.cd_offset, self.cd_size, self.size);
        if cd_offset.checked_add(cd_size).is_none_or(|e| e > size) {
            return Err(corrupt(
                what,
                format!(
                    "central directory {cd_offset}+{cd_size} lies outside the {size}-byte archive"
                ),
            ));
        }
        if cd_size > max_central_directory {
            return Err(corrupt(
                what,
                format!(
                    "central directory of {cd_size} bytes exceeds the limit of {max_central_directory}; open with a larger limit"
                ),
            ));
        }
        if cd_offset >= self.tail_start {
            let s = usize::try_from(cd_offset - self.tail_start)
                .map_err(|_| corrupt(what, "offset".into()))?;
            let e = usize::try_from(cd_size).map_err(|_| corrupt(what, "size".into()))?;
            Ok(self.tail.slice(s..s + e))
        } else {
            src.get_range(key, (cd_offset..cd_offset + cd_size).into())
                .await
        }
    }
}

/// Where the end record starts in `tail`: the last EOCD signature whose comment reaches
/// exactly to the end.
fn find_eocd(tail: &[u8]) -> Option<usize> {
    if tail.len() < EOCD_LEN {
        return None;
    }
    (0..=tail.len() - EOCD_LEN).rev().find(|&i| {
        tail[i..i + 4] == EOCD_SIG.to_le_bytes() && {
            let clen = usize::from(u16::from_le_bytes([tail[i + 20], tail[i + 21]]));
            i + EOCD_LEN + clen == tail.len()
        }
    })
}

/// Parses the central directory: the entries by name (directories skipped) and their
/// names sorted, for listing.
fn parse_central_directory(
    cd: &[u8],
    count: u64,
    cd_offset: u64,
    what: &str,
) -> Result<(HashMap<String, ReadEntry>, Vec<String>)> {
    let mut c = Cursor::new(cd, what);
    let mut entries = HashMap::new();
    let mut order = Vec::new();
    // Each record is at least 46 bytes: never trust `count` for allocation.
    for _ in 0..count.min(cd.len() as u64 / 46) {
        let Some((name, entry)) = parse_record(&mut c, cd_offset, what)? else {
            continue;
        };
        // A name recorded twice: the last record counts, listed once.
        if entries.insert(name.clone(), entry).is_none() {
            order.push(name);
        }
    }
    order.sort();
    Ok((entries, order))
}

/// Parses one central-directory record at the cursor; `None` for a directory entry.
fn parse_record(
    c: &mut Cursor<'_>,
    cd_offset: u64,
    what: &str,
) -> Result<Option<(String, ReadEntry)>> {
    if c.u32()? != CENTRAL_SIG {
        return Err(corrupt(
            what,
            format!("bad central directory record at byte {}", c.pos - 4),
        ));
    }
    c.take(4)?; // made by, needed
    let _flags = c.u16()?;
    let method = c.u16()?;
    c.take(4)?; // time, date
    let crc = c.u32()?;
    let mut csize = u64::from(c.u32()?);
    let mut usize_ = u64::from(c.u32()?);
    let nlen = usize::from(c.u16()?);
    let xlen = usize::from(c.u16()?);
    let klen = usize::from(c.u16()?);
    c.take(8)?; // disk, internal, external attributes
    let mut offset = u64::from(c.u32()?);
    let name = String::from_utf8_lossy(c.take(nlen)?).into_owned();
    let extra = c.take(xlen)?;
    c.take(klen)?;
    let mut x = Cursor::new(extra, what);
    while x.pos + 4 <= extra.len() {
        let id = x.u16()?;
        let len = usize::from(x.u16()?);
        let body = x.take(len)?;
        if id == 0x0001 {
            // ZIP64 extended information: the fields that are 0xFFFFFFFF above, in order.
            let mut z = Cursor::new(body, what);
            if usize_ == u64::from(u32::MAX) {
                usize_ = z.u64()?;
            }
            if csize == u64::from(u32::MAX) {
                csize = z.u64()?;
            }
            if offset == u64::from(u32::MAX) {
                offset = z.u64()?;
            }
        }
    }
    if name.ends_with('/') {
        return Ok(None);
    }
    if method == 0 && csize != usize_ {
        return Err(corrupt(
            what,
            format!("stored entry {name:?} has different compressed and uncompressed sizes"),
        ));
    }
    if offset.checked_add(csize).is_none_or(|e| e > cd_offset) {
        return Err(corrupt(
            what,
            format!("entry {name:?} extends past the central directory"),
        ));
    }
    Ok(Some((
        name,
        ReadEntry {
            size: usize_,
            header_offset: offset,
            method,
            crc,
        },
    )))
}

impl OzxStore {
    /// Opens the archive under `key` of `src`, loading a central directory of at most
    /// [`DEFAULT_MAX_CENTRAL_DIRECTORY`] bytes.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no archive; [`Error::Corrupt`] when it is not a
    /// valid ZIP archive.
    pub async fn open(src: Arc<dyn ReadableStore>, key: StoreKey) -> Result<Self> {
        Self::open_with_limit(src, key, DEFAULT_MAX_CENTRAL_DIRECTORY).await
    }

    /// Like [`open`](Self::open) with an explicit limit on the central directory's size.
    ///
    /// # Errors
    /// As [`open`](Self::open); [`Error::Corrupt`] also when the directory exceeds the limit.
    pub async fn open_with_limit(
        src: Arc<dyn ReadableStore>,
        key: StoreKey,
        max_central_directory: u64,
    ) -> Result<Self> {
        let what = format!("zip archive {key:?}");
        let end = EndRecords::find(src.as_ref(), &key, &what).await?;
        let cd = end
            .read_central_directory(src.as_ref(), &key, &what, max_central_directory)
            .await?;
        let (entries, order) = parse_central_directory(&cd, end.count, end.cd_offset, &what)?;
        Ok(Self {
            src,
            key,
            entries,
            order,
            comment: end.comment,
            cd_end: end.cd_offset,
            archive: end.head,
            data_offsets: StdMutex::new(HashMap::new()),
            file: OnceLock::new(),
        })
    }

    /// The archive comment (RFC-9: `{"ome":{"version":"0.5"}}`).
    #[must_use]
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// The key of the archive in its store.
    #[must_use]
    pub fn archive_key(&self) -> &StoreKey {
        &self.key
    }

    /// The archive's size, modification time and version when it was opened (to notice a
    /// replaced archive: compare with a fresh [`ReadableStore::head`] of
    /// [`archive_key`](Self::archive_key)).
    #[must_use]
    pub fn archive_head(&self) -> &ObjectHead {
        &self.archive
    }

    /// An entry's head: its size, the archive's modification time, and a version made of the
    /// archive's version (or size) and the entry's CRC-32.
    fn entry_head(&self, key: &StoreKey) -> Result<ObjectHead> {
        let e = self.entry(key)?;
        let archive = match &self.archive.version {
            Some(v) => v.clone(),
            None => format!("{:x}", self.archive.size),
        };
        Ok(ObjectHead::sized(e.size)
            .with_modified(self.archive.modified)
            .with_version(Some(format!("{archive}-{:08x}", e.crc))))
    }

    /// The stored CRC-32 of an entry.
    #[must_use]
    pub fn crc32(&self, key: &StoreKey) -> Option<u32> {
        self.entries.get(key.as_str()).map(|e| e.crc)
    }

    fn entry(&self, key: &StoreKey) -> Result<&ReadEntry> {
        let e = self
            .entries
            .get(key.as_str())
            .ok_or_else(|| Error::NotFound {
                key: key.to_string(),
                store: format!("zip archive {:?}", self.key.as_str()),
            })?;
        if e.method != 0 {
            return Err(Error::Unsupported {
                op: "get",
                store: format!("zip archive {:?}", self.key.as_str()),
                hint: format!(
                    "entry {key:?} is compressed (method {}); rewrite the archive uncompressed (RFC-9)",
                    e.method
                ),
            });
        }
        Ok(e)
    }

    /// Where an entry's data starts (after its local header; read once, then cached).
    async fn data_offset(&self, key: &StoreKey, e: &ReadEntry) -> Result<u64> {
        if let Some(o) = self.cached_offset(key) {
            return Ok(o);
        }
        let h = self
            .src
            .get_range(&self.key, (e.header_offset..e.header_offset + 30).into())
            .await;
        self.local_header(key, e, h)
    }

    /// [`data_offset`](Self::data_offset) through the archive opened for blocking reads.
    fn data_offset_blocking(
        &self,
        key: &StoreKey,
        e: &ReadEntry,
        file: &dyn ObjectReader,
    ) -> Result<u64> {
        if let Some(o) = self.cached_offset(key) {
            return Ok(o);
        }
        let h = file.read_blocking(e.header_offset..e.header_offset + 30);
        self.local_header(key, e, h)
    }

    fn cached_offset(&self, key: &StoreKey) -> Option<u64> {
        self.data_offsets
            .lock()
            .ok()
            .and_then(|m| m.get(key.as_str()).copied())
    }

    /// The data offset of entry `e` from the 30 bytes of its local header (then cached).
    fn local_header(&self, key: &StoreKey, e: &ReadEntry, h: Result<Bytes>) -> Result<u64> {
        let what = format!("zip archive {:?}", self.key.as_str());
        let h = h.map_err(|err| match err {
            Error::InvalidRange { .. } => Error::Corrupt {
                what: what.clone(),
                reason: format!("local header of {key:?} is truncated"),
            },
            other => other,
        })?;
        let mut c = Cursor::new(&h, &what);
        if c.u32()? != LOCAL_SIG {
            return Err(Error::Corrupt {
                what,
                reason: format!("no local header for {key:?} at {}", e.header_offset),
            });
        }
        c.take(22)?;
        let nlen = u64::from(c.u16()?);
        let xlen = u64::from(c.u16()?);
        let off = e.header_offset + 30 + nlen + xlen;
        if off.checked_add(e.size).is_none_or(|end| end > self.cd_end) {
            return Err(Error::Corrupt {
                what,
                reason: format!("entry {key:?} extends past the central directory"),
            });
        }
        if let Ok(mut m) = self.data_offsets.lock() {
            m.insert(key.to_string(), off);
        }
        Ok(off)
    }

    /// The archive opened for blocking reads (opened on first use: callers are on blocking
    /// threads), when the source store opens files and the file is still the version whose
    /// directory was read.
    fn file(&self) -> Option<&DynObjectReader> {
        self.file
            .get_or_init(|| match self.src.open_blocking(&self.key) {
                Some(Ok(f)) if *f.head() == self.archive => Some(f),
                _ => None,
            })
            .as_ref()
    }
}

/// An entry of an archive opened by [`OzxStore::open_blocking`]: ranges of the entry are
/// ranges of the archive's open file, shifted by the entry's data offset.
#[derive(Debug)]
struct EntryReader {
    archive: DynObjectReader,
    offset: u64,
    head: ObjectHead,
    key: StoreKey,
}

impl ObjectReader for EntryReader {
    fn head(&self) -> &ObjectHead {
        &self.head
    }

    fn read_blocking(&self, range: std::ops::Range<u64>) -> Result<Bytes> {
        let r = ByteRange::Bounded(range).resolve(&self.key, self.head.size)?;
        if r.start == r.end {
            return Ok(Bytes::new());
        }
        self.archive
            .read_blocking(self.offset + r.start..self.offset + r.end)
    }
}

#[async_trait]
impl ReadableStore for OzxStore {
    async fn get(&self, key: &StoreKey) -> Result<Bytes> {
        let e = self.entry(key)?.clone();
        let off = self.data_offset(key, &e).await?;
        if e.size == 0 {
            return Ok(Bytes::new());
        }
        self.src
            .get_range(&self.key, (off..off + e.size).into())
            .await
    }

    async fn get_range(&self, key: &StoreKey, range: ByteRange) -> Result<Bytes> {
        let e = self.entry(key)?.clone();
        let r = range.resolve(key, e.size)?;
        if r.start == r.end {
            return Ok(Bytes::new());
        }
        let off = self.data_offset(key, &e).await?;
        self.src
            .get_range(&self.key, (off + r.start..off + r.end).into())
            .await
    }

    fn get_range_blocking(&self, key: &StoreKey, range: ByteRange) -> Option<Result<Bytes>> {
        let read = || {
            let e = self.entry(key)?.clone();
            let r = range.resolve(key, e.size)?;
            if r.start == r.end {
                return Ok(Some(Bytes::new()));
            }
            if let Some(file) = self.file() {
                let off = self.data_offset_blocking(key, &e, file.as_ref())?;
                return file.read_blocking(off + r.start..off + r.end).map(Some);
            }
            // The local header is read once per entry (then cached), on the runtime.
            let off = crate::block_on(self.data_offset(key, &e))?;
            self.src
                .get_range_blocking(&self.key, (off + r.start..off + r.end).into())
                .transpose()
        };
        read().transpose()
    }

    async fn size(&self, key: &StoreKey) -> Result<u64> {
        Ok(self.entry(key)?.size)
    }

    async fn head(&self, key: &StoreKey) -> Result<ObjectHead> {
        self.entry_head(key)
    }

    fn head_blocking(&self, key: &StoreKey) -> Option<Result<ObjectHead>> {
        Some(self.entry_head(key))
    }

    fn open_blocking(&self, key: &StoreKey) -> Option<Result<DynObjectReader>> {
        let file = self.file()?;
        let open = || {
            let e = self.entry(key)?;
            let offset = self.data_offset_blocking(key, e, file.as_ref())?;
            Ok(Arc::new(EntryReader {
                archive: Arc::clone(file),
                offset,
                head: self.entry_head(key)?,
                key: key.clone(),
            }) as DynObjectReader)
        };
        Some(open())
    }

    fn location(&self) -> String {
        format!("zip:{}/{}", self.src.location(), self.key)
    }
}

#[async_trait]
impl ListableStore for OzxStore {
    async fn list(&self, prefix: Option<&StoreKey>) -> Result<Vec<ObjectMeta>> {
        Ok(self
            .order
            .iter()
            .filter_map(|name| {
                let key = StoreKey::new(name.as_str()).ok()?;
                if !key.is_under(prefix) {
                    return None;
                }
                let size = self.entries.get(name)?.size;
                Some(ObjectMeta { key, size })
            })
            .collect())
    }
}

//! Single-file OME-Zarr: a whole hierarchy in one uncompressed ZIP64 archive (`.ozx`,
//! OME-Zarr RFC-9).
//!
//! [`OzxWriter`] streams entries into any [`WritableStore`] (a file on POSIX, a multipart
//! upload on S3): each entry is written once, in the order it arrives, never buffered whole
//! (except `zarr.json` documents, see below), and the archive appears under its key only
//! when [`OzxWriter::finish`] has written the central directory. [`OzxStore`] reads an
//! archive from any [`ReadableStore`] with ranged reads: the end records and the central
//! directory once (cached), then one small read per entry's local header (cached) and one
//! read per object or byte range.
//!
//! RFC-9 recommendations this module follows: ZIP64 for every entry and the archive,
//! no ZIP compression (method 0, "stored"), the root `zarr.json` as the first entry of the
//! central directory followed by every other `zarr.json` in breadth-first order, and the
//! archive comment `{"ome":{"version":"0.5"}}`. `zarr.json` entries are also at the start
//! of the file when they are written before any other entry (as [`pack`] does); a
//! `zarr.json` written after data (metadata-last writers) is held in memory and written
//! just before the central directory, so the archive never needs rewriting.
//!
//! The ZIP records are written by hand rather than with the `zip` crate because its writer
//! needs a seekable sink and cannot reorder the central directory, and its reader needs
//! `Read + Seek` rather than ranged reads on object storage.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex as StdMutex};

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::{Error, Result};
use crate::key::StoreKey;
use crate::traits::{
    ByteRange, ListableStore, ObjectMeta, PutStream, ReadableStore, WritableStore,
};

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const LOCATOR64_SIG: u32 = 0x0706_4b50;
const VERSION_ZIP64: u16 = 45;
/// Made by: Unix (3), spec 4.5.
const MADE_BY: u16 = (3 << 8) | VERSION_ZIP64;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
/// 1980-01-01 00:00, so identical content gives identical archives (stable checksums).
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;
const EOCD_LEN: usize = 22;
const LOCATOR64_LEN: usize = 20;
const EOCD64_LEN: usize = 56;
/// Default limit on the central directory an [`OzxStore`] loads into memory.
pub const DEFAULT_MAX_CENTRAL_DIRECTORY: u64 = 256 << 20;

/// Options of an [`OzxWriter`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OzxOptions {
    /// OME-Zarr version written into the archive comment (`{"ome":{"version":...}}`).
    pub ome_version: String,
}

impl Default for OzxOptions {
    fn default() -> Self {
        Self {
            ome_version: "0.5".into(),
        }
    }
}

impl OzxOptions {
    /// Sets the OME-Zarr version of the archive comment.
    #[must_use]
    pub fn ome_version(mut self, v: impl Into<String>) -> Self {
        self.ome_version = v.into();
        self
    }

    fn comment(&self) -> String {
        let v = self.ome_version.replace('\\', "\\\\").replace('"', "\\\"");
        format!("{{\"ome\":{{\"version\":\"{v}\"}}}}")
    }
}

fn is_metadata(name: &str) -> bool {
    name == "zarr.json" || name.ends_with("/zarr.json")
}

/// Central-directory order: `zarr.json` first, breadth-first (depth, then key), root first;
/// then every other entry by key.
pub(crate) fn cd_order(a: &str, b: &str) -> std::cmp::Ordering {
    let rank = |n: &str| {
        (
            !is_metadata(n),
            if is_metadata(n) {
                n.matches('/').count()
            } else {
                0
            },
        )
    };
    rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
}

#[derive(Clone, Debug)]
struct WrittenEntry {
    crc: u32,
    size: u64,
    header_offset: u64,
    flags: u16,
}

struct WriterState {
    out: Option<Box<dyn PutStream>>,
    offset: u64,
    entries: BTreeMap<String, WrittenEntry>,
    held: BTreeMap<String, Bytes>,
    data_written: bool,
    target: String,
}

impl WriterState {
    fn broken(&self) -> Error {
        Error::Corrupt {
            what: format!("zip archive {:?} being written", self.target),
            reason: "an earlier write failed; the archive cannot be completed, start it again"
                .into(),
        }
    }

    async fn emit(&mut self, bytes: Bytes) -> Result<()> {
        let n = bytes.len() as u64;
        let Some(out) = self.out.as_mut() else {
            return Err(self.broken());
        };
        if let Err(e) = out.write(bytes).await {
            self.out = None;
            return Err(e);
        }
        self.offset += n;
        Ok(())
    }

    /// Writes one whole entry (local header with sizes and CRC, then the data).
    async fn write_whole(&mut self, name: &str, data: Bytes) -> Result<()> {
        let crc = crc32fast::hash(&data);
        let size = data.len() as u64;
        let header_offset = self.offset;
        let flags = FLAG_UTF8;
        self.emit(local_header(name, flags, crc, Some(size)))
            .await?;
        self.emit(data).await?;
        self.entries.insert(
            name.to_owned(),
            WrittenEntry {
                crc,
                size,
                header_offset,
                flags,
            },
        );
        Ok(())
    }

    async fn put(&mut self, name: &str, data: Bytes) -> Result<()> {
        if is_metadata(name) && self.data_written {
            self.entries.remove(name);
            self.held.insert(name.to_owned(), data);
            return Ok(());
        }
        if !is_metadata(name) {
            self.data_written = true;
        }
        self.held.remove(name);
        self.write_whole(name, data).await
    }
}

fn local_header(name: &str, flags: u16, crc: u32, size: Option<u64>) -> Bytes {
    let mut b = BytesMut::with_capacity(30 + name.len() + 20);
    b.put_u32_le(LOCAL_SIG);
    b.put_u16_le(VERSION_ZIP64);
    b.put_u16_le(flags);
    b.put_u16_le(0); // stored
    b.put_u16_le(DOS_TIME);
    b.put_u16_le(DOS_DATE);
    b.put_u32_le(crc);
    b.put_u32_le(u32::MAX); // compressed size: in the ZIP64 extra field
    b.put_u32_le(u32::MAX); // uncompressed size: in the ZIP64 extra field
    b.put_u16_le(u16::try_from(name.len()).unwrap_or(u16::MAX));
    b.put_u16_le(20);
    b.put_slice(name.as_bytes());
    b.put_u16_le(0x0001);
    b.put_u16_le(16);
    // Streamed entries carry zeros here and their sizes in the data descriptor.
    b.put_u64_le(size.unwrap_or(0));
    b.put_u64_le(size.unwrap_or(0));
    b.freeze()
}

/// Writes an OME-Zarr hierarchy into one `.ozx` archive stored under a key of any writable
/// store. It is itself a [`WritableStore`] (keys inside the archive), so zarrs and the
/// converter write into it like into any store.
///
/// Entries are written one at a time: a [`PutStream`] from
/// [`put_stream`](WritableStore::put_stream) holds the archive until it completes, so
/// other writers wait (a task must not hold a stream and then call `put` itself).
/// Writing a key again replaces the entry in the central directory (the old bytes stay in
/// the file, unreferenced); deleting removes it from the directory.
pub struct OzxWriter {
    state: Arc<Mutex<WriterState>>,
    options: OzxOptions,
    target: String,
}

impl fmt::Debug for OzxWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OzxWriter")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl OzxWriter {
    /// Starts an archive that will be stored under `key` in `dst` when finished.
    ///
    /// # Errors
    /// When `dst` cannot start a streaming write.
    pub async fn create(
        dst: &dyn WritableStore,
        key: &StoreKey,
        options: OzxOptions,
    ) -> Result<Self> {
        let out = dst.put_stream(key).await?;
        Ok(Self {
            state: Arc::new(Mutex::new(WriterState {
                out: Some(out),
                offset: 0,
                entries: BTreeMap::new(),
                held: BTreeMap::new(),
                data_written: false,
                target: key.to_string(),
            })),
            options,
            target: key.to_string(),
        })
    }

    /// Writes held `zarr.json` entries, the central directory and the end records, and
    /// publishes the archive. Returns the archive's size in bytes.
    ///
    /// # Errors
    /// When writing fails or an entry stream is still open; nothing is published then.
    pub async fn finish(self) -> Result<u64> {
        let mut st = self.state.lock().await;
        let held = std::mem::take(&mut st.held);
        for (name, data) in held {
            st.write_whole(&name, data).await?;
        }
        let mut names: Vec<&String> = st.entries.keys().collect();
        names.sort_by(|a, b| cd_order(a, b));
        let mut cd = BytesMut::new();
        for name in &names {
            let Some(e) = st.entries.get(*name) else {
                continue;
            };
            cd.put_u32_le(CENTRAL_SIG);
            cd.put_u16_le(MADE_BY);
            cd.put_u16_le(VERSION_ZIP64);
            cd.put_u16_le(e.flags);
            cd.put_u16_le(0);
            cd.put_u16_le(DOS_TIME);
            cd.put_u16_le(DOS_DATE);
            cd.put_u32_le(e.crc);
            cd.put_u32_le(u32::MAX);
            cd.put_u32_le(u32::MAX);
            cd.put_u16_le(u16::try_from(name.len()).unwrap_or(u16::MAX));
            cd.put_u16_le(28);
            cd.put_u16_le(0); // comment
            cd.put_u16_le(0); // disk
            cd.put_u16_le(0); // internal attributes
            cd.put_u32_le(0o100_644 << 16); // regular file, rw-r--r--
            cd.put_u32_le(u32::MAX);
            cd.put_slice(name.as_bytes());
            cd.put_u16_le(0x0001);
            cd.put_u16_le(24);
            cd.put_u64_le(e.size);
            cd.put_u64_le(e.size);
            cd.put_u64_le(e.header_offset);
        }
        let count = names.len() as u64;
        let cd_offset = st.offset;
        let cd_size = cd.len() as u64;
        let eocd64_offset = cd_offset + cd_size;
        let comment = self.options.comment();
        let mut end = BytesMut::new();
        end.put_u32_le(EOCD64_SIG);
        end.put_u64_le(44);
        end.put_u16_le(MADE_BY);
        end.put_u16_le(VERSION_ZIP64);
        end.put_u32_le(0);
        end.put_u32_le(0);
        end.put_u64_le(count);
        end.put_u64_le(count);
        end.put_u64_le(cd_size);
        end.put_u64_le(cd_offset);
        end.put_u32_le(LOCATOR64_SIG);
        end.put_u32_le(0);
        end.put_u64_le(eocd64_offset);
        end.put_u32_le(1);
        end.put_u32_le(EOCD_SIG);
        end.put_u16_le(0);
        end.put_u16_le(0);
        let c16 = u16::try_from(count).unwrap_or(u16::MAX);
        end.put_u16_le(c16);
        end.put_u16_le(c16);
        end.put_u32_le(u32::try_from(cd_size).unwrap_or(u32::MAX));
        end.put_u32_le(u32::try_from(cd_offset).unwrap_or(u32::MAX));
        end.put_u16_le(u16::try_from(comment.len()).unwrap_or(0));
        end.put_slice(comment.as_bytes());
        st.emit(cd.freeze()).await?;
        st.emit(end.freeze()).await?;
        let out = st.out.take().ok_or_else(|| st.broken())?;
        out.complete().await
    }
}

#[async_trait]
impl WritableStore for OzxWriter {
    async fn put(&self, key: &StoreKey, value: Bytes) -> Result<()> {
        self.state.lock().await.put(key.as_str(), value).await
    }

    async fn put_stream(&self, key: &StoreKey) -> Result<Box<dyn PutStream>> {
        let mut guard = Arc::clone(&self.state).lock_owned().await;
        let name = key.to_string();
        if is_metadata(&name) {
            // Small documents: collected, then written like a `put`.
            return Ok(Box::new(EntryStream {
                guard: Some(guard),
                name,
                crc: crc32fast::Hasher::new(),
                size: 0,
                header_offset: 0,
                collect: Some(BytesMut::new()),
            }));
        }
        guard.data_written = true;
        let header_offset = guard.offset;
        guard
            .emit(local_header(&name, FLAG_UTF8 | FLAG_DESCRIPTOR, 0, None))
            .await?;
        Ok(Box::new(EntryStream {
            guard: Some(guard),
            name,
            crc: crc32fast::Hasher::new(),
            size: 0,
            header_offset,
            collect: None,
        }))
    }

    async fn delete(&self, key: &StoreKey) -> Result<()> {
        let mut st = self.state.lock().await;
        st.entries.remove(key.as_str());
        st.held.remove(key.as_str());
        Ok(())
    }

    async fn delete_prefix(&self, prefix: Option<&StoreKey>) -> Result<u64> {
        let mut st = self.state.lock().await;
        let under = |k: &String| StoreKey::new(k.as_str()).is_ok_and(|k| k.is_under(prefix));
        let before = st.entries.len() + st.held.len();
        st.entries.retain(|k, _| !under(k));
        st.held.retain(|k, _| !under(k));
        Ok((before - st.entries.len() - st.held.len()) as u64)
    }
}

/// One entry being streamed into an archive; holds the archive until it completes.
struct EntryStream {
    guard: Option<OwnedMutexGuard<WriterState>>,
    name: String,
    crc: crc32fast::Hasher,
    size: u64,
    header_offset: u64,
    collect: Option<BytesMut>,
}

impl fmt::Debug for EntryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryStream")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl EntryStream {
    fn state(&mut self) -> Result<&mut OwnedMutexGuard<WriterState>> {
        let name = self.name.clone();
        self.guard.as_mut().ok_or(Error::Corrupt {
            what: format!("zip entry {name:?}"),
            reason: "the entry stream is already closed".into(),
        })
    }
}

#[async_trait]
impl PutStream for EntryStream {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.size += chunk.len() as u64;
        if let Some(buf) = self.collect.as_mut() {
            buf.extend_from_slice(&chunk);
            return Ok(());
        }
        self.crc.update(&chunk);
        self.state()?.emit(chunk).await
    }

    async fn complete(mut self: Box<Self>) -> Result<u64> {
        let size = self.size;
        let name = self.name.clone();
        if let Some(buf) = self.collect.take() {
            self.state()?.put(&name, buf.freeze()).await?;
            return Ok(size);
        }
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize();
        let header_offset = self.header_offset;
        let st = self.state()?;
        let mut d = BytesMut::with_capacity(24);
        d.put_u32_le(DESCRIPTOR_SIG);
        d.put_u32_le(crc);
        d.put_u64_le(size);
        d.put_u64_le(size);
        st.emit(d.freeze()).await?;
        st.held.remove(&name);
        st.entries.insert(
            name,
            WrittenEntry {
                crc,
                size,
                header_offset,
                flags: FLAG_UTF8 | FLAG_DESCRIPTOR,
            },
        );
        Ok(size)
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        // The bytes written so far stay in the file, unreferenced by the central directory.
        Ok(())
    }
}

/// Copies every object under `prefix` of `src` into a new archive under `key` of `dst`,
/// `zarr.json` documents first (breadth-first), then the rest by key, streaming objects of
/// more than 1 MiB in ranges. Keys inside the archive are relative to `prefix`.
///
/// # Errors
/// The first read or write error; nothing is published then.
pub async fn pack<S>(
    src: &S,
    prefix: Option<&StoreKey>,
    dst: &dyn WritableStore,
    key: &StoreKey,
    options: OzxOptions,
) -> Result<u64>
where
    S: ReadableStore + ListableStore + ?Sized,
{
    let writer = OzxWriter::create(dst, key, options).await?;
    add_all(&writer, src, prefix).await?;
    writer.finish().await
}

/// Adds every object under `prefix` of `src` to an archive being written (keys relative to
/// `prefix`), `zarr.json` documents first, streaming objects of more than 1 MiB in ranges;
/// [`pack`] is this plus [`OzxWriter::create`] and [`OzxWriter::finish`].
///
/// # Errors
/// The first read or write error.
pub async fn add_all<S>(writer: &OzxWriter, src: &S, prefix: Option<&StoreKey>) -> Result<()>
where
    S: ReadableStore + ListableStore + ?Sized,
{
    // Small ranges keep a streamed conversion's finalisation (which copies the lower levels
    // in) near the converter's own memory: 30 x 4096^2 peaked at 34-44 MiB with 8 MiB
    // ranges, 34-35 MiB with 1 MiB, in the same time.
    const PIECE: u64 = 1 << 20;
    let list = src.list(prefix).await?;
    let mut list: Vec<(&str, &crate::traits::ObjectMeta)> = list
        .iter()
        .filter_map(|m| m.key.strip(prefix).map(|rel| (rel, m)))
        .collect();
    list.sort_by(|a, b| cd_order(a.0, b.0));
    for (rel, m) in list {
        let inner = StoreKey::new(rel)?;
        if m.size <= PIECE {
            writer.put(&inner, src.get(&m.key).await?).await?;
        } else {
            let mut s = writer.put_stream(&inner).await?;
            let mut off = 0;
            while off < m.size {
                let end = (off + PIECE).min(m.size);
                s.write(src.get_range(&m.key, (off..end).into()).await?)
                    .await?;
                off = end;
            }
            s.complete().await?;
        }
    }
    Ok(())
}

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
    data_offsets: StdMutex<HashMap<String, u64>>,
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
        let corrupt = |reason: String| Error::Corrupt {
            what: what.clone(),
            reason,
        };
        let size = src.size(&key).await?;
        let tail_len = size.min((EOCD_LEN + 65_535 + LOCATOR64_LEN + EOCD64_LEN) as u64);
        let tail = src.get_range(&key, ByteRange::Suffix(tail_len)).await?;
        let tail_start = size - tail.len() as u64;
        // The end record: the last EOCD signature whose comment reaches exactly to the end.
        let mut eocd_at = None;
        if tail.len() >= EOCD_LEN {
            for i in (0..=tail.len() - EOCD_LEN).rev() {
                if tail[i..i + 4] == EOCD_SIG.to_le_bytes() {
                    let clen = usize::from(u16::from_le_bytes([tail[i + 20], tail[i + 21]]));
                    if i + EOCD_LEN + clen == tail.len() {
                        eocd_at = Some(i);
                        break;
                    }
                }
            }
        }
        let i = eocd_at.ok_or_else(|| {
            corrupt("no end-of-central-directory record (not a ZIP archive?)".into())
        })?;
        let mut c = Cursor::new(&tail[i..], &what);
        c.take(4)?;
        let _disk = c.u16()?;
        let _cd_disk = c.u16()?;
        let _n_disk = c.u16()?;
        let mut count = u64::from(c.u16()?);
        let mut cd_size = u64::from(c.u32()?);
        let mut cd_offset = u64::from(c.u32()?);
        let clen = usize::from(c.u16()?);
        let comment_bytes = c.take(clen)?;
        let comment = String::from_utf8_lossy(comment_bytes)
            .trim_end_matches('\0')
            .to_owned();
        // ZIP64: a locator right before the end record points at the ZIP64 end record.
        if i >= LOCATOR64_LEN
            && tail[i - LOCATOR64_LEN..i - LOCATOR64_LEN + 4] == LOCATOR64_SIG.to_le_bytes()
        {
            let mut l = Cursor::new(&tail[i - LOCATOR64_LEN..i], &what);
            l.take(8)?;
            let eocd64_offset = l.u64()?;
            if eocd64_offset
                .checked_add(EOCD64_LEN as u64)
                .is_none_or(|e| e > size)
            {
                return Err(corrupt(format!(
                    "ZIP64 end record offset {eocd64_offset} is past the end"
                )));
            }
            let rec = if eocd64_offset >= tail_start {
                let s = usize::try_from(eocd64_offset - tail_start)
                    .map_err(|_| corrupt("offset".into()))?;
                tail.slice(s..(s + EOCD64_LEN).min(tail.len()))
            } else {
                src.get_range(
                    &key,
                    (eocd64_offset..eocd64_offset + EOCD64_LEN as u64).into(),
                )
                .await?
            };
            let mut r = Cursor::new(&rec, &what);
            if r.u32()? != EOCD64_SIG {
                return Err(corrupt(
                    "ZIP64 locator does not point at a ZIP64 end record".into(),
                ));
            }
            r.take(8 + 2 + 2 + 4 + 4 + 8)?;
            count = r.u64()?;
            cd_size = r.u64()?;
            cd_offset = r.u64()?;
        }
        if cd_offset.checked_add(cd_size).is_none_or(|e| e > size) {
            return Err(corrupt(format!(
                "central directory {cd_offset}+{cd_size} lies outside the {size}-byte archive"
            )));
        }
        if cd_size > max_central_directory {
            return Err(corrupt(format!(
                "central directory of {cd_size} bytes exceeds the limit of {max_central_directory}; open with a larger limit"
            )));
        }
        let cd = if cd_offset >= tail_start {
            let s =
                usize::try_from(cd_offset - tail_start).map_err(|_| corrupt("offset".into()))?;
            let e = usize::try_from(cd_size).map_err(|_| corrupt("size".into()))?;
            tail.slice(s..s + e)
        } else {
            src.get_range(&key, (cd_offset..cd_offset + cd_size).into())
                .await?
        };
        let mut c = Cursor::new(&cd, &what);
        let mut entries = HashMap::new();
        let mut order = Vec::new();
        // Each record is at least 46 bytes: never trust `count` for allocation.
        for _ in 0..count.min(cd_size / 46) {
            if c.u32()? != CENTRAL_SIG {
                return Err(corrupt(format!(
                    "bad central directory record at byte {}",
                    c.pos - 4
                )));
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
            let mut x = Cursor::new(extra, &what);
            while x.pos + 4 <= extra.len() {
                let id = x.u16()?;
                let len = usize::from(x.u16()?);
                let body = x.take(len)?;
                if id == 0x0001 {
                    let mut z = Cursor::new(body, &what);
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
                continue; // a directory entry
            }
            if method == 0 && csize != usize_ {
                return Err(corrupt(format!(
                    "stored entry {name:?} has different compressed and uncompressed sizes"
                )));
            }
            if offset.checked_add(csize).is_none_or(|e| e > cd_offset) {
                return Err(corrupt(format!(
                    "entry {name:?} extends past the central directory"
                )));
            }
            if entries
                .insert(
                    name.clone(),
                    ReadEntry {
                        size: usize_,
                        header_offset: offset,
                        method,
                        crc,
                    },
                )
                .is_none()
            {
                order.push(name);
            }
        }
        order.sort();
        Ok(Self {
            src,
            key,
            entries,
            order,
            comment,
            cd_end: cd_offset,
            data_offsets: StdMutex::new(HashMap::new()),
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
        if let Some(o) = self
            .data_offsets
            .lock()
            .ok()
            .and_then(|m| m.get(key.as_str()).copied())
        {
            return Ok(o);
        }
        let what = format!("zip archive {:?}", self.key.as_str());
        let h = self
            .src
            .get_range(&self.key, (e.header_offset..e.header_offset + 30).into())
            .await
            .map_err(|err| match err {
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

    async fn size(&self, key: &StoreKey) -> Result<u64> {
        Ok(self.entry(key)?.size)
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

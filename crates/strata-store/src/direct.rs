//! Streaming writes of large objects in aligned 1 MiB blocks by an I/O thread, with direct I/O
//! where the file system has it (the POSIX backend's put stream with
//! [`PosixOptions::direct_io`](crate::PosixOptions::direct_io)).
//!
//! Each written piece is copied once, into an aligned block; full blocks go to the store's I/O
//! thread, which writes them with `O_DIRECT` (Linux), so the bytes skip the page cache: no
//! second copy, no page-cache pages to allocate, dirty and write back on the writers' cores
//! (measured for the converter: see docs/BENCHMARKS.md). The last partial block of a file is
//! written through the page cache; a finished file is synced on a thread of its own, so files
//! finishing together are synced together, then renamed into place by
//! [`PutStream::complete`]. Where a file cannot be opened for direct I/O (e.g. a file system
//! without it), or its direct writes are refused, the same blocks go through the page cache,
//! synced every 4 MiB.
//!
//! No library offers this: `std` has no aligned buffers or direct I/O, and `object_store`'s
//! local store writes through the page cache.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::traits::PutStream;

/// Bytes per block: a multiple of every device's logical block size.
const BLOCK: usize = 1 << 20;
/// Address alignment of a block (direct I/O needs the logical block size; 4096 covers all).
const ALIGN: usize = 4096;
/// Blocks a file written through the page cache may hold unsynced (4 MiB).
const SYNC_EVERY_BLOCKS: u32 = 4;
/// Blocks queued for the I/O thread before a writer waits.
const QUEUED: usize = 4;

/// A `BLOCK`-byte buffer at an `ALIGN`-aligned address, filled from the start.
struct Block {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Block {
    fn new() -> Self {
        // Zeroed memory comes from the system untouched: a block only costs the pages it fills.
        let buf = vec![0u8; BLOCK + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Self { buf, start, len: 0 }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    /// Copies as much of `data` as fits; returns how much.
    fn push(&mut self, data: &[u8]) -> usize {
        let n = (BLOCK - self.len).min(data.len());
        let at = self.start + self.len;
        self.buf[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    fn is_full(&self) -> bool {
        self.len == BLOCK
    }

    /// Whether the block may be written with direct I/O (its address is aligned).
    fn is_aligned(&self) -> bool {
        (self.buf.as_ptr() as usize + self.start).is_multiple_of(ALIGN)
    }
}

/// What the I/O thread reports when a file's last block is written (and the file synced).
type Done = tokio::sync::oneshot::Sender<io::Result<()>>;

/// One file being written.
struct Target {
    /// Opened for direct I/O if `opened_direct`.
    file: File,
    path: PathBuf,
    opened_direct: bool,
    /// Cleared when the file system refuses a direct write: the rest goes through the page
    /// cache.
    direct: AtomicBool,
    /// The same file without direct I/O, if `file` is direct.
    plain: OnceLock<File>,
    /// Blocks written through the page cache since the last sync.
    unsynced: AtomicU32,
    /// The first write error; later blocks of the file are skipped.
    failed: Mutex<Option<io::Error>>,
    /// Set when the stream is aborted or dropped: queued blocks are skipped.
    abandoned: AtomicBool,
    /// Sync the file before reporting it done.
    sync: bool,
}

impl Target {
    /// The handle for writes through the page cache.
    fn plain(&self) -> io::Result<&File> {
        if !self.opened_direct {
            return Ok(&self.file);
        }
        if let Some(f) = self.plain.get() {
            return Ok(f);
        }
        let f = OpenOptions::new().write(true).open(&self.path)?;
        Ok(self.plain.get_or_init(|| f))
    }

    /// Writes a block through the page cache and syncs every few blocks, so the final sync
    /// has little left to do.
    fn write_cached(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let file = self.plain()?;
        file.write_all_at(bytes, offset)?;
        if self.sync && self.unsynced.fetch_add(1, Ordering::Relaxed) + 1 >= SYNC_EVERY_BLOCKS {
            self.unsynced.store(0, Ordering::Relaxed);
            file.sync_data()?;
        }
        Ok(())
    }

    fn write_block(&self, block: &Block, offset: u64, last: bool) -> io::Result<()> {
        let bytes = block.bytes();
        if last {
            // The end of the file is not a whole block: through the page cache.
            return self.plain().and_then(|f| f.write_all_at(bytes, offset));
        }
        if self.direct.load(Ordering::Relaxed) && block.is_aligned() {
            match self.file.write_all_at(bytes, offset) {
                // A file system that opened the file for direct I/O but refuses the write
                // (e.g. it needs a larger alignment): this block and the rest of the file
                // through the page cache.
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                    self.direct.store(false, Ordering::Relaxed);
                    self.write_cached(bytes, offset)
                }
                other => other,
            }
        } else {
            self.write_cached(bytes, offset)
        }
    }

    fn take_error(&self) -> Option<io::Error> {
        self.failed.lock().ok().and_then(|mut e| e.take())
    }
}

/// Work for the I/O thread, done in the order sent.
struct Job {
    target: Arc<Target>,
    offset: u64,
    block: Block,
    /// The file's last bytes: then `done` is told once they are written and synced.
    done: Option<Done>,
}

/// The blocks the I/O thread gave back, and how many were made.
struct Pool {
    free: Receiver<Block>,
    made: usize,
}

/// A store's I/O thread, seen from the writers: sends blocks to it and takes back written
/// ones. The thread ends when the last handle is dropped.
pub(crate) struct BlockIo {
    jobs: SyncSender<Job>,
    pool: Mutex<Pool>,
    /// Streams open now: the pool may hold one block per open stream plus those queued.
    open: AtomicUsize,
}

impl std::fmt::Debug for BlockIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockIo")
            .field("open", &self.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl BlockIo {
    /// Starts the I/O thread.
    pub(crate) fn start() -> io::Result<Arc<Self>> {
        let (jobs, job_rx) = std::sync::mpsc::sync_channel(QUEUED);
        let (free_tx, free_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("strata-direct-io".into())
            .spawn(move || run(&job_rx, &free_tx))?;
        Ok(Arc::new(Self {
            jobs,
            pool: Mutex::new(Pool {
                free: free_rx,
                made: 0,
            }),
            open: AtomicUsize::new(0),
        }))
    }

    /// A free block: a written one if any, a new one while under the limit, else waits for
    /// the I/O thread to write one.
    fn block(&self) -> io::Result<Block> {
        let mut pool = self.pool.lock().map_err(|_| stopped())?;
        match pool.free.try_recv() {
            Ok(b) => return Ok(b),
            Err(TryRecvError::Disconnected) => return Err(stopped()),
            Err(TryRecvError::Empty) => {}
        }
        if pool.made < self.open.load(Ordering::Relaxed) + QUEUED + 1 {
            pool.made += 1;
            return Ok(Block::new());
        }
        pool.free.recv().map_err(|_| stopped())
    }

    fn send(&self, job: Job) -> io::Result<()> {
        self.jobs.send(job).map_err(|_| stopped())
    }
}

fn stopped() -> io::Error {
    io::Error::other("the store's direct-I/O thread has stopped")
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_: &Path) -> Option<File> {
    None
}

/// The I/O thread: does the jobs in order and gives the blocks back. A failed write is kept
/// with its file (reported when the file completes); other files go on.
fn run(jobs: &Receiver<Job>, free: &Sender<Block>) {
    for mut job in jobs {
        let target = &job.target;
        let skip = target.abandoned.load(Ordering::Relaxed)
            || target.failed.lock().map_or(true, |e| e.is_some());
        if !skip
            && let Err(e) = target.write_block(&job.block, job.offset, job.done.is_some())
            && let Ok(mut slot) = target.failed.lock()
        {
            *slot = Some(e);
        }
        if let Some(done) = job.done.take() {
            let target = Arc::clone(target);
            // Synced off the I/O thread, so that files finishing together are synced at once
            // (the last shards of a conversion all finish at its end).
            let synced = std::thread::Builder::new()
                .name("strata-sync".into())
                .spawn(move || {
                    let result = match target.take_error() {
                        Some(e) => Err(e),
                        None if target.sync => target.file.sync_all(),
                        None => Ok(()),
                    };
                    let _ = done.send(result);
                });
            if let Err(e) = synced {
                // No thread to spare: the sender is gone with the closure, and `complete`
                // reports the I/O thread as stopped.
                let _ = e;
            }
        }
        job.block.len = 0;
        // The writers may all be gone: nothing to give back to.
        let _ = free.send(job.block);
    }
}

/// Moves a finished temporary file (its path given) into place.
pub(crate) type Publish = Box<dyn FnOnce(&Path) -> Result<()> + Send>;

/// A streaming write through a store's I/O thread into a hidden temporary file; renamed into
/// place by `complete` once written and synced.
pub(crate) struct DirectPutStream {
    io: Arc<BlockIo>,
    target: Arc<Target>,
    block: Option<Block>,
    /// File offset of `block`'s first byte.
    offset: u64,
    written: u64,
    key: String,
    temp: PathBuf,
    publish: Option<Publish>,
    /// Counted in the I/O thread's open streams (until its last block is sent).
    counted: bool,
}

impl std::fmt::Debug for DirectPutStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectPutStream")
            .field("key", &self.key)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl DirectPutStream {
    /// A stream into the freshly created temporary file `temp` (whose plain handle is
    /// `file`); `publish(temp)` moves it into place after the last block is written and
    /// synced (if `sync`).
    pub(crate) fn new(
        io: Arc<BlockIo>,
        key: &str,
        file: File,
        temp: PathBuf,
        sync: bool,
        publish: Publish,
    ) -> Self {
        let (file, plain, direct) = match open_direct(&temp) {
            Some(d) => (d, Some(file), true),
            None => (file, None, false),
        };
        let target = Target {
            file,
            path: temp.clone(),
            opened_direct: direct,
            direct: AtomicBool::new(direct),
            plain: OnceLock::new(),
            unsynced: AtomicU32::new(0),
            failed: Mutex::new(None),
            abandoned: AtomicBool::new(false),
            sync,
        };
        if let Some(p) = plain {
            let _ = target.plain.set(p);
        }
        io.open.fetch_add(1, Ordering::Relaxed);
        Self {
            io,
            target: Arc::new(target),
            block: None,
            offset: 0,
            written: 0,
            key: key.to_owned(),
            temp,
            publish: Some(publish),
            counted: true,
        }
    }

    /// No longer counted as open: a stream whose last block is sent (it waits for the write
    /// and the sync) holds no block, so the pool does not grow for it.
    fn uncount(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.io.open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn err(&self, op: &'static str, source: io::Error) -> Error {
        Error::Io {
            op,
            key: self.key.clone(),
            path: self.temp.clone(),
            source,
        }
    }

    fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let block = match &mut self.block {
                Some(b) => b,
                None => self.block.insert(self.io.block()?),
            };
            data = &data[block.push(data)..];
            if block.is_full()
                && let Some(block) = self.block.take()
            {
                self.io.send(Job {
                    target: Arc::clone(&self.target),
                    offset: self.offset,
                    block,
                    done: None,
                })?;
                self.offset += BLOCK as u64;
            }
        }
        Ok(())
    }

    fn abandon(&mut self) {
        if self.publish.take().is_some() {
            self.target.abandoned.store(true, Ordering::Relaxed);
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[async_trait]
impl PutStream for DirectPutStream {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        if self.publish.is_none() {
            return Err(self.err("put_stream", io::Error::other("the stream is closed")));
        }
        if let Some(e) = self.target.take_error() {
            return Err(self.err("put_stream", e));
        }
        self.written += chunk.len() as u64;
        self.push(&chunk).map_err(|e| self.err("put_stream", e))
    }

    async fn complete(mut self: Box<Self>) -> Result<u64> {
        let Some(publish) = self.publish.take() else {
            return Err(self.err("put_stream", io::Error::other("the stream is closed")));
        };
        let result = async {
            let block = match self.block.take() {
                Some(b) => b,
                None => self.io.block().map_err(|e| self.err("put_stream", e))?,
            };
            let (done, written) = tokio::sync::oneshot::channel();
            self.io
                .send(Job {
                    target: Arc::clone(&self.target),
                    offset: self.offset,
                    block,
                    done: Some(done),
                })
                .map_err(|e| self.err("put_stream", e))?;
            self.uncount();
            written
                .await
                .map_err(|_| self.err("put_stream", stopped()))?
                .map_err(|e| self.err("put_stream", e))?;
            publish(&self.temp)
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&self.temp);
        }
        result.map(|()| self.written)
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.abandon();
        Ok(())
    }
}

impl Drop for DirectPutStream {
    fn drop(&mut self) {
        self.abandon();
        self.uncount();
    }
}

//! Shard files written in aligned 1 MiB blocks by an I/O thread, with direct I/O where the
//! file system has it.
//!
//! The encoders' output is copied once, into an aligned block; full blocks go to the I/O
//! thread, which writes them with `O_DIRECT` (Linux), so the bytes skip the page cache: no
//! second copy, no page-cache pages to allocate, dirty and write back on the encoders' cores
//! (measured: see docs/BENCHMARKS.md). The last partial block of a file (its end and the shard
//! index) is written through the page cache; finished files are synced together at the end.
//! Where a file cannot be opened for direct I/O (e.g. a file system without it), or its direct
//! writes are refused, the same blocks go through the page cache, synced every 4 MiB.
//!
//! No library offers this: `std` has no aligned buffers or direct I/O and `object_store`'s
//! local store writes through the page cache.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, OnceLock};

/// Bytes per block: a multiple of every device's logical block size.
const BLOCK: usize = 1 << 20;
/// Address alignment of a block (direct I/O needs the logical block size; 4096 covers all).
const ALIGN: usize = 4096;

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

/// One file being written.
struct Target {
    /// Opened for direct I/O if `opened_direct`.
    file: File,
    path: PathBuf,
    opened_direct: bool,
    /// Cleared when the file system refuses a direct write: the rest goes through the page
    /// cache.
    direct: AtomicBool,
    /// The same file without direct I/O (opened when first needed), if `file` is direct.
    plain: OnceLock<File>,
    /// Blocks written through the page cache since the last sync.
    unsynced: AtomicU32,
}

impl Target {
    /// The handle for writes through the page cache.
    fn plain(&self) -> std::io::Result<&File> {
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
    fn write_cached(&self, bytes: &[u8], offset: u64) -> std::io::Result<()> {
        let file = self.plain()?;
        file.write_all_at(bytes, offset)?;
        if self.unsynced.fetch_add(1, Ordering::Relaxed) + 1 >= SYNC_EVERY_BLOCKS {
            self.unsynced.store(0, Ordering::Relaxed);
            file.sync_data()?;
        }
        Ok(())
    }
}

/// Blocks a file written through the page cache may hold unsynced (4 MiB).
const SYNC_EVERY_BLOCKS: u32 = 4;

/// Work for the I/O thread, done in the order sent.
enum Job {
    /// Write `block` at `offset`: a full block, or if `last` the file's last bytes (then the
    /// file is synced with the others at the end).
    Write {
        target: Arc<Target>,
        offset: u64,
        block: Block,
        last: bool,
    },
    /// End the thread (blocks of files not finished are dropped).
    Stop,
}

/// The blocks the I/O thread gave back, and how many were made.
struct Pool {
    free: Receiver<Block>,
    made: usize,
}

/// The writer's side: sends blocks to the I/O thread and takes back written ones.
pub(crate) struct BlockIo {
    jobs: SyncSender<Job>,
    pool: Mutex<Pool>,
    /// The most blocks there may be (one per open file plus those queued).
    most: usize,
}

impl BlockIo {
    /// A writer side for `open_files` files open at once, and the I/O thread's loop, to run
    /// on a thread of its own.
    pub(crate) fn new(open_files: usize) -> (Arc<Self>, impl FnOnce() -> Result<()> + Send) {
        const QUEUED: usize = 4;
        let (jobs, job_rx) = std::sync::mpsc::sync_channel(QUEUED);
        let (free_tx, free_rx) = std::sync::mpsc::channel();
        let io = Arc::new(Self {
            jobs,
            pool: Mutex::new(Pool {
                free: free_rx,
                made: 0,
            }),
            most: open_files + QUEUED + 1,
        });
        (io, move || run(&job_rx, &free_tx))
    }

    /// A free block: a written one if any, a new one while under the limit, else waits for
    /// the I/O thread to write one.
    fn block(&self) -> std::io::Result<Block> {
        let mut pool = self.pool.lock().map_err(|_| stopped())?;
        match pool.free.try_recv() {
            Ok(b) => return Ok(b),
            Err(TryRecvError::Disconnected) => return Err(stopped()),
            Err(TryRecvError::Empty) => {}
        }
        if pool.made < self.most {
            pool.made += 1;
            return Ok(Block::new());
        }
        pool.free.recv().map_err(|_| stopped())
    }

    /// Ends the I/O thread once it has done the jobs sent before.
    pub(crate) fn stop(&self) {
        // Fails only if the thread has already stopped on an error.
        let _ = self.jobs.send(Job::Stop);
    }

    fn send(&self, job: Job) -> std::io::Result<()> {
        self.jobs.send(job).map_err(|_| stopped())
    }
}

fn stopped() -> std::io::Error {
    std::io::Error::other("the shard I/O thread stopped (see the error it reported)")
}

/// A shard file written through [`BlockIo`].
pub(crate) struct BlockFile {
    io: Arc<BlockIo>,
    target: Arc<Target>,
    block: Option<Block>,
    /// File offset of `block`'s first byte.
    offset: u64,
}

impl BlockFile {
    /// Creates (or truncates) `path`, for direct I/O if the file system has it.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub(crate) fn create(io: Arc<BlockIo>, path: &Path) -> Result<Self> {
        Self::create_with(io, path, true)
    }

    /// [`BlockFile::create`], with direct I/O only if `try_direct`.
    fn create_with(io: Arc<BlockIo>, path: &Path, try_direct: bool) -> Result<Self> {
        let plain = || File::create(path).map_err(|e| Error::io(path, e));
        let (file, direct) = match try_direct.then(|| open_direct(path)).flatten() {
            Some(f) => (f, true),
            None => (plain()?, false),
        };
        Ok(Self {
            io,
            target: Arc::new(Target {
                file,
                path: path.to_path_buf(),
                opened_direct: direct,
                direct: AtomicBool::new(direct),
                plain: OnceLock::new(),
                unsynced: AtomicU32::new(0),
            }),
            block: None,
            offset: 0,
        })
    }

    /// Hands the last bytes to the I/O thread, which writes and syncs the file. Errors of
    /// that come from the I/O thread's loop.
    ///
    /// # Errors
    /// When the I/O thread has stopped.
    pub(crate) fn finish(mut self) -> Result<()> {
        let block = match self.block.take() {
            Some(b) => b,
            None => self
                .io
                .block()
                .map_err(|e| Error::io(&self.target.path, e))?,
        };
        self.io
            .send(Job::Write {
                target: Arc::clone(&self.target),
                offset: self.offset,
                block,
                last: true,
            })
            .map_err(|e| Error::io(&self.target.path, e))
    }
}

impl Write for BlockFile {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len();
        while !buf.is_empty() {
            let block = match &mut self.block {
                Some(b) => b,
                None => self.block.insert(self.io.block()?),
            };
            buf = &buf[block.push(buf)..];
            if block.is_full()
                && let Some(block) = self.block.take()
            {
                self.io.send(Job::Write {
                    target: Arc::clone(&self.target),
                    offset: self.offset,
                    block,
                    last: false,
                })?;
                self.offset += BLOCK as u64;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_: &Path) -> Option<File> {
    None
}

/// The I/O thread: does the jobs in order and gives the blocks back. Stops at the first
/// error (the writer's next request then fails) and returns it.
fn run(jobs: &Receiver<Job>, free: &Sender<Block>) -> Result<()> {
    // Finished files not yet synced: synced together, each on a thread of its own, so the
    // file system can commit them at once (the last shards of a conversion all finish at
    // its end; synced one after the other they took 3-7 ms of a 4 x 4096^2 conversion).
    let mut unsynced = Vec::new();
    for job in jobs {
        let Job::Write {
            target,
            offset,
            mut block,
            last,
        } = job
        else {
            break;
        };
        if unsynced.len() >= SYNC_TOGETHER {
            sync_all(&mut unsynced)?;
        }
        let io = |e| Error::io(&target.path, e);
        let bytes = block.bytes();
        if last {
            // The end of the file is not a whole block: through the page cache.
            target
                .plain()
                .and_then(|f| f.write_all_at(bytes, offset))
                .map_err(io)?;
            unsynced.push(Arc::clone(&target));
        } else if target.direct.load(Ordering::Relaxed) && block.is_aligned() {
            match target.file.write_all_at(bytes, offset) {
                // A file system that opened the file for direct I/O but refuses the write
                // (e.g. it needs a larger alignment): this block and the rest of the file
                // through the page cache.
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                    target.direct.store(false, Ordering::Relaxed);
                    target.write_cached(bytes, offset).map_err(io)?;
                }
                other => other.map_err(io)?,
            }
        } else {
            target.write_cached(bytes, offset).map_err(io)?;
        }
        block.len = 0;
        // The writer may have finished and dropped its receiver: nothing to give back to.
        let _ = free.send(block);
    }
    sync_all(&mut unsynced)
}

/// Most finished files waiting to be synced together.
const SYNC_TOGETHER: usize = 16;

/// Syncs `files`, each on a thread of its own, and empties the list.
fn sync_all(files: &mut Vec<Arc<Target>>) -> Result<()> {
    let synced = sync_together(files.iter().map(|t| (&t.file, t.path.as_path())));
    files.clear();
    synced
}

/// Syncs files (data and metadata), each on a thread of its own, so that the file system can
/// commit them at once; returns the first error.
pub(crate) fn sync_together<'a>(
    files: impl IntoIterator<Item = (&'a File, &'a Path)>,
) -> Result<()> {
    std::thread::scope(|s| {
        let threads: Vec<_> = files
            .into_iter()
            .map(|(f, path)| s.spawn(move || f.sync_all().map_err(|e| Error::io(path, e))))
            .collect();
        threads.into_iter().try_for_each(|t| {
            t.join()
                .unwrap_or_else(|_| Err(Error::Codec("a sync thread panicked".into())))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(path: &Path, parts: &[Vec<u8>], direct: bool) -> Result<()> {
        let (io, run) = BlockIo::new(1);
        std::thread::scope(|s| {
            let thread = s.spawn(run);
            let written = (|| {
                let mut f = BlockFile::create_with(Arc::clone(&io), path, direct)?;
                for p in parts {
                    f.write_all(p).map_err(|e| Error::io(path, e))?;
                }
                f.finish()
            })();
            io.stop();
            let ran = thread.join().expect("I/O thread");
            written.and(ran)
        })
    }

    #[test]
    fn bytes_arrive_in_order_across_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Parts of odd sizes that cross block boundaries, 3.5 blocks in all, and an empty file.
        let parts: Vec<Vec<u8>> = (0..7u32)
            .map(|i| {
                let n = BLOCK / 2 + i as usize * 13 - 45;
                (0..n)
                    .map(|j| (j as u32 ^ i.wrapping_mul(31)) as u8)
                    .collect()
            })
            .collect();
        // Direct I/O where the file system has it, and through the page cache.
        for direct in [true, false] {
            let path = dir.path().join(format!("shard-{direct}"));
            write_file(&path, &parts, direct).expect("write");
            assert_eq!(std::fs::read(&path).expect("read"), parts.concat());
            let empty = dir.path().join(format!("empty-{direct}"));
            write_file(&empty, &[], direct).expect("write");
            assert_eq!(std::fs::read(&empty).expect("read").len(), 0);
        }
    }

    #[test]
    fn a_failed_write_is_named() {
        let (io, run) = BlockIo::new(1);
        let err = std::thread::scope(|s| {
            let thread = s.spawn(run);
            let missing = Path::new("/nonexistent-strata-dir/shard");
            let created = BlockFile::create(Arc::clone(&io), missing);
            io.stop();
            thread.join().expect("I/O thread").expect("nothing to do");
            created.err().expect("no such folder")
        });
        assert!(err.to_string().contains("nonexistent-strata-dir"), "{err}");
    }
}

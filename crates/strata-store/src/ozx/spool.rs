//! The bytes of an entry written while the archive is busy with another entry: held in
//! memory up to a limit, then in an anonymous temporary file (gone when the spool is
//! dropped), and read back in pieces when the entry is appended to the archive.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::error::{Error, Result};

/// Bytes read back from a spool's file at a time.
const READ_PIECE: u64 = 1 << 20;

/// The bytes of one entry, in the order written.
pub(super) struct Spool {
    /// The entry's name, for messages.
    name: String,
    /// Bytes held in memory (all of them until the file is started).
    mem: VecDeque<Bytes>,
    mem_len: usize,
    /// Bytes beyond this go to the file.
    mem_limit: usize,
    /// Where the file is made (`None`: the system's temporary folder).
    dir: Option<std::path::PathBuf>,
    file: Option<tokio::fs::File>,
    /// Bytes in the file.
    file_len: u64,
    /// Bytes read back from the file so far.
    file_read: u64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("name", &self.name)
            .field("mem_len", &self.mem_len)
            .field("file_len", &self.file_len)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// An empty spool keeping up to `mem_limit` bytes in memory.
    pub(super) fn new(name: &str, mem_limit: usize, dir: Option<std::path::PathBuf>) -> Self {
        Self {
            name: name.to_owned(),
            mem: VecDeque::new(),
            mem_len: 0,
            mem_limit,
            dir,
            file: None,
            file_len: 0,
            file_read: 0,
        }
    }

    fn io_error(&self, e: std::io::Error) -> Error {
        Error::Io {
            op: "spool",
            key: self.name.clone(),
            path: self.dir.clone().unwrap_or_else(std::env::temp_dir),
            source: e,
        }
    }

    /// Appends `chunk`: to memory while the whole spool fits the limit, else to the file
    /// (moving what was in memory there first).
    pub(super) async fn write(&mut self, chunk: Bytes) -> Result<()> {
        if self.file.is_none() {
            if self.mem_len + chunk.len() <= self.mem_limit {
                self.mem_len += chunk.len();
                self.mem.push_back(chunk);
                return Ok(());
            }
            let f = match &self.dir {
                Some(dir) => tempfile::tempfile_in(dir),
                None => tempfile::tempfile(),
            }
            .map_err(|e| self.io_error(e))?;
            self.file = Some(tokio::fs::File::from_std(f));
            let held = std::mem::take(&mut self.mem);
            self.mem_len = 0;
            for b in held {
                self.write_file(&b).await?;
            }
        }
        self.write_file(&chunk).await
    }

    async fn write_file(&mut self, b: &[u8]) -> Result<()> {
        let r = match self.file.as_mut() {
            Some(f) => f.write_all(b).await,
            None => Err(std::io::Error::other("the spool has no file")),
        };
        r.map_err(|e| self.io_error(e))?;
        self.file_len += b.len() as u64;
        Ok(())
    }

    /// Ends writing: what was written to the file is flushed and the file rewound, ready
    /// for [`next_piece`](Self::next_piece).
    pub(super) async fn seal(&mut self) -> Result<()> {
        let r = match self.file.as_mut() {
            Some(f) => match f.flush().await {
                Ok(()) => f.seek(std::io::SeekFrom::Start(0)).await.map(|_| ()),
                Err(e) => Err(e),
            },
            None => Ok(()),
        };
        r.map_err(|e| self.io_error(e))?;
        self.file_read = 0;
        Ok(())
    }

    /// The next piece of the sealed spool (at most 1 MiB from the file), `None` at the end.
    pub(super) async fn next_piece(&mut self) -> Result<Option<Bytes>> {
        if let Some(b) = self.mem.pop_front() {
            self.mem_len -= b.len();
            return Ok(Some(b));
        }
        let left = self.file_len - self.file_read;
        if left == 0 {
            return Ok(None);
        }
        // At most READ_PIECE, so the conversion to usize is exact.
        let n = usize::try_from(left.min(READ_PIECE)).unwrap_or(1 << 20);
        let mut buf = vec![0; n];
        let r = match self.file.as_mut() {
            Some(f) => f.read_exact(&mut buf).await.map(|_| ()),
            None => Err(std::io::Error::other("the spool has no file")),
        };
        r.map_err(|e| self.io_error(e))?;
        self.file_read += n as u64;
        Ok(Some(Bytes::from(buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_up_to_the_limit_then_a_file() -> Result<()> {
        let mut s = Spool::new("x", 10, None);
        s.write(Bytes::from_static(b"0123")).await?;
        s.write(Bytes::from_static(b"456789")).await?;
        assert!(s.file.is_none(), "exactly at the limit stays in memory");
        s.write(Bytes::from_static(b"a")).await?;
        assert!(s.file.is_some() && s.mem.is_empty());
        let big: Vec<u8> = (0..(READ_PIECE as usize) * 2 + 5)
            .map(|i| (i % 251) as u8)
            .collect();
        s.write(Bytes::from(big.clone())).await?;
        s.seal().await?;
        let mut back = Vec::new();
        let mut pieces = 0;
        while let Some(p) = s.next_piece().await? {
            assert!(p.len() as u64 <= READ_PIECE);
            back.extend_from_slice(&p);
            pieces += 1;
        }
        let mut want = b"0123456789a".to_vec();
        want.extend_from_slice(&big);
        assert_eq!(back, want);
        assert_eq!(pieces, 3);
        Ok(())
    }
}

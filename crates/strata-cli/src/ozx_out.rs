//! `strata convert --layout ozx`: level 0 of the image is written straight into the `.ozx`
//! archive as the converter produces it (three quarters of the bytes, written once); the
//! lower levels and the metadata, written to the hidden partial folder meanwhile, are added
//! when the conversion is published, then the archive is completed and appears under its
//! name. Until then only a temporary file exists beside it, which a later run removes.

use std::io::Write;
use std::path::{Path, PathBuf};
use strata_store::{
    Bytes, OzxOptions, OzxWriter, PosixOptions, PosixStore, PutStream, StoreKey, WritableStore as _,
};
use strata_zstack::{ShardSink, ShardStream};

type DynResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Bytes collected before each write into the archive (one buffer per open entry).
const PIECE: usize = 1 << 20;

/// An `.ozx` archive being written for one section.
pub(crate) struct OzxOut {
    runtime: tokio::runtime::Runtime,
    writer: OzxWriter,
    path: PathBuf,
}

impl OzxOut {
    /// Starts `<micr>/<stem>.ozx` for the image folder `image` (`<micr>/<stem>.ome.zarr`),
    /// removing what interrupted runs left of it.
    pub(crate) fn start(image: &Path) -> DynResult<Self> {
        let micr = image.parent().ok_or("the image has no parent folder")?;
        let stem = image
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ome.zarr"))
            .ok_or("the image is not an .ome.zarr folder")?;
        std::fs::create_dir_all(micr).map_err(|e| format!("{}: {e}", micr.display()))?;
        let name = format!("{stem}.ozx");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        // Small write buffers: the converter's memory stays at a few chunks per stream.
        let dst = PosixStore::create(micr, PosixOptions::default().write_buffer(PIECE))?;
        let key = StoreKey::new(name.clone())?;
        dst.remove_stale_temps(&key)?;
        let writer = runtime.block_on(OzxWriter::create(&dst, &key, OzxOptions::default()))?;
        Ok(Self {
            runtime,
            writer,
            path: micr.join(name),
        })
    }

    /// The converter's sink: level-0 shards go into the archive, the rest to files.
    pub(crate) fn sink(&self) -> Level0Sink<'_> {
        Level0Sink { out: self }
    }

    /// Adds everything in `folder` (for a streamed conversion, its partial folder: the lower
    /// levels and every `zarr.json`; for packing, the whole image) and completes the archive;
    /// returns its path.
    pub(crate) fn finish(self, folder: &Path) -> DynResult<PathBuf> {
        let src = PosixStore::open(folder)?;
        self.runtime.block_on(async {
            strata_store::ozx::add_all(&self.writer, &src, None).await?;
            self.writer.finish().await
        })?;
        Ok(self.path)
    }
}

/// Sends level-0 shards into the archive (see [`OzxOut::sink`]).
pub(crate) struct Level0Sink<'a> {
    out: &'a OzxOut,
}

impl ShardSink for Level0Sink<'_> {
    fn open(
        &mut self,
        level: usize,
        key: &str,
    ) -> strata_zstack::Result<Option<Box<dyn ShardStream>>> {
        if level != 0 {
            return Ok(None);
        }
        let failed = |e: strata_store::Error| strata_zstack::Error::Io {
            path: self.out.path.clone(),
            source: std::io::Error::other(e.to_string()),
        };
        let entry = StoreKey::new(format!("0/{key}")).map_err(failed)?;
        let stream = self
            .out
            .runtime
            .block_on(self.out.writer.put_stream(&entry))
            .map_err(failed)?;
        Ok(Some(Box::new(Entry {
            runtime: self.out.runtime.handle().clone(),
            stream: Some(stream),
            buf: Vec::with_capacity(PIECE),
            path: self.out.path.clone(),
        })))
    }
}

/// One archive entry written by the converter's writer thread.
struct Entry {
    runtime: tokio::runtime::Handle,
    stream: Option<Box<dyn PutStream>>,
    buf: Vec<u8>,
    path: PathBuf,
}

impl Entry {
    /// Writes the collected bytes into the archive.
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the archive entry is already complete"))?;
        self.runtime
            .block_on(stream.write(piece))
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

impl Write for Entry {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl ShardStream for Entry {
    fn finish(mut self: Box<Self>) -> strata_zstack::Result<()> {
        let failed = |path: &Path, e: std::io::Error| strata_zstack::Error::Io {
            path: path.to_owned(),
            source: e,
        };
        self.send().map_err(|e| failed(&self.path, e))?;
        let stream = self.stream.take().ok_or_else(|| {
            failed(
                &self.path,
                std::io::Error::other("the archive entry is already complete"),
            )
        })?;
        self.runtime
            .block_on(stream.complete())
            .map(|_| ())
            .map_err(|e| failed(&self.path, std::io::Error::other(e.to_string())))
    }
}

//! Single-file OME-Zarr: a whole hierarchy in one uncompressed ZIP64 archive (`.ozx`,
//! OME-Zarr RFC-9).
//!
//! [`OzxWriter`] streams entries into any [`WritableStore`](crate::WritableStore) (a file on POSIX, a multipart
//! upload on S3), and the archive appears under its key only when [`OzxWriter::finish`]
//! has written the central directory. Any number of entries may be streamed at once: one
//! of them writes straight into the archive, the others spool (in memory up to
//! [`OzxOptions::spool_memory`], then in an anonymous temporary file) and are appended,
//! read back in 1 MiB pieces, when the archive is free; so memory stays bounded and the
//! same sequence of calls gives the same archive, byte for byte. [`OzxStore`] reads an
//! archive from any [`ReadableStore`](crate::ReadableStore) with ranged reads: the end records and the central
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

mod read;
mod spool;
mod write;

pub use read::OzxStore;
pub use write::{OzxWriter, add_all, pack};

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
/// Default for [`OzxOptions::spool_memory`]: 1 MiB.
pub const DEFAULT_SPOOL_MEMORY: usize = 1 << 20;
/// Default limit on the central directory an [`OzxStore`] loads into memory.
pub const DEFAULT_MAX_CENTRAL_DIRECTORY: u64 = 256 << 20;

/// Options of an [`OzxWriter`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OzxOptions {
    /// OME-Zarr version written into the archive comment (`{"ome":{"version":...}}`).
    pub ome_version: String,
    /// Bytes an entry stream that waits for the archive keeps in memory before it spools
    /// into an anonymous temporary file (see [`OzxWriter`]); 1 MiB by default.
    pub spool_memory: usize,
    /// Folder of the spool files (`None`: the system's temporary folder). Spools hold the
    /// entries that wait for the archive (for a converted section, its pyramid levels below
    /// level 0: a third of its bytes), so put them on the file system of the archive.
    pub spool_dir: Option<std::path::PathBuf>,
}

impl Default for OzxOptions {
    fn default() -> Self {
        Self {
            ome_version: "0.5".into(),
            spool_memory: DEFAULT_SPOOL_MEMORY,
            spool_dir: None,
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

    /// Sets how many bytes a waiting entry stream keeps in memory before spooling to a
    /// temporary file.
    #[must_use]
    pub fn spool_memory(mut self, bytes: usize) -> Self {
        self.spool_memory = bytes;
        self
    }

    /// Sets the folder of the spool files.
    #[must_use]
    pub fn spool_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
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

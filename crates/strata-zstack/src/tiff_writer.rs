//! A streaming writer of tiled TIFF (and BigTIFF) files.
//!
//! [`TiledTiffWriter`] appends compressed tiles in row-major order as they come and writes the
//! image directory last, so that many files can be filled at once, band by band, without
//! holding a plane in memory.
//!
//! The files are written by hand rather than with the `tiff` crate's encoder: that encoder
//! writes strips only, and its directory encoder borrows the file until the directory is
//! finished, while the sample writer streams tiles into all planes' files at once, band by
//! band, and writes each directory after its tiles.

use crate::error::{Error, Result};
use crate::source::SampleType;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tiff::encoder::compression::{CompressionAlgorithm, Deflate, DeflateLevel, Lzw, Packbits};

/// Compression of the tiles of a written TIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TileCompression {
    /// Uncompressed.
    None,
    /// LZW (TIFF compression 5).
    Lzw,
    /// Deflate, fast level (TIFF compression 8).
    #[default]
    Deflate,
    /// PackBits (TIFF compression 32773).
    PackBits,
    /// Zstandard at the given level (TIFF compression 50000).
    Zstd(i32),
    /// JPEG (TIFF compression 7). The writer cannot encode JPEG itself: pass already encoded
    /// tiles to [`TiledTiffWriter::write_encoded_tile`]. RGB JPEG tiles are declared YCbCr.
    Jpeg,
}

impl TileCompression {
    fn tag(self) -> u16 {
        match self {
            Self::None => 1,
            Self::Lzw => 5,
            Self::Deflate => 8,
            Self::PackBits => 32773,
            Self::Zstd(_) => 50000,
            Self::Jpeg => 7,
        }
    }

    /// Compresses one tile's bytes (little-endian samples).
    ///
    /// # Errors
    /// [`Error::Codec`] if compression fails; [`Error::Config`] for [`TileCompression::Jpeg`].
    pub fn encode(self, raw: &[u8]) -> Result<Vec<u8>> {
        let codec = |e: std::io::Error| Error::Codec(e.to_string());
        let mut out = Vec::with_capacity(raw.len() / 2 + 64);
        match self {
            Self::None => out.extend_from_slice(raw),
            Self::Lzw => {
                Lzw.write_to(&mut out, raw).map_err(codec)?;
            }
            Self::Deflate => {
                Deflate::with_level(DeflateLevel::Fast)
                    .write_to(&mut out, raw)
                    .map_err(codec)?;
            }
            Self::PackBits => {
                Packbits.write_to(&mut out, raw).map_err(codec)?;
            }
            Self::Zstd(level) => out = zstd::bulk::compress(raw, level).map_err(codec)?,
            Self::Jpeg => {
                return Err(Error::Config(
                    "JPEG tiles must be encoded by the caller (write_encoded_tile)".into(),
                ));
            }
        }
        Ok(out)
    }

    /// An upper bound of the compressed size of `raw` bytes (to choose BigTIFF in advance).
    fn bound(self, raw: u64) -> u64 {
        match self {
            // LZW codes grow to 12 bits per input byte in the worst case.
            Self::Lzw => raw / 2 * 3 + 64,
            _ => raw + raw / 64 + 64,
        }
    }
}

/// The geometry and encoding of a tiled TIFF to write.
#[derive(Debug, Clone, PartialEq)]
pub struct TiledTiffSpec {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Samples per pixel: 1 (gray, MinIsBlack) or 3 (RGB).
    pub channels: u32,
    /// Sample type.
    pub sample_type: SampleType,
    /// Tile width (a multiple of 16).
    pub tile_width: u32,
    /// Tile height (a multiple of 16).
    pub tile_height: u32,
    /// Tile compression.
    pub compression: TileCompression,
    /// Pixel size in micrometres, written as XResolution / YResolution in pixels per
    /// centimetre.
    pub pixel_size_um: Option<f64>,
    /// Write BigTIFF (64-bit offsets) even if the file would fit a classic TIFF.
    pub bigtiff: bool,
    /// JPEG only: quantisation and Huffman tables shared by all tiles (the `JPEGTables` tag,
    /// a JPEG stream `SOI .. EOI` holding only tables); the tiles are then abbreviated streams.
    pub jpeg_tables: Option<Vec<u8>>,
}

impl TiledTiffSpec {
    /// Tiles across and down.
    #[must_use]
    pub fn tiles(&self) -> (u32, u32) {
        (
            self.width.div_ceil(self.tile_width.max(1)),
            self.height.div_ceil(self.tile_height.max(1)),
        )
    }

    /// Bytes of one uncompressed tile (padding included).
    #[must_use]
    pub fn tile_bytes(&self) -> usize {
        self.tile_width as usize
            * self.tile_height as usize
            * self.channels as usize
            * self.sample_type.bytes()
    }

    /// Whether a file with this spec is written as BigTIFF: when asked, or when its worst-case
    /// size would not fit 32-bit offsets.
    #[must_use]
    pub fn needs_bigtiff(&self) -> bool {
        let (ta, td) = self.tiles();
        let tiles = u64::from(ta) * u64::from(td);
        let worst = self.compression.bound(self.tile_bytes() as u64) * tiles + tiles * 16 + 4096;
        self.bigtiff || worst > u64::from(u32::MAX)
    }
}

/// Writes one tiled TIFF: tiles are appended in row-major order as they come, the image
/// directory is written last by [`TiledTiffWriter::finish`].
#[derive(Debug)]
pub struct TiledTiffWriter {
    file: BufWriter<File>,
    path: PathBuf,
    spec: TiledTiffSpec,
    big: bool,
    pos: u64,
    offsets: Vec<u64>,
    counts: Vec<u64>,
}

const SHORT: u16 = 3;
const LONG: u16 = 4;
const RATIONAL: u16 = 5;
const LONG8: u16 = 16;
const UNDEFINED: u16 = 7;

impl TiledTiffWriter {
    /// Creates the file and writes its header.
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable spec; [`Error::Io`] if the file cannot be written.
    pub fn create(path: &Path, spec: TiledTiffSpec) -> Result<Self> {
        if spec.width == 0 || spec.height == 0 {
            return Err(Error::Config("a TIFF needs at least one pixel".into()));
        }
        if spec.tile_width == 0
            || spec.tile_height == 0
            || !spec.tile_width.is_multiple_of(16)
            || !spec.tile_height.is_multiple_of(16)
        {
            return Err(Error::Config(format!(
                "tile size {} x {} must be a positive multiple of 16",
                spec.tile_width, spec.tile_height
            )));
        }
        if !matches!(spec.channels, 1 | 3) {
            return Err(Error::Config(format!(
                "{} channels: 1 (gray) or 3 (RGB) only",
                spec.channels
            )));
        }
        let big = spec.needs_bigtiff();
        let f = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut file = BufWriter::with_capacity(1 << 20, f);
        let header: Vec<u8> = if big {
            let mut h = b"II".to_vec();
            h.extend_from_slice(&43u16.to_le_bytes());
            h.extend_from_slice(&8u16.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&0u64.to_le_bytes());
            h
        } else {
            let mut h = b"II".to_vec();
            h.extend_from_slice(&42u16.to_le_bytes());
            h.extend_from_slice(&0u32.to_le_bytes());
            h
        };
        file.write_all(&header).map_err(|e| Error::io(path, e))?;
        let (ta, td) = spec.tiles();
        let n = ta as usize * td as usize;
        Ok(Self {
            file,
            path: path.to_owned(),
            big,
            pos: header.len() as u64,
            offsets: Vec::with_capacity(n),
            counts: Vec::with_capacity(n),
            spec,
        })
    }

    /// Whether the file is a BigTIFF.
    #[must_use]
    pub fn is_bigtiff(&self) -> bool {
        self.big
    }

    /// Compresses and appends the next tile: `tile_height` rows of `tile_width` pixels,
    /// channels interleaved, samples in native byte order (converted to little-endian here).
    ///
    /// # Errors
    /// [`Error::Config`] for a wrong length or too many tiles; codec and I/O errors.
    pub fn write_tile(&mut self, raw: &[u8]) -> Result<()> {
        if raw.len() != self.spec.tile_bytes() {
            return Err(Error::Config(format!(
                "tile of {} bytes, {} expected",
                raw.len(),
                self.spec.tile_bytes()
            )));
        }
        let encoded = encode_tile(self.spec.compression, self.spec.sample_type, raw)?;
        self.write_encoded_tile(&encoded)
    }

    /// Appends the next tile, already compressed as the spec says.
    ///
    /// # Errors
    /// [`Error::Config`] if all tiles are written already or a classic TIFF would overflow;
    /// I/O errors.
    pub fn write_encoded_tile(&mut self, encoded: &[u8]) -> Result<()> {
        let (ta, td) = self.spec.tiles();
        if self.offsets.len() >= ta as usize * td as usize {
            return Err(Error::Config("all tiles are written already".into()));
        }
        if self.pos % 2 == 1 {
            self.file
                .write_all(&[0])
                .map_err(|e| Error::io(&self.path, e))?;
            self.pos += 1;
        }
        self.offsets.push(self.pos);
        self.counts.push(encoded.len() as u64);
        self.file
            .write_all(encoded)
            .map_err(|e| Error::io(&self.path, e))?;
        self.pos += encoded.len() as u64;
        if !self.big && self.pos > u64::from(u32::MAX) - (1 << 20) {
            return Err(Error::Config(format!(
                "{}: the file outgrew a classic TIFF; write it as BigTIFF",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Writes the image directory and closes the file; returns its size in bytes.
    ///
    /// # Errors
    /// [`Error::Config`] if tiles are missing; I/O errors.
    pub fn finish(mut self) -> Result<u64> {
        let (ta, td) = self.spec.tiles();
        if self.offsets.len() != ta as usize * td as usize {
            return Err(Error::Config(format!(
                "{} of {} tiles written",
                self.offsets.len(),
                ta as usize * td as usize
            )));
        }
        let s = &self.spec;
        let bits = (s.sample_type.bytes() * 8) as u16;
        let ch = s.channels as u16;
        let photometric: u16 = match (s.channels, s.compression) {
            (1, _) => 1,
            (_, TileCompression::Jpeg) => 6,
            _ => 2,
        };
        // (tag, type, count, value bytes little-endian)
        let shorts = |v: &[u16]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let mut entries: Vec<(u16, u16, u64, Vec<u8>)> = vec![
            (256, LONG, 1, s.width.to_le_bytes().to_vec()),
            (257, LONG, 1, s.height.to_le_bytes().to_vec()),
            (258, SHORT, u64::from(ch), shorts(&vec![bits; ch as usize])),
            (259, SHORT, 1, shorts(&[s.compression.tag()])),
            (262, SHORT, 1, shorts(&[photometric])),
            (277, SHORT, 1, shorts(&[ch])),
            (284, SHORT, 1, shorts(&[1])),
            (322, LONG, 1, s.tile_width.to_le_bytes().to_vec()),
            (323, LONG, 1, s.tile_height.to_le_bytes().to_vec()),
            (339, SHORT, u64::from(ch), shorts(&vec![1; ch as usize])),
        ];
        if let Some(t) = s
            .jpeg_tables
            .as_ref()
            .filter(|_| s.compression == TileCompression::Jpeg)
        {
            entries.push((347, UNDEFINED, t.len() as u64, t.clone()));
        }
        if let Some(px) = s.pixel_size_um.filter(|p| p.is_finite() && *p > 0.0) {
            // Pixels per centimetre as a rational with 1/1000 precision.
            let num = (10_000.0 / px * 1000.0)
                .round()
                .clamp(1.0, f64::from(u32::MAX));
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let num = num as u32;
            let mut r = num.to_le_bytes().to_vec();
            r.extend_from_slice(&1000u32.to_le_bytes());
            entries.push((282, RATIONAL, 1, r.clone()));
            entries.push((283, RATIONAL, 1, r));
            entries.push((296, SHORT, 1, shorts(&[3])));
        }
        let n = self.offsets.len() as u64;
        if self.big {
            let o: Vec<u8> = self.offsets.iter().flat_map(|v| v.to_le_bytes()).collect();
            let c: Vec<u8> = self.counts.iter().flat_map(|v| v.to_le_bytes()).collect();
            entries.push((324, LONG8, n, o));
            entries.push((325, LONG8, n, c));
        } else {
            let to32 = |v: &[u64]| -> Result<Vec<u8>> {
                let mut out = Vec::with_capacity(v.len() * 4);
                for &x in v {
                    let x = u32::try_from(x).map_err(|_| {
                        Error::Config("offset beyond 4 GiB in a classic TIFF".into())
                    })?;
                    out.extend_from_slice(&x.to_le_bytes());
                }
                Ok(out)
            };
            entries.push((324, LONG, n, to32(&self.offsets)?));
            entries.push((325, LONG, n, to32(&self.counts)?));
        }
        entries.sort_by_key(|e| e.0);

        // Out-of-line values first, then the directory.
        let inline = if self.big { 8 } else { 4 };
        let mut value_at = Vec::with_capacity(entries.len());
        let io = |e| Error::io(&self.path, e);
        for (_, _, _, bytes) in &entries {
            if bytes.len() > inline {
                if self.pos % 2 == 1 {
                    self.file.write_all(&[0]).map_err(io)?;
                    self.pos += 1;
                }
                value_at.push(Some(self.pos));
                self.file.write_all(bytes).map_err(io)?;
                self.pos += bytes.len() as u64;
            } else {
                value_at.push(None);
            }
        }
        if self.pos % 2 == 1 {
            self.file.write_all(&[0]).map_err(io)?;
            self.pos += 1;
        }
        let ifd = self.pos;
        let mut dir = Vec::new();
        if self.big {
            dir.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        } else {
            dir.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        }
        for ((tag, ty, count, bytes), at) in entries.iter().zip(&value_at) {
            dir.extend_from_slice(&tag.to_le_bytes());
            dir.extend_from_slice(&ty.to_le_bytes());
            let mut field = vec![0u8; inline];
            match at {
                Some(off) if self.big => field.copy_from_slice(&off.to_le_bytes()),
                Some(off) => {
                    let off = u32::try_from(*off)
                        .map_err(|_| Error::Config("directory beyond 4 GiB".into()))?;
                    field.copy_from_slice(&off.to_le_bytes());
                }
                None => field[..bytes.len()].copy_from_slice(bytes),
            }
            if self.big {
                dir.extend_from_slice(&count.to_le_bytes());
            } else {
                dir.extend_from_slice(&(*count as u32).to_le_bytes());
            }
            dir.extend_from_slice(&field);
        }
        dir.extend_from_slice(&vec![0u8; inline]);
        self.file.write_all(&dir).map_err(io)?;
        self.pos += dir.len() as u64;
        if self.big {
            self.file.seek(SeekFrom::Start(8)).map_err(io)?;
            self.file.write_all(&ifd.to_le_bytes()).map_err(io)?;
        } else {
            let at =
                u32::try_from(ifd).map_err(|_| Error::Config("directory beyond 4 GiB".into()))?;
            self.file.seek(SeekFrom::Start(4)).map_err(io)?;
            self.file.write_all(&at.to_le_bytes()).map_err(io)?;
        }
        self.file.flush().map_err(io)?;
        Ok(self.pos)
    }
}

/// Compresses one tile of native-endian samples into little-endian TIFF bytes.
pub(crate) fn encode_tile(c: TileCompression, st: SampleType, raw: &[u8]) -> Result<Vec<u8>> {
    if st == SampleType::U16 && cfg!(target_endian = "big") {
        let le: Vec<u8> = raw.chunks_exact(2).flat_map(|p| [p[1], p[0]]).collect();
        return c.encode(&le);
    }
    c.encode(raw)
}

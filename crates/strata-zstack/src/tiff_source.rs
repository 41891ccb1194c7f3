//! A z-stack from TIFF files, one file per focus level, read band by band.
//!
//! [`TiffStack::open`] reads the first image (IFD) of every file and checks that all planes share
//! width, height, sample format, bits per sample and samples per pixel before anything is
//! decoded; [`ZStackSource::read_band`] then decodes only the tiles or strips that intersect the
//! requested rows. Supported: tiled and stripped layouts, classic TIFF and BigTIFF, uncompressed,
//! LZW, Deflate, PackBits, JPEG and ZSTD compression (with or without the horizontal
//! predictor), 8- and 16-bit unsigned samples, gray (`MinIsBlack`, or `MinIsWhite`, which is
//! inverted to `MinIsBlack`) and chunky RGB (JPEG tiles coded as YCbCr are converted to RGB).
//!
//! Every allocation driven by the file is bounded by [`TiffOptions`]: a file that lies about
//! its geometry, points past its end, or decompresses beyond its declared size is an
//! [`Error::Input`] naming the file, never a panic or an unbounded allocation.

use crate::error::{Error, Result};
use crate::source::{PixelSize, Region, SampleType, StackInfo, ZStackSource};
use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tiff::decoder::ifd::Value;
use tiff::decoder::{ChunkType, Decoder, DecodingBuffer, Limits};
use tiff::tags::{CompressionMethod, PhotometricInterpretation, PlanarConfiguration, Tag};

/// Memory limits and behaviour of the TIFF reader.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TiffOptions {
    /// Largest decoded tile or strip, in bytes (default 256 MiB). A file whose tiles or strips
    /// are larger is rejected when opened: rewrite it tiled, or raise the limit.
    pub max_tile_bytes: usize,
    /// Largest compressed tile or strip, in bytes (default 256 MiB).
    pub max_compressed_tile_bytes: usize,
    /// Largest cached row of tiles, in bytes (default 1 GiB). A tile row that spans several
    /// bands is decoded once into this cache; if it would be larger, the tiles concerned are
    /// decoded once per band instead (slower, same pixels).
    pub max_cache_bytes: usize,
    /// Largest single IFD value (the tile offset table, JPEG tables), in bytes (default 64 MiB).
    pub max_ifd_value_bytes: usize,
    /// Threads decoding the tiles of one tile row in parallel (each with its own open file);
    /// 0 (the default) uses the rayon pool's size, 1 decodes on the calling thread only.
    pub decode_threads: usize,
}

impl Default for TiffOptions {
    fn default() -> Self {
        Self {
            max_tile_bytes: 256 << 20,
            max_compressed_tile_bytes: 256 << 20,
            max_cache_bytes: 1 << 30,
            max_ifd_value_bytes: 64 << 20,
            decode_threads: 0,
        }
    }
}

impl TiffOptions {
    fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.decoding_buffer_size = self.max_tile_bytes;
        limits.intermediate_buffer_size = self.max_compressed_tile_bytes;
        limits.ifd_value_size = self.max_ifd_value_bytes;
        limits
    }
}

/// Compares two names in natural order: runs of digits compare by their value, so `z2.tif`
/// sorts before `z10.tif`; other characters compare as themselves. Names equal in that order
/// (`z01` and `z1`) fall back to plain string order, so the order is total and stable.
#[must_use]
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(cx), Some(cy)) if cx.is_ascii_digit() && cy.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, rx) = x.split_at(nx);
                let (dy, ry) = y.split_at(ny);
                let strip = |d: &'_ [u8]| -> usize { d.iter().take_while(|&&c| c == b'0').count() };
                let (vx, vy) = (&dx[strip(dx)..], &dy[strip(dy)..]);
                let ord = vx.len().cmp(&vy.len()).then_with(|| vx.cmp(vy));
                if ord != Ordering::Equal {
                    return ord;
                }
                (x, y) = (rx, ry);
            }
            (Some(cx), Some(cy)) => {
                if cx != cy {
                    return cx.cmp(cy);
                }
                (x, y) = (&x[1..], &y[1..]);
            }
        }
    }
}

/// The TIFF files of a folder (`.tif` / `.tiff`, any case, hidden files skipped), in natural
/// order of their names.
///
/// # Errors
/// [`Error::Io`] if the folder cannot be listed; [`Error::Input`] if it holds no TIFF file.
pub fn list_tiffs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let is_tiff = matches!(ext.as_deref(), Some("tif" | "tiff"));
        if is_tiff && !name.starts_with('.') && path.is_file() {
            files.push((name, path));
        }
    }
    if files.is_empty() {
        return Err(Error::Input {
            source_name: dir.display().to_string(),
            message: "no .tif or .tiff file in this folder".into(),
        });
    }
    files.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// How one plane's pixels are stored (everything the other planes must match, plus the
/// layout, which may differ between planes).
#[derive(Debug, Clone, PartialEq)]
struct PlaneMeta {
    width: u32,
    height: u32,
    channels: u32,
    sample_type: SampleType,
    /// Chunk width (tile width, or the plane width for strips).
    chunk_w: u32,
    /// Data rows per chunk row (tile length, or rows per strip), at most the plane height.
    chunk_h: u32,
    /// Rows of a whole chunk as stored (tile length, padding included).
    chunk_h_full: u32,
    tiled: bool,
    jpeg: bool,
    pixel_size: Option<PixelSize>,
}

impl PlaneMeta {
    fn pixel_bytes(&self) -> usize {
        self.channels as usize * self.sample_type.bytes()
    }
    fn chunks_across(&self) -> u32 {
        self.width.div_ceil(self.chunk_w)
    }
    fn chunk_rows(&self) -> u32 {
        self.height.div_ceil(self.chunk_h)
    }
}

/// The plane currently being read: its open decoder and, for JPEG, what raw reads need.
struct OpenPlane {
    plane: u32,
    decoder: Decoder<BufReader<File>>,
    meta: PlaneMeta,
    /// JPEG only: the raw file, chunk offsets and byte counts, and the shared tables.
    jpeg: Option<JpegChunks>,
    /// Scratch for chunks cut by the right edge of the plane.
    edge: Vec<u8>,
}

struct JpegChunks {
    file: File,
    offsets: Vec<u64>,
    counts: Vec<u64>,
    tables: Option<Vec<u8>>,
}

/// One decoded row of chunks, kept while the bands that need it are read.
#[derive(Default)]
struct RowCache {
    /// `(plane, chunk row)` held, if any.
    key: Option<(u32, u32)>,
    buf: Vec<u8>,
}

/// A z-stack read from TIFF files, one per focus level (the first image of each file).
pub struct TiffStack {
    info: StackInfo,
    paths: Vec<PathBuf>,
    options: TiffOptions,
    open: Option<OpenPlane>,
    cache: RowCache,
    /// Extra decoders of the open plane for parallel tile decoding, opened when first needed.
    helpers: Vec<Mutex<Option<OpenPlane>>>,
    chunks_decoded: u64,
    /// The tile shape of every plane, if all planes are tiled alike.
    region_tile: Option<(u32, u32)>,
}

impl std::fmt::Debug for TiffStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TiffStack")
            .field("info", &self.info)
            .field("paths", &self.paths)
            .field("options", &self.options)
            .field("chunks_decoded", &self.chunks_decoded)
            .finish_non_exhaustive()
    }
}

fn input(path: &Path, message: impl Into<String>) -> Error {
    Error::Input {
        source_name: path.display().to_string(),
        message: message.into(),
    }
}

fn tiff_err(path: &Path, what: &str, e: &tiff::TiffError) -> Error {
    let hint = match e {
        tiff::TiffError::LimitsExceeded => {
            " (a decoding limit was exceeded: raise TiffOptions limits if the file is genuine)"
        }
        tiff::TiffError::IoError(_) => " (the file may be truncated)",
        _ => "",
    };
    input(path, format!("{what}: {e}{hint}"))
}

impl TiffStack {
    /// Opens the TIFF files of a folder, in natural order of their names (see
    /// [`list_tiffs`]), with default limits.
    ///
    /// # Errors
    /// See [`TiffStack::open_paths`].
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, TiffOptions::default())
    }

    /// Opens the TIFF files of a folder with the given limits.
    ///
    /// # Errors
    /// See [`TiffStack::open_paths`].
    pub fn open_with(dir: &Path, options: TiffOptions) -> Result<Self> {
        let paths = list_tiffs(dir)?;
        Self::open_paths(&paths, options)
    }

    /// Opens the given files, one plane each, in the given order.
    ///
    /// Every file is read (header and first image directory) and checked before this returns.
    ///
    /// # Errors
    /// [`Error::Input`] naming the file if a file is not a readable TIFF, uses an unsupported
    /// feature, points past its end, exceeds a limit, or differs from the first plane (and
    /// what differs); [`Error::Config`] if no path is given.
    pub fn open_paths(paths: &[PathBuf], options: TiffOptions) -> Result<Self> {
        let Some(first_path) = paths.first() else {
            return Err(Error::Config(
                "a z-stack needs at least one TIFF file".into(),
            ));
        };
        let mut first: Option<PlaneMeta> = None;
        // The tile grid shared by every plane, if all are tiled alike (regions are cheap).
        let mut tile = None;
        for (i, path) in paths.iter().enumerate() {
            let (meta, _) = open_plane(path, &options, false)?;
            let this = meta.tiled.then_some((meta.chunk_w, meta.chunk_h));
            tile = if i == 0 || tile == this { this } else { None };
            match &first {
                None => first = Some(meta),
                Some(f) => {
                    let mut diffs = Vec::new();
                    if (meta.width, meta.height) != (f.width, f.height) {
                        diffs.push(format!(
                            "size {} x {} differs from {} x {}",
                            meta.width, meta.height, f.width, f.height
                        ));
                    }
                    if meta.channels != f.channels {
                        diffs.push(format!(
                            "{} samples per pixel differ from {}",
                            meta.channels, f.channels
                        ));
                    }
                    if meta.sample_type != f.sample_type {
                        diffs.push(format!(
                            "{}-bit samples differ from {}-bit",
                            meta.sample_type.bytes() * 8,
                            f.sample_type.bytes() * 8
                        ));
                    }
                    if !diffs.is_empty() {
                        return Err(input(
                            path,
                            format!(
                                "does not match the first plane {}: {}",
                                first_path.display(),
                                diffs.join("; ")
                            ),
                        ));
                    }
                }
            }
        }
        let Some(first) = first else {
            return Err(Error::Config(
                "a z-stack needs at least one TIFF file".into(),
            ));
        };
        let planes = u32::try_from(paths.len())
            .map_err(|_| Error::Config("too many planes for one z-stack".into()))?;
        let info = StackInfo {
            width: first.width,
            height: first.height,
            planes,
            channels: first.channels,
            sample_type: first.sample_type,
            pixel_size: first.pixel_size,
            plane_names: paths
                .iter()
                .map(|p| {
                    p.file_name()
                        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
                })
                .collect(),
        };
        Ok(Self {
            info,
            paths: paths.to_vec(),
            options,
            open: None,
            cache: RowCache::default(),
            helpers: Vec::new(),
            chunks_decoded: 0,
            region_tile: tile,
        })
    }

    /// The files, one per plane, in plane order.
    #[must_use]
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Tiles or strips decoded so far (each counted once per decode), to check that bands do
    /// not decode a chunk more often than needed.
    #[must_use]
    pub fn chunks_decoded(&self) -> u64 {
        self.chunks_decoded
    }

    fn path(&self, plane: u32) -> Result<&Path> {
        self.paths
            .get(plane as usize)
            .map(PathBuf::as_path)
            .ok_or_else(|| {
                Error::Config(format!(
                    "plane {plane} does not exist (the stack has {})",
                    self.paths.len()
                ))
            })
    }

    fn ensure_open(&mut self, plane: u32) -> Result<()> {
        if self.open.as_ref().is_some_and(|o| o.plane == plane) {
            return Ok(());
        }
        self.open = None;
        let path = self.path(plane)?.to_owned();
        self.open = Some(reopen_plane(&path, plane, &self.options, &self.info)?);
        Ok(())
    }
}

/// Opens plane `plane` for decoding, checking it still matches the stack checked at open.
fn reopen_plane(
    path: &Path,
    plane: u32,
    options: &TiffOptions,
    info: &StackInfo,
) -> Result<OpenPlane> {
    let (meta, opened) = open_plane(path, options, true)?;
    if (meta.width, meta.height, meta.channels, meta.sample_type)
        != (info.width, info.height, info.channels, info.sample_type)
    {
        return Err(input(path, "the file changed since the z-stack was opened"));
    }
    let Some((decoder, jpeg)) = opened else {
        return Err(input(path, "the file could not be reopened"));
    };
    Ok(OpenPlane {
        plane,
        decoder,
        meta,
        jpeg,
        edge: Vec::new(),
    })
}

type Opened = (FileDecoder, Option<JpegChunks>);

/// A TIFF decoder reading a file.
type FileDecoder = Decoder<BufReader<File>>;

/// Reads and checks one file's first image directory; with `keep`, also returns the decoder
/// (and what JPEG decoding needs) positioned on that image.
fn open_plane(
    path: &Path,
    options: &TiffOptions,
    keep: bool,
) -> Result<(PlaneMeta, Option<Opened>)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let raw = if keep {
        Some(file.try_clone().map_err(|e| Error::io(path, e))?)
    } else {
        None
    };
    // The decoder reads the first image directory here, and panics on some malformed ones
    // (an empty SampleFormat in tiff 0.10.3): that is an unreadable file, not a crash.
    let mut decoder = catch_unwind(AssertUnwindSafe(|| Decoder::new(BufReader::new(file))))
        .map_err(|_| {
            input(
                path,
                "not a readable TIFF (its image directory is malformed)",
            )
        })?
        .map_err(|e| tiff_err(path, "not a readable TIFF", &e))?
        .with_limits(options.limits());

    let tags = FormatTags::read(&mut decoder, path)?;
    let (sample_type, jpeg) = tags.check(path)?;
    let pixel_bytes = u64::from(tags.channels) * sample_type.bytes() as u64;
    let layout = chunk_layout(&mut decoder, path, tags.height, pixel_bytes, options)?;
    let (offsets, counts) = chunk_locations(&mut decoder, path, layout.tiled)?;
    let meta = PlaneMeta {
        width: tags.width,
        height: tags.height,
        channels: u32::from(tags.channels),
        sample_type,
        chunk_w: layout.chunk_w,
        chunk_h: layout.chunk_h,
        chunk_h_full: layout.chunk_h_full,
        tiled: layout.tiled,
        jpeg,
        pixel_size: pixel_size(&mut decoder),
    };
    check_chunk_locations(path, &meta, &offsets, &counts, file_len, options)?;
    let opened = match raw {
        None => None,
        Some(file) => {
            let jpeg_chunks = if jpeg {
                Some(jpeg_chunks(&mut decoder, path, file, offsets, counts)?)
            } else {
                None
            };
            Some((decoder, jpeg_chunks))
        }
    };
    Ok((meta, opened))
}

/// The tags of an image directory that decide whether its pixels can be read.
struct FormatTags {
    width: u32,
    height: u32,
    channels: u16,
    bits: Vec<u16>,
    formats: Vec<u16>,
    photometric: Option<u16>,
    compression: u16,
    planar: u16,
    extra: bool,
}

impl FormatTags {
    /// Reads the tags (with the TIFF defaults for absent ones); a tag that cannot be read is an
    /// error naming it.
    fn read(decoder: &mut FileDecoder, path: &Path) -> Result<Self> {
        let terr = |what: &str, e: tiff::TiffError| tiff_err(path, what, &e);
        let (width, height) = decoder.dimensions().map_err(|e| terr("no image size", e))?;
        let u16_tag = |d: &mut FileDecoder, tag: Tag| -> Result<Option<u16>> {
            d.find_tag_unsigned::<u16>(tag)
                .map_err(|e| tiff_err(path, &format!("tag {tag:?}"), &e))
        };
        let channels = u16_tag(decoder, Tag::SamplesPerPixel)?.unwrap_or(1);
        let bits: Vec<u16> = decoder
            .find_tag_unsigned_vec::<u16>(Tag::BitsPerSample)
            .map_err(|e| terr("tag BitsPerSample", e))?
            .unwrap_or_else(|| vec![1]);
        let formats: Vec<u16> = decoder
            .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)
            .map_err(|e| terr("tag SampleFormat", e))?
            .unwrap_or_else(|| vec![1]);
        let photometric = u16_tag(decoder, Tag::PhotometricInterpretation)?;
        let compression = u16_tag(decoder, Tag::Compression)?.unwrap_or(1);
        let planar = u16_tag(decoder, Tag::PlanarConfiguration)?.unwrap_or(1);
        let extra = decoder
            .find_tag(Tag::ExtraSamples)
            .map_err(|e| terr("tag ExtraSamples", e))?
            .is_some();
        Ok(Self {
            width,
            height,
            channels,
            bits,
            formats,
            photometric,
            compression,
            planar,
            extra,
        })
    }

    /// Checks that the pixels are supported; returns their sample type and whether the chunks
    /// are JPEG-compressed.
    fn check(&self, path: &Path) -> Result<(SampleType, bool)> {
        let sample_type = sample_type_of(path, &self.bits, &self.formats)?;
        if self.extra {
            return Err(input(
                path,
                "extra samples (alpha) are not supported: gray or RGB only",
            ));
        }
        if self.planar != PlanarConfiguration::Chunky.to_u16() {
            return Err(input(
                path,
                "planar configuration 2 (separate colour planes) is not supported: \
                 rewrite the file with interleaved (chunky) RGB",
            ));
        }
        let jpeg = is_jpeg(path, self.compression)?;
        let photo = self
            .photometric
            .and_then(PhotometricInterpretation::from_u16);
        check_photometric(path, self.channels, photo, jpeg)?;
        if jpeg && sample_type != SampleType::U8 {
            return Err(input(path, "JPEG with 16-bit samples is not supported"));
        }
        if jpeg && photo == Some(PhotometricInterpretation::WhiteIsZero) {
            return Err(input(path, "JPEG with MinIsWhite is not supported"));
        }
        Ok((sample_type, jpeg))
    }
}

/// The sample type of equal 8- or 16-bit unsigned integer samples.
fn sample_type_of(path: &Path, bits: &[u16], formats: &[u16]) -> Result<SampleType> {
    let bit = match bits.first() {
        Some(&b) if bits.iter().all(|&x| x == b) => b,
        _ => return Err(input(path, format!("mixed bits per sample {bits:?}"))),
    };
    let sample_type = match bit {
        8 => SampleType::U8,
        16 => SampleType::U16,
        b => {
            return Err(input(
                path,
                format!("{b}-bit samples are not supported (8 or 16 only)"),
            ));
        }
    };
    if formats.iter().any(|&f| f != 1) {
        return Err(input(
            path,
            format!("sample format {formats:?} is not supported (unsigned integers only)"),
        ));
    }
    Ok(sample_type)
}

/// Whether a supported compression is JPEG; an error for unsupported ones.
fn is_jpeg(path: &Path, compression: u16) -> Result<bool> {
    match CompressionMethod::from_u16_exhaustive(compression) {
        CompressionMethod::None
        | CompressionMethod::LZW
        | CompressionMethod::Deflate
        | CompressionMethod::OldDeflate
        | CompressionMethod::PackBits
        | CompressionMethod::ZSTD => Ok(false),
        CompressionMethod::ModernJPEG => Ok(true),
        other => Err(input(
            path,
            format!(
                "compression {other:?} ({compression}) is not supported: use none, LZW, \
                 Deflate, PackBits, JPEG or ZSTD"
            ),
        )),
    }
}

/// Checks the colour model: gray (`MinIsBlack` or `MinIsWhite`), RGB, or YCbCr in JPEG.
fn check_photometric(
    path: &Path,
    channels: u16,
    photo: Option<PhotometricInterpretation>,
    jpeg: bool,
) -> Result<()> {
    match (channels, photo) {
        (
            1,
            Some(PhotometricInterpretation::BlackIsZero | PhotometricInterpretation::WhiteIsZero),
        )
        | (1, None)
        | (3, Some(PhotometricInterpretation::RGB)) => Ok(()),
        (3, Some(PhotometricInterpretation::YCbCr)) if jpeg => Ok(()),
        (1 | 3, p) => Err(input(
            path,
            format!(
                "photometric interpretation {p:?} with {channels} samples is not supported \
                 (gray MinIsBlack/MinIsWhite, RGB, or JPEG YCbCr)"
            ),
        )),
        (n, _) => Err(input(
            path,
            format!("{n} samples per pixel are not supported (1 gray or 3 RGB)"),
        )),
    }
}

/// The shape of the tiles or strips.
struct ChunkLayout {
    tiled: bool,
    chunk_w: u32,
    chunk_h: u32,
    chunk_h_full: u32,
}

/// Reads the tile or strip shape and checks that one decoded chunk fits
/// [`TiffOptions::max_tile_bytes`].
fn chunk_layout(
    decoder: &mut FileDecoder,
    path: &Path,
    height: u32,
    pixel_bytes: u64,
    options: &TiffOptions,
) -> Result<ChunkLayout> {
    let tiled = decoder.get_chunk_type() == ChunkType::Tile;
    // The decoder validated the chunk layout when it read the directory, so this cannot fail.
    let (chunk_w, chunk_h_raw) = catch_unwind(AssertUnwindSafe(|| decoder.chunk_dimensions()))
        .map_err(|_| input(path, "inconsistent tile or strip layout"))?;
    if chunk_w == 0 || chunk_h_raw == 0 {
        return Err(input(path, "tiles or strips of zero size"));
    }
    let chunk_h = chunk_h_raw.min(height);
    // A tile is decoded whole (JPEG tiles include their padding); a strip never exceeds the
    // plane.
    let chunk_h_full = if tiled { chunk_h_raw } else { chunk_h };
    let chunk_bytes = u64::from(chunk_w) * u64::from(chunk_h_full) * pixel_bytes;
    if chunk_bytes > options.max_tile_bytes as u64 {
        return Err(input(
            path,
            format!(
                "{} of {chunk_w} x {chunk_h} pixels need {chunk_bytes} bytes decoded, above the \
                 limit of {} (TiffOptions::max_tile_bytes): rewrite the file with smaller tiles \
                 or raise the limit",
                if tiled { "tiles" } else { "strips" },
                options.max_tile_bytes
            ),
        ));
    }
    Ok(ChunkLayout {
        tiled,
        chunk_w,
        chunk_h,
        chunk_h_full,
    })
}

/// The chunks' file offsets and byte counts (empty when the tags are absent).
fn chunk_locations(
    decoder: &mut FileDecoder,
    path: &Path,
    tiled: bool,
) -> Result<(Vec<u64>, Vec<u64>)> {
    let terr = |what: &str, e: tiff::TiffError| tiff_err(path, what, &e);
    let (offsets_tag, counts_tag) = if tiled {
        (Tag::TileOffsets, Tag::TileByteCounts)
    } else {
        (Tag::StripOffsets, Tag::StripByteCounts)
    };
    let offsets = decoder
        .find_tag(offsets_tag)
        .map_err(|e| terr("chunk offsets", e))?
        .map(Value::into_u64_vec)
        .transpose()
        .map_err(|e| terr("chunk offsets", e))?
        .unwrap_or_default();
    let counts = decoder
        .find_tag(counts_tag)
        .map_err(|e| terr("chunk byte counts", e))?
        .map(Value::into_u64_vec)
        .transpose()
        .map_err(|e| terr("chunk byte counts", e))?
        .unwrap_or_default();
    Ok((offsets, counts))
}

/// Checks that there is one offset and count per chunk, that every chunk lies inside the file
/// and that none exceeds [`TiffOptions::max_compressed_tile_bytes`].
fn check_chunk_locations(
    path: &Path,
    meta: &PlaneMeta,
    offsets: &[u64],
    counts: &[u64],
    file_len: u64,
    options: &TiffOptions,
) -> Result<()> {
    let expected = u64::from(meta.chunks_across()) * u64::from(meta.chunk_rows());
    if offsets.len() as u64 != expected || counts.len() != offsets.len() {
        return Err(input(
            path,
            format!(
                "{} chunk offsets and {} byte counts for {expected} tiles or strips",
                offsets.len(),
                counts.len()
            ),
        ));
    }
    for (i, (&o, &c)) in offsets.iter().zip(counts).enumerate() {
        if o.checked_add(c).is_none_or(|end| end > file_len) {
            return Err(input(
                path,
                format!(
                    "{} {i} lies past the end of the file (offset {o} + {c} bytes, file size \
                     {file_len}): the file is truncated or corrupt",
                    if meta.tiled { "tile" } else { "strip" }
                ),
            ));
        }
        if c > options.max_compressed_tile_bytes as u64 {
            return Err(input(
                path,
                format!(
                    "chunk {i} holds {c} compressed bytes, above the limit of {} \
                     (TiffOptions::max_compressed_tile_bytes)",
                    options.max_compressed_tile_bytes
                ),
            ));
        }
    }
    Ok(())
}

/// What raw JPEG decoding needs: the file, the chunk locations and the shared tables.
fn jpeg_chunks(
    decoder: &mut FileDecoder,
    path: &Path,
    file: File,
    offsets: Vec<u64>,
    counts: Vec<u64>,
) -> Result<JpegChunks> {
    let terr = |what: &str, e: tiff::TiffError| tiff_err(path, what, &e);
    let tables = decoder
        .find_tag(Tag::JPEGTables)
        .map_err(|e| terr("JPEG tables", e))?
        .map(Value::into_u8_vec)
        .transpose()
        .map_err(|e| terr("JPEG tables", e))?;
    Ok(JpegChunks {
        file,
        offsets,
        counts,
        tables,
    })
}

/// Pixel size in micrometres from XResolution / YResolution and ResolutionUnit (inch or
/// centimetre); `None` when absent, unitless or not positive.
fn pixel_size(decoder: &mut FileDecoder) -> Option<PixelSize> {
    let unit = decoder
        .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
        .ok()
        .flatten()
        .unwrap_or(2);
    let um_per_unit = match unit {
        2 => 25_400.0,
        3 => 10_000.0,
        _ => return None,
    };
    let mut res = |tag: Tag| -> Option<f64> {
        let v = match decoder.find_tag(tag).ok()?? {
            Value::Rational(n, d) => f64::from(n) / f64::from(d),
            #[allow(clippy::cast_precision_loss)]
            Value::RationalBig(n, d) => n as f64 / d as f64,
            other => other.into_f64().ok()?,
        };
        (v.is_finite() && v > 0.0).then_some(um_per_unit / v)
    };
    let x = res(Tag::XResolution)?;
    let y = res(Tag::YResolution).unwrap_or(x);
    Some(PixelSize::xy(x, y))
}

impl OpenPlane {
    /// Decodes chunk `index` into `dst`, whose first byte is the chunk's top-left pixel and
    /// whose rows are `stride` bytes apart.
    fn decode_chunk(
        &mut self,
        path: &Path,
        index: u32,
        dst: &mut [u8],
        stride: usize,
        max_compressed: usize,
    ) -> Result<()> {
        let m = &self.meta;
        let px = m.pixel_bytes();
        let across = m.chunks_across();
        let (cx, cy) = (index % across, index / across);
        let dw = (m.width - cx * m.chunk_w).min(m.chunk_w) as usize;
        let dh = (m.height - cy * m.chunk_h).min(m.chunk_h) as usize;
        let need = stride * (dh - 1) + dw * px;
        if dst.len() < need || stride < dw * px {
            return Err(Error::Codec(format!(
                "internal: chunk buffer of {} bytes, {need} needed",
                dst.len()
            )));
        }
        if let Some(jpeg) = &mut self.jpeg {
            return decode_jpeg(jpeg, m, path, index, dst, stride, (dw, dh), max_compressed);
        }
        let chunk_w = m.chunk_w as usize;
        let decoder = &mut self.decoder;
        let edge = &mut self.edge;
        // Chunks cut by the right edge are decoded at their full width and cropped here: the
        // decoder's path that skips the padding of each row reads LZW data in small pieces
        // and can fail on valid files.
        let cropped = dw < chunk_w;
        let result = catch_unwind(AssertUnwindSafe(|| {
            if cropped {
                edge.resize(chunk_w * px * dh, 0);
                decoder.read_chunk_to_buffer(DecodingBuffer::U8(edge), index, chunk_w)
            } else {
                decoder.read_chunk_to_buffer(DecodingBuffer::U8(dst), index, stride / px)
            }
        }));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(tiff_err(path, &format!("chunk {index}"), &e)),
            Err(_) => {
                return Err(input(
                    path,
                    format!("chunk {index} is corrupt (the decoder rejected it)"),
                ));
            }
        }
        if cropped {
            for (y, src) in self.edge.chunks_exact(chunk_w * px).take(dh).enumerate() {
                let at = y * stride;
                if let (Some(d), Some(s)) = (dst.get_mut(at..at + dw * px), src.get(..dw * px)) {
                    d.copy_from_slice(s);
                }
            }
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn decode_jpeg(
    j: &mut JpegChunks,
    m: &PlaneMeta,
    path: &Path,
    index: u32,
    dst: &mut [u8],
    stride: usize,
    (dw, dh): (usize, usize),
    max_compressed: usize,
) -> Result<()> {
    let i = index as usize;
    let (Some(&offset), Some(&count)) = (j.offsets.get(i), j.counts.get(i)) else {
        return Err(input(path, format!("JPEG chunk {index} has no offset")));
    };
    let count = usize::try_from(count)
        .ok()
        .filter(|&c| c <= max_compressed)
        .ok_or_else(|| input(path, format!("JPEG chunk {index} is too large")))?;
    let mut data = Vec::with_capacity(count + j.tables.as_ref().map_or(0, Vec::len));
    if let Some(t) = &j.tables {
        // Tables end with EOI and the chunk starts with SOI: splice them into one stream.
        if t.len() >= 4 {
            data.extend_from_slice(&t[..t.len() - 2]);
        }
    }
    j.file
        .seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io(path, e))?;
    let start = data.len();
    data.resize(start + count, 0);
    j.file.read_exact(&mut data[start..]).map_err(|e| {
        input(
            path,
            format!("JPEG chunk {index}: {e} (the file may be truncated)"),
        )
    })?;
    if start > 0 && data.len() >= start + 2 {
        data.drain(start..start + 2);
    }
    let color = if m.channels == 3 {
        zune_core::colorspace::ColorSpace::RGB
    } else {
        zune_core::colorspace::ColorSpace::Luma
    };
    let opts = zune_core::options::DecoderOptions::default()
        .jpeg_set_out_colorspace(color)
        .set_max_width(m.chunk_w as usize)
        .set_max_height(m.chunk_h_full as usize);
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(data.as_slice(), opts);
    let bad = |e: &dyn std::fmt::Debug| input(path, format!("JPEG chunk {index}: {e:?}"));
    dec.decode_headers().map_err(|e| bad(&e))?;
    let (w, h) = dec
        .dimensions()
        .ok_or_else(|| input(path, format!("JPEG chunk {index}: no frame")))?;
    if w < dw || h < dh {
        return Err(input(
            path,
            format!("JPEG chunk {index} is {w} x {h}, smaller than its {dw} x {dh} pixels"),
        ));
    }
    let px = m.pixel_bytes();
    let size = dec
        .output_buffer_size()
        .filter(|&s| s == w * h * px)
        .ok_or_else(|| input(path, format!("JPEG chunk {index}: unexpected components")))?;
    let mut pixels = vec![0u8; size];
    // As with the TIFF decoder: a panic on corrupt entropy-coded data (zune-jpeg 0.4 asserts
    // on some in debug builds) is a corrupt chunk, not a crash.
    catch_unwind(AssertUnwindSafe(|| dec.decode_into(&mut pixels)))
        .map_err(|_| {
            input(
                path,
                format!("JPEG chunk {index} is corrupt (the decoder rejected it)"),
            )
        })?
        .map_err(|e| bad(&e))?;
    for (row, src) in pixels.chunks_exact(w * px).take(dh).enumerate() {
        let at = row * stride;
        if let (Some(d), Some(s)) = (dst.get_mut(at..at + dw * px), src.get(..dw * px)) {
            d.copy_from_slice(s);
        }
    }
    Ok(())
}

impl TiffStack {
    /// Decoders to run at once: the option, or one per core.
    fn decode_threads(&self) -> usize {
        match self.options.decode_threads {
            0 => rayon::current_num_threads(),
            n => n,
        }
    }

    /// Decodes chunk row `r` of the open plane into `dst` (its full-width rows).
    fn decode_row(&mut self, r: u32, dst: &mut [u8]) -> Result<()> {
        let threads = self.decode_threads();
        let across = self.open.as_ref().map_or(1, |o| o.meta.chunks_across());
        if threads > 1 && across > 1 {
            return self.decode_row_parallel(r, dst, threads.min(across as usize));
        }
        let rb = self.info.row_bytes();
        let max_c = self.options.max_compressed_tile_bytes;
        let Some(open) = self.open.as_mut() else {
            return Err(Error::Codec("internal: no plane open".into()));
        };
        let path = self
            .paths
            .get(open.plane as usize)
            .cloned()
            .unwrap_or_default();
        let across = open.meta.chunks_across();
        let (cw, px) = (open.meta.chunk_w as usize, open.meta.pixel_bytes());
        for cx in 0..across {
            let at = cx as usize * cw * px;
            let Some(d) = dst.get_mut(at..) else {
                return Err(Error::Codec("internal: row buffer too small".into()));
            };
            open.decode_chunk(&path, r * across + cx, d, rb, max_c)?;
            self.chunks_decoded += 1;
        }
        Ok(())
    }

    /// Decodes chunk row `r` of the open plane into `dst` with up to `threads` decoders.
    fn decode_row_parallel(&mut self, r: u32, dst: &mut [u8], threads: usize) -> Result<()> {
        let Some(open) = self.open.as_ref() else {
            return Err(Error::Codec("internal: no plane open".into()));
        };
        let m = &open.meta;
        let rows = (m.chunk_h * r, (m.chunk_h * r + m.chunk_h).min(m.height));
        let cols = (0, m.width);
        self.copy_window(r, rows, cols, dst, threads)
    }

    /// Copies rows `rows.0 .. rows.1` (inside chunk row `r`) and columns `cols.0 .. cols.1` of
    /// the open plane into `dst` (rows `cols.1 - cols.0` pixels apart), decoding the tiles
    /// that meet the window with up to `threads` decoders, each tile into its own buffer.
    fn copy_window(
        &mut self,
        r: u32,
        rows: (u32, u32),
        cols: (u32, u32),
        dst: &mut [u8],
        threads: usize,
    ) -> Result<()> {
        use rayon::prelude::*;
        let max_c = self.options.max_compressed_tile_bytes;
        let Some(open) = self.open.as_ref() else {
            return Err(Error::Codec("internal: no plane open".into()));
        };
        let (plane, meta) = (open.plane, open.meta.clone());
        let path = self.path(plane)?.to_owned();
        let threads = threads.max(1);
        if self.helpers.len() < threads {
            self.helpers.resize_with(threads, || Mutex::new(None));
        }
        let helpers = &self.helpers;
        let options = &self.options;
        let info = &self.info;
        let across = meta.chunks_across();
        let px = meta.pixel_bytes();
        let ry0 = r * meta.chunk_h;
        let dh = (meta.height - ry0).min(meta.chunk_h) as usize;
        let decode_tile = |cx: u32| -> Result<Vec<u8>> {
            let x0 = (cx * meta.chunk_w) as usize;
            let dw = (meta.width as usize - x0).min(meta.chunk_w as usize);
            let mut buf = vec![0u8; dw * px * dh];
            // A free decoder: tasks never outnumber the pool's threads, so one is free;
            // otherwise wait for the tile's own slot.
            let mut guard = match helpers.iter().find_map(|h| h.try_lock().ok()) {
                Some(g) => g,
                None => helpers
                    .get(cx as usize % helpers.len().max(1))
                    .ok_or_else(|| Error::Codec("internal: no decoder slot".into()))?
                    .lock()
                    .map_err(|_| Error::Codec("internal: decoder slot poisoned".into()))?,
            };
            if guard.as_ref().is_none_or(|h| h.plane != plane) {
                *guard = None;
                *guard = Some(reopen_plane(&path, plane, options, info)?);
            }
            let Some(h) = guard.as_mut() else {
                return Err(Error::Codec("internal: decoder slot empty".into()));
            };
            h.decode_chunk(&path, r * across + cx, &mut buf, dw * px, max_c)?;
            Ok(buf)
        };
        let stride = (cols.1 - cols.0) as usize * px;
        let (first_tile, end_tile) = (cols.0 / meta.chunk_w, (cols.1 - 1) / meta.chunk_w + 1);
        // Tiles are decoded a few per thread at a time and copied into place before the
        // next group, so the scratch memory is a few tiles, not a second band.
        let group = (2 * threads) as u32;
        let mut decoded = 0;
        for first in (first_tile..end_tile).step_by(group as usize) {
            let last = (first + group).min(end_tile);
            let tiles: Vec<Result<Vec<u8>>> =
                (first..last).into_par_iter().map(decode_tile).collect();
            for (cx, tile) in (first..).zip(tiles) {
                let tile = tile?;
                let tx0 = cx * meta.chunk_w;
                let tw = (meta.width - tx0).min(meta.chunk_w) as usize * px;
                // The part of the tile inside the window, in bytes from the tile's left edge
                // and from the window's.
                let (a, b) = (tx0.max(cols.0), (tx0 + meta.chunk_w).min(cols.1));
                let (from, len) = ((a - tx0) as usize * px, (b - a) as usize * px);
                let to = (a - cols.0) as usize * px;
                for y in rows.0..rows.1 {
                    let src_at = (y - ry0) as usize * tw + from;
                    let dst_at = (y - rows.0) as usize * stride + to;
                    match (
                        tile.get(src_at..src_at + len),
                        dst.get_mut(dst_at..dst_at + len),
                    ) {
                        (Some(s), Some(d)) => d.copy_from_slice(s),
                        _ => return Err(Error::Codec("internal: tile copy out of range".into())),
                    }
                }
                decoded += 1;
            }
        }
        self.chunks_decoded += decoded;
        Ok(())
    }
}

impl ZStackSource for TiffStack {
    fn info(&self) -> &StackInfo {
        &self.info
    }

    fn read_band(&mut self, plane: u32, y0: u32, rows: u32, out: &mut [u8]) -> Result<()> {
        let path = self.path(plane)?.to_owned();
        let rb = self.info.row_bytes();
        let y1 = y0.checked_add(rows).filter(|&e| e <= self.info.height);
        let Some(y1) = y1.filter(|_| rows > 0) else {
            return Err(input(
                &path,
                format!(
                    "rows {y0}..{} are outside the plane of {} rows",
                    u64::from(y0) + u64::from(rows),
                    self.info.height
                ),
            ));
        };
        if out.len() != rows as usize * rb {
            return Err(input(
                &path,
                format!(
                    "band buffer holds {} bytes, {} needed",
                    out.len(),
                    rows as usize * rb
                ),
            ));
        }
        self.ensure_open(plane)?;
        let Some(open) = self.open.as_ref() else {
            return Err(Error::Codec("internal: no plane open".into()));
        };
        let (ch, height) = (open.meta.chunk_h, open.meta.height);
        for r in y0 / ch..=(y1 - 1) / ch {
            let ry0 = r * ch;
            let ry1 = ry0.saturating_add(ch).min(height);
            let (s0, s1) = (ry0.max(y0), ry1.min(y1));
            let out_at = (s0 - y0) as usize * rb;
            let out_end = (s1 - y0) as usize * rb;
            let Some(dst) = out.get_mut(out_at..out_end) else {
                return Err(Error::Codec("internal: band slice out of range".into()));
            };
            if s0 == ry0 && s1 == ry1 {
                // The whole chunk row is in the band: decode straight into it.
                self.decode_row(r, dst)?;
                continue;
            }
            let row_len = (ry1 - ry0) as usize * rb;
            if row_len <= self.options.max_cache_bytes {
                if self.cache.key != Some((plane, r)) {
                    let mut buf = std::mem::take(&mut self.cache.buf);
                    self.cache.key = None;
                    buf.resize(row_len, 0);
                    self.decode_row(r, &mut buf)?;
                    self.cache = RowCache {
                        key: Some((plane, r)),
                        buf,
                    };
                }
                let from = (s0 - ry0) as usize * rb;
                let Some(src) = self.cache.buf.get(from..from + dst.len()) else {
                    return Err(Error::Codec("internal: cache slice out of range".into()));
                };
                dst.copy_from_slice(src);
            } else {
                // Too large to cache: the tiles are decoded a few at a time and the rows
                // copied out (tiles spanning two bands are decoded for each).
                let threads = self.decode_threads();
                self.copy_window(r, (s0, s1), (0, self.info.width), dst, threads)?;
            }
        }
        Ok(())
    }

    fn read_region(&mut self, region: Region, out: &mut [u8]) -> Result<()> {
        if region.is_whole_rows(&self.info) {
            return self.read_band(region.plane, region.y0, region.rows, out);
        }
        let path = self.path(region.plane)?.to_owned();
        region
            .check(&self.info, out.len())
            .map_err(|m| input(&path, m))?;
        self.ensure_open(region.plane)?;
        let Some(open) = self.open.as_ref() else {
            return Err(Error::Codec("internal: no plane open".into()));
        };
        let (ch, height) = (open.meta.chunk_h, open.meta.height);
        let threads = self.decode_threads();
        let (y0, y1) = (region.y0, region.y0 + region.rows);
        let cols = (region.x0, region.x0 + region.cols);
        let stride = region.cols as usize * self.info.pixel_bytes();
        for r in y0 / ch..=(y1 - 1) / ch {
            let ry0 = r * ch;
            let (s0, s1) = (ry0.max(y0), ry0.saturating_add(ch).min(height).min(y1));
            let at = (s0 - y0) as usize * stride..(s1 - y0) as usize * stride;
            let Some(dst) = out.get_mut(at) else {
                return Err(Error::Codec("internal: region slice out of range".into()));
            };
            self.copy_window(r, (s0, s1), cols, dst, threads)?;
        }
        Ok(())
    }

    /// Tiled planes read regions on their tile grid; stripped planes read whole rows.
    fn region_tile(&self) -> Option<(u32, u32)> {
        self.region_tile
    }

    fn files(&self) -> Vec<PathBuf> {
        self.paths.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;
    use std::cmp::Ordering;

    #[test]
    fn natural_order() {
        let mut names = vec![
            "z10.tif", "z2.tif", "z1.tif", "z02.tif", "a.tif", "z100.tif", "Z3.tif", "z9b.tif",
            "z9a.tif",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "Z3.tif", "a.tif", "z1.tif", "z02.tif", "z2.tif", "z9a.tif", "z9b.tif", "z10.tif",
                "z100.tif"
            ]
        );
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
        assert_eq!(natural_cmp("x1", "x"), Ordering::Greater);
        assert_eq!(
            natural_cmp(
                "plane_99999999999999999999999",
                "plane_100000000000000000000000"
            ),
            Ordering::Less
        );
    }
}

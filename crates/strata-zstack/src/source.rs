//! Where planes come from: a z-stack is a list of planes of equal geometry, read band by band
//! (a run of full-width rows) or region by region (a run of rows, some columns), never whole.

use crate::error::Result;

/// Pixel sample type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleType {
    /// 8-bit unsigned.
    U8,
    /// 16-bit unsigned.
    U16,
}

impl SampleType {
    /// Bytes per sample.
    #[must_use]
    pub fn bytes(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::U16 => 2,
        }
    }

    /// The Zarr v3 data type name.
    #[must_use]
    pub fn zarr_name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::U16 => "uint16",
        }
    }
}

/// Physical size of a level-0 voxel, in micrometres: pixel width and height, and the distance
/// between focus levels. The one pixel-size type of the converter: what a source records and
/// what a conversion writes (NGFF scale, sidecar `PixelSize`, provenance).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelSize {
    /// Width of a pixel.
    pub x: f64,
    /// Height of a pixel.
    pub y: f64,
    /// Distance between focus levels.
    pub z: f64,
}

impl PixelSize {
    /// Distance between focus levels when the source records none: 1 um.
    pub const DEFAULT_Z: f64 = 1.0;

    /// A pixel of `x` by `y` um, focus levels [`PixelSize::DEFAULT_Z`] apart (what sources
    /// that record only the plane's resolution, such as TIFF, report).
    #[must_use]
    pub fn xy(x: f64, y: f64) -> Self {
        Self {
            x,
            y,
            z: Self::DEFAULT_Z,
        }
    }
}

/// The geometry every plane of a z-stack shares.
#[derive(Debug, Clone, PartialEq)]
pub struct StackInfo {
    /// Plane width in pixels.
    pub width: u32,
    /// Plane height in pixels.
    pub height: u32,
    /// Number of planes (focus levels).
    pub planes: u32,
    /// Samples per pixel: 1 (gray) or 3 (RGB).
    pub channels: u32,
    /// Sample type.
    pub sample_type: SampleType,
    /// Pixel size from the files' metadata, if they record one.
    pub pixel_size: Option<PixelSize>,
    /// One name per plane (file names for a TIFF folder), for provenance and messages.
    pub plane_names: Vec<String>,
}

impl StackInfo {
    /// Bytes in one full-width row of one plane (all channels, native-endian samples).
    #[must_use]
    pub fn row_bytes(&self) -> usize {
        self.width as usize * self.pixel_bytes()
    }

    /// Bytes of one pixel (all channels).
    #[must_use]
    pub fn pixel_bytes(&self) -> usize {
        self.channels as usize * self.sample_type.bytes()
    }
}

/// A rectangle of one plane: rows `y0 .. y0 + rows`, columns `x0 .. x0 + cols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Plane index.
    pub plane: u32,
    /// First row.
    pub y0: u32,
    /// Number of rows.
    pub rows: u32,
    /// First column.
    pub x0: u32,
    /// Number of columns.
    pub cols: u32,
}

impl Region {
    /// Rows `y0 .. y0 + rows` of `plane`, full width.
    #[must_use]
    pub fn rows(info: &StackInfo, plane: u32, y0: u32, rows: u32) -> Self {
        Self {
            plane,
            y0,
            rows,
            x0: 0,
            cols: info.width,
        }
    }

    /// Bytes of the region's pixels (row-major, channels interleaved).
    #[must_use]
    pub fn bytes(&self, info: &StackInfo) -> usize {
        self.rows as usize * self.cols as usize * info.pixel_bytes()
    }

    /// Whether the region spans whole rows of the plane.
    #[must_use]
    pub fn is_whole_rows(&self, info: &StackInfo) -> bool {
        self.x0 == 0 && self.cols == info.width
    }

    /// Whether the region ends at the plane's right edge (the last region of its rows).
    #[must_use]
    pub fn ends_row(&self, info: &StackInfo) -> bool {
        u64::from(self.x0) + u64::from(self.cols) == u64::from(info.width)
    }

    /// Checks that the region is inside the stack, not empty, and that a buffer of `out_len`
    /// bytes holds it exactly; the error says which of these fails.
    ///
    /// # Errors
    /// A message naming the region and what is wrong.
    pub fn check(&self, info: &StackInfo, out_len: usize) -> std::result::Result<(), String> {
        let inside = |a: u32, n: u32, end: u32| a.checked_add(n).is_some_and(|e| e <= end);
        if self.plane >= info.planes {
            return Err(format!(
                "plane {} does not exist (the stack has {})",
                self.plane, info.planes
            ));
        }
        if self.rows == 0
            || self.cols == 0
            || !inside(self.y0, self.rows, info.height)
            || !inside(self.x0, self.cols, info.width)
        {
            return Err(format!(
                "rows {}+{}, columns {}+{} are outside the {} x {} plane (or empty)",
                self.y0, self.rows, self.x0, self.cols, info.width, info.height
            ));
        }
        if out_len != self.bytes(info) {
            return Err(format!(
                "region buffer holds {out_len} bytes, {} needed",
                self.bytes(info)
            ));
        }
        Ok(())
    }
}

/// A z-stack read band by band.
///
/// Implementations read lazily and keep memory bounded by what one band needs; they check
/// every plane's geometry before the first band is read, so a mismatch is reported before
/// any output is written.
pub trait ZStackSource: Send {
    /// The stack's geometry.
    fn info(&self) -> &StackInfo;

    /// Reads rows `y0 .. y0 + rows` of plane `plane` into `out`, which holds exactly
    /// `rows * info().row_bytes()` bytes: row-major, channels interleaved, samples in native
    /// byte order.
    ///
    /// # Errors
    /// An error naming the plane's file and what is wrong (truncated, corrupt, ...).
    fn read_band(&mut self, plane: u32, y0: u32, rows: u32, out: &mut [u8]) -> Result<()>;

    /// Reads `region` into `out`, which holds exactly [`Region::bytes`]: row-major, channels
    /// interleaved, samples in native byte order.
    ///
    /// The default reads whole rows only (through [`ZStackSource::read_band`]); sources that
    /// can read narrower regions cheaply override it and [`ZStackSource::region_tile`].
    ///
    /// # Errors
    /// As [`ZStackSource::read_band`]; [`crate::Error::Config`] for a region narrower than
    /// the plane from a source that reads whole rows only.
    fn read_region(&mut self, region: Region, out: &mut [u8]) -> Result<()> {
        if region.is_whole_rows(self.info()) {
            return self.read_band(region.plane, region.y0, region.rows, out);
        }
        Err(crate::Error::Config(format!(
            "this z-stack source reads whole rows only, not columns {}..{}",
            region.x0,
            u64::from(region.x0) + u64::from(region.cols)
        )))
    }

    /// The tile `(width, height)` in pixels on whose grid [`ZStackSource::read_region`] is
    /// cheap (each stored tile decoded once), or `None` if the source reads whole rows only.
    /// The converter reads regions (column segments) only from sources that name a tile, which
    /// keeps its memory independent of the plane width.
    fn region_tile(&self) -> Option<(u32, u32)> {
        None
    }

    /// The files the stack is read from, for the provenance record (names, sizes and
    /// checksums); empty for sources that are not files.
    fn files(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }
}

/// A z-stack held in memory (tests, examples, and data already decoded elsewhere).
#[derive(Debug, Clone)]
pub struct MemorySource {
    info: StackInfo,
    planes: Vec<Vec<u8>>,
}

impl MemorySource {
    /// A stack from whole planes, each `height * row_bytes` bytes.
    ///
    /// # Errors
    /// [`crate::Error::Input`] if a plane has the wrong length or the count differs.
    pub fn new(info: StackInfo, planes: Vec<Vec<u8>>) -> Result<Self> {
        let want = info.height as usize * info.row_bytes();
        if planes.len() != info.planes as usize {
            return Err(crate::Error::Input {
                source_name: "memory".into(),
                message: format!("{} planes given, {} declared", planes.len(), info.planes),
            });
        }
        if let Some((i, p)) = planes.iter().enumerate().find(|(_, p)| p.len() != want) {
            return Err(crate::Error::Input {
                source_name: format!("plane {i}"),
                message: format!("{} bytes, expected {want}", p.len()),
            });
        }
        Ok(Self { info, planes })
    }
}

impl ZStackSource for MemorySource {
    fn info(&self) -> &StackInfo {
        &self.info
    }

    fn read_band(&mut self, plane: u32, y0: u32, rows: u32, out: &mut [u8]) -> Result<()> {
        let rb = self.info.row_bytes();
        let start = y0 as usize * rb;
        let end = start + rows as usize * rb;
        let src = self
            .planes
            .get(plane as usize)
            .and_then(|p| p.get(start..end))
            .ok_or_else(|| crate::Error::Input {
                source_name: format!("plane {plane}"),
                message: format!("rows {y0}..{} are outside the plane", y0 + rows),
            })?;
        if out.len() != src.len() {
            return Err(crate::Error::Input {
                source_name: format!("plane {plane}"),
                message: format!(
                    "band buffer holds {} bytes, {} needed",
                    out.len(),
                    src.len()
                ),
            });
        }
        out.copy_from_slice(src);
        Ok(())
    }

    fn read_region(&mut self, region: Region, out: &mut [u8]) -> Result<()> {
        region
            .check(&self.info, out.len())
            .map_err(|message| crate::Error::Input {
                source_name: format!("plane {}", region.plane),
                message,
            })?;
        let (rb, px) = (self.info.row_bytes(), self.info.pixel_bytes());
        let (x, w) = (region.x0 as usize * px, region.cols as usize * px);
        let plane = &self.planes[region.plane as usize];
        for (i, dst) in out.chunks_exact_mut(w).enumerate() {
            let at = (region.y0 as usize + i) * rb + x;
            dst.copy_from_slice(&plane[at..at + w]);
        }
        Ok(())
    }

    fn region_tile(&self) -> Option<(u32, u32)> {
        Some((1, 1))
    }
}

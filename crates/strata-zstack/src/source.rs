//! Where planes come from: a z-stack is a list of planes of equal geometry, read band by band
//! (a run of full-width rows), never whole.

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

/// Physical size of a pixel, in micrometres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelSize {
    /// Width of a pixel.
    pub x: f64,
    /// Height of a pixel.
    pub y: f64,
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
        self.width as usize * self.channels as usize * self.sample_type.bytes()
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
}

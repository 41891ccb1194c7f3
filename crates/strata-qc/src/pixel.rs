//! Pixel formats, plane geometry and the RGB to luminance conversion.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest accepted plane width or height (2^24 pixels).
pub const MAX_DIMENSION: usize = 1 << 24;
/// Largest accepted number of pixels in one plane (2^40).
pub const MAX_PIXELS: u64 = 1 << 40;

/// Layout and sample type of the pixels fed to QC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PixelFormat {
    /// One 8-bit sample per pixel.
    Gray8,
    /// One 16-bit sample per pixel.
    Gray16,
    /// Three interleaved 8-bit samples per pixel (R, G, B), reduced to luminance.
    Rgb8,
    /// Three interleaved 16-bit samples per pixel (R, G, B), reduced to luminance.
    Rgb16,
}

impl PixelFormat {
    /// Samples per pixel (1 or 3).
    #[must_use]
    pub fn channels(self) -> usize {
        match self {
            Self::Gray8 | Self::Gray16 => 1,
            Self::Rgb8 | Self::Rgb16 => 3,
        }
    }

    /// Bits per sample (8 or 16).
    #[must_use]
    pub fn bits(self) -> u32 {
        match self {
            Self::Gray8 | Self::Rgb8 => 8,
            Self::Gray16 | Self::Rgb16 => 16,
        }
    }

    /// Largest value of the sample type (255 or 65535).
    #[must_use]
    pub fn type_max(self) -> u32 {
        (1u32 << self.bits()) - 1
    }
}

/// A borrowed run of samples: the pixels of one band, rows in order, each row `width *
/// channels` samples with no padding.
#[derive(Debug, Clone, Copy)]
pub enum Samples<'a> {
    /// 8-bit samples (for [`PixelFormat::Gray8`] and [`PixelFormat::Rgb8`]).
    U8(&'a [u8]),
    /// 16-bit samples (for [`PixelFormat::Gray16`] and [`PixelFormat::Rgb16`]).
    U16(&'a [u16]),
}

impl Samples<'_> {
    /// Number of samples.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::U8(s) => s.len(),
            Self::U16(s) => s.len(),
        }
    }

    /// True when there are no samples.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Size and format of one plane (one focus level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaneGeometry {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels (rows).
    pub height: usize,
    /// Pixel format of the bands.
    pub format: PixelFormat,
    /// The value counted as saturated (and the scale of the RMS contrast). Defaults to the
    /// largest value of the sample type; set it to e.g. 4095 for 12-bit data stored in 16 bits.
    /// Pixels at or above it are saturated.
    pub max_value: u32,
}

impl PlaneGeometry {
    /// A plane of `width x height` pixels in `format`, saturating at the type's maximum.
    #[must_use]
    pub fn new(width: usize, height: usize, format: PixelFormat) -> Self {
        Self {
            width,
            height,
            format,
            max_value: format.type_max(),
        }
    }

    /// Sets the saturation value (see [`PlaneGeometry::max_value`]).
    #[must_use]
    pub fn with_max_value(mut self, max_value: u32) -> Self {
        self.max_value = max_value;
        self
    }

    /// Checks the dimensions and the saturation value.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] for an empty or oversized plane, or a saturation value of 0 or
    /// above the sample type's maximum.
    pub fn validate(&self) -> Result<()> {
        if self.width == 0 || self.height == 0 {
            return Err(Error::InvalidGeometry(format!(
                "empty plane {}x{}",
                self.width, self.height
            )));
        }
        if self.width > MAX_DIMENSION || self.height > MAX_DIMENSION {
            return Err(Error::InvalidGeometry(format!(
                "plane {}x{} exceeds {MAX_DIMENSION} pixels in one dimension",
                self.width, self.height
            )));
        }
        if (self.width as u64) * (self.height as u64) > MAX_PIXELS {
            return Err(Error::InvalidGeometry(format!(
                "plane {}x{} exceeds {MAX_PIXELS} pixels",
                self.width, self.height
            )));
        }
        if self.max_value == 0 || self.max_value > self.format.type_max() {
            return Err(Error::InvalidGeometry(format!(
                "saturation value {} outside 1..={}",
                self.max_value,
                self.format.type_max()
            )));
        }
        Ok(())
    }

    /// Number of pixels.
    #[must_use]
    pub fn pixels(&self) -> u64 {
        self.width as u64 * self.height as u64
    }
}

/// Fixed-point luminance weights, identical to OpenCV 5.0's `cv2.cvtColor(img,
/// cv2.COLOR_RGB2GRAY)` for 8- and 16-bit input: `Y = (9798 R + 19235 G + 3735 B + 2^14) >> 15`,
/// i.e. ITU-R BT.601 0.299 / 0.587 / 0.114 scaled by 2^15 and rounded half up.
pub const LUMA_WEIGHTS_Q15: [u32; 3] = [9798, 19235, 3735];

/// Luminance of one RGB pixel; see [`LUMA_WEIGHTS_Q15`].
#[inline]
#[must_use]
pub fn luminance(r: u32, g: u32, b: u32) -> u32 {
    (r * LUMA_WEIGHTS_Q15[0] + g * LUMA_WEIGHTS_Q15[1] + b * LUMA_WEIGHTS_Q15[2] + (1 << 14)) >> 15
}

/// Converts interleaved 8-bit RGB to 8-bit luminance (see [`LUMA_WEIGHTS_Q15`]); a trailing
/// partial pixel is ignored.
pub fn rgb8_to_gray(rgb: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend(rgb.chunks_exact(3).map(|p| {
        // The weights sum to 2^15, so the result never exceeds the largest input sample.
        luminance(u32::from(p[0]), u32::from(p[1]), u32::from(p[2])) as u8
    }));
}

/// Converts interleaved 16-bit RGB to 16-bit luminance (see [`LUMA_WEIGHTS_Q15`]); a trailing
/// partial pixel is ignored.
pub fn rgb16_to_gray(rgb: &[u16], out: &mut Vec<u16>) {
    out.clear();
    out.extend(
        rgb.chunks_exact(3)
            .map(|p| luminance(u32::from(p[0]), u32::from(p[1]), u32::from(p[2])) as u16),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luminance_extremes_stay_in_range() {
        assert_eq!(luminance(255, 255, 255), 255);
        assert_eq!(luminance(65535, 65535, 65535), 65535);
        assert_eq!(luminance(0, 0, 0), 0);
        // 0.299 * 255 = 76.245 -> 76
        assert_eq!(luminance(255, 0, 0), 76);
    }

    #[test]
    fn geometry_rejects_bad_input() {
        assert!(
            PlaneGeometry::new(0, 5, PixelFormat::Gray8)
                .validate()
                .is_err()
        );
        assert!(
            PlaneGeometry::new(5, 0, PixelFormat::Gray8)
                .validate()
                .is_err()
        );
        assert!(
            PlaneGeometry::new(5, 5, PixelFormat::Gray8)
                .with_max_value(256)
                .validate()
                .is_err()
        );
        assert!(
            PlaneGeometry::new(1, 1, PixelFormat::Rgb16)
                .validate()
                .is_ok()
        );
    }
}

//! What QC keeps of a plane: scalar metrics, the tile map and the thumbnail.

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::QcConfig;
#[cfg(doc)]
use crate::pixel::PlaneGeometry;

/// Focus measures of one plane. All filters use OpenCV's default border,
/// `BORDER_REFLECT_101` (`gfedcb|abcdefgh|gfedcba`; a 1-pixel dimension reflects onto itself).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FocusMetrics {
    /// Population variance of the Laplacian `[[0,1,0],[1,-4,1],[0,1,0]]` over all pixels
    /// (`cv2.Laplacian(img, cv2.CV_64F).var()`). The primary focus measure: it picks the best
    /// plane.
    pub variance_of_laplacian: f64,
    /// Tenengrad: mean over all pixels of `Gx^2 + Gy^2`, with `Gx`, `Gy` the 3x3 Sobel
    /// derivatives (`cv2.Sobel(img, cv2.CV_64F, 1, 0)` and `(0, 1)`), no threshold.
    pub tenengrad: f64,
    /// Brenner: mean over all pixels with `x + 2 < width` of `(I[y][x+2] - I[y][x])^2`
    /// (horizontal, no threshold, no border); 0 when the width is below 3.
    pub brenner: f64,
    /// Normalised gray-level variance: population variance of the intensities divided by their
    /// mean; 0 for an all-black plane.
    pub normalized_variance: f64,
    /// Modified Laplacian (Nayar): mean over all pixels of `|2I - I_left - I_right| + |2I -
    /// I_up - I_down|`, with the border reflected.
    pub modified_laplacian: f64,
}

/// Exposure measures of one plane (on luminance for RGB input).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExposureMetrics {
    /// Mean intensity.
    pub mean: f64,
    /// Population standard deviation of the intensities.
    pub std: f64,
    /// Smallest intensity.
    pub min: u32,
    /// Largest intensity.
    pub max: u32,
    /// Fraction of pixels at or above the saturation value ([`PlaneGeometry::max_value`],
    /// by default 255 or 65535).
    pub saturated_fraction: f64,
    /// Fraction of pixels equal to 0.
    pub black_fraction: f64,
    /// RMS contrast: `std / max_value` (standard deviation of the intensities scaled to 0..1).
    pub rms_contrast: f64,
    /// Michelson contrast `(max - min) / (max + min)`; 0 for an all-black plane.
    pub michelson_contrast: f64,
}

/// Tissue detection on one plane (brightfield: tissue is darker than the bright background).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TissueMetrics {
    /// Otsu threshold, identical to `skimage.filters.threshold_otsu` on the integer plane.
    pub otsu_threshold: u32,
    /// Fraction of pixels at or below the threshold; 0 when the plane has a single value.
    pub tissue_fraction: f64,
    /// Contrast between the two Otsu classes: `(mean of pixels > threshold - mean of pixels <=
    /// threshold) / max_value`; 0 for a single-valued plane. Low on a blank slide, where Otsu
    /// splits background noise into two classes.
    pub class_separation: f64,
}

/// All scalar metrics of one plane.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlaneMetrics {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Focus measures.
    pub focus: FocusMetrics,
    /// Exposure measures.
    pub exposure: ExposureMetrics,
    /// Tissue detection.
    pub tissue: TissueMetrics,
}

/// One tile of the per-plane focus map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TileStat {
    /// Variance of the Laplacian over the tile's pixels (the Laplacian is computed on the whole
    /// plane, so tile edges see their true neighbours).
    pub focus: f64,
    /// The tile's intensity quantile at [`QcConfig::tile_min_tissue`]: the smallest value `q`
    /// such that at least that fraction of the tile's pixels is `<= q`. The tile is tissue when
    /// `q <= otsu_threshold`. Exact for 8-bit data; for 16-bit data it is the upper edge of its
    /// 16-value bin (so a tile is classified as tissue conservatively).
    pub tissue_quantile: u32,
}

/// The per-tile map of one plane, tiles in row-major order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileMap {
    /// Tile edge in pixels (the last column and row may be smaller).
    pub tile_size: usize,
    /// Tiles per row.
    pub cols: usize,
    /// Tile rows.
    pub rows: usize,
    /// `cols * rows` tiles.
    pub tiles: Vec<TileStat>,
}

impl TileMap {
    /// Whether tile `i` is a tissue tile at Otsu threshold `threshold`.
    #[must_use]
    pub fn is_tissue(&self, i: usize, threshold: u32) -> bool {
        self.tiles
            .get(i)
            .is_some_and(|t| t.tissue_quantile <= threshold)
    }
}

/// An 8-bit gray image (a plane's thumbnail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrayImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` pixels, row-major.
    pub pixels: Vec<u8>,
}

impl GrayImage {
    /// Borrows it as the report's [`crate::Thumbnail`] of plane `plane`.
    #[must_use]
    pub fn as_thumbnail(&self, plane: usize) -> crate::Thumbnail<'_> {
        crate::Thumbnail {
            plane,
            width: self.width,
            height: self.height,
            pixels: &self.pixels,
        }
    }
}

/// Everything QC keeps of one plane: its metrics, its tile map and its thumbnail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaneQc {
    /// Scalar metrics.
    pub metrics: PlaneMetrics,
    /// Per-tile focus and tissue map.
    pub tiles: TileMap,
    /// Thumbnail ([`QcConfig::thumbnail_max_side`]); `None` when disabled.
    pub thumbnail: Option<GrayImage>,
}

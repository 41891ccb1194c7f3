//! Per-plane metrics, accumulated band by band.
//!
//! This module holds the configuration and the band-by-band accumulator; the result types
//! (`metrics`) and the filter kernels (`kernels`) live in submodules, re-exported here where
//! public.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pixel::{PixelFormat, PlaneGeometry, Samples, rgb8_to_gray, rgb16_to_gray};

mod kernels;
mod metrics;

use kernels::Acc;
pub use metrics::{
    ExposureMetrics, FocusMetrics, GrayImage, PlaneMetrics, PlaneQc, TileMap, TileStat,
    TissueMetrics,
};

/// Tunables of the per-plane and per-stack analysis (not pass/fail thresholds: those are
/// [`crate::Rules`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QcConfig {
    /// Edge of the square tiles of the focus map, in pixels (8..=4096). Default 512, the inner
    /// chunk size of the layout.
    pub tile_size: usize,
    /// A tile is a tissue tile when at least this fraction of its pixels is tissue (at or below
    /// the plane's Otsu threshold). Default 0.5.
    pub tile_min_tissue: f64,
    /// A tissue tile is out of focus when its best focus (the largest variance of the Laplacian
    /// over all planes) is below this fraction of the median best focus of all tissue tiles.
    /// Default 0.2.
    pub tile_relative_focus_floor: f64,
    /// Also count a tissue tile as out of focus when its own focus peak is on the first or last
    /// plane (its focus lies outside the stack). Only applies to stacks of 3 or more planes.
    /// Default true.
    pub tile_edge_peak_is_out_of_focus: bool,
    /// Longest side of the 8-bit thumbnail made of each plane while it streams by (box average
    /// over whole `f x f` blocks, `f` the smallest integer factor that fits; values scaled
    /// linearly from the sample type's range). 0 makes none. Default 256, at most 4096.
    pub thumbnail_max_side: usize,
}

impl Default for QcConfig {
    fn default() -> Self {
        Self {
            tile_size: 512,
            tile_min_tissue: 0.5,
            tile_relative_focus_floor: 0.2,
            tile_edge_peak_is_out_of_focus: true,
            thumbnail_max_side: 256,
        }
    }
}

impl QcConfig {
    /// Checks the ranges documented on the fields.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if !(8..=4096).contains(&self.tile_size) {
            return Err(Error::InvalidGeometry(format!(
                "tile_size {} outside 8..=4096",
                self.tile_size
            )));
        }
        if !(0.0..=1.0).contains(&self.tile_min_tissue) {
            return Err(Error::InvalidGeometry(format!(
                "tile_min_tissue {} outside 0..=1",
                self.tile_min_tissue
            )));
        }
        if !(0.0..=1.0).contains(&self.tile_relative_focus_floor) {
            return Err(Error::InvalidGeometry(format!(
                "tile_relative_focus_floor {} outside 0..=1",
                self.tile_relative_focus_floor
            )));
        }
        if self.thumbnail_max_side > 4096 {
            return Err(Error::InvalidGeometry(format!(
                "thumbnail_max_side {} above 4096",
                self.thumbnail_max_side
            )));
        }
        Ok(())
    }
}

/// Computes the metrics of a whole plane held in memory (the same code path as feeding it as
/// one band).
///
/// # Errors
/// As [`PlaneAccumulator::new`] and [`PlaneAccumulator::push_band`].
pub fn analyze_plane(
    geometry: PlaneGeometry,
    samples: Samples<'_>,
    config: &QcConfig,
) -> Result<PlaneQc> {
    let mut acc = PlaneAccumulator::new(geometry, config)?;
    acc.push_band(samples)?;
    acc.finish()
}

/// Accumulates the metrics of one plane from bands of full-width rows fed in order.
///
/// Memory: two carried rows (the 3x3 filters' halo), the histogram (256 or 65536 counters),
/// per-tile counters for the rows of tiles in progress, and one [`TileStat`] per tile. All sums are exact
/// integers (`u128`/`i128`), so any band split gives bit-identical results.
#[derive(Debug)]
pub struct PlaneAccumulator {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    U8(Acc<u8>),
    U16(Acc<u16>),
}

impl PlaneAccumulator {
    /// Starts a plane.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] if the geometry or the configuration is invalid.
    pub fn new(geometry: PlaneGeometry, config: &QcConfig) -> Result<Self> {
        geometry.validate()?;
        config.validate()?;
        let inner = match geometry.format {
            PixelFormat::Gray8 | PixelFormat::Rgb8 => Inner::U8(Acc::new(geometry, config)),
            PixelFormat::Gray16 | PixelFormat::Rgb16 => Inner::U16(Acc::new(geometry, config)),
        };
        Ok(Self { inner })
    }

    /// The plane's geometry.
    #[must_use]
    pub fn geometry(&self) -> PlaneGeometry {
        match &self.inner {
            Inner::U8(a) => a.geometry,
            Inner::U16(a) => a.geometry,
        }
    }

    /// Rows received so far (the `y0` the next band must start at).
    #[must_use]
    pub fn rows_received(&self) -> usize {
        match &self.inner {
            Inner::U8(a) => a.rows_received,
            Inner::U16(a) => a.rows_received,
        }
    }

    /// Feeds the next band: whole rows, `rows * width * channels` samples. An empty band is
    /// accepted and ignored.
    ///
    /// # Errors
    /// [`Error::InvalidBand`] if the sample type does not match the format, the length is not a
    /// whole number of rows, the band runs past the last row, or a band cut into column
    /// segments is not finished.
    pub fn push_band(&mut self, samples: Samples<'_>) -> Result<()> {
        let width = self.geometry().width;
        self.push_segment(0, width, samples)
    }

    /// Feeds columns `x0..x0 + cols` of the next band: `rows * cols * channels` samples. A
    /// band may arrive as column segments, left to right, each with the band's rows, before
    /// the next band; the metrics are exactly those of the same rows fed whole. Memory stays
    /// at two rows, two columns of the band and the counters of the rows of tiles the band
    /// touches (a segment no taller than the tile size touches at most three).
    ///
    /// # Errors
    /// As [`PlaneAccumulator::push_band`]; also a segment that is not the next one (columns
    /// out of order or outside the plane) or whose row count differs from its band's.
    pub fn push_segment(&mut self, x0: usize, cols: usize, samples: Samples<'_>) -> Result<()> {
        match (&mut self.inner, samples) {
            (Inner::U8(a), Samples::U8(s)) => a.push(x0, cols, s, rgb8_to_gray),
            (Inner::U16(a), Samples::U16(s)) => a.push(x0, cols, s, rgb16_to_gray),
            (inner, _) => {
                let (geometry, y0) = match inner {
                    Inner::U8(a) => (a.geometry, a.rows_received),
                    Inner::U16(a) => (a.geometry, a.rows_received),
                };
                Err(Error::InvalidBand {
                    plane: 0,
                    y0,
                    reason: format!(
                        "sample type does not match pixel format {:?}",
                        geometry.format
                    ),
                })
            }
        }
    }

    /// Finishes the plane and computes its metrics.
    ///
    /// # Errors
    /// [`Error::IncompletePlane`] if not all rows were fed.
    pub fn finish(self) -> Result<PlaneQc> {
        match self.inner {
            Inner::U8(a) => a.finish(),
            Inner::U16(a) => a.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray8(w: usize, h: usize, data: &[u8]) -> PlaneQc {
        analyze_plane(
            PlaneGeometry::new(w, h, PixelFormat::Gray8),
            Samples::U8(data),
            &QcConfig::default(),
        )
        .expect("valid plane")
    }

    #[test]
    fn one_pixel_plane() {
        let q = gray8(1, 1, &[200]);
        assert_eq!(q.metrics.focus.variance_of_laplacian, 0.0);
        assert_eq!(q.metrics.focus.brenner, 0.0);
        assert_eq!(q.metrics.exposure.mean, 200.0);
        assert_eq!(q.metrics.tissue.otsu_threshold, 200);
        assert_eq!(q.metrics.tissue.tissue_fraction, 0.0);
        assert_eq!(q.tiles.tiles.len(), 1);
    }

    #[test]
    fn one_row_laplacian_matches_opencv() {
        // cv2.Laplacian(np.array([[202,195,36,125,65]], np.uint8), cv2.CV_64F)
        // == [-14, -152, 248, -149, 120]
        let q = gray8(5, 1, &[202, 195, 36, 125, 65]);
        let l = [-14f64, -152., 248., -149., 120.];
        let mean = l.iter().sum::<f64>() / 5.0;
        let var = l.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 5.0;
        assert!((q.metrics.focus.variance_of_laplacian - var).abs() < 1e-9 * var);
    }

    #[test]
    fn thumbnail_is_a_box_average() {
        // 5 x 3 plane, max side 2 -> factor 3: blocks of 3 x 3 and 2 x 3 pixels.
        let data: Vec<u8> = (0..15).map(|i| (i * 10) as u8).collect();
        let config = QcConfig {
            thumbnail_max_side: 2,
            ..QcConfig::default()
        };
        let q = analyze_plane(
            PlaneGeometry::new(5, 3, PixelFormat::Gray8),
            Samples::U8(&data),
            &config,
        )
        .expect("valid");
        let t = q.thumbnail.expect("thumbnail");
        assert_eq!((t.width, t.height), (2, 1));
        // mean of columns 0..3 = (0+10+20+50+60+70+100+110+120)/9 = 60; columns 3..5 = 85
        assert_eq!(t.pixels, [60, 85]);
        let q16 = analyze_plane(
            PlaneGeometry::new(1, 1, PixelFormat::Gray16),
            Samples::U16(&[65535]),
            &config,
        )
        .expect("valid");
        assert_eq!(q16.thumbnail.expect("t").pixels, [255]);
        let none = QcConfig {
            thumbnail_max_side: 0,
            ..QcConfig::default()
        };
        let q = analyze_plane(
            PlaneGeometry::new(5, 3, PixelFormat::Gray8),
            Samples::U8(&data),
            &none,
        )
        .expect("valid");
        assert!(q.thumbnail.is_none());
    }

    #[test]
    fn u16_saturation_and_black() {
        let data = [0u16, 65535, 65535, 1000];
        let q = analyze_plane(
            PlaneGeometry::new(2, 2, PixelFormat::Gray16),
            Samples::U16(&data),
            &QcConfig::default(),
        )
        .expect("valid");
        assert_eq!(q.metrics.exposure.saturated_fraction, 0.5);
        assert_eq!(q.metrics.exposure.black_fraction, 0.25);
        assert_eq!(q.metrics.exposure.michelson_contrast, 1.0);
    }

    #[test]
    fn bad_bands_are_errors() {
        let g = PlaneGeometry::new(4, 2, PixelFormat::Gray8);
        let mut a = PlaneAccumulator::new(g, &QcConfig::default()).expect("valid");
        assert!(a.push_band(Samples::U8(&[1, 2, 3])).is_err());
        assert!(a.push_band(Samples::U16(&[1, 2, 3, 4])).is_err());
        assert!(a.push_band(Samples::U8(&[0; 12])).is_err());
        a.push_band(Samples::U8(&[0; 4])).expect("one row");
        assert!(matches!(
            a.finish(),
            Err(Error::IncompletePlane { received: 1, .. })
        ));
    }
}

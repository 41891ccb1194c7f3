//! The QC hook the converter calls, and the per-stack summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pixel::{PixelFormat, PlaneGeometry, Samples};
use crate::plane::{GrayImage, PlaneAccumulator, PlaneMetrics, PlaneQc, QcConfig};

/// Receives the pixels of a z-stack as they are read: bands of full-width rows, in row order
/// within each plane. Planes may be interleaved (band `k` of every plane before band `k + 1`)
/// or sequential. Object safe, so a converter can hold a `&mut dyn PlaneSink`.
pub trait PlaneSink {
    /// Announces plane `plane` (its index in the stack, from 0) and its geometry.
    ///
    /// # Errors
    /// If the geometry is invalid or the plane was already started.
    fn begin_plane(&mut self, plane: usize, geometry: PlaneGeometry) -> Result<()>;

    /// Feeds rows `y0 .. y0 + rows` of plane `plane` (`rows * width * channels` samples, no
    /// padding). `y0` must be the first row not fed yet.
    ///
    /// # Errors
    /// If the plane was not started, `y0` is out of order, or the samples do not fit.
    fn band(&mut self, plane: usize, y0: usize, samples: Samples<'_>) -> Result<()>;

    /// [`PlaneSink::band`] for a band held as bytes: 8-bit formats pass through, 16-bit samples
    /// are read in native byte order (copied into a temporary buffer).
    ///
    /// # Errors
    /// As [`PlaneSink::band`]; also an odd byte count for a 16-bit format.
    fn band_bytes(
        &mut self,
        plane: usize,
        y0: usize,
        format: PixelFormat,
        bytes: &[u8],
    ) -> Result<()> {
        if format.bits() == 8 {
            return self.band(plane, y0, Samples::U8(bytes));
        }
        if !bytes.len().is_multiple_of(2) {
            return Err(Error::InvalidBand {
                plane,
                y0,
                reason: format!(
                    "{} bytes is not a whole number of 16-bit samples",
                    bytes.len()
                ),
            });
        }
        let samples: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
            .collect();
        self.band(plane, y0, Samples::U16(&samples))
    }

    /// Declares plane `plane` complete.
    ///
    /// # Errors
    /// If the plane was not started or not all its rows arrived.
    fn finish_plane(&mut self, plane: usize) -> Result<()>;
}

impl<S: PlaneSink + ?Sized> PlaneSink for &mut S {
    fn begin_plane(&mut self, plane: usize, geometry: PlaneGeometry) -> Result<()> {
        (**self).begin_plane(plane, geometry)
    }
    fn band(&mut self, plane: usize, y0: usize, samples: Samples<'_>) -> Result<()> {
        (**self).band(plane, y0, samples)
    }
    fn finish_plane(&mut self, plane: usize) -> Result<()> {
        (**self).finish_plane(plane)
    }
}

impl<S: PlaneSink + ?Sized> PlaneSink for Box<S> {
    fn begin_plane(&mut self, plane: usize, geometry: PlaneGeometry) -> Result<()> {
        (**self).begin_plane(plane, geometry)
    }
    fn band(&mut self, plane: usize, y0: usize, samples: Samples<'_>) -> Result<()> {
        (**self).band(plane, y0, samples)
    }
    fn finish_plane(&mut self, plane: usize) -> Result<()> {
        (**self).finish_plane(plane)
    }
}

/// Accumulates QC for a whole z-stack: a [`PlaneSink`] that keeps one [`PlaneAccumulator`] per
/// plane in progress and the [`PlaneQc`] of every finished plane.
///
/// Planes computed elsewhere (e.g. one [`PlaneAccumulator`] per thread) can be added with
/// [`StackQc::add_plane`].
#[derive(Debug)]
pub struct StackQc {
    config: QcConfig,
    active: BTreeMap<usize, PlaneAccumulator>,
    done: BTreeMap<usize, (PlaneGeometry, PlaneQc)>,
}

impl StackQc {
    /// An empty stack.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] if the configuration is out of range.
    pub fn new(config: QcConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            active: BTreeMap::new(),
            done: BTreeMap::new(),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &QcConfig {
        &self.config
    }

    /// Adds a plane finished outside this sink (computed with the same [`QcConfig`]).
    ///
    /// # Errors
    /// [`Error::InvalidStack`] if the plane index is already used or its tile size differs.
    pub fn add_plane(&mut self, plane: usize, geometry: PlaneGeometry, qc: PlaneQc) -> Result<()> {
        if self.active.contains_key(&plane) || self.done.contains_key(&plane) {
            return Err(Error::InvalidStack(format!("plane {plane} given twice")));
        }
        if qc.tiles.tile_size != self.config.tile_size {
            return Err(Error::InvalidStack(format!(
                "plane {plane} has tile size {}, the stack uses {}",
                qc.tiles.tile_size, self.config.tile_size
            )));
        }
        self.done.insert(plane, (geometry, qc));
        Ok(())
    }

    /// Feeds columns `x0..x0 + cols` of the band of plane `plane` starting at row `y0`, as
    /// bytes (16-bit samples in native byte order): a band may arrive as column segments,
    /// left to right (see [`PlaneAccumulator::push_segment`]), with the metrics of whole rows.
    ///
    /// # Errors
    /// As [`PlaneSink::band_bytes`]; also segments out of order.
    pub fn segment_bytes(
        &mut self,
        plane: usize,
        y0: usize,
        x0: usize,
        cols: usize,
        format: PixelFormat,
        bytes: &[u8],
    ) -> Result<()> {
        let bad = |reason: String| Error::InvalidBand { plane, y0, reason };
        let acc = self
            .active
            .get_mut(&plane)
            .ok_or_else(|| bad("plane not started (or already finished)".into()))?;
        if acc.rows_received() != y0 {
            return Err(bad(format!(
                "expected the band starting at row {}",
                acc.rows_received()
            )));
        }
        let result = if format.bits() == 8 {
            acc.push_segment(x0, cols, Samples::U8(bytes))
        } else if !bytes.len().is_multiple_of(2) {
            return Err(bad(format!(
                "{} bytes is not a whole number of 16-bit samples",
                bytes.len()
            )));
        } else {
            let samples: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|b| u16::from_ne_bytes([b[0], b[1]]))
                .collect();
            acc.push_segment(x0, cols, Samples::U16(&samples))
        };
        result.map_err(|e| match e {
            Error::InvalidBand { y0, reason, .. } => Error::InvalidBand { plane, y0, reason },
            e => e,
        })
    }

    /// Summarises the stack: best plane, focus curve and the tile analysis.
    ///
    /// # Errors
    /// [`Error::InvalidStack`] if no plane was given, a plane is unfinished, plane indices are
    /// not `0..n`, or the planes differ in size or format.
    pub fn finish(self) -> Result<StackSummary> {
        if let Some(p) = self.active.keys().next() {
            return Err(Error::InvalidStack(format!("plane {p} was not finished")));
        }
        let n = self.done.len();
        if n == 0 {
            return Err(Error::InvalidStack("no planes".into()));
        }
        if let Some((i, _)) = self.done.keys().enumerate().find(|(i, p)| i != *p) {
            return Err(Error::InvalidStack(format!("plane {i} is missing")));
        }
        let planes: Vec<(PlaneGeometry, PlaneQc)> = self.done.into_values().collect();
        let g0 = planes[0].0;
        for (i, (g, _)) in planes.iter().enumerate() {
            if (g.width, g.height, g.format) != (g0.width, g0.height, g0.format) {
                return Err(Error::InvalidStack(format!(
                    "plane {i} is {}x{} {:?}, plane 0 is {}x{} {:?}",
                    g.width, g.height, g.format, g0.width, g0.height, g0.format
                )));
            }
        }
        Ok(summarize(&self.config, g0, &planes))
    }
}

impl PlaneSink for StackQc {
    fn begin_plane(&mut self, plane: usize, geometry: PlaneGeometry) -> Result<()> {
        if self.active.contains_key(&plane) || self.done.contains_key(&plane) {
            return Err(Error::InvalidStack(format!("plane {plane} started twice")));
        }
        let acc = PlaneAccumulator::new(geometry, &self.config)?;
        self.active.insert(plane, acc);
        Ok(())
    }

    fn band(&mut self, plane: usize, y0: usize, samples: Samples<'_>) -> Result<()> {
        let acc = self
            .active
            .get_mut(&plane)
            .ok_or_else(|| Error::InvalidBand {
                plane,
                y0,
                reason: "plane not started (or already finished)".into(),
            })?;
        if acc.rows_received() != y0 {
            return Err(Error::InvalidBand {
                plane,
                y0,
                reason: format!("expected the band starting at row {}", acc.rows_received()),
            });
        }
        acc.push_band(samples).map_err(|e| match e {
            Error::InvalidBand { y0, reason, .. } => Error::InvalidBand { plane, y0, reason },
            e => e,
        })
    }

    fn finish_plane(&mut self, plane: usize) -> Result<()> {
        let acc = self
            .active
            .remove(&plane)
            .ok_or_else(|| Error::InvalidStack(format!("plane {plane} was not started")))?;
        let geometry = acc.geometry();
        let qc = acc.finish().map_err(|e| match e {
            Error::IncompletePlane {
                received, height, ..
            } => Error::IncompletePlane {
                plane,
                received,
                height,
            },
            e => e,
        })?;
        self.done.insert(plane, (geometry, qc));
        Ok(())
    }
}

/// The per-tile analysis of a stack, tiles in row-major order.
///
/// A tile is a *tissue tile* when it is tissue at the stack's best plane (see
/// [`crate::TileStat::tissue_quantile`]). A tissue tile is *out of focus* when, even at its own
/// best plane, its focus (variance of the Laplacian over the tile) is below
/// [`QcConfig::tile_relative_focus_floor`] times the median best focus of all tissue tiles, or
/// (with [`QcConfig::tile_edge_peak_is_out_of_focus`], stacks of 3 or more planes) its own
/// focus peak is on the first or last plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileSummary {
    /// Tile edge in pixels.
    pub tile_size: usize,
    /// Tiles per row.
    pub cols: usize,
    /// Tile rows.
    pub rows: usize,
    /// Tissue tile flags.
    pub tissue: Vec<bool>,
    /// Each tile's focus at the stack's best plane.
    pub focus_at_best_plane: Vec<f64>,
    /// Each tile's largest focus over all planes.
    pub best_focus: Vec<f64>,
    /// Each tile's own best plane.
    pub best_plane: Vec<usize>,
    /// Out-of-focus flags (always false for non-tissue tiles).
    pub out_of_focus: Vec<bool>,
    /// Number of tissue tiles.
    pub tissue_tiles: usize,
    /// Number of out-of-focus tissue tiles.
    pub out_of_focus_tiles: usize,
    /// `out_of_focus_tiles / tissue_tiles`, 0 without tissue tiles.
    pub out_of_focus_fraction: f64,
    /// Median of `best_focus` over tissue tiles (the reference of the relative floor).
    pub median_best_focus: f64,
}

/// What QC found in a stack, before the gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackSummary {
    /// Pixel format of the planes.
    pub format: PixelFormat,
    /// Saturation value used.
    pub max_value: u32,
    /// Metrics of every plane, in plane order.
    pub planes: Vec<PlaneMetrics>,
    /// The focus curve: variance of the Laplacian of each plane.
    pub focus_curve: Vec<f64>,
    /// The best-focus plane: the first maximum of the focus curve.
    pub best_plane: usize,
    /// True when the stack has 3 or more planes and the best plane is the first or the last
    /// (the focus peak is probably outside the stack: it missed focus).
    pub peak_at_edge: bool,
    /// Per-tile analysis.
    pub tiles: TileSummary,
    /// Each plane's thumbnail, in plane order (empty when disabled). Not serialised.
    #[serde(skip)]
    pub thumbnails: Vec<GrayImage>,
}

impl StackSummary {
    /// The thumbnails as the report renderer takes them.
    #[must_use]
    pub fn thumbnails(&self) -> Vec<crate::Thumbnail<'_>> {
        self.thumbnails
            .iter()
            .enumerate()
            .map(|(plane, t)| t.as_thumbnail(plane))
            .collect()
    }
}

fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn summarize(
    config: &QcConfig,
    g: PlaneGeometry,
    planes: &[(PlaneGeometry, PlaneQc)],
) -> StackSummary {
    let n = planes.len();
    let focus_curve: Vec<f64> = planes
        .iter()
        .map(|(_, q)| q.metrics.focus.variance_of_laplacian)
        .collect();
    let best_plane = argmax(focus_curve.iter().copied());
    let peak_at_edge = n >= 3 && (best_plane == 0 || best_plane == n - 1);
    let best = &planes[best_plane].1;
    let threshold = best.metrics.tissue.otsu_threshold;
    let no_contrast = best.metrics.exposure.min == best.metrics.exposure.max;
    let ntiles = best.tiles.tiles.len();
    let tissue: Vec<bool> = (0..ntiles)
        .map(|i| !no_contrast && best.tiles.is_tissue(i, threshold))
        .collect();
    let focus_at_best_plane: Vec<f64> = best.tiles.tiles.iter().map(|t| t.focus).collect();
    let tile_best_plane: Vec<usize> = (0..ntiles)
        .map(|i| argmax(planes.iter().map(|(_, q)| q.tiles.tiles[i].focus)))
        .collect();
    let best_focus: Vec<f64> = (0..ntiles)
        .map(|i| planes[tile_best_plane[i]].1.tiles.tiles[i].focus)
        .collect();
    let median_best_focus = median(
        (0..ntiles)
            .filter(|&i| tissue[i])
            .map(|i| best_focus[i])
            .collect(),
    );
    let floor = config.tile_relative_focus_floor * median_best_focus;
    let out_of_focus: Vec<bool> = (0..ntiles)
        .map(|i| {
            tissue[i]
                && (best_focus[i] < floor
                    || (config.tile_edge_peak_is_out_of_focus
                        && n >= 3
                        && (tile_best_plane[i] == 0 || tile_best_plane[i] == n - 1)))
        })
        .collect();
    let tissue_tiles = tissue.iter().filter(|&&t| t).count();
    let out_of_focus_tiles = out_of_focus.iter().filter(|&&t| t).count();
    StackSummary {
        format: g.format,
        max_value: g.max_value,
        planes: planes.iter().map(|(_, q)| q.metrics).collect(),
        focus_curve,
        best_plane,
        peak_at_edge,
        tiles: TileSummary {
            tile_size: best.tiles.tile_size,
            cols: best.tiles.cols,
            rows: best.tiles.rows,
            tissue,
            focus_at_best_plane,
            best_focus,
            best_plane: tile_best_plane,
            out_of_focus,
            tissue_tiles,
            out_of_focus_tiles,
            out_of_focus_fraction: if tissue_tiles == 0 {
                0.0
            } else {
                out_of_focus_tiles as f64 / tissue_tiles as f64
            },
            median_best_focus,
        },
        // All or nothing, so indices stay plane numbers.
        thumbnails: planes
            .iter()
            .map(|(_, q)| q.thumbnail.clone())
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default(),
    }
}

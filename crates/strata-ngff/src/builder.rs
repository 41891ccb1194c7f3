//! Building the multiscale metadata Strata writes.
//!
//! # Pixel-centre convention
//!
//! Coordinates refer to pixel centres, and the centre of pixel 0 of level 0
//! is the origin. With a base pixel size `s` and a downsampling factor `f` on
//! an axis, a pixel of level `k` covers `f^k` level-0 pixels, so
//!
//! * `scale_k = f^k * s`
//! * `translation_k = (f^k - 1) / 2 * s`
//!
//! The translation puts the centre of level-`k` pixel 0 at the centre of the
//! level-0 pixels it averages. Axes with factor 1 (the channel axis, or z
//! when only y and x are reduced) keep `scale = s` and translation 0. Every
//! level gets a translation, level 0 included (all zeros), so readers never
//! have to guess.
//!
//! Level shapes round up: `shape_k = ceil(shape_(k-1) / f)`, so the last,
//! partial block of pixels still has a level-`k` pixel.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::{
    Axis, AxisType, CoordinateTransformation, Dataset, Multiscale, OmeMetadata, Version, ZarrGroup,
};
use crate::validate::{GroupKind, ValidateOptions, validate_zarr_json};

/// One axis of the image to build.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisSpec {
    /// Axis name (`"c"`, `"z"`, `"y"`, `"x"`).
    pub name: String,
    /// Axis type.
    pub axis_type: AxisType,
    /// Physical unit (`"micrometer"`), `None` for channel axes.
    pub unit: Option<String>,
    /// Physical size of one level-0 pixel along this axis (1 for channels).
    pub pixel_size: f64,
    /// Downsampling factor between consecutive levels (1 keeps the axis).
    pub factor: u64,
}

impl AxisSpec {
    /// A space axis.
    #[must_use]
    pub fn space(name: &str, unit: &str, pixel_size: f64, factor: u64) -> Self {
        AxisSpec {
            name: name.to_owned(),
            axis_type: AxisType::Space,
            unit: Some(unit.to_owned()),
            pixel_size,
            factor,
        }
    }

    /// A channel axis (pixel size 1, never downsampled).
    #[must_use]
    pub fn channel(name: &str) -> Self {
        AxisSpec {
            name: name.to_owned(),
            axis_type: AxisType::Channel,
            unit: None,
            pixel_size: 1.0,
            factor: 1,
        }
    }
}

/// Builds an OME-NGFF 0.5 multiscale image description from the level-0
/// shape, pixel sizes, units, per-axis downsampling factors and the number
/// of levels. See the [module documentation](self) for the conventions.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiscaleBuilder {
    axes: Vec<AxisSpec>,
    shape: Vec<u64>,
    levels: usize,
    name: Option<String>,
    downscale_type: Option<String>,
    metadata: Option<Map<String, Value>>,
}

impl MultiscaleBuilder {
    /// A builder for `levels` levels of an image with the given axes and level-0 shape.
    #[must_use]
    pub fn new(axes: Vec<AxisSpec>, shape: Vec<u64>, levels: usize) -> Self {
        MultiscaleBuilder {
            axes,
            shape,
            levels,
            name: None,
            downscale_type: None,
            metadata: None,
        }
    }

    /// Strata's layout: axes `c` (channel), `z`, `y`, `x` (space, one unit
    /// each), level-0 `shape` in that order, pixel sizes and downsampling
    /// factors for z, y, x.
    #[must_use]
    pub fn czyx(
        shape: [u64; 4],
        pixel_size_zyx: [f64; 3],
        units_zyx: [&str; 3],
        factors_zyx: [u64; 3],
        levels: usize,
    ) -> Self {
        let [sz, sy, sx] = pixel_size_zyx;
        let [uz, uy, ux] = units_zyx;
        let [fz, fy, fx] = factors_zyx;
        Self::new(
            vec![
                AxisSpec::channel("c"),
                AxisSpec::space("z", uz, sz, fz),
                AxisSpec::space("y", uy, sy, fy),
                AxisSpec::space("x", ux, sx, fx),
            ],
            shape.to_vec(),
            levels,
        )
    }

    /// Sets the image name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the downscaling method (the multiscale `type`, e.g. `"mean"`).
    #[must_use]
    pub fn downscale_type(mut self, method: impl Into<String>) -> Self {
        self.downscale_type = Some(method.into());
        self
    }

    /// Sets the free-form downscaling `metadata`.
    #[must_use]
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = Some(metadata);
        self
    }

    fn check(&self) -> Result<()> {
        let fail = |message: String| Err(Error::Builder { message });
        if self.levels == 0 {
            return fail("the number of levels must be at least 1".into());
        }
        if self.axes.len() != self.shape.len() {
            return fail(format!(
                "{} axes but a shape of {} dimensions",
                self.axes.len(),
                self.shape.len()
            ));
        }
        for (a, &n) in self.axes.iter().zip(&self.shape) {
            if n == 0 {
                return fail(format!("axis {:?} has extent 0", a.name));
            }
            if a.factor == 0 {
                return fail(format!("axis {:?} has downsampling factor 0", a.name));
            }
            if !(a.pixel_size.is_finite() && a.pixel_size > 0.0) {
                return fail(format!(
                    "axis {:?} has pixel size {}; it must be a positive finite number",
                    a.name, a.pixel_size
                ));
            }
            let exp = u32::try_from(self.levels - 1).unwrap_or(u32::MAX);
            if a.factor.checked_pow(exp).is_none() {
                return fail(format!(
                    "axis {:?}: factor {} to the power {} overflows",
                    a.name, a.factor, exp
                ));
            }
        }
        Ok(())
    }

    /// The shape of every level, level 0 first.
    ///
    /// # Errors
    ///
    /// [`Error::Builder`] for inconsistent input.
    pub fn level_shapes(&self) -> Result<Vec<Vec<u64>>> {
        self.check()?;
        let mut out = Vec::with_capacity(self.levels);
        let mut cur = self.shape.clone();
        for _ in 0..self.levels {
            out.push(cur.clone());
            cur = cur
                .iter()
                .zip(&self.axes)
                .map(|(&n, a)| n.div_ceil(a.factor))
                .collect();
        }
        Ok(out)
    }

    /// The multiscale (0.5: no per-multiscale `version`), datasets named `"0"`, `"1"`, ...
    ///
    /// # Errors
    ///
    /// [`Error::Builder`] for inconsistent input; [`Error::Invalid`] if the
    /// axes break the specification (for example a wrong order).
    pub fn build(&self) -> Result<Multiscale> {
        self.check()?;
        let mut datasets = Vec::with_capacity(self.levels);
        for k in 0..self.levels {
            let exp = u32::try_from(k).unwrap_or(u32::MAX);
            let mut scale = Vec::with_capacity(self.axes.len());
            let mut translation = Vec::with_capacity(self.axes.len());
            for a in &self.axes {
                // check() ensured factor^(levels-1) fits in u64.
                let f = a.factor.checked_pow(exp).unwrap_or(u64::MAX) as f64;
                scale.push(f * a.pixel_size);
                translation.push((f - 1.0) / 2.0 * a.pixel_size);
            }
            datasets.push(Dataset {
                path: k.to_string(),
                coordinate_transformations: vec![
                    CoordinateTransformation::scale(scale),
                    CoordinateTransformation::translation(translation),
                ],
                extra: Map::new(),
            });
        }
        let multiscale = Multiscale {
            version: None,
            name: self.name.clone(),
            axes: self
                .axes
                .iter()
                .map(|a| Axis::new(a.name.clone(), a.axis_type.clone(), a.unit.as_deref()))
                .collect(),
            datasets,
            coordinate_transformations: None,
            downscale_type: self.downscale_type.clone(),
            metadata: self.metadata.clone(),
            extra: Map::new(),
        };
        let report = validate_zarr_json(
            &group_zarr_json(multiscale.clone()),
            &ValidateOptions::new()
                .version(Version::V0_5)
                .kind(GroupKind::Image),
        );
        if !report.is_valid() {
            return Err(Error::Invalid { report });
        }
        Ok(multiscale)
    }

    /// The full group `zarr.json` for this image (see [`group_zarr_json`]).
    ///
    /// # Errors
    ///
    /// As [`MultiscaleBuilder::build`].
    pub fn group_zarr_json(&self) -> Result<Value> {
        self.build().map(group_zarr_json)
    }
}

/// Renders the group `zarr.json` of a single-image OME-Zarr 0.5 group:
/// `{"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"version": "0.5", "multiscales": [...]}}}`.
#[must_use]
pub fn group_zarr_json(multiscale: Multiscale) -> Value {
    ZarrGroup::new(OmeMetadata::image_v05(multiscale)).to_value()
}

/// The `(height, width)` of every level of a 2 x 2 pyramid, level 0 first: each level halves
/// the one above (rounding up), down to `levels` levels, or (`None`) to the first level that
/// fits one `chunk` x `chunk` chunk (or is one pixel high or wide). At most 64 levels. This is
/// the pyramid the converter writes and the planner counts.
#[must_use]
pub fn pyramid_shapes(
    height: u64,
    width: u64,
    chunk: u64,
    levels: Option<usize>,
) -> Vec<(u64, u64)> {
    let mut out = vec![(height, width)];
    let (mut h, mut w) = (height, width);
    loop {
        let more = match levels {
            Some(n) => out.len() < n,
            None => (h > chunk || w > chunk) && h > 1 && w > 1,
        };
        if !more || out.len() >= 64 {
            break;
        }
        h = h.div_ceil(2);
        w = w.div_ceil(2);
        out.push((h, w));
    }
    out
}

#[cfg(test)]
mod pyramid_tests {
    use super::pyramid_shapes;

    #[test]
    fn pyramid_goes_down_to_one_chunk() {
        assert_eq!(
            pyramid_shapes(4096, 4096, 512, None),
            [(4096, 4096), (2048, 2048), (1024, 1024), (512, 512)]
        );
        assert_eq!(
            pyramid_shapes(1000, 300, 512, None),
            [(1000, 300), (500, 150)]
        );
        assert_eq!(pyramid_shapes(100, 100, 512, None), [(100, 100)]);
        assert_eq!(pyramid_shapes(5000, 1, 512, None), [(5000, 1)]);
        assert_eq!(pyramid_shapes(5, 5, 1, Some(2)), [(5, 5), (3, 3)]);
    }
}

//! A z-stack from an HDF5 file (feature `hdf5`): one 3-D dataset `(z, y, x)` (or
//! `(z, y, x, 3)` for RGB), or one 2-D dataset `(y, x)` (or `(y, x, 3)`) per plane, or a
//! `(c, z, y, x)` dataset labelled so by an `axes` attribute (as [`crate::export_hdf5`] writes
//! them: a file of pyramid levels `/0`, `/1`, ... is read from `/0`).
//!
//! Bands are read as hyperslabs, so memory stays at one band whatever the dataset size. Every
//! plane's shape and type are checked when the stack is opened. A file that is not HDF5, is
//! truncated or names a missing dataset is an [`Error::Input`] naming the file.
//!
//! The pixel size is taken from an `element_size_um` attribute of the first dataset (the
//! vigra and ilastik convention: `(y, x)` or `(z, y, x)` in micrometres) when there is one.

use crate::error::{Error, Result};
use crate::source::{PixelSize, SampleType, StackInfo, ZStackSource};
use crate::tiff_source::natural_cmp;
use hdf5::types::{IntSize, TypeDescriptor};
use hdf5::{Dataset, Group, Hyperslab, SliceOrIndex};
use hdf5_metno as hdf5;
use std::path::{Path, PathBuf};

/// Most planes a volume dataset may declare (a guard against corrupt shapes).
const MAX_PLANES: usize = 1 << 20;

/// Which datasets of the file hold the planes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hdf5Layout {
    /// One dataset `(z, y, x)` or `(z, y, x, 3)`, at this path.
    Volume(String),
    /// One dataset `(y, x)` or `(y, x, 3)` per plane, at these paths, in plane order.
    Planes(Vec<String>),
    /// A single 3-D or 4-D dataset at the root if there is exactly one (or, among several,
    /// the one named `0`: level 0 of an exported pyramid), else every 2-D or `(y, x, 3)`
    /// dataset at the root, in natural order of their names.
    Auto,
    /// The object at this path: a group is searched as [`Hdf5Layout::Auto`] searches the
    /// root; a 3-D or 4-D dataset is a volume; a 2-D or `(y, x, 3)` dataset is a single plane.
    Path(String),
}

/// Detects the planes inside `group` (see [`Hdf5Layout::Auto`]): `(volume, dataset paths)`.
fn detect(path: &Path, group: &Group) -> Result<(bool, Vec<String>)> {
    let mut all = group
        .datasets()
        .map_err(|e| input(path, format!("listing datasets of {}: {e}", group.name())))?
        .into_iter()
        .map(|d| (d.name(), d.ndim(), d.shape()))
        .collect::<Vec<_>>();
    all.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    let volumes: Vec<_> = all
        .iter()
        .filter(|d| d.1 == 4 || (d.1 == 3 && d.2.last().is_some_and(|&c| c != 3)))
        .collect();
    if let [v] = volumes.as_slice() {
        return Ok((true, vec![v.0.clone()]));
    }
    // Pyramid levels `0`, `1`, ... (an NGFF-style export): the planes are level 0.
    if volumes.len() > 1
        && let Some(level0) = volumes.iter().find(|v| v.0.rsplit('/').next() == Some("0"))
    {
        return Ok((true, vec![level0.0.clone()]));
    }
    let planes: Vec<String> = all
        .iter()
        .filter(|d| plane_shape(&d.2).is_some())
        .map(|d| d.0.clone())
        .collect();
    Ok((false, planes))
}

/// Pixel size `(x, y)` from an `element_size_um` attribute, if usable.
fn element_size(ds: &Dataset) -> Option<PixelSize> {
    let attr = ds.attr("element_size_um").ok()?;
    let v = attr.read_raw::<f64>().ok()?;
    let (y, x) = match *v.as_slice() {
        [y, x] | [_, y, x] => (y, x),
        _ => return None,
    };
    (x.is_finite() && y.is_finite() && x > 0.0 && y > 0.0).then_some(PixelSize::xy(x, y))
}

/// Whether a dataset's `axes` attribute says `(c, z, y, x)`.
fn axes_czyx(ds: &Dataset) -> bool {
    use hdf5::types::VarLenUnicode;
    ds.attr("axes")
        .and_then(|a| a.read_raw::<VarLenUnicode>())
        .is_ok_and(|axes| {
            axes.iter()
                .map(VarLenUnicode::as_str)
                .eq(["c", "z", "y", "x"])
        })
}

/// A z-stack read from an HDF5 file.
pub struct Hdf5Stack {
    path: PathBuf,
    info: StackInfo,
    /// The planes' datasets; one entry for a volume.
    datasets: Vec<Dataset>,
    volume: bool,
    /// The volume is `(c, z, y, x)` (channels first) rather than `(z, y, x[, c])`.
    czyx: bool,
}

impl std::fmt::Debug for Hdf5Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hdf5Stack")
            .field("path", &self.path)
            .field("info", &self.info)
            .field("volume", &self.volume)
            .finish_non_exhaustive()
    }
}

fn input(path: &Path, message: impl Into<String>) -> Error {
    Error::Input {
        source_name: path.display().to_string(),
        message: message.into(),
    }
}

/// Sample type of a dataset, if supported.
fn sample_type(ds: &Dataset) -> Option<SampleType> {
    match ds.dtype().ok()?.to_descriptor().ok()? {
        TypeDescriptor::Unsigned(IntSize::U1) => Some(SampleType::U8),
        TypeDescriptor::Unsigned(IntSize::U2) => Some(SampleType::U16),
        _ => None,
    }
}

/// `(height, width, channels)` of a plane shape (`(y, x)` or `(y, x, c)`).
fn plane_shape(shape: &[usize]) -> Option<(usize, usize, usize)> {
    match *shape {
        [h, w] => Some((h, w, 1)),
        [h, w, c] if c == 1 || c == 3 => Some((h, w, c)),
        _ => None,
    }
}

impl Hdf5Stack {
    /// Opens the planes of an HDF5 file.
    ///
    /// # Errors
    /// [`Error::Input`] naming the file and dataset if the file cannot be read, a dataset is
    /// missing, is not unsigned 8- or 16-bit, has an unsupported shape, or differs from the
    /// first plane.
    pub fn open(path: &Path, layout: &Hdf5Layout) -> Result<Self> {
        let file = hdf5::File::open(path)
            .map_err(|e| input(path, format!("not a readable HDF5 file: {e}")))?;
        let get = |name: &str| {
            file.dataset(name)
                .map_err(|e| input(path, format!("dataset {name}: {e}")))
        };
        let (volume, names) = match layout {
            Hdf5Layout::Volume(name) => (true, vec![name.clone()]),
            Hdf5Layout::Planes(names) => (false, names.clone()),
            Hdf5Layout::Auto => detect(path, &file)?,
            Hdf5Layout::Path(name) => {
                if let Ok(group) = file.group(name) {
                    detect(path, &group)?
                } else {
                    let ds = get(name)?;
                    (plane_shape(&ds.shape()).is_none(), vec![name.clone()])
                }
            }
        };
        if names.is_empty() {
            return Err(input(path, "no dataset holds planes (2-D, 3-D or RGB)"));
        }
        let datasets = names.iter().map(|n| get(n)).collect::<Result<Vec<_>>>()?;
        let czyx = volume && datasets.first().is_some_and(axes_czyx);
        let mut plane_names = Vec::new();
        let mut first: Option<(usize, usize, usize, SampleType)> = None;
        for (name, ds) in names.iter().zip(&datasets) {
            let st = sample_type(ds).ok_or_else(|| {
                input(
                    path,
                    format!("dataset {name}: only unsigned 8- or 16-bit integers are supported"),
                )
            })?;
            let shape = ds.shape();
            let plane = if czyx {
                let [c, z, h, w] = *shape.as_slice() else {
                    return Err(input(
                        path,
                        format!("dataset {name}: shape {shape:?} is not (c, z, y, x)"),
                    ));
                };
                if z > MAX_PLANES {
                    return Err(input(
                        path,
                        format!("dataset {name}: {z} planes, more than {MAX_PLANES}"),
                    ));
                }
                plane_names.extend((0..z).map(|i| format!("{name}[:, {i}]")));
                plane_shape(&[h, w, c])
            } else if volume {
                let split = shape.split_first();
                let z = split.map_or(0, |(z, _)| *z);
                if z > MAX_PLANES {
                    return Err(input(
                        path,
                        format!("dataset {name}: {z} planes, more than {MAX_PLANES}"),
                    ));
                }
                plane_names.extend((0..z).map(|i| format!("{name}[{i}]")));
                split.and_then(|(_, rest)| plane_shape(rest))
            } else {
                plane_names.push(name.clone());
                plane_shape(&shape)
            };
            let Some((h, w, c)) = plane else {
                return Err(input(
                    path,
                    format!("dataset {name}: shape {shape:?} is not a plane or a stack of planes"),
                ));
            };
            match first {
                None => first = Some((h, w, c, st)),
                Some(f) if f != (h, w, c, st) => {
                    return Err(input(
                        path,
                        format!(
                            "dataset {name}: {w} x {h} x {c} {st:?} differs from the first plane \
                             {} ({} x {} x {} {:?})",
                            names.first().map_or("", String::as_str),
                            f.1,
                            f.0,
                            f.2,
                            f.3
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let Some((h, w, c, st)) = first else {
            return Err(input(path, "no planes"));
        };
        let too_big = |_| input(path, "plane too large");
        let info = StackInfo {
            width: u32::try_from(w).map_err(too_big)?,
            height: u32::try_from(h).map_err(too_big)?,
            planes: u32::try_from(plane_names.len()).map_err(too_big)?,
            channels: u32::try_from(c).map_err(too_big)?,
            sample_type: st,
            pixel_size: datasets.first().and_then(element_size),
            plane_names,
        };
        if info.planes == 0 || info.width == 0 || info.height == 0 {
            return Err(input(path, "the stack is empty"));
        }
        Ok(Self {
            path: path.to_owned(),
            info,
            datasets,
            volume,
            czyx,
        })
    }
}

impl ZStackSource for Hdf5Stack {
    fn info(&self) -> &StackInfo {
        &self.info
    }

    fn files(&self) -> Vec<PathBuf> {
        vec![self.path.clone()]
    }

    fn read_band(&mut self, plane: u32, y0: u32, rows: u32, out: &mut [u8]) -> Result<()> {
        let ok = plane < self.info.planes
            && rows > 0
            && y0.checked_add(rows).is_some_and(|e| e <= self.info.height)
            && out.len() == rows as usize * self.info.row_bytes();
        if !ok {
            return Err(input(
                &self.path,
                format!("band {y0}+{rows} of plane {plane} is outside the stack"),
            ));
        }
        let (ds, mut sel) = if self.czyx {
            (
                self.datasets.first(),
                vec![SliceOrIndex::from(..), SliceOrIndex::Index(plane as usize)],
            )
        } else if self.volume {
            (
                self.datasets.first(),
                vec![SliceOrIndex::Index(plane as usize)],
            )
        } else {
            (self.datasets.get(plane as usize), Vec::new())
        };
        let Some(ds) = ds else {
            return Err(input(&self.path, format!("plane {plane} has no dataset")));
        };
        sel.push(SliceOrIndex::from(y0 as usize..(y0 + rows) as usize));
        sel.push(SliceOrIndex::from(..));
        if self.info.channels > 1 && !self.czyx {
            sel.push(SliceOrIndex::from(..));
        }
        // Channels first (c, rows, x) are interleaved into (rows, x, c) as they are copied.
        let (c, px_per_plane) = (
            self.info.channels as usize,
            rows as usize * self.info.width as usize,
        );
        let at = |i: usize| {
            if self.czyx && c > 1 {
                (i % px_per_plane) * c + i / px_per_plane
            } else {
                i
            }
        };
        let sel = Hyperslab::from(sel);
        let name = self
            .info
            .plane_names
            .get(plane as usize)
            .cloned()
            .unwrap_or_default();
        let err = |e: hdf5::Error| input(&self.path, format!("{name}: {e}"));
        match self.info.sample_type {
            SampleType::U8 => {
                let a = ds.read_slice::<u8, _, ndarray::IxDyn>(sel).map_err(err)?;
                let a = a.as_standard_layout();
                let src = a
                    .as_slice()
                    .filter(|s| s.len() == out.len())
                    .ok_or_else(|| input(&self.path, format!("{name}: unexpected band size")))?;
                if self.czyx && c > 1 {
                    for (i, v) in src.iter().enumerate() {
                        out[at(i)] = *v;
                    }
                } else {
                    out.copy_from_slice(src);
                }
            }
            SampleType::U16 => {
                let a = ds.read_slice::<u16, _, ndarray::IxDyn>(sel).map_err(err)?;
                let a = a.as_standard_layout();
                let src = a
                    .as_slice()
                    .filter(|s| s.len() * 2 == out.len())
                    .ok_or_else(|| input(&self.path, format!("{name}: unexpected band size")))?;
                for (i, v) in src.iter().enumerate() {
                    let o = 2 * at(i);
                    out[o..o + 2].copy_from_slice(&v.to_ne_bytes());
                }
            }
        }
        Ok(())
    }
}

//! HDF5 output for legacy tools (feature `hdf5`): an OME-Zarr image written by Strata copied
//! into one `.h5` file.
//!
//! The file holds one dataset per pyramid level, `/0`, `/1`, ..., each shaped `(c, z, y, x)`
//! with the image's sample type, HDF5-chunked `(1, 1, chunk, chunk)` and deflate-compressed
//! (or not), plus attributes:
//!
//! - on the root: `multiscales` (the NGFF `multiscales` JSON, as a string), `ome_version`,
//!   `axes`, `units` and `pixel_size` of level 0, and `strata` (the provenance JSON, as a
//!   string) when the image has one;
//! - on each dataset: `axes`, `units`, `pixel_size` (per axis, that level's), `zarr_path` (the
//!   level's array in the OME-Zarr image) and, when the spatial units are micrometres,
//!   `element_size_um` (`z, y, x`, the convention of vigra and ilastik).
//!
//! The image is read band by band (a run of rows of one plane, all channels), through the
//! shard indexes, so memory is one band whatever the level size; a band larger than
//! [`Hdf5ExportOptions::max_band_bytes`] is refused before anything is written. The file is
//! written under a hidden temporary name next to the output and renamed into place only when
//! complete, so the output path never holds a half-written file.

use crate::error::{Error, Result};
use crate::source::SampleType;
use hdf5::types::VarLenUnicode;
use hdf5_metno as hdf5;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use strata_ngff::model::Multiscale;
use zarrs::array::{
    Array, ArrayShardedReadableExt, ArrayShardedReadableExtCache, ArraySubset, CodecOptions,
};
use zarrs::filesystem::FilesystemStore;

/// Most pyramid levels an image may declare (a guard against corrupt metadata).
const MAX_LEVELS: usize = 64;

/// How to write the HDF5 file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hdf5ExportOptions {
    /// Deflate (gzip) level 1 to 9, available in every HDF5 build with zlib (Debian's
    /// included); `None` writes the chunks uncompressed.
    pub deflate: Option<u8>,
    /// HDF5 chunk height and width in pixels, also the band height read at once; `None` takes
    /// the image's inner chunk size.
    pub chunk: Option<u32>,
    /// Most bytes one band (rows of one plane, all channels) may take in memory; an image
    /// whose band would be larger is refused before anything is written.
    pub max_band_bytes: u64,
}

impl Default for Hdf5ExportOptions {
    fn default() -> Self {
        Self {
            deflate: Some(4),
            chunk: None,
            max_band_bytes: 1 << 30,
        }
    }
}

/// One dataset of the written file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hdf5LevelSummary {
    /// HDF5 dataset path (`/0`, `/1`, ...).
    pub dataset: String,
    /// Shape `(c, z, y, x)`.
    pub shape: [u64; 4],
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hdf5ExportSummary {
    /// The `.h5` file written.
    pub output: PathBuf,
    /// The OME-Zarr image read.
    pub image: PathBuf,
    /// One entry per pyramid level, level 0 first.
    pub levels: Vec<Hdf5LevelSummary>,
    /// Zarr data type of every level (`uint8` or `uint16`).
    pub data_type: String,
    /// Uncompressed bytes copied (all levels).
    pub bytes_in: u64,
    /// Size of the written file.
    pub bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

fn bad(image: &Path, message: impl Into<String>) -> Error {
    Error::Input {
        source_name: image.display().to_string(),
        message: message.into(),
    }
}

/// Reads a metadata file no larger than `limit` bytes.
fn read_json(path: &Path, limit: usize) -> Result<serde_json::Value> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len > limit as u64 {
        return Err(bad(path, format!("{len} bytes, more than {limit}")));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    strata_ngff::parse_json_limited(&bytes, limit).map_err(|e| bad(path, e.to_string()))
}

/// A level's array path must stay inside the image.
fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && p.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
        })
}

/// One level as read from its `zarr.json`.
struct LevelMeta {
    path: String,
    shape: [u64; 4],
    sample_type: SampleType,
    /// Inner chunk height, if the array is sharded.
    inner: Option<u64>,
}

fn level_meta(image: &Path, path: &str) -> Result<LevelMeta> {
    if !safe_path(path) {
        return Err(bad(
            image,
            format!("level path {path:?} is not a relative array path"),
        ));
    }
    let file = image.join(path).join("zarr.json");
    let meta = read_json(&file, 1 << 20)?;
    let shape: Vec<u64> = meta
        .get("shape")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .ok_or_else(|| bad(&file, "no array shape"))?;
    let shape: [u64; 4] = shape
        .try_into()
        .map_err(|s: Vec<u64>| bad(&file, format!("{}-D array, (c, z, y, x) expected", s.len())))?;
    let sample_type = match meta.get("data_type").and_then(|d| d.as_str()) {
        Some("uint8") => SampleType::U8,
        Some("uint16") => SampleType::U16,
        other => {
            return Err(bad(
                &file,
                format!("data type {other:?}: only uint8 and uint16 are exported"),
            ));
        }
    };
    let inner = meta
        .get("codecs")
        .and_then(|c| c.as_array())
        .and_then(|c| c.first())
        .filter(|c| c.get("name").and_then(|n| n.as_str()) == Some("sharding_indexed"))
        .and_then(|c| c.pointer("/configuration/chunk_shape/2"))
        .and_then(serde_json::Value::as_u64);
    Ok(LevelMeta {
        path: path.to_owned(),
        shape,
        sample_type,
        inner,
    })
}

/// Writes a scalar string attribute.
fn attr_str(loc: &hdf5::Location, name: &str, value: &str) -> hdf5::Result<()> {
    let v: VarLenUnicode = value
        .parse()
        .map_err(|e| hdf5::Error::from(format!("attribute {name}: {e}")))?;
    loc.new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)?
        .write_scalar(&v)
}

/// Writes a 1-D string array attribute.
fn attr_strs(loc: &hdf5::Location, name: &str, values: &[String]) -> hdf5::Result<()> {
    let v = values
        .iter()
        .map(|s| s.parse::<VarLenUnicode>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| hdf5::Error::from(format!("attribute {name}: {e}")))?;
    loc.new_attr::<VarLenUnicode>()
        .shape(v.len())
        .create(name)?
        .write_raw(&v)
}

/// Writes a 1-D float attribute.
fn attr_f64s(loc: &hdf5::Location, name: &str, values: &[f64]) -> hdf5::Result<()> {
    loc.new_attr::<f64>()
        .shape(values.len())
        .create(name)?
        .write_raw(values)
}

/// Axis attributes of one level: `axes`, `units`, `pixel_size`, and `element_size_um` when
/// the spatial axes are in micrometres.
fn axis_attrs(loc: &hdf5::Location, ms: &Multiscale, level: usize) -> hdf5::Result<()> {
    let axes: Vec<String> = ms.axes.iter().map(|a| a.name.clone()).collect();
    let units: Vec<String> = ms
        .axes
        .iter()
        .map(|a| a.unit.clone().unwrap_or_default())
        .collect();
    attr_strs(loc, "axes", &axes)?;
    attr_strs(loc, "units", &units)?;
    if let Some(size) = ms.pixel_size(level).filter(|s| s.len() == axes.len()) {
        attr_f64s(loc, "pixel_size", &size)?;
        let spatial: Option<Vec<f64>> = ["z", "y", "x"]
            .iter()
            .map(|n| {
                let i = ms.axis_index(n)?;
                (units.get(i)?.as_str() == "micrometer").then(|| size.get(i).copied())?
            })
            .collect();
        if let Some(um) = spatial {
            attr_f64s(loc, "element_size_um", &um)?;
        }
    }
    Ok(())
}

/// Creates one chunked (and optionally deflated) level dataset.
fn create_dataset<T: hdf5::H5Type>(
    file: &hdf5::File,
    name: &str,
    shape: (usize, usize, usize, usize),
    chunk: (usize, usize, usize, usize),
    opts: &Hdf5ExportOptions,
) -> hdf5::Result<hdf5::Dataset> {
    let b = file.new_dataset::<T>().chunk(chunk);
    let b = match opts.deflate {
        Some(level) => b.deflate(level),
        None => b,
    };
    b.shape(shape).create(name)
}

fn h5err(out: &Path) -> impl Fn(hdf5::Error) -> Error + '_ {
    move |e| Error::Io {
        path: out.to_owned(),
        source: std::io::Error::other(format!("HDF5: {e}")),
    }
}

/// Copies an OME-Zarr image written by Strata (any number of levels, sharded or not) into one
/// HDF5 file for tools that read only HDF5 (see the module docs for the file's layout).
///
/// `progress` is called after every band with the uncompressed bytes copied so far and the
/// total.
///
/// # Errors
/// [`Error::Input`] naming the file if the image's metadata or arrays are missing, malformed
/// or not `(c, z, y, x)` uint8/uint16; [`Error::Config`] for invalid options or a band above
/// the memory limit; [`Error::Io`] if the HDF5 file cannot be written (the output path is
/// then left untouched).
pub fn export_hdf5(
    image: &Path,
    out: &Path,
    opts: &Hdf5ExportOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Hdf5ExportSummary> {
    let start = Instant::now();
    check_options(opts)?;
    let meta = read_image(image)?;
    let band_rows = band_rows(opts, &meta.levels);
    let total = check_bands(image, &meta, band_rows, opts.max_band_bytes)?;

    // Write under a temporary name, rename when whole (the temporary goes on any error).
    if out.file_name().is_none() {
        return Err(Error::Config(format!("{}: not a file path", out.display())));
    }
    // A killed earlier export of the same file left its temporary beside it.
    strata_fs::remove_stale_temps(out).map_err(|e| Error::io(out, e.into()))?;
    let tmp = strata_fs::TempPath::new(out);
    let store =
        Arc::new(FilesystemStore::new(image).map_err(|e| bad(image, format!("opening: {e}")))?);
    let job = Job {
        image,
        meta: &meta,
        opts,
        band_rows,
    };
    write_file(tmp.path(), &store, &job, (total, progress))?;
    let bytes = std::fs::metadata(tmp.path())
        .map_err(|e| Error::io(tmp.path(), e))?
        .len();
    tmp.persist(out, strata_fs::Durability::FileAndDir)
        .map_err(|e| Error::io(out, e.into()))?;
    Ok(Hdf5ExportSummary {
        output: out.to_owned(),
        image: image.to_owned(),
        levels: meta
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| Hdf5LevelSummary {
                dataset: format!("/{i}"),
                shape: l.shape,
            })
            .collect(),
        data_type: meta.sample_type.zarr_name().to_owned(),
        bytes_in: total,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Refuses options that cannot be written: a deflate level outside 1 to 9, a chunk size of
/// 0, or compression when the HDF5 library has no deflate filter.
fn check_options(opts: &Hdf5ExportOptions) -> Result<()> {
    if let Some(level) = opts.deflate
        && !(1..=9).contains(&level)
    {
        return Err(Error::Config(format!(
            "deflate level {level}: use 1 to 9 (or no compression)"
        )));
    }
    if opts.chunk == Some(0) {
        return Err(Error::Config(
            "HDF5 chunk size 0: use a positive size".into(),
        ));
    }
    if opts.deflate.is_some() && !hdf5::filters::deflate_available() {
        return Err(Error::Config(
            "this HDF5 library has no deflate filter: export without compression".into(),
        ));
    }
    Ok(())
}

/// The image's metadata, checked: what the copy needs before anything is written.
struct ImageMeta {
    /// The first multiscale image of the group.
    ms: Multiscale,
    /// Its levels, level 0 first (1 to [`MAX_LEVELS`]).
    levels: Vec<LevelMeta>,
    /// The sample type every level shares.
    sample_type: SampleType,
    /// The group's NGFF `multiscales` JSON (empty if absent), for the root attribute.
    multiscales: String,
    /// The group's `strata` provenance JSON, if any.
    provenance: Option<String>,
}

/// Reads and checks the group `zarr.json` (NGFF 0.5, validated) and every level's array
/// metadata: 1 to [`MAX_LEVELS`] levels of one sample type under four axes.
fn read_image(image: &Path) -> Result<ImageMeta> {
    let group_file = image.join("zarr.json");
    if !group_file.is_file() {
        return Err(bad(
            image,
            "not an OME-Zarr image folder (no zarr.json): pass the .ome.zarr folder",
        ));
    }
    let group = read_json(&group_file, strata_ngff::MAX_METADATA_BYTES)?;
    let model = strata_ngff::read_zarr_json(&group).map_err(|e| bad(&group_file, e.to_string()))?;
    let ms = model
        .attributes
        .ome
        .multiscales
        .as_ref()
        .and_then(|m| m.first())
        .ok_or_else(|| bad(&group_file, "no multiscale image"))?;
    if ms.datasets.is_empty() || ms.datasets.len() > MAX_LEVELS {
        return Err(bad(
            &group_file,
            format!("{} levels: 1 to {MAX_LEVELS} expected", ms.datasets.len()),
        ));
    }
    let levels = ms
        .datasets
        .iter()
        .map(|d| level_meta(image, &d.path))
        .collect::<Result<Vec<_>>>()?;
    let sample_type = levels[0].sample_type;
    if let Some(l) = levels.iter().find(|l| l.sample_type != sample_type) {
        return Err(bad(
            image,
            format!("level {} has another data type", l.path),
        ));
    }
    if ms.axes.len() != 4 {
        return Err(bad(&group_file, "the axes are not (c, z, y, x)"));
    }
    let multiscales = group
        .pointer("/attributes/ome/multiscales")
        .map(serde_json::Value::to_string)
        .unwrap_or_default();
    let provenance = group
        .pointer("/attributes/strata")
        .map(serde_json::Value::to_string);
    Ok(ImageMeta {
        ms: ms.clone(),
        levels,
        sample_type,
        multiscales,
        provenance,
    })
}

/// Rows per band (and HDF5 chunk edge): the chosen chunk size, else level 0's inner chunk
/// height, else 512.
fn band_rows(opts: &Hdf5ExportOptions, levels: &[LevelMeta]) -> u64 {
    opts.chunk.map_or_else(
        || {
            levels
                .first()
                .and_then(|l| l.inner)
                .filter(|&r| r > 0)
                .unwrap_or(512)
        },
        u64::from,
    )
}

/// Checks that one band of every level fits in `max_band_bytes` and returns the uncompressed
/// bytes of all levels.
fn check_bands(image: &Path, meta: &ImageMeta, band_rows: u64, max_band_bytes: u64) -> Result<u64> {
    let bps = meta.sample_type.bytes() as u64;
    let mut total = 0u64;
    for l in &meta.levels {
        let [c, z, h, w] = l.shape;
        let overflow = || {
            bad(
                image,
                format!("level {}: shape {:?} overflows", l.path, l.shape),
            )
        };
        let band = c
            .checked_mul(band_rows.min(h))
            .and_then(|v| v.checked_mul(w))
            .and_then(|v| v.checked_mul(bps))
            .ok_or_else(overflow)?;
        if band > max_band_bytes {
            return Err(Error::Config(format!(
                "level {}: a band of {band_rows} rows takes {band} bytes, more than the limit of \
                 {max_band_bytes} bytes: export with a smaller chunk",
                l.path
            )));
        }
        total = z
            .checked_mul(h)
            .and_then(|v| v.checked_mul(c))
            .and_then(|v| v.checked_mul(w))
            .and_then(|v| v.checked_mul(bps))
            .and_then(|v| v.checked_add(total))
            .ok_or_else(overflow)?;
    }
    Ok(total)
}

/// What the copy of every level shares.
struct Job<'a> {
    /// The OME-Zarr image read (named in errors).
    image: &'a Path,
    /// Its checked metadata.
    meta: &'a ImageMeta,
    /// The export options.
    opts: &'a Hdf5ExportOptions,
    /// Rows per band, also the HDF5 chunk edge.
    band_rows: u64,
}

/// Writes the whole file at `tmp` (closed on return): the root attributes, then every level.
fn write_file(
    tmp: &Path,
    store: &Arc<FilesystemStore>,
    job: &Job<'_>,
    (total, progress): (u64, &mut dyn FnMut(u64, u64)),
) -> Result<()> {
    let err = h5err(tmp);
    let meta = job.meta;
    let file = hdf5::File::create(tmp).map_err(&err)?;
    attr_str(&file, "multiscales", &meta.multiscales).map_err(&err)?;
    attr_str(&file, "ome_version", "0.5").map_err(&err)?;
    axis_attrs(&file, &meta.ms, 0).map_err(&err)?;
    if let Some(p) = &meta.provenance {
        attr_str(&file, "strata", p).map_err(&err)?;
    }
    let mut done = 0u64;
    progress(done, total);
    let mut copied = |bytes: u64| {
        done += bytes;
        progress(done, total);
    };
    for (index, level) in meta.levels.iter().enumerate() {
        write_level(&file, tmp, store, job, (index, level), &mut copied)?;
    }
    file.close().map_err(&err)
}

/// Creates level `index`'s dataset (with its attributes) in `file`, the HDF5 file being
/// written at `tmp`, and copies the level into it band by band, one plane at a time, calling
/// `copied` with each band's uncompressed bytes.
fn write_level(
    file: &hdf5::File,
    tmp: &Path,
    store: &Arc<FilesystemStore>,
    job: &Job<'_>,
    (index, level): (usize, &LevelMeta),
    copied: &mut dyn FnMut(u64),
) -> Result<()> {
    let err = h5err(tmp);
    let array = Array::open(store.clone(), &format!("/{}", level.path))
        .map_err(|e| bad(job.image, format!("level {}: {e}", level.path)))?;
    if array.shape() != level.shape {
        return Err(bad(
            job.image,
            format!("level {}: shape differs from its zarr.json", level.path),
        ));
    }
    let [c, z, h, w] = level.shape;
    let to_usize = |v: u64| {
        usize::try_from(v).map_err(|_| bad(job.image, format!("level {}: too large", level.path)))
    };
    let (cu, zu, hu, wu) = (to_usize(c)?, to_usize(z)?, to_usize(h)?, to_usize(w)?);
    let rows_max = to_usize(job.band_rows)?;
    let chunk = (1, 1, rows_max.min(hu).max(1), rows_max.min(wu).max(1));
    let name = index.to_string();
    let ds = match level.sample_type {
        SampleType::U8 => create_dataset::<u8>(file, &name, (cu, zu, hu, wu), chunk, job.opts),
        SampleType::U16 => create_dataset::<u16>(file, &name, (cu, zu, hu, wu), chunk, job.opts),
    }
    .map_err(&err)?;
    axis_attrs(&ds, &job.meta.ms, index).map_err(&err)?;
    attr_str(&ds, "zarr_path", &level.path).map_err(&err)?;

    let cache = ArrayShardedReadableExtCache::new(&array);
    let codec = CodecOptions::default();
    for plane in 0..z {
        let mut y0 = 0u64;
        while y0 < h {
            let rows = job.band_rows.min(h - y0);
            let subset =
                ArraySubset::new_with_ranges(&[0..c, plane..plane + 1, y0..y0 + rows, 0..w]);
            let read_err = |e: zarrs::array::ArrayError| {
                bad(
                    job.image,
                    format!("level {} plane {plane} rows {y0}+{rows}: {e}", level.path),
                )
            };
            let shape = (cu, to_usize(rows)?, wu);
            let y = to_usize(y0)?;
            let sel = hdf5::Hyperslab::from(vec![
                hdf5::SliceOrIndex::from(..),
                hdf5::SliceOrIndex::Index(to_usize(plane)?),
                hdf5::SliceOrIndex::from(y..y + shape.1),
                hdf5::SliceOrIndex::from(..),
            ]);
            let shape_err = |e: ndarray::ShapeError| bad(job.image, format!("band shape: {e}"));
            match level.sample_type {
                SampleType::U8 => {
                    let band: Vec<u8> = array
                        .retrieve_array_subset_sharded_opt(&cache, &subset, &codec)
                        .map_err(read_err)?;
                    let view = ndarray::ArrayView3::from_shape(shape, &band).map_err(shape_err)?;
                    ds.write_slice(view, sel).map_err(&err)?;
                }
                SampleType::U16 => {
                    let band: Vec<u16> = array
                        .retrieve_array_subset_sharded_opt(&cache, &subset, &codec)
                        .map_err(read_err)?;
                    let view = ndarray::ArrayView3::from_shape(shape, &band).map_err(shape_err)?;
                    ds.write_slice(view, sel).map_err(&err)?;
                }
            }
            copied(c * rows * w * level.sample_type.bytes() as u64);
            y0 += rows;
        }
        // One shard index at a time in memory.
        cache.clear();
    }
    Ok(())
}

//! Python bindings of [`strata_access`], built as the extension module `strata._strata` of
//! the `strata` Python package (`pip install ./python`; the package's `__init__.py` re-exports
//! it with the pure-Python `PatchDataset`).
//!
//! Reads run with the GIL released, on a rayon pool that belongs to the current process: a
//! PyTorch `DataLoader` forks its workers, and a pool (or an async runtime) inherited through
//! `fork` has no threads behind it, so each process starts its own on first use.

use std::ops::Range;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

use numpy::PyArray1;
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PySlice};
use serde_json::Value;
use strata_access::{
    Error, Image, ImageOptions, LevelInfo, Patch, PatchAt, PatchSampler, Positions, Region,
    SamplerOptions, Selection, dataset_images,
};

create_exception!(
    strata,
    RequestError,
    PyValueError,
    "A request the image cannot answer: a level it does not have, a region outside a level or \
     over the size limit, a location that cannot be opened. Attributes: `image`, `level`."
);
create_exception!(
    strata,
    DataError,
    PyOSError,
    "The image's data cannot be read: a missing or unreadable object, metadata that is \
     malformed or disagrees with the arrays, a corrupt or truncated chunk or shard index. \
     Attributes: `image`, `level`, `chunk` (each None where it does not apply)."
);

/// The error as a Python exception of the matching class, with `image`, `level` and `chunk`
/// attributes.
fn py_err(e: Error) -> PyErr {
    let (image, level, chunk) = match &e {
        Error::Location { location, .. } => (location.clone(), None, None),
        Error::Store { image, .. } | Error::Metadata { image, .. } => (image.clone(), None, None),
        Error::NoSuchLevel { image, level, .. }
        | Error::OutOfBounds { image, level, .. }
        | Error::TooLarge { image, level, .. }
        | Error::Buffer { image, level, .. } => (image.clone(), Some(*level), None),
        Error::Chunk {
            image,
            level,
            chunk,
            ..
        } => (image.clone(), Some(*level), Some(chunk.clone())),
        _ => (String::new(), None, None),
    };
    let err = if e.is_request_error() {
        RequestError::new_err(e.to_string())
    } else {
        DataError::new_err(e.to_string())
    };
    Python::attach(|py| {
        let value = err.value(py);
        // Setting attributes on a fresh exception instance cannot fail but for memory.
        let _ = value.setattr("image", image);
        let _ = value.setattr("level", level);
        let _ = value.setattr("chunk", chunk);
    });
    err
}

/// The rayon pool of this process (see the module docs on `fork`).
fn pool() -> PyResult<Arc<rayon::ThreadPool>> {
    static POOL: Mutex<Option<(u32, Arc<rayon::ThreadPool>)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut slot = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((owner, pool)) = slot.as_ref()
        && *owner == pid
    {
        return Ok(Arc::clone(pool));
    }
    // A pool inherited through fork: its threads do not exist here, so it is forgotten
    // rather than dropped (dropping would signal threads that are not there).
    if let Some(inherited) = slot.take() {
        std::mem::forget(inherited);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("strata-read-{i}"))
        .build()
        .map_err(|e| PyOSError::new_err(format!("cannot start reader threads: {e}")))?;
    let pool = Arc::new(pool);
    *slot = Some((pid, Arc::clone(&pool)));
    Ok(pool)
}

/// `os.fspath(path)`: a `str` or path-like object as a string.
fn fspath(path: &Bound<'_, PyAny>) -> PyResult<String> {
    path.py()
        .import("os")?
        .call_method1("fspath", (path,))?
        .extract()
}

/// A JSON value as the Python object `json.loads` makes of it.
fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?
        .call_method1("loads", (value.to_string(),))
}

/// Bytes in native order, C order, as a numpy array of `dtype` and `shape` (no copy).
fn to_numpy<'py>(
    py: Python<'py>,
    bytes: Vec<u8>,
    dtype: &str,
    shape: Vec<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let flat = PyArray1::from_vec(py, bytes).into_any();
    let typed = if dtype == "uint8" {
        flat
    } else {
        flat.call_method1("view", (dtype,))?
    };
    typed.call_method1("reshape", (shape,))
}

/// The numpy name of a Zarr v3 data type, for the types numpy has.
fn numpy_dtype(info: &LevelInfo) -> PyResult<&'static str> {
    Ok(match info.data_type.as_str() {
        "bool" => "bool",
        "int8" => "int8",
        "int16" => "int16",
        "int32" => "int32",
        "int64" => "int64",
        "uint8" => "uint8",
        "uint16" => "uint16",
        "uint32" => "uint32",
        "uint64" => "uint64",
        "float16" => "float16",
        "float32" => "float32",
        "float64" => "float64",
        "complex64" => "complex64",
        "complex128" => "complex128",
        other => {
            return Err(PyTypeError::new_err(format!(
                "level {} has data type {other:?}, which has no numpy equivalent",
                info.path
            )));
        }
    })
}

/// One level of an image, as `Image.levels` lists it.
#[pyclass(module = "strata", name = "Level", frozen, get_all)]
#[derive(Clone)]
struct PyLevel {
    /// The array's path inside the image (`"0"`, `"1"`, ...).
    path: String,
    /// Shape, one extent per axis.
    shape: Vec<u64>,
    /// numpy data type name (`"uint8"`, `"uint16"`, ...).
    dtype: String,
    /// Shape of a shard (the chunk of the array's grid).
    shard_shape: Vec<u64>,
    /// Shape of the unit of decoding (the inner chunk).
    chunk_shape: Vec<u64>,
    /// Physical size of a pixel along each axis.
    scale: Vec<f64>,
    /// Physical position of the first pixel.
    translation: Vec<f64>,
}

#[pymethods]
impl PyLevel {
    fn __repr__(&self) -> String {
        format!(
            "Level(path={:?}, shape={:?}, dtype={:?}, chunk_shape={:?}, scale={:?})",
            self.path, self.shape, self.dtype, self.chunk_shape, self.scale
        )
    }
}

/// An OME-Zarr image opened for reading (see `strata.open`).
#[pyclass(module = "strata", name = "Image", frozen)]
struct PyImage {
    inner: Arc<Image>,
}

/// One axis selection of `Image.read`: the range read and whether the axis is kept.
fn select(axis: &str, len: u64, sel: Option<&Bound<'_, PyAny>>) -> PyResult<(Range<u64>, bool)> {
    let Some(sel) = sel.filter(|s| !s.is_none()) else {
        return Ok((0..len, true));
    };
    let resolve = |i: i64| -> u64 {
        if i < 0 {
            len.saturating_sub(i.unsigned_abs())
        } else {
            i.unsigned_abs()
        }
    };
    if let Ok(slice) = sel.cast::<PySlice>() {
        let step: Option<i64> = slice.getattr("step")?.extract()?;
        if step.is_some_and(|s| s != 1) {
            return Err(RequestError::new_err(format!(
                "axis {axis}: only contiguous slices (step 1) can be read; slice the array afterwards"
            )));
        }
        let start: Option<i64> = slice.getattr("start")?.extract()?;
        let stop: Option<i64> = slice.getattr("stop")?.extract()?;
        let start = start.map_or(0, resolve);
        let stop = stop.map_or(len, resolve);
        return Ok((start..stop.max(start), true));
    }
    match sel.extract::<i64>() {
        Ok(i) => {
            let at = if i < 0 {
                len.checked_sub(i.unsigned_abs())
            } else {
                Some(i.unsigned_abs())
            };
            match at {
                Some(at) if at < len => Ok((at..at + 1, false)),
                _ => Err(RequestError::new_err(format!(
                    "axis {axis}: index {i} is outside 0..{len}"
                ))),
            }
        }
        Err(_) => Err(PyTypeError::new_err(format!(
            "axis {axis}: select with an int, a slice or None, not {}",
            sel.get_type().name()?
        ))),
    }
}

#[pymethods]
impl PyImage {
    /// The image's location as used in messages.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// Every level, highest resolution first.
    #[getter]
    fn levels(&self) -> PyResult<Vec<PyLevel>> {
        self.inner
            .levels()
            .map(|l| {
                Ok(PyLevel {
                    path: l.path.clone(),
                    shape: l.shape.clone(),
                    dtype: numpy_dtype(l)?.to_owned(),
                    shard_shape: l.shard_shape.clone(),
                    chunk_shape: l.chunk_shape.clone(),
                    scale: l.scale.clone(),
                    translation: l.translation.clone(),
                })
            })
            .collect()
    }

    /// The axes, in array order: dicts with `name`, `type` and `unit` (as in the NGFF metadata).
    #[getter]
    fn axes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let axes = serde_json::to_value(self.inner.axes())
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        json_to_py(py, &axes)
    }

    /// Number of focus planes.
    #[getter]
    fn planes(&self) -> u64 {
        self.inner.planes()
    }

    /// Number of channels.
    #[getter]
    fn channels(&self) -> u64 {
        self.inner.channels()
    }

    /// The sidecar's PixelSize (x, y, z), or None.
    #[getter]
    fn pixel_size(&self) -> Option<Vec<f64>> {
        self.inner.pixel_size()
    }

    /// The BIDS sidecar as a dict, or None.
    #[getter]
    fn sidecar<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.sidecar().map(|v| json_to_py(py, v)).transpose()
    }

    /// The conversion's provenance record as a dict, or None.
    #[getter]
    fn provenance<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .provenance()
            .map(|v| json_to_py(py, v))
            .transpose()
    }

    /// Bytes of decoded chunks the cache holds now.
    #[getter]
    fn cached_bytes(&self) -> usize {
        self.inner.cached_bytes()
    }

    /// Reads a region of `level` as a numpy array; see `_strata.pyi`.
    #[pyo3(signature = (level = 0, **axes))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        level: usize,
        axes: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let info = self.inner.level(level).map_err(py_err)?.clone();
        let names: Vec<String> = self.inner.axes().iter().map(|a| a.name.clone()).collect();
        if let Some(axes) = axes {
            for key in axes.keys() {
                let key: String = key.extract()?;
                if !names.contains(&key) {
                    return Err(PyTypeError::new_err(format!(
                        "the image has no axis {key:?}; its axes are {names:?}"
                    )));
                }
            }
        }
        let mut ranges = Vec::with_capacity(names.len());
        let mut shape = Vec::with_capacity(names.len());
        for (name, &len) in names.iter().zip(&info.shape) {
            let sel = match axes {
                Some(axes) => axes.get_item(name)?,
                None => None,
            };
            let (range, keep) = select(name, len, sel.as_ref())?;
            if keep {
                shape.push(usize::try_from(range.end - range.start).unwrap_or(usize::MAX));
            }
            ranges.push(range);
        }
        let dtype = numpy_dtype(&info)?;
        let region = Region::new(ranges);
        let image = Arc::clone(&self.inner);
        let pool = pool()?;
        let bytes = py
            .detach(move || pool.install(|| image.read_region(level, &region)))
            .map_err(py_err)?;
        to_numpy(py, bytes, dtype, shape)
    }

    fn __repr__(&self) -> String {
        let shape = self
            .inner
            .level(0)
            .map(|l| l.shape.clone())
            .unwrap_or_default();
        format!(
            "Image({:?}, levels={}, shape={shape:?})",
            self.inner.name(),
            self.inner.levels().len()
        )
    }
}

/// Opens an image; see `_strata.pyi`.
#[pyfunction]
#[pyo3(signature = (location, *, cache_bytes = 0, max_region_bytes = None))]
fn open(
    py: Python<'_>,
    location: &Bound<'_, PyAny>,
    cache_bytes: usize,
    max_region_bytes: Option<u64>,
) -> PyResult<PyImage> {
    let location = fspath(location)?;
    let mut options = ImageOptions::default().cache_bytes(cache_bytes);
    if let Some(limit) = max_region_bytes {
        options = options.max_region_bytes(limit);
    }
    let image = py
        .detach(move || Image::open_with(&location, options))
        .map_err(py_err)?;
    Ok(PyImage {
        inner: Arc::new(image),
    })
}

/// One label or a list of labels (or None: every value).
fn labels(value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match value {
        None => Ok(Vec::new()),
        Some(v) if v.is_none() => Ok(Vec::new()),
        Some(v) => match v.extract::<String>() {
            Ok(one) => Ok(vec![one]),
            Err(_) => v
                .extract::<Vec<String>>()
                .map_err(|_| PyTypeError::new_err("give a label, a list of labels or None")),
        },
    }
}

/// The images of a BIDS dataset, selected by entity; see `_strata.pyi`.
#[pyfunction]
#[pyo3(signature = (root, *, subject = None, session = None, sample = None, stain = None))]
fn bids_images(
    py: Python<'_>,
    root: &Bound<'_, PyAny>,
    subject: Option<&Bound<'_, PyAny>>,
    session: Option<&Bound<'_, PyAny>>,
    sample: Option<&Bound<'_, PyAny>>,
    stain: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<String>> {
    let root = fspath(root)?;
    let selection = Selection::all()
        .subjects(labels(subject)?)
        .sessions(labels(session)?)
        .samples(labels(sample)?)
        .stains(labels(stain)?);
    let images = py
        .detach(move || dataset_images(&root, &selection))
        .map_err(py_err)?;
    Ok(images.into_iter().map(|i| i.location).collect())
}

/// Where a patch was read from.
#[pyclass(module = "strata", name = "PatchAt", frozen, get_all, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
struct PyPatchAt {
    /// Index of the image in the sampler's list.
    image: usize,
    /// The level.
    level: usize,
    /// The plane.
    z: u64,
    /// First row.
    y: u64,
    /// First column.
    x: u64,
}

#[pymethods]
impl PyPatchAt {
    #[new]
    fn new(image: usize, level: usize, z: u64, y: u64, x: u64) -> Self {
        Self {
            image,
            level,
            z,
            y,
            x,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "PatchAt(image={}, level={}, z={}, y={}, x={})",
            self.image, self.level, self.z, self.y, self.x
        )
    }
}

impl From<PatchAt> for PyPatchAt {
    fn from(at: PatchAt) -> Self {
        Self {
            image: at.image,
            level: at.level,
            z: at.z,
            y: at.y,
            x: at.x,
        }
    }
}

impl From<&PyPatchAt> for PatchAt {
    fn from(at: &PyPatchAt) -> Self {
        PatchAt {
            image: at.image,
            level: at.level,
            z: at.z,
            y: at.y,
            x: at.x,
        }
    }
}

/// Patches from a set of images; see `_strata.pyi`.
#[pyclass(module = "strata", name = "PatchSampler", frozen)]
struct PySampler {
    inner: Arc<PatchSampler>,
    dtypes: Vec<&'static str>,
}

impl PySampler {
    /// The patch's shape as `read` returns it: (c, h, w).
    fn patch_shape(&self, at: &PatchAt) -> Vec<usize> {
        let c = self.inner.images()[at.image]
            .level(at.level)
            .map_or(1, |l| l.shape[0]);
        let [h, w] = self.inner.options().size;
        [c, h, w]
            .iter()
            .map(|&n| usize::try_from(n).unwrap_or(usize::MAX))
            .collect()
    }

    fn patch_to_py<'py>(&self, py: Python<'py>, patch: Patch) -> PyResult<Bound<'py, PyAny>> {
        let shape = self.patch_shape(&patch.at);
        let array = to_numpy(py, patch.data, self.dtypes[patch.at.image], shape)?;
        (array, PyPatchAt::from(patch.at))
            .into_pyobject(py)
            .map(Bound::into_any)
    }
}

#[pymethods]
impl PySampler {
    #[new]
    #[pyo3(signature = (
        images, size, *, level = 0, per_epoch = 1024, grid = false, tissue_only = true,
        seed = 0, rank = 0, world_size = 1, prefetch = 8, mask_level = None, cache_bytes = 0
    ))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments, each with a default.
    fn new(
        py: Python<'_>,
        images: Vec<Bound<'_, PyAny>>,
        size: (u64, u64),
        level: usize,
        per_epoch: usize,
        grid: bool,
        tissue_only: bool,
        seed: u64,
        rank: usize,
        world_size: usize,
        prefetch: usize,
        mask_level: Option<usize>,
        cache_bytes: usize,
    ) -> PyResult<Self> {
        let mut opened = Vec::with_capacity(images.len());
        for img in &images {
            if let Ok(img) = img.cast::<PyImage>() {
                opened.push(Arc::clone(&img.get().inner));
            } else {
                opened.push(open(py, img, cache_bytes, None)?.inner);
            }
        }
        let mut options = SamplerOptions::new([size.0, size.1])
            .level(level)
            .positions(if grid {
                Positions::Grid
            } else {
                Positions::Random { per_epoch }
            })
            .tissue_only(tissue_only)
            .seed(seed)
            .rank(rank, world_size)
            .prefetch(prefetch);
        options.mask_level = mask_level;
        let mut dtypes = Vec::with_capacity(opened.len());
        for img in &opened {
            dtypes.push(numpy_dtype(img.level(level).map_err(py_err)?)?);
        }
        let pool = pool()?;
        let sampler = py
            .detach(move || pool.install(|| PatchSampler::new(opened, options)))
            .map_err(py_err)?;
        Ok(Self {
            inner: Arc::new(sampler),
            dtypes,
        })
    }

    /// The images, in the order `PatchAt.image` counts them.
    #[getter]
    fn images(&self) -> Vec<PyImage> {
        self.inner
            .images()
            .iter()
            .map(|i| PyImage {
                inner: Arc::clone(i),
            })
            .collect()
    }

    /// Fraction of each image's mask pixels that are tissue (1.0 without a mask).
    fn tissue_fractions(&self) -> Vec<f64> {
        self.inner.tissue_fractions()
    }

    /// The positions of `epoch` for loader worker `worker` of `workers` on this rank.
    #[pyo3(signature = (epoch = 0, worker = 0, workers = 1))]
    fn positions(&self, epoch: u64, worker: usize, workers: usize) -> Vec<PyPatchAt> {
        self.inner
            .positions(epoch, worker, workers)
            .into_iter()
            .map(PyPatchAt::from)
            .collect()
    }

    /// Reads the patch at `at`: a (c, h, w) array.
    fn read<'py>(&self, py: Python<'py>, at: &PyPatchAt) -> PyResult<Bound<'py, PyAny>> {
        let at = PatchAt::from(at);
        if at.image >= self.inner.images().len() {
            return Err(RequestError::new_err(format!(
                "PatchAt.image {} is not one of the sampler's {} images",
                at.image,
                self.inner.images().len()
            )));
        }
        let sampler = Arc::clone(&self.inner);
        let pool = pool()?;
        let patch = py
            .detach(move || pool.install(|| sampler.read(&at)))
            .map_err(py_err)?;
        let shape = self.patch_shape(&patch.at);
        to_numpy(py, patch.data, self.dtypes[patch.at.image], shape)
    }

    /// Iterates over the patches of `epoch` for loader worker `worker` of `workers`, read
    /// ahead by a thread: `(array, PatchAt)` pairs.
    #[pyo3(signature = (epoch = 0, worker = 0, workers = 1))]
    fn iter(
        slf: Bound<'_, Self>,
        epoch: u64,
        worker: usize,
        workers: usize,
    ) -> PyResult<PyPatchIter> {
        let me = slf.get();
        let positions = me.inner.positions(epoch, worker, workers);
        let (tx, rx) = sync_channel(me.inner.options().prefetch.max(1));
        let sampler = Arc::clone(&me.inner);
        let pool = pool()?;
        std::thread::Builder::new()
            .name("strata-patches".into())
            .spawn(move || {
                pool.install(|| {
                    for at in positions {
                        if tx.send(sampler.read(&at)).is_err() {
                            break;
                        }
                    }
                });
            })
            .map_err(|e| PyOSError::new_err(format!("cannot start the read-ahead thread: {e}")))?;
        Ok(PyPatchIter {
            sampler: slf.unbind(),
            rx: Mutex::new(rx),
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "PatchSampler(images={}, size={:?})",
            self.inner.images().len(),
            self.inner.options().size
        )
    }
}

/// Patches read ahead (see `PatchSampler.iter`).
#[pyclass(module = "strata", name = "PatchIter", frozen)]
struct PyPatchIter {
    sampler: Py<PySampler>,
    rx: Mutex<Receiver<strata_access::Result<Patch>>>,
}

#[pymethods]
impl PyPatchIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let next = py.detach(|| {
            self.rx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv()
        });
        match next {
            Err(_) => Ok(None),
            Ok(patch) => {
                let patch = patch.map_err(py_err)?;
                self.sampler.get().patch_to_py(py, patch).map(Some)
            }
        }
    }
}

/// The extension module `strata._strata`.
#[pymodule]
fn _strata(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(bids_images, m)?)?;
    m.add_class::<PyImage>()?;
    m.add_class::<PyLevel>()?;
    m.add_class::<PySampler>()?;
    m.add_class::<PyPatchAt>()?;
    m.add_class::<PyPatchIter>()?;
    m.add("RequestError", py.get_type::<RequestError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

//! One section end to end, as `strata convert` runs it: the source opened (a folder of TIFF
//! focus levels, or an HDF5 file), converted in one read into the dataset's store, checked by
//! the QC gate on the way (its report kept as a derivative of the dataset), and published
//! only if it passes ([`convert_section`]).

use crate::convert::{ConvertOptions, ConvertSummary, Section, prepare};
use crate::error::{Error, Result};
use crate::image::BandHook;
use crate::qc::{Hooks, QcHook};
use crate::source::{Region, StackInfo, ZStackSource};
use crate::tiff_source::TiffStack;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_store::{StoreKey, WritableStore as _, block_on};

/// Called with the bytes of level 0 read so far, and the total, as the conversion goes.
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// How [`convert_section`] runs. Defaults: [`ConvertOptions::default`] (folder layout in the
/// folder `Section::bids_root`, 512 x 512 zstd chunks, SHA-256 of the sources), no QC gate,
/// HDF5 planes detected, no progress reports.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct SectionOptions {
    /// How the image is converted and where it goes.
    pub convert: ConvertOptions,
    /// The QC gate's rules: quality control runs on the same read, its report is written to
    /// `derivatives/qc/sub-<label>/<name>_qc.{json,html}`, and a stack that fails is not
    /// published ([`Error::QcFailed`]). `None`: no gate.
    pub qc_gate: Option<strata_qc::Rules>,
    /// Settings of the QC metrics (with a gate).
    pub qc: strata_qc::QcConfig,
    /// For an HDF5 input: the dataset (3-D) or group (one 2-D dataset per plane) that holds
    /// the planes; `None` detects it.
    pub h5_dataset: Option<String>,
    /// Progress reports (bytes of level 0 read, total).
    pub progress: Option<ProgressFn>,
    /// Extra entries of the provenance record (`attributes.strata` of the image's group
    /// metadata), e.g. the source fingerprint a batch run checks to skip published work.
    pub provenance: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for SectionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SectionOptions")
            .field("convert", &self.convert)
            .field("qc_gate", &self.qc_gate)
            .field("qc", &self.qc)
            .field("h5_dataset", &self.h5_dataset)
            .field("progress", &self.progress.is_some())
            .field("provenance", &self.provenance)
            .finish()
    }
}

impl SectionOptions {
    /// Sets how the image is converted and where it goes.
    #[must_use]
    pub fn convert(mut self, convert: ConvertOptions) -> Self {
        self.convert = convert;
        self
    }

    /// Turns the QC gate on with `rules`.
    #[must_use]
    pub fn qc_gate(mut self, rules: strata_qc::Rules) -> Self {
        self.qc_gate = Some(rules);
        self
    }

    /// Picks the HDF5 dataset or group that holds the planes.
    #[must_use]
    pub fn h5_dataset(mut self, path: impl Into<String>) -> Self {
        self.h5_dataset = Some(path.into());
        self
    }

    /// Adds `value` to the provenance record under `key`.
    #[must_use]
    pub fn provenance(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.provenance.insert(key.into(), value);
        self
    }

    /// Reports progress to `f(bytes read, total)`.
    #[must_use]
    pub fn progress(mut self, f: impl Fn(u64, u64) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
}

/// The QC gate's verdict on a published section.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct QcVerdict {
    /// The report's brief form (as recorded in the provenance under `qc`).
    pub brief: serde_json::Value,
    /// Where the HTML report was written.
    pub report: PathBuf,
}

/// What [`convert_section`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct SectionOutcome {
    /// The conversion.
    pub summary: ConvertSummary,
    /// The QC gate's verdict, with a gate.
    pub qc: Option<QcVerdict>,
}

/// Whether `path` names an HDF5 file (by extension: `.h5`, `.hdf5`, `.he5`).
#[must_use]
pub fn is_hdf5(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["h5", "hdf5", "he5"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Opens a z-stack: a folder of TIFF files (one per focus level), or an `.h5`/`.hdf5` file
/// (feature `hdf5`) whose planes are detected or at `h5_dataset`.
///
/// # Errors
/// [`Error::Config`] for `h5_dataset` with a TIFF folder, or for HDF5 in a build without the
/// feature; the source's own errors.
pub fn open_source(path: &Path, h5_dataset: Option<&str>) -> Result<Box<dyn ZStackSource>> {
    if !is_hdf5(path) {
        if h5_dataset.is_some() {
            return Err(Error::Config(format!(
                "--h5-dataset: {} is not an .h5 or .hdf5 file",
                path.display()
            )));
        }
        return Ok(Box::new(TiffStack::open(path)?));
    }
    #[cfg(feature = "hdf5")]
    {
        let layout = h5_dataset.map_or(crate::hdf5_source::Hdf5Layout::Auto, |d| {
            crate::hdf5_source::Hdf5Layout::Path(d.to_owned())
        });
        Ok(Box::new(crate::hdf5_source::Hdf5Stack::open(
            path, &layout,
        )?))
    }
    #[cfg(not(feature = "hdf5"))]
    {
        let _ = h5_dataset;
        Err(Error::Config(format!(
            "{}: HDF5 input needs strata built with --features hdf5 (Debian: libhdf5-dev)",
            path.display()
        )))
    }
}

/// Converts the z-stack at `input` (see [`open_source`]) into the dataset as `section`.
///
/// # Errors
/// As [`convert_section_from`].
pub fn convert_section(
    input: &Path,
    section: &Section,
    options: &SectionOptions,
) -> Result<SectionOutcome> {
    let mut source = open_source(input, options.h5_dataset.as_deref())?;
    convert_section_from(&mut *source, section, options)
}

/// Reports level-0 bytes to a [`ProgressFn`].
struct Progress {
    f: ProgressFn,
    done: u64,
    total: u64,
}

impl BandHook for Progress {
    fn band(&mut self, _: &StackInfo, _: Region, data: &[u8]) {
        self.done += data.len() as u64;
        (self.f)(self.done, self.total);
    }
}

/// Converts one z-stack into the dataset as `section`: one read feeds the arrays, the
/// progress reports and (with a gate) quality control; the QC report is written as a
/// derivative; the image is published unless the gate fails, with the QC verdict in its
/// provenance.
///
/// # Errors
/// [`Error::QcFailed`] when the gate fails (nothing is published); source, store, codec and
/// configuration errors (nothing is published either).
pub fn convert_section_from(
    source: &mut dyn ZStackSource,
    section: &Section,
    options: &SectionOptions,
) -> Result<SectionOutcome> {
    let info = source.info().clone();
    let mut qc = match &options.qc_gate {
        Some(_) => Some(QcHook::new(&info, options.qc)?),
        None => None,
    };
    let mut progress = options.progress.clone().map(|f| Progress {
        f,
        done: 0,
        total: u64::from(info.planes) * u64::from(info.height) * info.row_bytes() as u64,
    });
    let prepared = {
        let mut hooks: Vec<&mut dyn BandHook> = Vec::new();
        if let Some(p) = progress.as_mut() {
            hooks.push(p);
        }
        if let Some(q) = qc.as_mut() {
            hooks.push(q);
        }
        prepare(source, section, &options.convert, &mut Hooks(hooks))?
    };
    let mut extra = options.provenance.clone();
    let mut verdict = None;
    if let (Some(qc), Some(rules)) = (qc, &options.qc_gate) {
        let summary = qc.finish()?;
        let report = summary.evaluate(rules);
        let qc_error = |e: strata_qc::Error| Error::Config(format!("quality control: {e}"));
        // The QC result is kept with the section either way, as a derivative of the dataset.
        let stem = section.name().to_string();
        let stem = stem.trim_end_matches(".ome.zarr");
        let folder = format!("derivatives/qc/sub-{}", section.subject);
        let html =
            strata_qc::render_html(&report, stem, &summary.thumbnails()).map_err(qc_error)?;
        let json = report.to_json().map_err(qc_error)?;
        for (file, bytes) in [
            (format!("{stem}_qc.json"), json.into_bytes()),
            (format!("{stem}_qc.html"), html.into_bytes()),
        ] {
            let key = StoreKey::new(format!("{folder}/{file}"))?;
            block_on(prepared.store().put(&key, bytes.into()))?;
        }
        let report_path = section
            .bids_root
            .join(&folder)
            .join(format!("{stem}_qc.html"));
        if !report.passed {
            // Nothing is published: the partial output goes.
            prepared.discard()?;
            let reasons = report
                .reasons
                .iter()
                .filter(|r| !r.passed)
                .map(|r| {
                    format!(
                        "{} = {} (limit {}): {}",
                        r.rule, r.value, r.threshold, r.message
                    )
                })
                .collect();
            return Err(Error::QcFailed {
                report: report_path,
                reasons,
            });
        }
        let brief: serde_json::Value =
            serde_json::from_str(&report.to_json_brief().map_err(qc_error)?)
                .map_err(|e| Error::Codec(e.to_string()))?;
        extra.insert("qc".into(), brief.clone());
        verdict = Some(QcVerdict {
            brief,
            report: report_path,
        });
    }
    let summary = prepared.publish(extra)?;
    Ok(SectionOutcome {
        summary,
        qc: verdict,
    })
}

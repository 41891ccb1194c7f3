//! `strata convert`: one z-stack converted into a BIDS dataset as sharded OME-Zarr with its
//! pyramid (also the conversion step of `strata demo` and of `--datalad`).

#[cfg(not(feature = "hdf5"))]
use crate::common::NO_HDF5;
use crate::common::{
    BYTES_RATE_TEMPLATE, DynResult, H5Compression, ImageArgs, bytes_bar, parse_h5_compression,
    peak_rss, rules,
};
use crate::datalad;
use crate::export_hdf5::{export_hdf5, hdf5_line};
use indicatif::ProgressBar;
use serde_json::json;
use std::path::{Path, PathBuf};
use strata_zstack::{
    Compression, ConvertOptions, ConvertSummary, ImageOptions, PixelSize, Section, SectionOptions,
};

/// The flags of `strata convert`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConvertCmd {
    /// Folder of TIFF files, one per focus level (natural sort order), or an `.h5`/`.hdf5`
    /// file (build feature `hdf5`): one 3-D dataset, one 2-D dataset per plane, or a file
    /// written by `strata export-hdf5` (its level 0).
    zstack: PathBuf,
    /// HDF5 input: the dataset (a 3-D stack or one plane) or group (of 2-D planes, in natural
    /// order of their names) holding the planes; default: auto-detected at the root.
    #[arg(long, value_name = "PATH")]
    h5_dataset: Option<String>,
    /// After publishing, also copy the image into this HDF5 file for legacy tools (build
    /// feature `hdf5`): datasets /0, /1, ... (c, z, y, x), NGFF metadata as attributes.
    /// With --datalad, a copy inside the superdataset is saved (annexed) with the section
    /// (put it under derivatives/ to keep the dataset BIDS-valid).
    #[arg(long, value_name = "OUT.h5")]
    hdf5: Option<PathBuf>,
    /// Chunk compression of --hdf5: gzip, gzip:<1-9> or none.
    #[arg(long, default_value = "gzip:4", value_parser = parse_h5_compression)]
    hdf5_compression: H5Compression,
    /// Root of the BIDS dataset (created if missing): a folder, or `s3://bucket/prefix`
    /// (endpoint and credentials from the environment: `STRATA_S3_ENDPOINT` or
    /// `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...); with --datalad, the superdataset.
    #[arg(long, required_unless_present = "datalad")]
    bids_root: Option<PathBuf>,
    /// Subject label.
    #[arg(long)]
    subject: String,
    /// Session label.
    #[arg(long)]
    session: Option<String>,
    /// Sample (section) label.
    #[arg(long)]
    sample: String,
    /// Stain label.
    #[arg(long)]
    stain: Option<String>,
    /// Microscopy suffix.
    #[arg(long, default_value = "BF")]
    suffix: String,
    /// Pixel size X,Y[,Z] (default: from the TIFF resolution tags, Z = 1).
    #[arg(long, value_delimiter = ',')]
    pixel_size: Option<Vec<f64>>,
    /// Unit of --pixel-size: um, nm or mm.
    #[arg(long, default_value = "um")]
    pixel_units: String,
    #[command(flatten)]
    image: ImageArgs,
    /// Output layout: `zarr` (an .ome.zarr folder, BIDS-valid) or `ozx` (the same content in
    /// one OME-Zarr RFC-9 zip file: 2 inodes per section with the sidecar; `.ozx` is not a
    /// BIDS extension yet, so validators report it).
    #[arg(long, default_value = "zarr", value_parser = ["zarr", "ozx"])]
    layout: String,
    /// Run quality control in the same read; publish only if the stack passes (the QC
    /// report goes to derivatives/qc/ either way; a failing stack exits with 1).
    #[arg(long)]
    qc_gate: bool,
    /// QC rules file (TOML or .json) for --qc-gate; default rules without it.
    #[arg(long)]
    qc_rules: Option<PathBuf>,
    /// Do not record the SHA-256 of the source files in the provenance (names and sizes
    /// are recorded either way); the checksums read every file once more, on a thread of
    /// their own while the conversion runs.
    #[arg(long)]
    no_checksums: bool,
    /// Save the section into this DataLad superdataset, which is the BIDS root (created
    /// if needed): one recursive `datalad save` per section, provenance in its message,
    /// JSON/TSV in git, arrays annexed. Needs DataLad and git-annex (`datalad` on PATH or
    /// STRATA_DATALAD).
    #[arg(long, value_name = "SUPERDATASET")]
    datalad: Option<PathBuf>,
    /// Subdatasets for --datalad: N sections of a subject per subdataset at
    /// sub-<s>/ses-<k>/ (the session is chosen), `section` (N = 1), `subject` (sub-<s>/),
    /// or `none`. The default, 2000, is the planner's recommendation for a whole brain;
    /// `strata plan` computes it for other scales.
    #[arg(long, default_value = datalad::DEFAULT_GROUP, value_parser = datalad::parse_group, requires = "datalad")]
    datalad_group: strata_plan::Grouping,
    /// git-annex layout of the datasets --datalad creates: `default`, or `compact`
    /// (`annex.tune.objecthash1` and thin unlocked files: about 1 inode per annexed file
    /// instead of 3; the planner's 305k-inode whole brain). Datasets that exist keep theirs.
    #[arg(long, default_value = "default", value_parser = ["default", "compact"], requires = "datalad")]
    datalad_annex: String,
    /// Print a JSON summary (output, planes, levels, bytes, files, seconds, peak memory,
    /// and with --datalad the dataset, grouping and commit).
    #[arg(long)]
    json: bool,
}

impl ConvertCmd {
    /// Converts (and with `--datalad`, saves) the section and prints the summary.
    pub(crate) fn run(self) -> DynResult<bool> {
        let bids_root = datalad::bids_root(self.bids_root, self.datalad.as_deref())?;
        let gate = if self.qc_gate {
            Some(rules(self.qc_rules.as_deref())?)
        } else {
            None
        };
        let args = ConvertArgs {
            zstack: self.zstack,
            bids_root,
            subject: self.subject,
            session: self.session,
            sample: self.sample,
            stain: self.stain,
            suffix: self.suffix,
            pixel_size: self.pixel_size,
            pixel_units: self.pixel_units,
            chunk: self.image.chunk,
            compression: self.image.compression,
            planes_per_shard: self.image.planes_per_shard,
            qc_gate: gate,
            ozx: self.layout == "ozx",
            checksums: !self.no_checksums,
            sidecar_extra: serde_json::Map::new(),
        };
        let h5 = Hdf5Args {
            dataset: self.h5_dataset,
            export: self.hdf5,
            compression: self.hdf5_compression,
        };
        let json = self.json;
        if self.datalad.is_some() {
            let compact = self.datalad_annex == "compact";
            datalad::convert(args, &h5, self.datalad_group, compact, json)?;
        } else {
            let (s, peak, h) = convert_with(&args, &h5, json)?;
            print_convert_with(&s, peak, json, None, h.as_ref())?;
        }
        Ok(false)
    }
}

/// What `strata convert` converts, and where to: the flags resolved (the BIDS root chosen,
/// the QC rules read, the layout and checksum switches as booleans).
pub(crate) struct ConvertArgs {
    pub(crate) zstack: PathBuf,
    pub(crate) bids_root: PathBuf,
    pub(crate) subject: String,
    pub(crate) session: Option<String>,
    pub(crate) sample: String,
    pub(crate) stain: Option<String>,
    pub(crate) suffix: String,
    pub(crate) pixel_size: Option<Vec<f64>>,
    pub(crate) pixel_units: String,
    pub(crate) chunk: u32,
    pub(crate) compression: Compression,
    pub(crate) planes_per_shard: Option<u32>,
    /// Run QC in the same read and publish only if the stack passes these rules.
    pub(crate) qc_gate: Option<strata_qc::Rules>,
    /// Pack the image into one `.ozx` file (OME-Zarr RFC-9) instead of a folder.
    pub(crate) ozx: bool,
    /// Record the SHA-256 of every source file in the provenance.
    pub(crate) checksums: bool,
    /// Extra sidecar keys (what the scanner records: Manufacturer, BodyPart, ...).
    pub(crate) sidecar_extra: serde_json::Map<String, serde_json::Value>,
}

/// What `strata convert` needs HDF5 for: which datasets of an `.h5` input hold the planes,
/// and the HDF5 copy for legacy tools written after a successful publish.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hdf5Args {
    /// `--h5-dataset`: a dataset or group path inside an HDF5 input (default: auto-detect).
    pub(crate) dataset: Option<String>,
    /// `--hdf5`: also export the published image to this `.h5` file.
    pub(crate) export: Option<PathBuf>,
    /// `--hdf5-compression`.
    pub(crate) compression: H5Compression,
}

/// Packs a published `.ome.zarr` folder into `<name>.ozx` next to it (ZIP64, stored, root
/// `zarr.json` first), then removes the folder. Returns the archive's path. (Only for
/// `--layout ozx` with `--hdf5`: the HDF5 copy is made from the folder.)
fn pack_ozx(image: &Path) -> DynResult<PathBuf> {
    let micr = image.parent().ok_or("the image has no parent folder")?;
    let stem = image
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".ome.zarr"))
        .ok_or("the image is not an .ome.zarr folder")?;
    let name = format!("{stem}.ozx");
    let dst = strata_store::PosixStore::open(micr)?;
    let key = strata_store::StoreKey::new(name.clone())?;
    dst.remove_stale_temps(&key)?;
    let src = strata_store::PosixStore::open(image)?;
    strata_store::block_on(strata_store::ozx::pack(
        &src,
        None,
        &dst,
        &key,
        strata_store::OzxOptions::default(),
    ))?;
    std::fs::remove_dir_all(image).map_err(|e| format!("{}: {e}", image.display()))?;
    Ok(micr.join(name))
}

/// The store of a `--bids-root` given as `s3://bucket/prefix` (endpoint and credentials from
/// the environment); `None` for a folder.
fn bids_store(root: &Path) -> DynResult<Option<strata_store::DynStore>> {
    let Some(text) = root.to_str().filter(|t| t.contains("://")) else {
        return Ok(None);
    };
    match text.parse::<strata_store::StoreUrl>()? {
        strata_store::StoreUrl::S3 { bucket, prefix } => {
            let mut store =
                strata_store::ObjectStoreBackend::s3(&strata_store::S3Options::from_env(bucket))?;
            if let Some(p) = &prefix {
                store = store.with_prefix(p);
            }
            Ok(Some(std::sync::Arc::new(store)))
        }
        strata_store::StoreUrl::File(path) if text.starts_with("file://") => {
            let store = strata_store::PosixStore::create(
                path,
                strata_store::PosixOptions::default().direct_io(true),
            )?;
            Ok(Some(std::sync::Arc::new(store)))
        }
        _ => Err(
            format!("--bids-root {text}: use a folder, file:///path or s3://bucket/prefix").into(),
        ),
    }
}

/// Micrometres per unit, with the units BIDS allows for `PixelSizeUnits`.
fn micrometres(unit: &str) -> Result<f64, String> {
    serde_json::from_value::<strata_bids::sidecar::PixelSizeUnits>(json!(unit))
        .map(strata_bids::sidecar::PixelSizeUnits::micrometres)
        .map_err(|_| format!("--pixel-units {unit:?}: use um, nm or mm"))
}

/// The pixel spacing of `--pixel-size` in micrometres (`None` without it: from the TIFFs).
fn spacing(a: &ConvertArgs) -> DynResult<Option<PixelSize>> {
    let Some(v) = &a.pixel_size else {
        return Ok(None);
    };
    let unit = micrometres(&a.pixel_units)?;
    match v.as_slice() {
        [x, y, z] => Ok(Some(PixelSize {
            x: x * unit,
            y: y * unit,
            z: z * unit,
        })),
        [x, y] => Ok(Some(PixelSize {
            x: x * unit,
            y: y * unit,
            z: 1.0,
        })),
        _ => Err("--pixel-size takes X,Y or X,Y,Z".into()),
    }
}

/// Builds the section target from labels (errors name the offending label).
fn section(a: &ConvertArgs) -> DynResult<Section> {
    Ok(Section::from_labels(
        a.bids_root.clone(),
        &a.subject,
        a.session.as_deref(),
        &a.sample,
        a.stain.as_deref(),
        &a.suffix,
    )?)
}

/// The store of the BIDS root, once `--hdf5` is known to be possible with it; the HDF5 copy's
/// folder is made here, before converting, so that a path that cannot be written fails
/// before hours of work rather than after.
fn output_store(a: &ConvertArgs, h5: &Hdf5Args) -> DynResult<Option<strata_store::DynStore>> {
    #[cfg(not(feature = "hdf5"))]
    if let Some(out) = &h5.export {
        return Err(format!("--hdf5 {}: HDF5 output {NO_HDF5}", out.display()).into());
    }
    let store = bids_store(&a.bids_root)?;
    if store.is_some() && h5.export.is_some() {
        return Err(
            "--hdf5 needs a folder as --bids-root (the copy is made from the image folder)".into(),
        );
    }
    if let Some(parent) = h5.export.as_deref().and_then(Path::parent)
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("--hdf5: {}: {e}", parent.display()))?;
    }
    Ok(store)
}

/// The section workflow's options: image, spacing, layout, store, QC gate, HDF5 input and a
/// progress callback driving `bar`.
fn section_options(
    a: &ConvertArgs,
    h5: &Hdf5Args,
    spacing: Option<PixelSize>,
    store: Option<strata_store::DynStore>,
    stream_ozx: bool,
    bar: &ProgressBar,
) -> SectionOptions {
    let convert = ConvertOptions {
        image: ImageOptions {
            chunk: a.chunk,
            compression: a.compression,
            planes_per_shard: a.planes_per_shard,
            ..ImageOptions::default()
        },
        pixel_size: spacing,
        checksums: a.checksums,
        sidecar_extra: a.sidecar_extra.clone(),
        layout: if stream_ozx {
            strata_zstack::Layout::Ozx
        } else {
            strata_zstack::Layout::Folder
        },
        store,
    };
    let mut options = SectionOptions::default().convert(convert);
    if let Some(rules) = &a.qc_gate {
        options = options.qc_gate(rules.clone());
    }
    if let Some(d) = &h5.dataset {
        options = options.h5_dataset(d.clone());
    }
    let shown = bar.clone();
    options.progress(move |done, total| {
        shown.set_length(total);
        shown.set_position(done);
    })
}

/// Converts one z-stack; returns the summary and the peak memory.
pub(crate) fn convert(a: &ConvertArgs, quiet: bool) -> DynResult<(ConvertSummary, Option<u64>)> {
    convert_with(a, &Hdf5Args::default(), quiet).map(|(s, peak, _)| (s, peak))
}

/// Converts one z-stack with HDF5 input selection and export; returns the summary, the peak
/// memory and, with `--hdf5`, the export summary.
pub(crate) fn convert_with(
    a: &ConvertArgs,
    h5: &Hdf5Args,
    quiet: bool,
) -> DynResult<(ConvertSummary, Option<u64>, Option<serde_json::Value>)> {
    let section = section(a)?;
    let spacing = spacing(a)?;
    let store = output_store(a, h5)?;
    let bar = bytes_bar(
        quiet,
        0,
        BYTES_RATE_TEMPLATE,
        format!("converting {}", a.zstack.display()),
    );
    // `--layout ozx` streams every level into the archive while converting; with an HDF5
    // copy, which reads the image folder, the folder is written and then packed instead.
    let stream_ozx = a.ozx && h5.export.is_none();
    let options = section_options(a, h5, spacing, store, stream_ozx, &bar);
    let outcome = strata_zstack::convert_section(&a.zstack, &section, &options);
    bar.finish_and_clear();
    let mut summary = outcome?.summary;
    let exported = match &h5.export {
        Some(out) => Some(export_hdf5(&summary.output, out, h5.compression, quiet)?),
        None => None,
    };
    if a.ozx && !stream_ozx {
        summary.output = pack_ozx(&summary.output)?;
        summary.files = 2;
        summary.folders = 0;
    }
    Ok((summary, peak_rss(), exported))
}

/// Prints a conversion summary.
pub(crate) fn print_convert(
    s: &ConvertSummary,
    peak: Option<u64>,
    json_out: bool,
) -> DynResult<()> {
    print_convert_with(s, peak, json_out, None, None)
}

/// Prints a conversion summary with, for `--datalad`, where the section was saved (a
/// `datalad` object in JSON: dataset, grouping, commit) and, with `--hdf5`, the export
/// (`hdf5` in JSON).
pub(crate) fn print_convert_with(
    s: &ConvertSummary,
    peak: Option<u64>,
    json_out: bool,
    datalad: Option<&serde_json::Value>,
    hdf5: Option<&serde_json::Value>,
) -> DynResult<()> {
    if json_out {
        let mut v = serde_json::to_value(s)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("peak_memory_bytes".into(), json!(peak));
            if let Some(d) = datalad {
                o.insert("datalad".into(), d.clone());
            }
            if let Some(h) = hdf5 {
                o.insert("hdf5".into(), h.clone());
            }
        }
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!(
            "{}: {} planes of {}x{}, {} levels, {} -> {} bytes ({:.1}x), {} files + {} folders, {:.2} s{}",
            s.output.display(),
            s.planes,
            s.width,
            s.height,
            s.arrays.levels.len(),
            s.arrays.bytes_in,
            s.arrays.bytes_out,
            s.arrays.bytes_in as f64 / s.arrays.bytes_out.max(1) as f64,
            s.files,
            s.folders,
            s.seconds,
            peak.map(|p| format!(", peak memory {} MiB", p >> 20))
                .unwrap_or_default()
        );
        if let Some(d) = datalad {
            outln!(
                "saved in DataLad dataset {} ({}), commit {}",
                d["dataset"].as_str().unwrap_or("?"),
                d["grouping"].as_str().unwrap_or("?"),
                d["commit"].as_str().unwrap_or("?")
            );
        }
        if let Some(h) = hdf5 {
            outln!("HDF5 copy: {}", hdf5_line(h));
        }
    }
    Ok(())
}

//! `strata sample` and `strata convert`.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::path::PathBuf;
use strata_bids::name::{Label, Suffix};
use strata_zstack::{
    BandHook, Compression, ConvertOptions, ConvertSummary, ImageOptions, Region, SampleOptions,
    SampleType, Section, Spacing, StackInfo, TileCompression, ZStackSource,
};

type DynResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Parses `WIDTHxHEIGHT`.
pub(crate) fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?}: write the size as WIDTHxHEIGHT, e.g. 4096x4096"))?;
    let n = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{v:?} is not a positive pixel count"))
    };
    Ok((n(w)?, n(h)?))
}

/// Parses a tile compression name.
pub(crate) fn parse_tile_compression(s: &str) -> Result<TileCompression, String> {
    Ok(match s {
        "none" => TileCompression::None,
        "lzw" => TileCompression::Lzw,
        "deflate" => TileCompression::Deflate,
        "packbits" => TileCompression::PackBits,
        "zstd" => TileCompression::Zstd(3),
        other => {
            return Err(format!(
                "{other:?}: use one of none, lzw, deflate, packbits, zstd"
            ));
        }
    })
}

/// Parses `zstd`, `zstd:<level>` or `none`.
pub(crate) fn parse_compression(s: &str) -> Result<Compression, String> {
    match s.split_once(':') {
        None if s == "zstd" => Ok(Compression::Zstd(3)),
        None if s == "none" => Ok(Compression::None),
        Some(("zstd", level)) => level
            .parse::<i32>()
            .ok()
            .filter(|l| (1..=22).contains(l))
            .map(Compression::Zstd)
            .ok_or_else(|| format!("zstd level {level:?}: use 1 to 22")),
        _ => Err(format!("{s:?}: use zstd, zstd:<1-22> or none")),
    }
}

/// What `strata sample` writes (its flags).
#[derive(Debug, clap::Args)]
pub(crate) struct SampleArgs {
    /// Folder to write `z00.tif`, `z01.tif`, ... into.
    pub(crate) dir: PathBuf,
    /// Plane size, WIDTHxHEIGHT.
    #[arg(long, default_value = "4096x4096", value_parser = parse_size)]
    pub(crate) size: (u32, u32),
    /// Number of focus levels.
    #[arg(long, default_value_t = 30)]
    pub(crate) planes: u32,
    /// The sharp focus level (default: the middle one).
    #[arg(long)]
    pub(crate) in_focus: Option<u32>,
    /// RGB instead of gray.
    #[arg(long)]
    pub(crate) rgb: bool,
    /// Bits per sample: 8 or 16.
    #[arg(long, default_value_t = 8)]
    pub(crate) bits: u8,
    /// TIFF tile compression: none, lzw, deflate, packbits, zstd.
    #[arg(long, default_value = "deflate", value_parser = parse_tile_compression)]
    pub(crate) compression: strata_zstack::TileCompression,
    /// Seed of the synthetic tissue.
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
    /// Pixel size in micrometres (written as TIFF resolution).
    #[arg(long, default_value_t = 0.25)]
    pub(crate) pixel_size: f64,
}

/// Writes a synthetic z-stack of tiled TIFFs.
pub(crate) fn sample(a: &SampleArgs, json_out: bool) -> DynResult<()> {
    let opts = SampleOptions {
        width: a.size.0,
        height: a.size.1,
        planes: a.planes,
        in_focus_plane: a.in_focus.unwrap_or(a.planes / 2),
        channels: if a.rgb { 3 } else { 1 },
        sample_type: match a.bits {
            8 => SampleType::U8,
            16 => SampleType::U16,
            b => return Err(format!("--bits {b}: use 8 or 16").into()),
        },
        compression: a.compression,
        seed: a.seed,
        pixel_size_um: a.pixel_size,
        ..SampleOptions::default()
    };
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(format!(
        "writing {} planes of {}x{} to {}",
        opts.planes,
        opts.width,
        opts.height,
        a.dir.display()
    ));
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let summary = strata_zstack::write_sample(&a.dir, &opts)?;
    spinner.finish_and_clear();
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "dir": a.dir,
                "files": summary.files,
                "bytes": summary.bytes,
                "bigtiff": summary.bigtiff,
                "in_focus_plane": opts.in_focus_plane,
            }))?
        );
    } else {
        println!(
            "wrote {} focus levels ({} bytes) to {}; sharpest plane: {}",
            summary.files.len(),
            summary.bytes,
            a.dir.display(),
            opts.in_focus_plane
        );
    }
    Ok(())
}

/// What `strata convert` converts, and where to.
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
}

/// Packs a published `.ome.zarr` folder into `<name>.ozx` next to it (ZIP64, stored, root
/// `zarr.json` first), then removes the folder. Returns the archive's path. (Only for
/// `--layout ozx` with `--hdf5`: the HDF5 copy is made from the folder.)
fn pack_ozx(image: &std::path::Path) -> DynResult<PathBuf> {
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
pub(crate) fn bids_store(root: &std::path::Path) -> DynResult<Option<strata_store::DynStore>> {
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

/// Drives a progress bar from the converter's band hook.
struct Progress {
    bar: ProgressBar,
}

impl BandHook for Progress {
    fn band(&mut self, _info: &StackInfo, _region: Region, data: &[u8]) {
        self.bar.inc(data.len() as u64);
    }
}

/// Peak resident memory of this process, in bytes (Linux; `None` elsewhere).
pub(crate) fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Micrometres per unit, with the units BIDS allows for `PixelSizeUnits`.
fn micrometres(unit: &str) -> Result<f64, String> {
    serde_json::from_value::<strata_bids::sidecar::PixelSizeUnits>(json!(unit))
        .map(strata_bids::sidecar::PixelSizeUnits::micrometres)
        .map_err(|_| format!("--pixel-units {unit:?}: use um, nm or mm"))
}

/// Builds the section target from labels (errors name the offending label).
pub(crate) fn section(a: &ConvertArgs) -> DynResult<Section> {
    Ok(Section {
        bids_root: a.bids_root.clone(),
        subject: Label::new("sub", a.subject.clone())?,
        session: a
            .session
            .clone()
            .map(|s| Label::new("ses", s))
            .transpose()?,
        sample: Label::new("sample", a.sample.clone())?,
        stain: a
            .stain
            .clone()
            .map(|s| Label::new("stain", s))
            .transpose()?,
        suffix: Suffix::new(&a.suffix)?,
    })
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

/// The message of every HDF5 feature in a build without it.
#[cfg(not(feature = "hdf5"))]
const NO_HDF5: &str = "needs strata built with --features hdf5 (Debian: libhdf5-dev)";

/// Opens a z-stack (a folder of TIFF files, or an HDF5 file).
pub(crate) fn open_source(
    path: &std::path::Path,
    h5_dataset: Option<&str>,
) -> DynResult<Box<dyn ZStackSource>> {
    Ok(strata_zstack::open_source(path, h5_dataset)?)
}

/// `--hdf5-compression`: `gzip`, `gzip:<1-9>` or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct H5Compression(pub(crate) Option<u8>);

impl Default for H5Compression {
    fn default() -> Self {
        Self(Some(4))
    }
}

/// Parses `gzip`, `gzip:<1-9>` (also `deflate`) or `none`.
pub(crate) fn parse_h5_compression(s: &str) -> Result<H5Compression, String> {
    match s.split_once(':') {
        None if s == "gzip" || s == "deflate" => Ok(H5Compression::default()),
        None if s == "none" => Ok(H5Compression(None)),
        Some(("gzip" | "deflate", level)) => level
            .parse::<u8>()
            .ok()
            .filter(|l| (1..=9).contains(l))
            .map(|l| H5Compression(Some(l)))
            .ok_or_else(|| format!("gzip level {level:?}: use 1 to 9")),
        _ => Err(format!("{s:?}: use gzip, gzip:<1-9> or none")),
    }
}

/// Exports an OME-Zarr image to one HDF5 file with a progress bar (hidden when `quiet`);
/// returns the export summary as JSON.
pub(crate) fn export_hdf5(
    image: &std::path::Path,
    out: &std::path::Path,
    compression: H5Compression,
    quiet: bool,
) -> DynResult<serde_json::Value> {
    #[cfg(feature = "hdf5")]
    {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(format!("exporting {}", out.display()));
        let opts = strata_zstack::Hdf5ExportOptions {
            deflate: compression.0,
            ..strata_zstack::Hdf5ExportOptions::default()
        };
        let summary = strata_zstack::export_hdf5(image, out, &opts, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        });
        bar.finish_and_clear();
        Ok(serde_json::to_value(summary?)?)
    }
    #[cfg(not(feature = "hdf5"))]
    {
        let _ = (image, compression, quiet);
        Err(format!("{}: HDF5 output {NO_HDF5}", out.display()).into())
    }
}

/// `strata export-hdf5`: prints the export summary (levels, bytes, seconds).
pub(crate) fn export_hdf5_cmd(
    image: &std::path::Path,
    out: &std::path::Path,
    compression: H5Compression,
    json_out: bool,
) -> DynResult<()> {
    let s = export_hdf5(image, out, compression, json_out)?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!("{}", hdf5_line(&s));
    }
    Ok(())
}

/// One line about an HDF5 export summary.
fn hdf5_line(s: &serde_json::Value) -> String {
    format!(
        "{}: {} levels, {} -> {} bytes, {:.2} s",
        s["output"].as_str().unwrap_or("?"),
        s["levels"].as_array().map_or(0, Vec::len),
        s["bytes_in"],
        s["bytes"],
        s["seconds"].as_f64().unwrap_or(0.0)
    )
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
    let spacing = match &a.pixel_size {
        None => None,
        Some(v) => {
            let unit = micrometres(&a.pixel_units)?;
            match v.as_slice() {
                [x, y, z] => Some(Spacing {
                    x: x * unit,
                    y: y * unit,
                    z: z * unit,
                }),
                [x, y] => Some(Spacing {
                    x: x * unit,
                    y: y * unit,
                    z: 1.0,
                }),
                _ => return Err("--pixel-size takes X,Y or X,Y,Z".into()),
            }
        }
    };
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
    // The HDF5 copy's folder is made before converting, so that a path that cannot be
    // written fails before hours of work rather than after.
    if let Some(parent) = h5.export.as_deref().and_then(std::path::Path::parent)
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("--hdf5: {}: {e}", parent.display()))?;
    }
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("converting {}", a.zstack.display()));
    // `--layout ozx` streams every level into the archive while converting; with an HDF5
    // copy, which reads the image folder, the folder is written and then packed instead.
    let stream_ozx = a.ozx && h5.export.is_none();
    let convert = ConvertOptions {
        image: ImageOptions {
            chunk: a.chunk,
            compression: a.compression,
            planes_per_shard: a.planes_per_shard,
            ..ImageOptions::default()
        },
        spacing,
        checksums: a.checksums,
        layout: if stream_ozx {
            strata_zstack::Layout::Ozx
        } else {
            strata_zstack::Layout::Folder
        },
        store,
        ..ConvertOptions::default()
    };
    let mut options = strata_zstack::SectionOptions::default().convert(convert);
    if let Some(rules) = &a.qc_gate {
        options = options.qc_gate(rules.clone());
    }
    if let Some(d) = &h5.dataset {
        options = options.h5_dataset(d.clone());
    }
    let shown = bar.clone();
    options = options.progress(move |done, total| {
        shown.set_length(total);
        shown.set_position(done);
    });
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

/// Reads QC rules from a TOML or JSON file (defaults without one).
pub(crate) fn rules(path: Option<&std::path::Path>) -> DynResult<strata_qc::Rules> {
    let Some(path) = path else {
        return Ok(strata_qc::Rules::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rules = if path.extension().is_some_and(|e| e == "json") {
        strata_qc::Rules::from_json_str(&text)
    } else {
        strata_qc::Rules::from_toml_str(&text)
    };
    Ok(rules.map_err(|e| format!("{}: {e}", path.display()))?)
}

/// `strata qc`: quality control of a z-stack without converting it; returns whether it failed.
pub(crate) fn qc(
    zstack: &std::path::Path,
    rules_path: Option<&std::path::Path>,
    json_out: bool,
    report_path: Option<&std::path::Path>,
) -> DynResult<bool> {
    let rules = rules(rules_path)?;
    let mut source = open_source(zstack, None)?;
    let info = source.info().clone();
    let total = u64::from(info.planes) * u64::from(info.height) * info.row_bytes() as u64;
    let bar = if json_out {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("checking {}", zstack.display()));
    let mut progress = Progress { bar };
    let summary = strata_zstack::run_qc(
        &mut *source,
        strata_qc::QcConfig::default(),
        512,
        &mut progress,
    )?;
    progress.bar.finish_and_clear();
    let report = summary.evaluate(&rules);
    if let Some(path) = report_path {
        let title = zstack.display().to_string();
        std::fs::write(
            path,
            strata_qc::render_html(&report, &title, &summary.thumbnails())?,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if json_out {
        println!("{}", report.to_json()?);
    } else {
        println!(
            "{}: {} (best focus: plane {} of {})",
            zstack.display(),
            if report.passed { "passed" } else { "FAILED" },
            report.best_plane,
            info.planes
        );
        for r in &report.reasons {
            println!(
                "  {} {:<32} {:>12.6} (limit {}) {}",
                if r.passed { "ok  " } else { "FAIL" },
                r.rule,
                r.value,
                r.threshold,
                r.message
            );
        }
    }
    Ok(!report.passed)
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
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
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
            println!(
                "saved in DataLad dataset {} ({}), commit {}",
                d["dataset"].as_str().unwrap_or("?"),
                d["grouping"].as_str().unwrap_or("?"),
                d["commit"].as_str().unwrap_or("?")
            );
        }
        if let Some(h) = hdf5 {
            println!("HDF5 copy: {}", hdf5_line(h));
        }
    }
    Ok(())
}

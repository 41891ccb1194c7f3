//! The `strata` command.
//!
//! Exit codes: 0 success (warnings allowed), 1 the dataset has errors, 2 usage or I/O problem.

mod datalad;
mod demo;
mod plan;
mod report;
mod stage;
mod zstack;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Strata: BIDS microscopy and OME-Zarr for petabyte microscopy repositories.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run; boxing would only obscure the fields
enum Command {
    /// Validate a BIDS microscopy dataset, OME-Zarr images included (each `.ome.zarr/` counts as
    /// one file; its NGFF metadata, arrays and pixel size are checked).
    Validate(ValidateCmd),
    /// The whole job on built-in data: write synthetic z-stacks, convert them into a BIDS
    /// dataset (sharded OME-Zarr), and validate it.
    Demo(demo::Options),
    /// Write a synthetic z-stack (tiled TIFFs, one per focus level, one plane in focus) to try
    /// Strata without data.
    Sample(SampleCmd),
    /// Convert one z-stack (a folder of TIFF focus levels) into a BIDS dataset as sharded
    /// OME-Zarr 0.5 with a full pyramid, in one read.
    Convert(ConvertCmd),
    /// Copy an OME-Zarr image written by Strata into one HDF5 file for tools that read only
    /// HDF5 (build feature `hdf5`): datasets /0, /1, ... per level, shape (c, z, y, x), chunked
    /// and compressed, with the NGFF metadata, pixel sizes and provenance as attributes.
    ExportHdf5(ExportHdf5Cmd),
    /// Inodes and bytes of every layout and DataLad grouping for a repository, against a
    /// quota, with a recommendation; or, with --measure, the counts of a real tree.
    Plan(plan::Options),
    /// Copy a dataset or section between stores (file://, s3://bucket/prefix, zip:///x.ozx),
    /// in parallel, every object verified by checksum; an interrupted stage resumes.
    Stage(stage::Options),
    /// Check a z-stack's quality (focus, exposure, tissue) without converting it. Exit 0 when
    /// it passes the rules, 1 when it fails.
    Qc(QcCmd),
}

impl Command {
    /// Runs the command; `Ok(true)` when the checked data has errors (exit code 1).
    fn run(self) -> Result<bool, Box<dyn std::error::Error>> {
        match self {
            Self::Validate(c) => c.run(),
            Self::Demo(options) => demo::run(&options),
            Self::Sample(c) => c.run(),
            Self::Convert(c) => c.run(),
            Self::ExportHdf5(c) => c.run(),
            Self::Plan(options) => plan::run(&options).map(|()| false),
            Self::Stage(options) => stage::run(&options).map(|()| false),
            Self::Qc(c) => c.run(),
        }
    }
}

/// The flags of `strata validate`.
#[derive(Debug, clap::Args)]
struct ValidateCmd {
    /// Root folder of the dataset.
    path: PathBuf,
    /// Print `{"issues": [...], "summary": {...}}` as JSON.
    #[arg(long)]
    json: bool,
    /// List every warning instead of one line per warning code.
    #[arg(long, short)]
    verbose: bool,
}

impl ValidateCmd {
    /// Validates the dataset (BIDS and OME-Zarr contents) and prints the report; `Ok(true)`
    /// when it has errors.
    fn run(self) -> Result<bool, Box<dyn std::error::Error>> {
        let r = strata_validate::validate_dataset(&self.path)?;
        report::print(&r, self.json, self.verbose);
        Ok(r.has_errors())
    }
}

/// The flags of `strata sample`.
#[derive(Debug, clap::Args)]
struct SampleCmd {
    #[command(flatten)]
    args: zstack::SampleArgs,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

impl SampleCmd {
    /// Writes the synthetic z-stack and prints its summary.
    fn run(self) -> Result<bool, Box<dyn std::error::Error>> {
        zstack::sample(&self.args, self.json).map(|()| false)
    }
}

/// The flags of `strata export-hdf5`.
#[derive(Debug, clap::Args)]
struct ExportHdf5Cmd {
    /// The `.ome.zarr` image folder.
    image: PathBuf,
    /// The HDF5 file to write (written under a temporary name, renamed when complete).
    out: PathBuf,
    /// Chunk compression: gzip, gzip:<1-9> or none.
    #[arg(long, default_value = "gzip:4", value_parser = zstack::parse_h5_compression)]
    compression: zstack::H5Compression,
    /// Print a JSON summary (output, levels, bytes, seconds).
    #[arg(long)]
    json: bool,
}

impl ExportHdf5Cmd {
    /// Writes the HDF5 copy and prints its summary.
    fn run(self) -> Result<bool, Box<dyn std::error::Error>> {
        zstack::export_hdf5_cmd(&self.image, &self.out, self.compression, self.json).map(|()| false)
    }
}

/// The flags of `strata qc`.
#[derive(Debug, clap::Args)]
struct QcCmd {
    /// Folder of TIFF files, one per focus level.
    zstack: PathBuf,
    /// Rules file (TOML, or JSON with a .json extension); documented defaults without it.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Print the report as JSON (best_plane, planes with their metrics, passed, reasons).
    #[arg(long)]
    json: bool,
    /// Write a self-contained HTML report (focus curve, thumbnails, tissue mask, tile map).
    #[arg(long)]
    report: Option<PathBuf>,
}

impl QcCmd {
    /// Checks the z-stack and prints the report; `Ok(true)` when it fails the rules.
    fn run(self) -> Result<bool, Box<dyn std::error::Error>> {
        zstack::qc(
            &self.zstack,
            self.rules.as_deref(),
            self.json,
            self.report.as_deref(),
        )
    }
}

/// The flags of `strata convert`.
#[derive(Debug, clap::Args)]
struct ConvertCmd {
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
    #[arg(long, default_value = "gzip:4", value_parser = zstack::parse_h5_compression)]
    hdf5_compression: zstack::H5Compression,
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
    /// Inner chunk size in pixels.
    #[arg(long, default_value_t = 512)]
    chunk: u32,
    /// Chunk compression: zstd, zstd:<1-22> or none.
    #[arg(long, default_value = "zstd:3", value_parser = zstack::parse_compression)]
    compression: strata_zstack::Compression,
    /// Planes per shard (default: all planes of a level in one shard).
    #[arg(long)]
    planes_per_shard: Option<u32>,
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
    fn run(self) -> Result<bool, Box<dyn std::error::Error>> {
        let bids_root = datalad::bids_root(self.bids_root, self.datalad.as_deref())?;
        let gate = if self.qc_gate {
            Some(zstack::rules(self.qc_rules.as_deref())?)
        } else {
            None
        };
        let args = zstack::ConvertArgs {
            zstack: self.zstack,
            bids_root,
            subject: self.subject,
            session: self.session,
            sample: self.sample,
            stain: self.stain,
            suffix: self.suffix,
            pixel_size: self.pixel_size,
            pixel_units: self.pixel_units,
            chunk: self.chunk,
            compression: self.compression,
            planes_per_shard: self.planes_per_shard,
            qc_gate: gate,
            ozx: self.layout == "ozx",
            checksums: !self.no_checksums,
        };
        let h5 = zstack::Hdf5Args {
            dataset: self.h5_dataset,
            export: self.hdf5,
            compression: self.hdf5_compression,
        };
        let json = self.json;
        if self.datalad.is_some() {
            let compact = self.datalad_annex == "compact";
            datalad::convert(args, &h5, self.datalad_group, compact, json)?;
        } else {
            let (s, peak, h) = zstack::convert_with(&args, &h5, json)?;
            zstack::print_convert_with(&s, peak, json, None, h.as_ref())?;
        }
        Ok(false)
    }
}

fn main() -> ExitCode {
    let outcome = Cli::parse().command.run();
    match outcome {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(1),
        Err(e) => {
            eprintln!("strata: error: {e}");
            if matches!(
                e.downcast_ref::<strata_zstack::Error>(),
                Some(strata_zstack::Error::QcFailed { .. })
            ) {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

//! The `strata` command.
//!
//! Exit codes: 0 success (warnings allowed), 1 the dataset has errors, 2 usage or I/O problem.

#[macro_use]
mod common;
mod batch;
mod convert;
mod datalad;
mod demo;
mod export_hdf5;
mod ingest;
mod plan;
mod qc;
mod read;
mod report;
mod sample;
mod serve;
mod stage;
mod validate;

use clap::{Parser, Subcommand};
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
    Validate(validate::ValidateCmd),
    /// The whole job on built-in data: write synthetic z-stacks, convert them into a BIDS
    /// dataset (sharded OME-Zarr), and validate it.
    Demo(demo::Options),
    /// Write a synthetic z-stack (tiled TIFFs, one per focus level, one plane in focus) to try
    /// Strata without data.
    Sample(sample::SampleCmd),
    /// Convert one z-stack (a folder of TIFF focus levels) into a BIDS dataset as sharded
    /// OME-Zarr 0.5 with a full pyramid, in one read.
    Convert(convert::ConvertCmd),
    /// Copy an OME-Zarr image written by Strata into one HDF5 file for tools that read only
    /// HDF5 (build feature `hdf5`): datasets /0, /1, ... per level, shape (c, z, y, x), chunked
    /// and compressed, with the NGFF metadata, pixel sizes and provenance as attributes.
    ExportHdf5(export_hdf5::ExportHdf5Cmd),
    /// Inodes and bytes of every layout and DataLad grouping for a repository, against a
    /// quota, with a recommendation; or, with --measure, the counts of a real tree.
    Plan(plan::Options),
    /// Copy a dataset or section between stores (file://, s3://bucket/prefix, zip:///x.ozx),
    /// in parallel, every object verified by checksum; an interrupted stage resumes.
    Stage(stage::Options),
    /// Check a z-stack's quality (focus, exposure, tissue) without converting it. Exit 0 when
    /// it passes the rules, 1 when it fails.
    Qc(qc::QcCmd),
    /// Read one region of an image (an .ome.zarr folder, an .ozx file or s3://...) into a
    /// .npy or .tif file, for a quick look.
    Read(read::ReadCmd),
    /// Serve a dataset read-only over HTTP for viewers and remote readers (byte ranges,
    /// caching headers, CORS, HTTP/2); every .ozx section is also served as its .ome.zarr
    /// folder. Stops on SIGTERM once in-flight requests are done.
    Serve(serve::ServeCmd),
    /// A whole brain through Slurm: plan a manifest of sections, submit it as an array
    /// job, follow each section's state, retry what failed or was lost.
    #[command(subcommand)]
    Batch(batch::BatchCmd),
    /// The scanner gateway: watch a drop folder, convert each z-stack once it is complete
    /// (QC gate on the way), locally or through Slurm; restartable at any point.
    Ingest(ingest::IngestCmd),
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
            Self::Read(c) => c.run(),
            Self::Serve(c) => c.run(),
            Self::Batch(c) => c.run(),
            Self::Ingest(c) => c.run(),
        }
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

//! The `strata` command.
//!
//! Exit codes: 0 success (warnings allowed), 1 the dataset has errors, 2 usage or I/O problem.

mod demo;
mod ome_zarr;
mod report;

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
enum Command {
    /// Validate a BIDS microscopy dataset, OME-Zarr images included (each `.ome.zarr/` counts as
    /// one file; its NGFF metadata, arrays and pixel size are checked).
    Validate {
        /// Root folder of the dataset.
        path: PathBuf,
        /// Print `{"issues": [...], "summary": {...}}` as JSON.
        #[arg(long)]
        json: bool,
        /// List every warning instead of one line per warning code.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Build a small BIDS microscopy dataset from built-in metadata and validate it.
    Demo {
        /// Where to write the dataset (created if missing; re-running updates it).
        #[arg(long, default_value = "strata-demo")]
        out: PathBuf,
        /// Number of sections (samples) to write.
        #[arg(long, default_value_t = 3)]
        sections: u32,
        /// Number of the first section (to add sections to an existing dataset).
        #[arg(long, default_value_t = 1)]
        first: u32,
        /// Subject label.
        #[arg(long, default_value = "BB01")]
        subject: String,
        /// Print a JSON summary instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The full validator: BIDS rules plus the OME-Zarr content checks.
pub(crate) fn validator() -> strata_bids::validate::Validator {
    strata_bids::validate::Validator::new().with_check(Box::new(ome_zarr::OmeZarrCheck))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Validate {
            path,
            json,
            verbose,
        } => validator()
            .validate(&path)
            .map(|r| {
                report::print(&r, json, verbose);
                r.has_errors()
            })
            .map_err(Into::into),
        Command::Demo {
            out,
            sections,
            first,
            subject,
            json,
        } => demo::run(&demo::Options {
            out,
            sections,
            first,
            subject,
            json,
        }),
    };
    match outcome {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(1),
        Err(e) => {
            eprintln!("strata: error: {e}");
            ExitCode::from(2)
        }
    }
}

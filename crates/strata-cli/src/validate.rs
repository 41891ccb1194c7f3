//! `strata validate`: a BIDS microscopy dataset checked, OME-Zarr images included.

use crate::common::DynResult;
use crate::report;
use std::path::PathBuf;

/// The flags of `strata validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct ValidateCmd {
    /// Root folder of the dataset.
    path: PathBuf,
    /// Print `{"issues": [...], "summary": {...}}` as JSON.
    #[arg(long)]
    json: bool,
    /// List every warning instead of one line per warning code.
    #[arg(long, short)]
    verbose: bool,
    /// Keep the image checks' verdicts in FILE and reuse them for images unchanged since the
    /// last run with it: a daily run reads only new and changed images, with the report of a
    /// full run. Created if missing; keep it outside the dataset.
    #[arg(long, value_name = "FILE")]
    cache: Option<PathBuf>,
}

impl ValidateCmd {
    /// Validates the dataset (BIDS and OME-Zarr contents) and prints the report; `Ok(true)`
    /// when it has errors.
    pub(crate) fn run(self) -> DynResult<bool> {
        let mut validator = strata_validate::validator();
        if let Some(cache) = &self.cache {
            validator = validator.with_cache(cache);
        }
        let r = validator.validate(&self.path)?;
        report::print(&r, self.json, self.verbose);
        Ok(r.has_errors())
    }
}

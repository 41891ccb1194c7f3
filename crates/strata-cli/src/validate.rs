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
}

impl ValidateCmd {
    /// Validates the dataset (BIDS and OME-Zarr contents) and prints the report; `Ok(true)`
    /// when it has errors.
    pub(crate) fn run(self) -> DynResult<bool> {
        let r = strata_validate::validate_dataset(&self.path)?;
        report::print(&r, self.json, self.verbose);
        Ok(r.has_errors())
    }
}

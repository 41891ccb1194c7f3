//! `strata export-hdf5`: an OME-Zarr image copied into one HDF5 file for tools that read only
//! HDF5 (also the `--hdf5` copy of `strata convert`).

#[cfg(not(feature = "hdf5"))]
use crate::common::NO_HDF5;
use crate::common::{DynResult, H5Compression, parse_h5_compression};
use std::path::{Path, PathBuf};

/// The flags of `strata export-hdf5`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportHdf5Cmd {
    /// The `.ome.zarr` image folder.
    image: PathBuf,
    /// The HDF5 file to write (written under a temporary name, renamed when complete).
    out: PathBuf,
    /// Chunk compression: gzip, gzip:<1-9> or none.
    #[arg(long, default_value = "gzip:4", value_parser = parse_h5_compression)]
    compression: H5Compression,
    /// Print a JSON summary (output, levels, bytes, seconds).
    #[arg(long)]
    json: bool,
}

impl ExportHdf5Cmd {
    /// Writes the HDF5 copy and prints its summary (levels, bytes, seconds).
    pub(crate) fn run(self) -> DynResult<bool> {
        let s = export_hdf5(&self.image, &self.out, self.compression, self.json)?;
        if self.json {
            outln!("{}", serde_json::to_string_pretty(&s)?);
        } else {
            outln!("{}", hdf5_line(&s));
        }
        Ok(false)
    }
}

/// Exports an OME-Zarr image to one HDF5 file with a progress bar (hidden when `quiet`);
/// returns the export summary as JSON.
pub(crate) fn export_hdf5(
    image: &Path,
    out: &Path,
    compression: H5Compression,
    quiet: bool,
) -> DynResult<serde_json::Value> {
    #[cfg(feature = "hdf5")]
    {
        let bar = crate::common::bytes_bar(
            quiet,
            0,
            crate::common::BYTES_RATE_TEMPLATE,
            format!("exporting {}", out.display()),
        );
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

/// One line about an HDF5 export summary.
pub(crate) fn hdf5_line(s: &serde_json::Value) -> String {
    format!(
        "{}: {} levels, {} -> {} bytes, {:.2} s",
        s["output"].as_str().unwrap_or("?"),
        s["levels"].as_array().map_or(0, Vec::len),
        s["bytes_in"],
        s["bytes"],
        s["seconds"].as_f64().unwrap_or(0.0)
    )
}

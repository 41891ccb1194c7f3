//! `strata sample`: a synthetic z-stack of tiled TIFFs, to try Strata without data.

use crate::common::{DynResult, parse_size};
use indicatif::ProgressBar;
use serde_json::json;
use std::path::PathBuf;
use strata_zstack::{SampleOptions, SampleType, TileCompression};

/// Parses a tile compression name.
fn parse_tile_compression(s: &str) -> Result<TileCompression, String> {
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

/// What `strata sample` writes (its flags).
#[derive(Debug, clap::Args)]
pub(crate) struct SampleCmd {
    /// Folder to write `z00.tif`, `z01.tif`, ... into.
    dir: PathBuf,
    /// Plane size, WIDTHxHEIGHT.
    #[arg(long, default_value = "4096x4096", value_parser = parse_size)]
    size: (u32, u32),
    /// Number of focus levels.
    #[arg(long, default_value_t = 30)]
    planes: u32,
    /// The sharp focus level (default: the middle one).
    #[arg(long)]
    in_focus: Option<u32>,
    /// RGB instead of gray.
    #[arg(long)]
    rgb: bool,
    /// Bits per sample: 8 or 16.
    #[arg(long, default_value_t = 8)]
    bits: u8,
    /// TIFF tile compression: none, lzw, deflate, packbits, zstd.
    #[arg(long, default_value = "deflate", value_parser = parse_tile_compression)]
    compression: TileCompression,
    /// Seed of the synthetic tissue.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Pixel size in micrometres (written as TIFF resolution).
    #[arg(long, default_value_t = 0.25)]
    pixel_size: f64,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

impl SampleCmd {
    /// Writes the synthetic z-stack of tiled TIFFs and prints its summary.
    pub(crate) fn run(self) -> DynResult<bool> {
        let opts = self.options()?;
        let spinner = ProgressBar::new_spinner();
        spinner.set_message(format!(
            "writing {} planes of {}x{} to {}",
            opts.planes,
            opts.width,
            opts.height,
            self.dir.display()
        ));
        spinner.enable_steady_tick(std::time::Duration::from_millis(200));
        let summary = strata_zstack::write_sample(&self.dir, &opts)?;
        spinner.finish_and_clear();
        if self.json {
            outln!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "dir": self.dir,
                    "files": summary.files,
                    "bytes": summary.bytes,
                    "bigtiff": summary.bigtiff,
                    "in_focus_plane": opts.in_focus_plane,
                }))?
            );
        } else {
            outln!(
                "wrote {} focus levels ({} bytes) to {}; sharpest plane: {}",
                summary.files.len(),
                summary.bytes,
                self.dir.display(),
                opts.in_focus_plane
            );
        }
        Ok(false)
    }

    /// The sample writer's options from the flags.
    fn options(&self) -> DynResult<SampleOptions> {
        Ok(SampleOptions {
            width: self.size.0,
            height: self.size.1,
            planes: self.planes,
            in_focus_plane: self.in_focus.unwrap_or(self.planes / 2),
            channels: if self.rgb { 3 } else { 1 },
            sample_type: match self.bits {
                8 => SampleType::U8,
                16 => SampleType::U16,
                b => return Err(format!("--bits {b}: use 8 or 16").into()),
            },
            compression: self.compression,
            seed: self.seed,
            pixel_size_um: self.pixel_size,
            ..SampleOptions::default()
        })
    }
}

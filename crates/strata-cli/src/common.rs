//! What several commands share: the value parsers of their flags, the QC rules file, the
//! progress bar and the peak memory.

use indicatif::{ProgressBar, ProgressStyle};
use strata_zstack::Compression;

/// `println!` for the command's output, except that a closed pipe (`strata ... | head`) ends
/// the program quietly with exit code 0 instead of a panic, as the default SIGPIPE
/// disposition does for C programs.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::common::write_stdout(format_args!($($arg)*))
    };
}

/// Writes one line to standard output; see [`outln!`].
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("strata: error: cannot write the output: {e}");
        std::process::exit(2);
    }
}

/// The result of a command step.
pub(crate) type DynResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The message of every HDF5 feature in a build without it.
#[cfg(not(feature = "hdf5"))]
pub(crate) const NO_HDF5: &str = "needs strata built with --features hdf5 (Debian: libhdf5-dev)";

/// The template of a progress bar counting bytes, with their rate.
pub(crate) const BYTES_RATE_TEMPLATE: &str =
    "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})";

/// A progress bar of `len` bytes (hidden when `quiet`) drawn with `template`, showing `msg`.
pub(crate) fn bytes_bar(quiet: bool, len: u64, template: &str, msg: String) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(len)
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(msg);
    bar
}

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

/// The array layout flags of `strata convert`, `batch plan` and `ingest`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImageArgs {
    /// Inner chunk size in pixels.
    #[arg(long, default_value_t = 512)]
    pub(crate) chunk: u32,
    /// Chunk compression: zstd, zstd:<1-22> or none.
    #[arg(long, default_value = "zstd:3", value_parser = parse_compression)]
    pub(crate) compression: Compression,
    /// Planes per shard (default: all planes of a level in one shard).
    #[arg(long)]
    pub(crate) planes_per_shard: Option<u32>,
}

/// Peak resident memory of this process (`VmHWM`), in bytes.
pub(crate) use strata_batch::peak_rss;

//! `strata stage SRC DST`: copy a dataset or a section between stores, verified, resumable.

use indicatif::{ProgressBar, ProgressStyle};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use strata_store::stage::{StageOptions, StoreUrl, stage_urls};

type DynResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The default resume journal of a (source, destination) pair, under the user's cache folder.
fn default_journal(src: &str, dst: &str) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (src, dst).hash(&mut h);
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache
        .join("strata")
        .join(format!("stage-{:016x}.journal", h.finish()))
}

/// The flags of `strata stage`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Source URL.
    pub(crate) src: String,
    /// Destination URL.
    pub(crate) dst: String,
    /// Count what would be copied, copy nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print a JSON summary (objects, bytes, seconds, verified).
    #[arg(long)]
    pub(crate) json: bool,
    /// Resume journal (default: one per source/destination pair in the cache folder).
    #[arg(long)]
    pub(crate) journal: Option<PathBuf>,
    /// Objects copied at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
}

/// Runs a stage and prints its summary.
pub(crate) fn run(o: &Options) -> DynResult<()> {
    let (src, dst, dry_run, json_out, concurrency) = (
        o.src.as_str(),
        o.dst.as_str(),
        o.dry_run,
        o.json,
        o.concurrency,
    );
    let journal = o.journal.clone();
    let src_url: StoreUrl = src.parse()?;
    let dst_url: StoreUrl = dst.parse()?;
    let journal = journal.unwrap_or_else(|| default_journal(src, dst));
    if let Some(dir) = journal.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let bar = if json_out {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} staging {bytes} ({bytes_per_sec}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let progress_bar = bar.clone();
    let mut options = StageOptions::default();
    options.concurrency = concurrency.max(1);
    options.dry_run = dry_run;
    options.journal = Some(journal);
    options.progress = Some(Arc::new(move |key, bytes| {
        progress_bar.inc(bytes);
        progress_bar.set_message(key.to_string());
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let summary = runtime.block_on(stage_urls(&src_url, &dst_url, &options))?;
    bar.finish_and_clear();
    if json_out {
        outln!("{}", summary.to_json());
    } else {
        outln!(
            "{} objects ({} bytes) under {src}: copied {} ({} bytes), skipped {} already staged, verified {}, {:.2} s{}",
            summary.objects,
            summary.bytes,
            summary.copied,
            summary.copied_bytes,
            summary.skipped,
            summary.verified,
            summary.seconds,
            if summary.dry_run {
                " (dry run: nothing copied)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

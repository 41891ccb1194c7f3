//! The bound of a conversion: what `strata convert` cannot avoid doing, on all cores, and
//! nothing else. Phase 1 decodes every tile of every TIFF of a z-stack folder (the tiff
//! crate, one decoder per plane, files read from the page cache, a reused tile buffer);
//! phase 2 compresses every inner chunk of every pyramid level with zstd level 3 (the
//! converter's own chunk encoder; the levels are made before the clock starts). The bound
//! is the sum of the two phases' times, medians of `RUNS` runs. Prints one JSON object.
//!
//! ```text
//! cargo run --release -p strata-zstack --example convert_bound -- ZSTACK_DIR [RUNS]
//! ```
//! Gray 8-bit tiled TIFFs, as `strata sample` writes them.

use rayon::prelude::*;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;
use strata_zstack::band::{BandShape, MemoryLevel, chunk_grid, memory_pyramid};
use strata_zstack::shard::ChunkEncoder;
use strata_zstack::{Compression, SampleType};
use tiff::decoder::{Decoder, DecodingBuffer, DecodingResult};

type DynResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const CHUNK: usize = 512;

fn decoder(path: &Path) -> DynResult<Decoder<BufReader<File>>> {
    Ok(Decoder::new(BufReader::new(File::open(path)?))?)
}

/// Decodes every tile of one plane into one reused buffer; returns the tiles decoded.
fn decode_tiles(path: &Path) -> DynResult<u64> {
    let mut d = decoder(path)?;
    let (tw, th) = d.chunk_dimensions();
    let mut buf = vec![0u8; tw as usize * th as usize];
    let n = d.tile_count()?;
    for i in 0..n {
        d.read_chunk_to_buffer(DecodingBuffer::U8(&mut buf), i, tw as usize)?;
    }
    Ok(u64::from(n))
}

fn gray(width: usize) -> BandShape {
    BandShape {
        width,
        channels: 1,
        sample_type: SampleType::U8,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> DynResult<()> {
    let usage = "usage: convert_bound ZSTACK_DIR [RUNS]";
    let dir = PathBuf::from(std::env::args().nth(1).ok_or(usage)?);
    let runs: usize = std::env::args()
        .nth(2)
        .map_or(Ok(3), |s| s.parse())
        .map_err(|e| format!("RUNS: {e}"))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("tif") || x.eq_ignore_ascii_case("tiff"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no .tif files in {}", dir.display()).into());
    }

    // Before the clock: the planes, decoded whole, and their pyramid.
    let mut planes = Vec::new();
    let (mut w, mut h) = (0, 0);
    for f in &files {
        let mut d = decoder(f)?;
        let (pw, ph) = d.dimensions()?;
        (w, h) = (pw as usize, ph as usize);
        match d.read_image()? {
            DecodingResult::U8(p) if p.len() == w * h => planes.push(p),
            _ => return Err(format!("{}: not a gray 8-bit plane", f.display()).into()),
        }
    }
    let levels = memory_pyramid(
        MemoryLevel {
            width: w,
            height: h,
            planes,
        },
        gray(w),
        CHUNK,
    );
    let chunks = chunk_grid(&levels, CHUNK);
    let enc = ChunkEncoder::new(Compression::Zstd(3));

    let (mut decode, mut compress) = (Vec::new(), Vec::new());
    let (mut tiles, mut compressed) = (0, 0);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        tiles = files
            .par_iter()
            .map(|f| decode_tiles(f))
            .sum::<DynResult<u64>>()?;
        decode.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        compressed = chunks
            .par_iter()
            .map(|&(l, p, cy, cx)| {
                enc.encode(l.chunk_bytes(p, gray(l.width), CHUNK, cy, cx))
                    .map(|v| v.len())
            })
            .sum::<Result<usize, _>>()?;
        compress.push(t.elapsed().as_secs_f64());
    }
    let (d, c) = (median(decode), median(compress));
    println!(
        "{{\"planes\":{},\"tiles\":{tiles},\"chunks\":{},\"compressed_bytes\":{compressed},\"threads\":{},\"decode_seconds\":{d:.3},\"compress_seconds\":{c:.3},\"bound_seconds\":{:.3}}}",
        files.len(),
        chunks.len(),
        rayon::current_num_threads(),
        d + c
    );
    Ok(())
}

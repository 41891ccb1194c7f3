//! Writes a synthetic z-stack of tiled TIFFs and reports the time taken; then reads it back
//! band by band through [`TiffStack`] and reports that time too.
//!
//! ```text
//! cargo run --release -p strata-zstack --example write_sample -- OUT_DIR [SIZE] [PLANES] \
//!     [none|lzw|deflate|packbits|zstd] [gray|rgb] [noread]
//! ```
//!
//! Defaults: 4096 x 4096, 30 planes, deflate, gray (the benchmark input of the converter).

use std::time::Instant;
use strata_zstack::{SampleOptions, TiffStack, TileCompression, ZStackSource, write_sample};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        return Err(
            "usage: write_sample OUT_DIR [SIZE] [PLANES] [COMPRESSION] [gray|rgb] [noread]".into(),
        );
    };
    let size: u32 = args.get(1).map_or(Ok(4096), |s| s.parse())?;
    let planes: u32 = args.get(2).map_or(Ok(30), |s| s.parse())?;
    let compression = match args.get(3).map_or("deflate", String::as_str) {
        "none" => TileCompression::None,
        "lzw" => TileCompression::Lzw,
        "deflate" => TileCompression::Deflate,
        "packbits" => TileCompression::PackBits,
        "zstd" => TileCompression::Zstd(3),
        other => return Err(format!("unknown compression {other}").into()),
    };
    let channels = if args.get(4).is_some_and(|c| c == "rgb") {
        3
    } else {
        1
    };
    let opts = SampleOptions {
        width: size,
        height: size,
        planes,
        in_focus_plane: planes / 2,
        channels,
        compression,
        ..SampleOptions::default()
    };
    let t = Instant::now();
    let summary = write_sample(std::path::Path::new(out), &opts)?;
    let write_s = t.elapsed().as_secs_f64();
    println!(
        "wrote {} files, {} bytes (BigTIFF: {}) in {write_s:.2} s",
        summary.files.len(),
        summary.bytes,
        summary.bigtiff
    );

    if args.get(5).is_some_and(|a| a == "noread") {
        return Ok(());
    }
    let t = Instant::now();
    let mut stack = TiffStack::open(std::path::Path::new(out))?;
    let info = stack.info().clone();
    let mut band = vec![0u8; 512 * info.row_bytes()];
    for z in 0..info.planes {
        for y0 in (0..info.height).step_by(512) {
            let rows = (info.height - y0).min(512);
            let buf = &mut band[..rows as usize * info.row_bytes()];
            stack.read_band(z, y0, rows, buf)?;
        }
    }
    println!(
        "read back in 512-row bands in {:.2} s ({} tiles decoded)",
        t.elapsed().as_secs_f64(),
        stack.chunks_decoded()
    );
    Ok(())
}

//! Reads every plane of a TIFF z-stack folder in 512-row bands through [`TiffStack`] and
//! reports the time taken and the tiles decoded (the input side of a conversion, alone).
//!
//! ```text
//! cargo run --release -p strata-zstack --example read_stack -- ZSTACK_DIR [DECODE_THREADS]
//! ```

use std::time::Instant;
use strata_zstack::{TiffOptions, TiffStack, ZStackSource};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        return Err("usage: read_stack ZSTACK_DIR [DECODE_THREADS]".into());
    };
    let mut options = TiffOptions::default();
    if let Some(t) = args.next() {
        options.decode_threads = t.parse()?;
    }
    let t = Instant::now();
    let mut stack = TiffStack::open_with(std::path::Path::new(&dir), options)?;
    let opened = t.elapsed().as_secs_f64();
    let info = stack.info().clone();
    let mut band = vec![0u8; 512 * info.row_bytes()];
    for z in 0..info.planes {
        for y0 in (0..info.height).step_by(512) {
            let rows = (info.height - y0).min(512);
            stack.read_band(z, y0, rows, &mut band[..rows as usize * info.row_bytes()])?;
        }
    }
    let bytes = u64::from(info.planes) * u64::from(info.height) * info.row_bytes() as u64;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} planes of {} x {}: opened and checked in {opened:.3} s, read {bytes} bytes in \
         {secs:.2} s ({:.0} MB/s), {} tiles decoded",
        info.planes,
        info.width,
        info.height,
        bytes as f64 / secs / 1e6,
        stack.chunks_decoded()
    );
    Ok(())
}

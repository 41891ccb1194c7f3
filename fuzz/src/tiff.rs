//! Target `tiff_stack`: the TIFF front end of the converter over a real file.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use strata_zstack::{Region, TiffOptions, TiffStack, ZStackSource};

use crate::scratch;

/// Most bytes of pixels one input reads (so a file that declares a huge plane costs the
/// reads of its first and last bands, not the whole plane).
const BUDGET: usize = 4 << 20;

/// The scratch folder holding the one file of the stack.
fn folder() -> &'static Mutex<PathBuf> {
    static DIR: OnceLock<Mutex<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| Mutex::new(scratch::folder("tiff_stack")))
}

/// Target `tiff_stack`: writes the input as the only `.tif` of a folder, opens it as a
/// z-stack ([`TiffStack::open_with`]) and reads every plane band by band, then regions of
/// it. Errors are expected; a panic, or a region that reads differently from the same pixels
/// read as bands, is a failure. The limits are lower than the defaults (same code paths,
/// faster runs): 16 MiB per tile or strip, 64 MiB of cached tile rows, 1 MiB per IFD value;
/// inputs of odd length decode tile rows on two threads.
pub fn tiff_stack(data: &[u8]) {
    tolerate_decoder_panics();
    let dir = scratch::lock(folder());
    scratch::write(&dir.join("plane.tif"), data);
    let mut options = TiffOptions::default();
    options.max_tile_bytes = 16 << 20;
    options.max_compressed_tile_bytes = 16 << 20;
    options.max_cache_bytes = 64 << 20;
    options.max_ifd_value_bytes = 1 << 20;
    options.decode_threads = if data.len().is_multiple_of(2) { 1 } else { 2 };
    let Ok(mut stack) = TiffStack::open_with(&dir, options) else {
        return;
    };
    let _ = format!("{stack:?}");
    for plane in 0..stack.info().planes {
        read_plane(&mut stack, plane);
    }
    let _ = stack.chunks_decoded();
    let _ = stack.files();
}

/// The TIFF front end catches panics of the `tiff` and `zune-jpeg` decoders (they panic on
/// some malformed directories and chunks) and returns them as errors naming the file;
/// libFuzzer's panic hook aborts on every panic, caught or not. This hook lets a panic raised
/// inside those crates unwind to that catch (if nothing catches it, the harness still aborts);
/// every other panic goes to libFuzzer's hook. Installed once per process.
fn tolerate_decoder_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_decoder = info.location().is_some_and(|l| {
                let file = l.file();
                (file.contains("/tiff-") || file.contains("/zune-jpeg-")) && file.contains("/src/")
            });
            if !in_decoder {
                previous(info);
            }
        }));
    });
}

/// Reads one plane: whole, band by band, if it fits the budget (then regions of it, compared
/// with the bands), else its first and last bands and a region in the middle.
fn read_plane(stack: &mut TiffStack, plane: u32) {
    let info = stack.info().clone();
    let (width, height) = (info.width, info.height);
    let row = info.row_bytes();
    if width == 0 || height == 0 || row == 0 {
        return;
    }
    let regions = |whole: bool| {
        let third = |n: u32| (n / 3, n.div_ceil(3).min(n - n / 3));
        let (x0, cols) = third(width);
        let (y0, rows) = third(height);
        let mut out = vec![Region {
            plane,
            y0,
            rows,
            x0,
            cols,
        }];
        if whole {
            out.push(Region::rows(&info, plane, 0, height));
            out.push(Region {
                plane,
                y0: height - 1,
                rows: 1,
                x0: width - 1,
                cols: 1,
            });
        }
        out
    };
    if row > BUDGET {
        // Not even one row fits: narrow regions only (tiled files read them cheaply).
        for r in regions(false) {
            read_region(stack, r, BUDGET);
        }
        return;
    }
    let band = u32::try_from((BUDGET / row).min(7))
        .unwrap_or(1)
        .clamp(1, height);
    if height as usize * row > BUDGET {
        let mut buf = vec![0u8; band as usize * row];
        let _ = stack.read_band(plane, 0, band, &mut buf);
        let _ = stack.read_band(plane, height - band, band, &mut buf);
        for r in regions(false) {
            read_region(stack, r, BUDGET);
        }
        return;
    }
    // Bands of 7 rows: most cross the boundaries of tiles and strips.
    let mut whole = vec![0u8; height as usize * row];
    let mut all_read = true;
    for (i, chunk) in whole.chunks_mut(band as usize * row).enumerate() {
        let y0 = u32::try_from(i).unwrap_or(u32::MAX).saturating_mul(band);
        let rows = u32::try_from(chunk.len() / row).unwrap_or(0);
        all_read &= stack.read_band(plane, y0, rows, chunk).is_ok();
    }
    for r in regions(true) {
        if let Some(got) = read_region(stack, r, BUDGET)
            && all_read
        {
            let px = info.pixel_bytes();
            let (x, w) = (r.x0 as usize * px, r.cols as usize * px);
            for (i, got_row) in got.chunks(w).enumerate() {
                let at = (r.y0 as usize + i) * row + x;
                assert!(
                    whole[at..at + w] == *got_row,
                    "plane {plane}: region {r:?} differs from the same rows read as bands (row {})",
                    r.y0 as usize + i
                );
            }
        }
    }
}

/// Reads `region` if its buffer fits `budget`; the pixels if the read succeeds.
fn read_region(stack: &mut TiffStack, region: Region, budget: usize) -> Option<Vec<u8>> {
    let bytes = region.bytes(stack.info());
    if bytes == 0 || bytes > budget {
        return None;
    }
    let mut out = vec![0u8; bytes];
    stack.read_region(region, &mut out).ok().map(|()| out)
}

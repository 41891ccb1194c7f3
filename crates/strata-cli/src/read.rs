//! `strata read`: one region of an image (folder, `.ozx` or S3) written to a `.npy` or `.tif`
//! file, for a quick look.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::json;
use strata_access::{Image, Region};

use crate::common::DynResult;

/// The flags of `strata read`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReadCmd {
    /// The image: an `.ome.zarr` folder, an `.ozx` file, or s3://bucket/prefix/x.ome.zarr.
    image: String,
    /// Pyramid level (0 is full resolution).
    #[arg(long, default_value_t = 0)]
    level: usize,
    /// The region as `Z,Y0:Y1,X0:X1` (Z a plane or a range `Z0:Z1`; ranges are half-open),
    /// in pixels of the level.
    #[arg(long, value_parser = parse_region)]
    region: [Range<u64>; 3],
    /// Channels as `C` or `C0:C1` (default: all).
    #[arg(long, value_parser = parse_range)]
    channel: Option<Range<u64>>,
    /// Output file: `.npy` (shape c, z, y, x) or `.tif` (one plane, 1 or 3 channels).
    #[arg(long)]
    out: PathBuf,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let num = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("{t:?} is not a pixel index"))
    };
    match s.split_once(':') {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a >= b {
                return Err(format!(
                    "{s:?}: the range is empty (start must be below end)"
                ));
            }
            Ok(a..b)
        }
        None => num(s).map(|a| a..a + 1),
    }
}

fn parse_region(s: &str) -> Result<[Range<u64>; 3], String> {
    let parts: Vec<&str> = s.split(',').collect();
    let [z, y, x] = parts.as_slice() else {
        return Err(format!(
            "{s:?}: give Z,Y0:Y1,X0:X1 (for example 3,0:512,1024:1536)"
        ));
    };
    Ok([parse_range(z)?, parse_range(y)?, parse_range(x)?])
}

impl ReadCmd {
    /// Reads the region and writes it.
    pub(crate) fn run(self) -> DynResult<bool> {
        let started = std::time::Instant::now();
        let img = Image::open(&self.image)?;
        let level = img.level(self.level)?.clone();
        let [z, y, x] = self.region.clone();
        let c = self.channel.clone().unwrap_or(0..img.channels());
        let region = Region::czyx(c, z, y, x);
        let bytes = img.read_region(self.level, &region)?;
        let shape = region.shape();
        let ext = self.out.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "npy" => write_npy(&self.out, &level.data_type, &shape, &bytes)?,
            "tif" | "tiff" => write_tiff(&self.out, &level.data_type, &shape, &bytes)?,
            _ => {
                return Err(format!(
                    "{}: the output must end in .npy or .tif",
                    self.out.display()
                )
                .into());
            }
        }
        let summary = json!({
            "image": img.name(),
            "level": self.level,
            "region": region.to_string(),
            "shape": shape,
            "data_type": level.data_type,
            "bytes": bytes.len(),
            "output": self.out,
            "seconds": started.elapsed().as_secs_f64(),
        });
        if self.json {
            outln!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            outln!(
                "{}: level {} {} ({}) -> {}",
                img.name(),
                self.level,
                region,
                level.data_type,
                self.out.display()
            );
        }
        Ok(false)
    }
}

/// The NumPy dtype string of a Zarr data type (little-endian, as read here).
fn npy_dtype(data_type: &str) -> Option<&'static str> {
    Some(match data_type {
        "uint8" => "|u1",
        "int8" => "|i1",
        "uint16" => "<u2",
        "int16" => "<i2",
        "uint32" => "<u4",
        "int32" => "<i4",
        "uint64" => "<u8",
        "int64" => "<i8",
        "float32" => "<f4",
        "float64" => "<f8",
        _ => return None,
    })
}

/// Writes a `.npy` file (format 1.0). Written here because the format is a 10-line header
/// and a NumPy reader is all the check it needs (the tests load it with NumPy).
fn write_npy(path: &Path, data_type: &str, shape: &[u64], bytes: &[u8]) -> DynResult<()> {
    if cfg!(target_endian = "big") {
        return Err("writing .npy is supported on little-endian machines".into());
    }
    let dtype = npy_dtype(data_type)
        .ok_or_else(|| format!("data type {data_type} has no .npy spelling here"))?;
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{dtype}', 'fortran_order': False, 'shape': {tuple}, }}");
    // Magic (6) + version (2) + length (2) + header + newline: a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let len = u16::try_from(header.len()).map_err(|_| "the .npy header is too long")?;
    let mut out = Vec::with_capacity(10 + header.len() + bytes.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(bytes);
    strata_fs::write_atomic(path, &out).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// Writes one plane (gray or RGB, 8 or 16 bits) as a TIFF.
fn write_tiff(path: &Path, data_type: &str, shape: &[u64], bytes: &[u8]) -> DynResult<()> {
    use tiff::encoder::{TiffEncoder, colortype};
    let (c, z, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    if z != 1 || !(c == 1 || c == 3) {
        return Err(format!(
            "a .tif holds one plane of 1 or 3 channels; the region has {z} planes of {c} channels (use .npy)"
        )
        .into());
    }
    let (w32, h32) = (u32::try_from(w)?, u32::try_from(h)?);
    let elem = match data_type {
        "uint8" => 1,
        "uint16" => 2,
        other => return Err(format!("a .tif is written for uint8 or uint16, not {other}").into()),
    };
    // Channels first (c, y, x) -> interleaved (y, x, c).
    let plane = (w * h) as usize * elem;
    let mut px = vec![0u8; bytes.len()];
    for i in 0..(w * h) as usize {
        for ch in 0..c as usize {
            let (s, d) = (ch * plane + i * elem, (i * c as usize + ch) * elem);
            px[d..d + elem].copy_from_slice(&bytes[s..s + elem]);
        }
    }
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut enc = TiffEncoder::new(&mut buf)?;
        let words = || -> Vec<u16> {
            px.chunks_exact(2)
                .map(|b| u16::from_ne_bytes([b[0], b[1]]))
                .collect()
        };
        match (elem, c) {
            (1, 1) => enc.write_image::<colortype::Gray8>(w32, h32, &px)?,
            (1, _) => enc.write_image::<colortype::RGB8>(w32, h32, &px)?,
            (_, 1) => enc.write_image::<colortype::Gray16>(w32, h32, &words())?,
            _ => enc.write_image::<colortype::RGB16>(w32, h32, &words())?,
        }
    }
    let mut data = buf.into_inner();
    data.flush()?;
    strata_fs::write_atomic(path, &data).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse_and_bad_ones_are_explained() {
        assert_eq!(
            parse_region("3,0:512,1024:1536"),
            Ok([3..4, 0..512, 1024..1536])
        );
        assert_eq!(parse_region("0:2, 5:6 ,7"), Ok([0..2, 5..6, 7..8]));
        for bad in ["3,0:512", "a,0:1,0:1", "1,5:5,0:1", "1,0:1,0:1,0:1"] {
            assert!(parse_region(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn npy_headers_are_aligned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.npy");
        write_npy(&p, "uint16", &[1, 1, 2, 3], &[0; 12]).expect("write");
        let b = std::fs::read(&p).expect("read");
        let len = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + len) % 64, 0);
        assert_eq!(b.len(), 10 + len + 12);
        assert!(String::from_utf8_lossy(&b[10..10 + len]).contains("'shape': (1, 1, 2, 3)"));
    }
}

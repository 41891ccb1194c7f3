//! HDF5 output (feature `hdf5`): a TIFF z-stack converted to OME-Zarr and exported to `.h5`
//! reads back, every sample of every level, equal to the Zarr levels (through hdf5-metno and,
//! with `STRATA_PYTHON`, through h5py); the attributes carry the NGFF metadata, pixel sizes and
//! provenance; bad input is a clear error and never leaves a file at the output path.
//!
//! The h5py checks need `STRATA_PYTHON` (set by `cargo xtask test`); they are skipped without
//! it unless `STRATA_REQUIRE_PEERS` is set.
#![cfg(feature = "hdf5")]

use hdf5_metno as hdf5;
use std::path::{Path, PathBuf};
use std::process::Command;
use strata_zstack::{
    Compression, ConvertOptions, Error, Hdf5ExportOptions, Hdf5Layout, Hdf5Stack, ImageOptions,
    NoHook, SampleOptions, SampleType, TiffStack, TileCompression, ZStackSource, convert,
    export_hdf5, write_sample,
};

/// Serialises the tests of this file. HDF5 opens files without close-on-exec and locks
/// them, so a child process started by one test (h5py, strata) would inherit another test's
/// open HDF5 file and its lock, and that test's next open of the file fails with EAGAIN.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

use strata_testkit::python;

mod common;

/// Writes a synthetic TIFF z-stack and converts it; returns the image path.
fn converted(
    dir: &Path,
    channels: u32,
    st: SampleType,
    planes_per_shard: Option<u32>,
) -> (PathBuf, usize) {
    let tiffs = dir.join("tiffs");
    let opts = SampleOptions {
        width: 300,
        height: 210,
        planes: 3,
        in_focus_plane: 1,
        channels,
        sample_type: st,
        tile: 64,
        compression: TileCompression::Deflate,
        ..SampleOptions::default()
    };
    write_sample(&tiffs, &opts).expect("sample");
    let mut source = TiffStack::open(&tiffs).expect("tiffs");
    let section = common::section(&dir.join("bids"));
    let copts = ConvertOptions {
        image: ImageOptions {
            chunk: 64,
            compression: Compression::Zstd(3),
            planes_per_shard,
            ..ImageOptions::default()
        },
        ..ConvertOptions::default()
    };
    let summary = convert(&mut source, &section, &copts, &mut NoHook).expect("convert");
    (summary.output, summary.arrays.levels.len())
}

fn attr_string(loc: &hdf5::Location, name: &str) -> String {
    loc.attr(name)
        .expect(name)
        .read_scalar::<hdf5::types::VarLenUnicode>()
        .expect(name)
        .to_string()
}

fn roundtrip(
    channels: u32,
    st: SampleType,
    planes_per_shard: Option<u32>,
    opts: Hdf5ExportOptions,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (image, levels) = converted(dir.path(), channels, st, planes_per_shard);
    assert!(
        levels >= 3,
        "the sample should have a pyramid, got {levels} levels"
    );
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let out = out_dir.join("section.h5");
    let mut calls = 0u64;
    let mut last = (0, 0);
    let summary = export_hdf5(&image, &out, &opts, &mut |done, total| {
        calls += 1;
        last = (done, total);
    })
    .expect("export");
    assert_eq!(summary.levels.len(), levels);
    assert!(calls > levels as u64 && last.0 == last.1 && last.1 == summary.bytes_in);
    assert_eq!(summary.bytes, std::fs::metadata(&out).expect("out").len());
    // Only the output, no temporary file left behind.
    let names: Vec<_> = std::fs::read_dir(&out_dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("section.h5")]);

    let file = hdf5::File::open(&out).expect("open h5");
    let group: serde_json::Value =
        serde_json::from_slice(&std::fs::read(image.join("zarr.json")).expect("zarr.json"))
            .expect("json");
    let multiscales: serde_json::Value =
        serde_json::from_str(&attr_string(&file, "multiscales")).expect("multiscales json");
    assert_eq!(&multiscales, &group["attributes"]["ome"]["multiscales"]);
    let provenance: serde_json::Value =
        serde_json::from_str(&attr_string(&file, "strata")).expect("provenance json");
    assert_eq!(&provenance, &group["attributes"]["strata"]);
    let root_size = file
        .attr("pixel_size")
        .expect("pixel_size")
        .read_raw::<f64>()
        .expect("read");
    assert_eq!(root_size, vec![1.0, 1.0, 0.25, 0.25]);

    for level in 0..levels {
        let (shape, want) = common::read_level(&image, level, st);
        let ds = file.dataset(&level.to_string()).expect("dataset");
        let h5_shape: Vec<u64> = ds.shape().iter().map(|&v| v as u64).collect();
        assert_eq!(h5_shape, shape, "level {level} shape");
        assert_eq!(shape[0], u64::from(channels));
        let got: Vec<u64> = match st {
            SampleType::U8 => ds
                .read_raw::<u8>()
                .expect("read")
                .into_iter()
                .map(u64::from)
                .collect(),
            SampleType::U16 => ds
                .read_raw::<u16>()
                .expect("read")
                .into_iter()
                .map(u64::from)
                .collect(),
        };
        assert!(got == want, "level {level}: the HDF5 samples differ");
        let chunk = ds.chunk().expect("chunked");
        assert_eq!(&chunk[..2], &[1, 1]);
        let size = ds
            .attr("pixel_size")
            .expect("pixel_size")
            .read_raw::<f64>()
            .expect("read");
        let scale = f64::from(1u32 << level);
        assert_eq!(size, vec![1.0, 1.0, 0.25 * scale, 0.25 * scale]);
        let um = ds
            .attr("element_size_um")
            .expect("element_size_um")
            .read_raw::<f64>()
            .expect("read");
        assert_eq!(um, vec![1.0, 0.25 * scale, 0.25 * scale]);
        assert_eq!(attr_string(&ds, "zarr_path"), level.to_string());
    }
    drop(file);

    // The copy is a z-stack again (level 0, channels interleaved back, pixel size from
    // `element_size_um`): every plane equals the TIFF it came from.
    let mut back = Hdf5Stack::open(&out, &Hdf5Layout::Auto).expect("the copy as input");
    let mut tiffs = TiffStack::open(&dir.path().join("tiffs")).expect("tiffs");
    let (a, b) = (back.info().clone(), tiffs.info().clone());
    assert_eq!(
        (a.planes, a.height, a.width, a.channels, a.sample_type),
        (b.planes, b.height, b.width, b.channels, b.sample_type)
    );
    let px = a.pixel_size.expect("pixel size");
    assert_eq!((px.x, px.y), (0.25, 0.25));
    let mut want = vec![0u8; b.row_bytes() * b.height as usize];
    let mut got = want.clone();
    for z in 0..a.planes {
        tiffs
            .read_band(z, 0, b.height, &mut want)
            .expect("tiff plane");
        // Bands that do not follow the HDF5 chunks, to exercise the hyperslabs.
        let rows = 37;
        for y0 in (0..a.height).step_by(rows) {
            let n = (a.height - y0).min(rows as u32);
            let at = y0 as usize * a.row_bytes();
            back.read_band(z, y0, n, &mut got[at..at + n as usize * a.row_bytes()])
                .expect("h5 band");
        }
        assert!(
            got == want,
            "plane {z} of the HDF5 copy differs from its TIFF"
        );
    }
    drop(back);

    // An independent reader: h5py, every level against zarrs.
    let Some(python) = python() else { return };
    let raw = dir.path().join("h5py");
    std::fs::create_dir_all(&raw).expect("mkdir");
    let script = r#"
import json, sys, h5py, numpy as np
path, out = sys.argv[1], sys.argv[2]
with h5py.File(path, "r") as f:
    ms = json.loads(f.attrs["multiscales"])
    levels = [d["path"] for d in ms[0]["datasets"]]
    for i in range(len(levels)):
        ds = f[str(i)]
        a = ds[...]
        assert a.ndim == 4, a.shape
        a.astype(a.dtype.newbyteorder("<")).tofile(f"{out}/{i}.raw")
    print(json.dumps({"levels": len(levels), "dtype": str(f["0"].dtype),
                      "compression": f["0"].compression, "chunks": list(f["0"].chunks),
                      "axes": [str(a) for a in f.attrs["axes"]]}))
"#;
    let r = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&out)
        .arg(&raw)
        .output()
        .expect("run python");
    assert!(
        r.status.success(),
        "h5py: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&r.stdout).expect("h5py json");
    assert_eq!(report["levels"], levels);
    assert_eq!(report["dtype"], st.zarr_name());
    assert_eq!(report["axes"], serde_json::json!(["c", "z", "y", "x"]));
    let compression = if opts.deflate.is_some() {
        serde_json::json!("gzip")
    } else {
        serde_json::Value::Null
    };
    assert_eq!(report["compression"], compression);
    for level in 0..levels {
        let (_, want) = common::read_level(&image, level, st);
        let bytes = std::fs::read(raw.join(format!("{level}.raw"))).expect("raw");
        let got: Vec<u64> = match st {
            SampleType::U8 => bytes.into_iter().map(u64::from).collect(),
            SampleType::U16 => bytes
                .chunks_exact(2)
                .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
        };
        assert!(got == want, "h5py reads level {level} differently");
    }
}

#[test]
fn gray8_roundtrip() {
    let _serial = serial();
    roundtrip(1, SampleType::U8, None, Hdf5ExportOptions::default());
}

#[test]
fn gray16_roundtrip_uncompressed_unaligned_bands() {
    let _serial = serial();
    roundtrip(
        1,
        SampleType::U16,
        Some(2),
        Hdf5ExportOptions {
            deflate: None,
            chunk: Some(50),
            ..Hdf5ExportOptions::default()
        },
    );
}

#[test]
fn rgb_roundtrip() {
    let _serial = serial();
    roundtrip(
        3,
        SampleType::U8,
        None,
        Hdf5ExportOptions {
            deflate: Some(9),
            ..Hdf5ExportOptions::default()
        },
    );
}

/// Exported data converts back: a volume dataset of the HDF5 input path.
#[test]
fn hdf5_input_path_layout_and_pixel_size() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("in.h5");
    let (z, h, w) = (3usize, 20usize, 30usize);
    let data: Vec<u8> = (0..z * h * w).map(|i| (i % 253) as u8).collect();
    {
        let f = hdf5::File::create(&p).expect("create");
        let g = f.create_group("scan").expect("group");
        let ds = g
            .new_dataset::<u8>()
            .shape((z, h, w))
            .create("stack")
            .expect("dataset");
        ds.write_raw(&data).expect("write");
        ds.new_attr::<f64>()
            .shape(3)
            .create("element_size_um")
            .expect("attr")
            .write_raw(&[2.0, 0.5, 0.25])
            .expect("write");
        let planes = f.create_group("planes").expect("group");
        for (i, name) in ["p10", "p2", "p1"].iter().enumerate() {
            planes
                .new_dataset::<u8>()
                .shape((h, w))
                .create(*name)
                .expect("dataset")
                .write_raw(&data[i * h * w..(i + 1) * h * w])
                .expect("write");
        }
    }
    for path in ["scan", "/scan/stack"] {
        let s = Hdf5Stack::open(&p, &Hdf5Layout::Path(path.into())).expect("open");
        let info = s.info();
        assert_eq!((info.planes, info.height, info.width), (3, 20, 30));
        let px = info.pixel_size.expect("pixel size");
        assert_eq!((px.x, px.y), (0.25, 0.5));
    }
    let mut s = Hdf5Stack::open(&p, &Hdf5Layout::Path("planes".into())).expect("open");
    assert_eq!(s.info().planes, 3);
    assert!(
        s.info().plane_names[0].ends_with("p1"),
        "{:?}",
        s.info().plane_names
    );
    let mut band = vec![0u8; h * w];
    s.read_band(2, 0, h as u32, &mut band).expect("band");
    assert!(
        band == data[..h * w],
        "p10 (written from plane 0) is the last plane"
    );
    let e = Hdf5Stack::open(&p, &Hdf5Layout::Path("nope".into())).expect_err("missing");
    assert!(
        matches!(e, Error::Input { .. }) && e.to_string().contains("nope"),
        "{e}"
    );

    // A truncated file is an error naming it, not a panic.
    let bytes = std::fs::read(&p).expect("read");
    let cut = dir.path().join("cut.h5");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).expect("write");
    let e = match Hdf5Stack::open(&cut, &Hdf5Layout::Auto) {
        Err(e) => e,
        Ok(mut s) => {
            let info = s.info().clone();
            let mut buf = vec![0u8; info.row_bytes() * info.height as usize];
            s.read_band(info.planes - 1, 0, info.height, &mut buf)
                .expect_err("truncated data")
        }
    };
    assert!(e.to_string().contains("cut.h5"), "{e}");
}

#[test]
fn bad_images_are_errors_and_leave_no_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.h5");
    let none = |_, _| {};
    // Not an image.
    let e = export_hdf5(
        &dir.path().join("missing.ome.zarr"),
        &out,
        &Hdf5ExportOptions::default(),
        &mut { none },
    )
    .expect_err("missing");
    assert!(e.to_string().contains("missing.ome.zarr"), "{e}");

    let (image, _) = converted(dir.path(), 1, SampleType::U8, None);
    // Options out of range.
    for opts in [
        Hdf5ExportOptions {
            deflate: Some(0),
            ..Hdf5ExportOptions::default()
        },
        Hdf5ExportOptions {
            chunk: Some(0),
            ..Hdf5ExportOptions::default()
        },
        Hdf5ExportOptions {
            max_band_bytes: 1000,
            ..Hdf5ExportOptions::default()
        },
    ] {
        let e = export_hdf5(&image, &out, &opts, &mut { none }).expect_err("options");
        assert!(matches!(e, Error::Config(_)), "{e}");
    }
    assert!(!out.exists());

    // A corrupt shard: the error names the level, and nothing is left at the output path.
    let shard = std::fs::read_dir(image.join("0"))
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .find(|p| p.file_name().is_some_and(|n| n != "zarr.json"))
        .expect("a shard");
    let len = std::fs::metadata(&shard).expect("shard").len();
    std::fs::write(&shard, vec![0xFFu8; len as usize]).expect("corrupt");
    let e = export_hdf5(&image, &out, &Hdf5ExportOptions::default(), &mut { none })
        .expect_err("corrupt shard");
    assert!(matches!(e, Error::Input { .. }), "{e}");
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| strata_fs::is_temp_name(n))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");

    // Truncated group metadata.
    let group = image.join("zarr.json");
    let text = std::fs::read(&group).expect("read");
    std::fs::write(&group, &text[..text.len() / 2]).expect("write");
    let e = export_hdf5(&image, &out, &Hdf5ExportOptions::default(), &mut { none })
        .expect_err("truncated json");
    assert!(e.to_string().contains("zarr.json"), "{e}");
    assert!(!out.exists());
}

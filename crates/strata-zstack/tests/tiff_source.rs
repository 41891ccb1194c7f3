//! TIFF z-stacks read band by band equal their source pixels: strips written by the `tiff`
//! crate's encoder, tiles written by the sample writer (every compression, gray and RGB, 8 and
//! 16 bit, classic and BigTIFF), JPEG tiles within JPEG's error; inconsistent planes, truncated
//! and hostile files are clear errors, never panics.

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use strata_zstack::{
    Error, Region, SampleOptions, SampleType, SyntheticStack, TiffOptions, TiffStack,
    TileCompression, TiledTiffSpec, TiledTiffWriter, ZStackSource, write_sample,
};
use tiff::encoder::{Compression as TC, DeflateLevel, Rational, TiffEncoder, colortype};
use tiff::tags::ResolutionUnit;

mod common;
use common::read_plane;

/// Reads a whole plane region by region: bands of `band` rows, segments of `seg` columns.
fn read_plane_by_regions(s: &mut dyn ZStackSource, plane: u32, band: u32, seg: u32) -> Vec<u8> {
    let info = s.info().clone();
    let (rb, px) = (info.row_bytes(), info.pixel_bytes());
    let mut out = vec![0u8; info.height as usize * rb];
    for y0 in (0..info.height).step_by(band as usize) {
        let rows = band.min(info.height - y0);
        for x0 in (0..info.width).step_by(seg as usize) {
            let cols = seg.min(info.width - x0);
            let region = Region {
                plane,
                y0,
                rows,
                x0,
                cols,
            };
            let mut buf = vec![0u8; region.bytes(&info)];
            s.read_region(region, &mut buf).expect("read region");
            let w = cols as usize * px;
            for (i, row) in buf.chunks_exact(w).enumerate() {
                let at = (y0 as usize + i) * rb + x0 as usize * px;
                out[at..at + w].copy_from_slice(row);
            }
        }
    }
    out
}

fn opts(w: u32, h: u32, channels: u32, st: SampleType, c: TileCompression) -> SampleOptions {
    SampleOptions {
        width: w,
        height: h,
        planes: 3,
        in_focus_plane: 1,
        channels,
        sample_type: st,
        tile: 64,
        compression: c,
        seed: 11,
        pixel_size_um: 0.25,
        blur_per_plane: 2.0,
        noise: 2.0,
        bigtiff: false,
    }
}

fn check_sample(o: &SampleOptions, band: u32) -> TiffStack {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = write_sample(dir.path(), o).expect("write sample");
    assert_eq!(summary.bigtiff, o.bigtiff);
    let mut stack = TiffStack::open(dir.path()).expect("open");
    let mut truth = SyntheticStack::new(o.clone()).expect("synthetic");
    let info = stack.info().clone();
    assert_eq!(
        (info.width, info.height, info.planes),
        (o.width, o.height, o.planes)
    );
    assert_eq!(info.channels, o.channels);
    assert_eq!(info.sample_type, o.sample_type);
    let px = info.pixel_size.expect("pixel size");
    assert!(
        (px.x - 0.25).abs() < 1e-9 && (px.y - 0.25).abs() < 1e-9,
        "{px:?}"
    );
    assert_eq!(stack.region_tile(), Some((o.tile, o.tile.min(o.height))));
    for z in 0..o.planes {
        let got = read_plane(&mut stack, z, band);
        let want = read_plane(&mut truth, z, o.height);
        assert!(got == want, "plane {z} differs for {o:?}");
        // Regions on the tile grid, across it, and one column wide.
        for (rows, cols) in [(o.tile, o.tile), (band, 45), (o.tile, 2 * o.tile), (7, 1)] {
            let got = read_plane_by_regions(&mut stack, z, rows, cols);
            assert!(got == want, "plane {z}, regions {rows} x {cols}, {o:?}");
        }
    }
    stack
}

#[test]
fn tiled_samples_every_compression_and_type() {
    let types = [
        (1, SampleType::U8),
        (3, SampleType::U8),
        (1, SampleType::U16),
        (3, SampleType::U16),
    ];
    let comps = [
        TileCompression::None,
        TileCompression::Lzw,
        TileCompression::Deflate,
        TileCompression::PackBits,
        TileCompression::Zstd(3),
    ];
    for (i, &(ch, st)) in types.iter().enumerate() {
        for (j, &c) in comps.iter().enumerate() {
            let mut o = opts(150, 100, ch, st, c);
            o.bigtiff = (i + j) % 2 == 1;
            check_sample(&o, 37);
        }
    }
}

#[test]
fn sample_planes_differ_and_focus_is_sharpest() {
    let o = opts(256, 256, 1, SampleType::U8, TileCompression::None);
    let mut s = SyntheticStack::new(SampleOptions {
        planes: 5,
        in_focus_plane: 2,
        noise: 0.0,
        ..o
    })
    .expect("stack");
    let grad = |p: &[u8]| -> u64 {
        p.chunks_exact(256)
            .map(|r| {
                r.windows(2)
                    .map(|w| u64::from(w[0].abs_diff(w[1])))
                    .sum::<u64>()
            })
            .sum()
    };
    let g: Vec<u64> = (0..5).map(|z| grad(&read_plane(&mut s, z, 256))).collect();
    assert!(
        g[2] > g[1] && g[1] > g[0] && g[2] > g[3] && g[3] > g[4],
        "{g:?}"
    );
    // Brightfield: mostly bright, some dark.
    let p = read_plane(&mut s, 2, 256);
    let bright = p.iter().filter(|&&v| v > 200).count();
    let dark = p.iter().filter(|&&v| v < 150).count();
    assert!(
        bright > p.len() / 10 && dark > 0,
        "bright {bright} dark {dark}"
    );
}

macro_rules! write_strips {
    ($enc:expr, $ct:ty, $data:expr, $w:expr, $h:expr, $rps:expr) => {{
        let mut img = $enc.new_image::<$ct>($w, $h).expect("image");
        img.rows_per_strip($rps).expect("rows per strip");
        img.resolution(ResolutionUnit::Inch, Rational { n: 2540, d: 1 });
        img.write_data($data).expect("write");
    }};
}

/// Writes a stripped TIFF with the `tiff` crate's encoder; returns the native-endian bytes.
fn strip_tiff(path: &Path, ch: u32, st: SampleType, c: TC, big: bool, seed: u32) -> Vec<u8> {
    let (w, h, rps) = (97u32, 61u32, 7u32);
    let n = (w * h * ch) as usize;
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let vals: Vec<u16> = (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Smooth-ish with noise, so that compressors have something to do.
            ((i % 300) as u16).wrapping_mul(200) ^ (x as u16 & 0x0f0f)
        })
        .collect();
    let d8: Vec<u8> = vals.iter().map(|&v| (v >> 4) as u8).collect();
    let file = std::fs::File::create(path).expect("create");
    macro_rules! go {
        ($enc:expr) => {{
            let mut enc = $enc.with_compression(c);
            match (ch, st) {
                (1, SampleType::U8) => write_strips!(enc, colortype::Gray8, &d8, w, h, rps),
                (3, SampleType::U8) => write_strips!(enc, colortype::RGB8, &d8, w, h, rps),
                (1, SampleType::U16) => write_strips!(enc, colortype::Gray16, &vals, w, h, rps),
                _ => write_strips!(enc, colortype::RGB16, &vals, w, h, rps),
            }
        }};
    }
    if big {
        go!(TiffEncoder::new_big(file).expect("encoder"));
    } else {
        go!(TiffEncoder::new(file).expect("encoder"));
    }
    match st {
        SampleType::U8 => d8,
        _ => vals.iter().flat_map(|v| v.to_ne_bytes()).collect(),
    }
}

#[test]
fn stripped_every_encoder_compression_type_and_kind() {
    let comps = [
        TC::Uncompressed,
        TC::Lzw,
        TC::Deflate(DeflateLevel::Balanced),
        TC::Packbits,
    ];
    let types = [
        (1, SampleType::U8),
        (3, SampleType::U8),
        (1, SampleType::U16),
        (3, SampleType::U16),
    ];
    for (ci, &c) in comps.iter().enumerate() {
        for &(ch, st) in &types {
            for big in [false, true] {
                let dir = tempfile::tempdir().expect("tempdir");
                let a = strip_tiff(&dir.path().join("p1.tif"), ch, st, c, big, 1 + ci as u32);
                let b = strip_tiff(&dir.path().join("p2.tif"), ch, st, c, big, 9 + ci as u32);
                let mut s = TiffStack::open(dir.path()).expect("open");
                let info = s.info().clone();
                assert_eq!((info.width, info.height, info.channels), (97, 61, ch));
                let px = info.pixel_size.expect("pixel size");
                assert!((px.x - 10.0).abs() < 1e-9, "2540 dpi is 10 um: {px:?}");
                assert_eq!(s.region_tile(), None, "strips are read in whole rows");
                assert!(
                    read_plane_by_regions(&mut s, 1, 7, 30) == b,
                    "regions of strips"
                );
                for band in [5, 7, 16, 61] {
                    assert!(
                        read_plane(&mut s, 0, band) == a,
                        "{ci} {ch} {st:?} {big} {band}"
                    );
                    assert!(
                        read_plane(&mut s, 1, band) == b,
                        "{ci} {ch} {st:?} {big} {band}"
                    );
                }
            }
        }
    }
}

#[test]
fn horizontal_predictor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = std::fs::File::create(dir.path().join("p.tif")).expect("create");
    let data: Vec<u16> = (0..64 * 40 * 3).map(|i| (i * 37 % 65_536) as u16).collect();
    let mut enc = TiffEncoder::new(file)
        .expect("encoder")
        .with_compression(TC::Lzw)
        .with_predictor(tiff::encoder::Predictor::Horizontal);
    write_strips!(enc, colortype::RGB16, &data, 64, 40, 9);
    let mut s = TiffStack::open(dir.path()).expect("open");
    let want: Vec<u8> = data.iter().flat_map(|v| v.to_ne_bytes()).collect();
    assert!(read_plane(&mut s, 0, 13) == want);
}

/// Splits a full JPEG stream into a tables-only stream (`SOI DQT DHT EOI`) and the
/// abbreviated stream without those tables, as TIFF writers that use `JPEGTables` store them.
fn split_jpeg(j: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut tables = vec![0xFF, 0xD8];
    let mut stream = vec![0xFF, 0xD8];
    let mut i = 2;
    while i + 4 <= j.len() {
        let marker = j[i + 1];
        if marker == 0xDA {
            stream.extend_from_slice(&j[i..]);
            break;
        }
        let len = usize::from(u16::from_be_bytes([j[i + 2], j[i + 3]]));
        let seg = &j[i..i + 2 + len];
        if marker == 0xDB || marker == 0xC4 {
            tables.extend_from_slice(seg);
        } else {
            stream.extend_from_slice(seg);
        }
        i += 2 + len;
    }
    tables.extend_from_slice(&[0xFF, 0xD9]);
    (tables, stream)
}

/// Writes a tiled JPEG TIFF from `src` (u8, interleaved), with shared `JPEGTables` or with
/// complete streams per tile.
#[allow(clippy::too_many_arguments)]
fn jpeg_tiff(path: &Path, w: u32, h: u32, ch: u32, tile: u32, src: &[u8], shared_tables: bool) {
    let (t, c) = (tile as usize, ch as usize);
    let (ta, td) = (w.div_ceil(tile) as usize, h.div_ceil(tile) as usize);
    let mut tiles = Vec::new();
    for ty in 0..td {
        for tx in 0..ta {
            let mut buf = vec![0u8; t * t * c];
            for y in 0..t {
                for x in 0..t {
                    let (sy, sx) = (
                        (ty * t + y).min(h as usize - 1),
                        (tx * t + x).min(w as usize - 1),
                    );
                    for k in 0..c {
                        buf[(y * t + x) * c + k] = src[(sy * w as usize + sx) * c + k];
                    }
                }
            }
            let mut jpeg = Vec::new();
            let enc = jpeg_encoder::Encoder::new(&mut jpeg, 95);
            let color = if ch == 3 {
                jpeg_encoder::ColorType::Rgb
            } else {
                jpeg_encoder::ColorType::Luma
            };
            enc.encode(&buf, tile as u16, tile as u16, color)
                .expect("jpeg");
            tiles.push(jpeg);
        }
    }
    let mut jpeg_tables = None;
    if shared_tables {
        let split: Vec<(Vec<u8>, Vec<u8>)> = tiles.iter().map(|j| split_jpeg(j)).collect();
        assert!(
            split.iter().all(|s| s.0 == split[0].0),
            "tiles share their tables"
        );
        jpeg_tables = Some(split[0].0.clone());
        tiles = split.into_iter().map(|s| s.1).collect();
    }
    let spec = TiledTiffSpec {
        width: w,
        height: h,
        channels: ch,
        sample_type: SampleType::U8,
        tile_width: tile,
        tile_height: tile,
        compression: TileCompression::Jpeg,
        pixel_size_um: None,
        bigtiff: false,
        jpeg_tables,
    };
    let mut wr = TiledTiffWriter::create(path, spec).expect("create");
    for j in &tiles {
        wr.write_encoded_tile(j).expect("tile");
    }
    wr.finish().expect("finish");
}

#[test]
fn jpeg_tiles_gray_and_rgb_within_jpeg_error() {
    for (ch, shared) in [(1u32, false), (3, false), (1, true), (3, true)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = SampleOptions {
            channels: ch,
            noise: 0.0,
            ..opts(200, 150, ch, SampleType::U8, TileCompression::None)
        };
        let mut truth = SyntheticStack::new(o).expect("synthetic");
        let src = read_plane(&mut truth, 1, 150);
        jpeg_tiff(&dir.path().join("z0.tif"), 200, 150, ch, 64, &src, shared);
        let mut s = TiffStack::open(dir.path()).expect("open");
        let got = read_plane(&mut s, 0, 50);
        assert!(
            read_plane_by_regions(&mut s, 0, 64, 128) == got,
            "JPEG regions"
        );
        assert_eq!(got.len(), src.len());
        let err: Vec<u32> = got
            .iter()
            .zip(&src)
            .map(|(a, b)| u32::from(a.abs_diff(*b)))
            .collect();
        let mean = f64::from(err.iter().sum::<u32>()) / err.len() as f64;
        let max = err.iter().max().copied().unwrap_or(0);
        assert!(
            mean < 3.0 && max < 64,
            "ch {ch} shared {shared}: mean {mean} max {max}"
        );
    }
}

#[test]
fn natural_order_and_explicit_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, name) in ["z10.tif", "z2.tif", "z1.TIFF"].iter().enumerate() {
        strip_tiff(
            &dir.path().join(name),
            1,
            SampleType::U8,
            TC::Uncompressed,
            false,
            i as u32,
        );
    }
    std::fs::write(dir.path().join("notes.txt"), "x").expect("write");
    std::fs::write(dir.path().join(".hidden.tif"), "x").expect("write");
    let s = TiffStack::open(dir.path()).expect("open");
    assert_eq!(s.info().plane_names, ["z1.TIFF", "z2.tif", "z10.tif"]);
    let list: Vec<PathBuf> = ["z10.tif", "z1.TIFF"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    let s = TiffStack::open_paths(&list, TiffOptions::default()).expect("open list");
    assert_eq!(s.info().plane_names, ["z10.tif", "z1.TIFF"]);
    let empty = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        TiffStack::open(empty.path()),
        Err(Error::Input { .. })
    ));
}

#[test]
fn mismatched_planes_name_the_file_and_the_difference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = opts(128, 64, 1, SampleType::U8, TileCompression::None);
    write_sample(&dir.path().join("a"), &o).expect("a");
    write_sample(
        &dir.path().join("b"),
        &SampleOptions {
            width: 130,
            ..o.clone()
        },
    )
    .expect("b");
    write_sample(
        &dir.path().join("c"),
        &SampleOptions {
            sample_type: SampleType::U16,
            channels: 3,
            ..o.clone()
        },
    )
    .expect("c");
    let a = dir.path().join("a/z00.tif");
    for (other, words) in [
        (
            "b/z01.tif",
            &["z01.tif", "size 130 x 64 differs from 128 x 64"][..],
        ),
        (
            "c/z02.tif",
            &["z02.tif", "3 samples per pixel differ from 1", "16-bit"][..],
        ),
    ] {
        let paths = vec![
            a.clone(),
            dir.path().join("a/z01.tif"),
            dir.path().join(other),
        ];
        let e = TiffStack::open_paths(&paths, TiffOptions::default()).expect_err("mismatch");
        let msg = e.to_string();
        assert!(matches!(e, Error::Input { .. }), "{msg}");
        for w in words {
            assert!(msg.contains(w), "{msg:?} lacks {w:?}");
        }
    }
}

/// Tiles decoded per band: each tile once, whatever the tile height against 512-row bands.
#[test]
fn each_tile_decoded_once_per_stack() {
    for tile in [256u32, 512, 1024] {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = SampleOptions {
            width: 2048,
            height: 2048,
            planes: 2,
            in_focus_plane: 0,
            tile,
            compression: TileCompression::Lzw,
            ..SampleOptions::default()
        };
        write_sample(dir.path(), &o).expect("write");
        let tiles = u64::from(2048 / tile).pow(2);
        for band in [512u32, 300] {
            let mut s = TiffStack::open(dir.path()).expect("open");
            let p0 = read_plane(&mut s, 0, band);
            let p1 = read_plane(&mut s, 1, band);
            assert_eq!(s.chunks_decoded(), 2 * tiles, "tile {tile} band {band}");
            let mut truth = SyntheticStack::new(o.clone()).expect("synthetic");
            assert!(p0 == read_plane(&mut truth, 0, 2048));
            assert!(p1 == read_plane(&mut truth, 1, 2048));
        }
        // Without the row cache (and on one thread): same pixels, tiles spanning bands decoded
        // once per band.
        let mut no_cache = TiffOptions::default();
        no_cache.max_cache_bytes = 0;
        no_cache.decode_threads = 1;
        let mut s = TiffStack::open_with(dir.path(), no_cache).expect("open");
        let p0 = read_plane(&mut s, 0, 512);
        let mut truth = SyntheticStack::new(o.clone()).expect("synthetic");
        assert!(p0 == read_plane(&mut truth, 0, 2048));
        let per_tile = u64::from(tile.div_ceil(512));
        assert_eq!(s.chunks_decoded(), tiles * per_tile, "tile {tile} no cache");
        // Regions on the tile grid (the converter's column segments) decode each tile once.
        let mut s = TiffStack::open(dir.path()).expect("open");
        let p1 = read_plane_by_regions(&mut s, 1, tile, 2 * tile);
        assert!(p1 == read_plane(&mut truth, 1, 2048));
        assert_eq!(s.chunks_decoded(), tiles, "tile {tile} regions");
    }
}

#[test]
fn regions_outside_the_plane_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_sample(
        dir.path(),
        &opts(150, 100, 1, SampleType::U8, TileCompression::Lzw),
    )
    .expect("write");
    let mut s = TiffStack::open(dir.path()).expect("open");
    let region = |x0, cols, y0, rows| Region {
        plane: 0,
        y0,
        rows,
        x0,
        cols,
    };
    for r in [
        region(140, 20, 0, 10),
        region(0, 0, 0, 10),
        region(10, 10, 95, 10),
        region(u32::MAX, 2, 0, 1),
    ] {
        let mut buf = vec![0u8; 400];
        let err = s.read_region(r, &mut buf).expect_err("outside");
        assert!(err.to_string().contains("outside"), "{r:?}: {err}");
    }
    let mut small = vec![0u8; 99];
    let err = s
        .read_region(region(0, 10, 0, 10), &mut small)
        .expect_err("buffer too small");
    assert!(err.to_string().contains("100 needed"), "{err}");
}

/// Offset of the first IFD entry with `tag`, and whether the file is BigTIFF (little-endian).
fn find_entry(bytes: &[u8], tag: u16) -> Option<(usize, bool)> {
    let big = u16::from_le_bytes([bytes[2], bytes[3]]) == 43;
    let (ifd, n, size, start) = if big {
        let ifd = u64::from_le_bytes(bytes[8..16].try_into().ok()?) as usize;
        (
            ifd,
            u64::from_le_bytes(bytes[ifd..ifd + 8].try_into().ok()?) as usize,
            20,
            8,
        )
    } else {
        let ifd = u32::from_le_bytes(bytes[4..8].try_into().ok()?) as usize;
        (
            ifd,
            usize::from(u16::from_le_bytes([bytes[ifd], bytes[ifd + 1]])),
            12,
            2,
        )
    };
    (0..n)
        .map(|i| ifd + start + i * size)
        .find(|&e| u16::from_le_bytes([bytes[e], bytes[e + 1]]) == tag)
        .map(|e| (e, big))
}

/// Sets an inline SHORT or LONG tag value.
fn patch(path: &Path, tag: u16, value: u32) {
    let mut bytes = std::fs::read(path).expect("read");
    let (e, big) = find_entry(&bytes, tag).expect("tag");
    let ty = u16::from_le_bytes([bytes[e + 2], bytes[e + 3]]);
    let at = e + if big { 12 } else { 8 };
    match ty {
        3 => bytes[at..at + 2].copy_from_slice(&(value as u16).to_le_bytes()),
        _ => bytes[at..at + 4].copy_from_slice(&value.to_le_bytes()),
    }
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn min_is_white_is_inverted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = opts(100, 70, 1, SampleType::U8, TileCompression::Deflate);
    write_sample(dir.path(), &o).expect("write");
    let mut truth = SyntheticStack::new(o).expect("synthetic");
    for z in 0..3 {
        patch(&dir.path().join(format!("z{z:02}.tif")), 262, 0);
    }
    let mut s = TiffStack::open(dir.path()).expect("open");
    let got = read_plane(&mut s, 2, 30);
    let want: Vec<u8> = read_plane(&mut truth, 2, 70)
        .iter()
        .map(|v| 255 - v)
        .collect();
    assert!(got == want);
}

#[test]
fn unsupported_layouts_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = opts(100, 70, 1, SampleType::U8, TileCompression::None);
    write_sample(dir.path(), &o).expect("write");
    let p = dir.path().join("z00.tif");
    let cases: [(u16, u32, &str); 4] = [
        (258, 12, "12-bit samples are not supported"),
        (259, 3, "compression"),
        (339, 3, "sample format"),
        (262, 3, "photometric interpretation"),
    ];
    for (tag, value, words) in cases {
        let original = std::fs::read(&p).expect("read");
        patch(&p, tag, value);
        let e = TiffStack::open_paths(std::slice::from_ref(&p), TiffOptions::default())
            .expect_err("unsupported");
        let msg = e.to_string();
        assert!(msg.contains("z00.tif") && msg.contains(words), "{msg}");
        std::fs::write(&p, original).expect("restore");
    }
}

#[test]
fn a_directory_the_decoder_panics_on_is_a_clear_error() {
    // Found by fuzzing (`fuzz/inputs/tiff_stack/`): an empty SampleFormat makes tiff 0.10.3
    // index past the end of its values while it reads the directory.
    let bytes = include_bytes!("../../../fuzz/inputs/tiff_stack/crash_empty_sample_format.tif");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("z00.tif"), bytes).expect("write");
    let msg = TiffStack::open(dir.path())
        .expect_err("malformed")
        .to_string();
    assert!(
        msg.contains("z00.tif") && msg.contains("not a readable TIFF"),
        "{msg}"
    );
}

#[test]
fn truncated_files_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = opts(300, 200, 1, SampleType::U8, TileCompression::Lzw);
    write_sample(dir.path(), &o).expect("write");
    let p = dir.path().join("z01.tif");
    let full = std::fs::read(&p).expect("read");
    // Cut in the middle of the tiles (the directory is gone), and just before the directory end.
    for keep in [full.len() / 2, full.len() - 3, 10, 3] {
        std::fs::write(&p, &full[..keep]).expect("truncate");
        let e = TiffStack::open(dir.path()).expect_err("truncated");
        let msg = e.to_string();
        assert!(msg.contains("z01.tif"), "{msg}");
    }
    // Directory intact but tile data past the end of the file.
    let (e, _) = find_entry(&full, 324).expect("offsets");
    let at = u32::from_le_bytes(full[e + 8..e + 12].try_into().expect("4")) as usize;
    let mut lying = full.clone();
    lying[at..at + 4].copy_from_slice(&(full.len() as u32 - 2).to_le_bytes());
    std::fs::write(&p, &lying).expect("write");
    let msg = TiffStack::open(dir.path())
        .expect_err("past end")
        .to_string();
    assert!(
        msg.contains("z01.tif") && msg.contains("past the end"),
        "{msg}"
    );
}

#[test]
fn hostile_sizes_and_bombs_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Tiles claiming 65536 x 65536 pixels: 4 GiB each, refused before decoding.
    let spec = TiledTiffSpec {
        width: 65_536,
        height: 65_536,
        channels: 1,
        sample_type: SampleType::U8,
        tile_width: 65_536,
        tile_height: 65_536,
        compression: TileCompression::Deflate,
        pixel_size_um: None,
        bigtiff: false,
        jpeg_tables: None,
    };
    let p = dir.path().join("huge.tif");
    let mut w = TiledTiffWriter::create(&p, spec).expect("create");
    w.write_encoded_tile(
        &TileCompression::Deflate
            .encode(&[0u8; 1000])
            .expect("deflate"),
    )
    .expect("tile");
    w.finish().expect("finish");
    let msg = TiffStack::open_paths(std::slice::from_ref(&p), TiffOptions::default())
        .expect_err("huge")
        .to_string();
    assert!(
        msg.contains("huge.tif") && msg.contains("max_tile_bytes"),
        "{msg}"
    );

    // A bomb: 64 MiB of zeros deflated into a 64 x 64 tile; only the tile's 4 KiB are decoded.
    let spec = TiledTiffSpec {
        width: 64,
        height: 64,
        tile_width: 64,
        tile_height: 64,
        ..TiledTiffSpec {
            width: 0,
            height: 0,
            channels: 1,
            sample_type: SampleType::U8,
            tile_width: 0,
            tile_height: 0,
            compression: TileCompression::Deflate,
            pixel_size_um: None,
            bigtiff: false,
            jpeg_tables: None,
        }
    };
    let p = dir.path().join("bomb.tif");
    let mut w = TiledTiffWriter::create(&p, spec).expect("create");
    let bomb = TileCompression::Deflate
        .encode(&vec![0u8; 64 << 20])
        .expect("deflate");
    w.write_encoded_tile(&bomb).expect("tile");
    w.finish().expect("finish");
    let mut s = TiffStack::open_paths(&[p], TiffOptions::default()).expect("open bomb");
    let mut out = vec![1u8; 64 * 64];
    s.read_band(0, 0, 64, &mut out).expect("bounded decode");
    assert!(out.iter().all(|&v| v == 0));

    // Out-of-range band requests are errors.
    assert!(s.read_band(0, 60, 10, &mut [0u8; 640]).is_err());
    assert!(s.read_band(1, 0, 1, &mut [0u8; 64]).is_err());
    assert!(s.read_band(0, 0, 1, &mut [0u8; 63]).is_err());
}

/// Random corruption of small files of every compression never panics: opening or reading is
/// either fine or an error.
#[test]
fn corrupted_bytes_never_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let comps = [
        TileCompression::None,
        TileCompression::Lzw,
        TileCompression::Deflate,
        TileCompression::PackBits,
        TileCompression::Zstd(1),
    ];
    let mut x = 0x1234_5678u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for c in comps {
        let o = SampleOptions {
            planes: 1,
            in_focus_plane: 0,
            ..opts(80, 50, 3, SampleType::U8, c)
        };
        let d = dir.path().join(format!("{c:?}"));
        write_sample(&d, &o).expect("write");
        let p = d.join("z00.tif");
        let clean = std::fs::read(&p).expect("read");
        for _ in 0..150 {
            let mut bytes = clean.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = next() as u8;
            }
            std::fs::write(&p, &bytes).expect("write");
            if let Ok(mut s) =
                TiffStack::open_paths(std::slice::from_ref(&p), TiffOptions::default())
            {
                let info = s.info().clone();
                if u64::from(info.height) * info.row_bytes() as u64 <= 1 << 20 {
                    let mut buf = vec![0u8; info.height as usize * info.row_bytes()];
                    let _ = s.read_band(0, 0, info.height, &mut buf);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Any split of a plane into bands reads the same pixels.
    #[test]
    fn random_band_splits(
        tile in prop::sample::select(vec![16u32, 32, 48, 64]),
        rgb in any::<bool>(),
        cuts in prop::collection::vec(1u32..60, 1..12),
    ) {
        let o = SampleOptions {
            planes: 2,
            in_focus_plane: 0,
            tile,
            ..opts(70, 97, if rgb { 3 } else { 1 }, SampleType::U8, TileCompression::Lzw)
        };
        let dir = tempfile::tempdir().expect("tempdir");
        write_sample(dir.path(), &o).expect("write");
        let mut s = TiffStack::open(dir.path()).expect("open");
        let mut truth = SyntheticStack::new(o.clone()).expect("synthetic");
        let rb = s.info().row_bytes();
        for z in [1u32, 0] {
            let want = read_plane(&mut truth, z, 97);
            let mut y = 0u32;
            let mut i = 0;
            while y < 97 {
                let rows = cuts[i % cuts.len()].min(97 - y);
                let mut buf = vec![0u8; rows as usize * rb];
                s.read_band(z, y, rows, &mut buf).expect("band");
                prop_assert!(buf[..] == want[y as usize * rb..(y + rows) as usize * rb]);
                y += rows;
                i += 1;
            }
        }
    }
}

#[test]
fn sample_refuses_folders_with_other_tiffs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = opts(64, 64, 1, SampleType::U8, TileCompression::None);
    write_sample(dir.path(), &o).expect("first");
    write_sample(dir.path(), &o).expect("same sample again");
    let fewer = SampleOptions {
        planes: 2,
        in_focus_plane: 0,
        ..o
    };
    let msg = write_sample(dir.path(), &fewer)
        .expect_err("stale plane")
        .to_string();
    assert!(msg.contains("z02.tif"), "{msg}");
}

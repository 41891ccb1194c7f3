//! Regenerates the binary seeds under `inputs/` (TIFF files, image files, archives) with the
//! project's writers and the `tiff` crate's encoder:
//! `cargo test --manifest-path fuzz/Cargo.toml --target-dir target/fuzz --test seeds -- --ignored`.
//! Text seeds (`bids_text`, `http_request`) are written by hand.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_store::{Bytes, OzxOptions, OzxWriter, PosixStore, StoreKey, WritableStore, block_on};
use strata_zstack::{Layout, SampleType, TileCompression, TiledTiffSpec, TiledTiffWriter};
use tiff::encoder::{Compression, DeflateLevel};
use tiff::encoder::{Predictor, TiffEncoder, colortype};
use tiff::tags::ResolutionUnit;

fn inputs(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("inputs")
        .join(target);
    std::fs::create_dir_all(&dir).expect("inputs folder");
    dir
}

fn pixels(n: usize) -> Vec<u16> {
    (0..n).map(|i| ((i * 37) % 251) as u16 * 200).collect()
}

/// A stripped TIFF written by the `tiff` crate.
fn stripped(path: &Path, channels: u32, sixteen: bool, compression: Compression, big: bool) {
    let (w, h) = (23u32, 17u32);
    let vals = pixels((w * h * channels) as usize);
    let file = std::fs::File::create(path).expect("create");
    macro_rules! write {
        ($enc:expr, $ct:ty, $data:expr) => {{
            let mut enc = $enc.with_compression(compression);
            if matches!(compression, Compression::Lzw) {
                enc = enc.with_predictor(Predictor::Horizontal);
            }
            let mut img = enc.new_image::<$ct>(w, h).expect("image");
            img.rows_per_strip(5).expect("rows per strip");
            img.resolution(
                ResolutionUnit::Centimeter,
                tiff::encoder::Rational { n: 20_000, d: 1 },
            );
            img.write_data($data).expect("write");
        }};
    }
    let bytes: Vec<u8> = vals.iter().map(|v| (v >> 8) as u8).collect();
    match (channels, sixteen, big) {
        (1, false, false) => write!(
            TiffEncoder::new(file).expect("enc"),
            colortype::Gray8,
            &bytes
        ),
        (1, true, false) => write!(
            TiffEncoder::new(file).expect("enc"),
            colortype::Gray16,
            &vals
        ),
        (3, false, false) => write!(
            TiffEncoder::new(file).expect("enc"),
            colortype::RGB8,
            &bytes
        ),
        (3, true, false) => write!(
            TiffEncoder::new(file).expect("enc"),
            colortype::RGB16,
            &vals
        ),
        (1, false, true) => write!(
            TiffEncoder::new_big(file).expect("enc"),
            colortype::Gray8,
            &bytes
        ),
        _ => write!(
            TiffEncoder::new_big(file).expect("enc"),
            colortype::Gray16,
            &vals
        ),
    }
}

/// A tiled TIFF written by the converter's own writer.
fn tiled(path: &Path, channels: u32, sample: SampleType, compression: TileCompression, big: bool) {
    let spec = TiledTiffSpec {
        width: 40,
        height: 20,
        channels,
        sample_type: sample,
        tile_width: 16,
        tile_height: 16,
        compression,
        pixel_size_um: Some(0.5),
        bigtiff: big,
        jpeg_tables: None,
    };
    let (across, down) = spec.tiles();
    let tile = spec.tile_bytes();
    let mut w = TiledTiffWriter::create(path, spec).expect("create");
    for t in 0..across * down {
        let raw: Vec<u8> = (0..tile)
            .map(|i| ((i * 7 + t as usize * 13) % 256) as u8)
            .collect();
        if compression == TileCompression::Jpeg {
            let mut jpeg = Vec::new();
            let color = if channels == 3 {
                jpeg_encoder::ColorType::Rgb
            } else {
                jpeg_encoder::ColorType::Luma
            };
            jpeg_encoder::Encoder::new(&mut jpeg, 80)
                .encode(&raw, 16, 16, color)
                .expect("jpeg");
            w.write_encoded_tile(&jpeg).expect("tile");
        } else {
            w.write_tile(&raw).expect("tile");
        }
    }
    w.finish().expect("finish");
}

#[test]
#[ignore = "rewrites the committed seeds"]
fn tiff_stack_seeds() {
    let dir = inputs("tiff_stack");
    stripped(
        &dir.join("strip_gray8.tif"),
        1,
        false,
        Compression::Uncompressed,
        false,
    );
    stripped(
        &dir.join("strip_gray16_lzw.tif"),
        1,
        true,
        Compression::Lzw,
        false,
    );
    stripped(
        &dir.join("strip_rgb8_deflate.tif"),
        3,
        false,
        Compression::Deflate(DeflateLevel::Fast),
        false,
    );
    stripped(
        &dir.join("strip_rgb16_packbits.tif"),
        3,
        true,
        Compression::Packbits,
        false,
    );
    stripped(
        &dir.join("strip_big_gray8.tif"),
        1,
        false,
        Compression::Uncompressed,
        true,
    );
    stripped(
        &dir.join("strip_big_gray16_lzw.tif"),
        1,
        true,
        Compression::Lzw,
        true,
    );
    tiled(
        &dir.join("tile_gray8.tif"),
        1,
        SampleType::U8,
        TileCompression::None,
        false,
    );
    tiled(
        &dir.join("tile_gray8_deflate.tif"),
        1,
        SampleType::U8,
        TileCompression::Deflate,
        false,
    );
    tiled(
        &dir.join("tile_gray16_zstd.tif"),
        1,
        SampleType::U16,
        TileCompression::Zstd(3),
        false,
    );
    tiled(
        &dir.join("tile_rgb8_lzw.tif"),
        3,
        SampleType::U8,
        TileCompression::Lzw,
        false,
    );
    tiled(
        &dir.join("tile_gray16_packbits_big.tif"),
        1,
        SampleType::U16,
        TileCompression::PackBits,
        true,
    );
    tiled(
        &dir.join("tile_gray8_jpeg.tif"),
        1,
        SampleType::U8,
        TileCompression::Jpeg,
        false,
    );
    tiled(
        &dir.join("tile_rgb8_jpeg.tif"),
        3,
        SampleType::U8,
        TileCompression::Jpeg,
        false,
    );
}

#[test]
#[ignore = "rewrites the committed seeds"]
fn zarr_image_seeds() {
    let dir = inputs("zarr_image");
    let image = strata_fuzz::zarr_image_template();
    let read = |rel: &str| std::fs::read(image.join(rel)).expect("template file");
    let seed = |name: &str, which: u8, bytes: Vec<u8>| {
        let mut data = vec![which];
        data.extend(bytes);
        std::fs::write(dir.join(name), data).expect("seed");
    };
    seed("group.bin", 3, read("zarr.json"));
    for level in 0u8..3 {
        let shard = std::fs::read_dir(image.join(level.to_string()))
            .expect("level")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with('c'))
            .expect("shard");
        let shard = read(&format!("{level}/{shard}"));
        seed(
            &format!("level{level}_shard.bin"),
            level << 2,
            shard.clone(),
        );
        seed(
            &format!("level{level}_shard_crc.bin"),
            (level << 2) | 1,
            shard,
        );
        seed(
            &format!("level{level}_zarr.bin"),
            (level << 2) | 2,
            read(&format!("{level}/zarr.json")),
        );
    }
}

#[test]
#[ignore = "rewrites the committed seeds"]
fn ozx_reader_seeds() {
    let dir = inputs("ozx_reader");
    let work = tempfile::tempdir().expect("tempdir");
    // A converted image, as `strata convert --layout ozx` writes it.
    let image = strata_fuzz::template::convert_template(work.path(), "0001", Layout::Ozx);
    std::fs::copy(&image, dir.join("image.ozx")).expect("copy");
    // Archives written entry by entry.
    let store = Arc::new(PosixStore::create(work.path(), Default::default()).expect("store"));
    let archive = |name: &str, entries: &[(&str, &[u8])]| {
        let key = StoreKey::new(name).expect("key");
        let w = block_on(OzxWriter::create(
            store.as_ref(),
            &key,
            OzxOptions::default(),
        ))
        .expect("writer");
        for (k, v) in entries {
            let k = StoreKey::new(*k).expect("key");
            block_on(w.put(&k, Bytes::copy_from_slice(v))).expect("put");
        }
        block_on(w.finish()).expect("finish");
        std::fs::copy(work.path().join(name), dir.join(name)).expect("copy");
    };
    archive("empty.ozx", &[]);
    archive(
        "entries.ozx",
        &[
            (
                "zarr.json",
                br#"{"zarr_format":3,"node_type":"group","attributes":{}}"#,
            ),
            ("a/zarr.json", br#"{"zarr_format":3,"node_type":"group"}"#),
            ("a/b/data.bin", b"0123456789abcdef"),
            ("empty", b""),
        ],
    );
}

//! Region reads equal the source pixels and an independent zarrs read of the same arrays,
//! on a folder, an `.ozx` archive and object storage; bad requests and hostile images give
//! named errors.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod common;

use proptest::prelude::*;
use strata_access::{Error, Image, ImageOptions, Region};
use strata_zstack::{Layout, MemorySource, SampleType, StackInfo};
use zarrs::array::{Array, ArraySubset};
use zarrs::filesystem::FilesystemStore;

/// A stack whose sample at (channel, plane, row, column) is known without reading it back.
struct Stack {
    width: u32,
    height: u32,
    planes: u32,
    channels: u32,
    sample: SampleType,
}

impl Stack {
    fn value(&self, c: u64, z: u64, y: u64, x: u64) -> u64 {
        let v = x * 3 + y * 5 + z * 11 + c * 17 + (x * y) % 7;
        match self.sample {
            SampleType::U8 => v % 256,
            SampleType::U16 => (v * 131) % 65536,
        }
    }

    fn source(&self) -> MemorySource {
        let info = StackInfo {
            width: self.width,
            height: self.height,
            planes: self.planes,
            channels: self.channels,
            sample_type: self.sample,
            pixel_size: None,
            plane_names: (0..self.planes).map(|z| format!("z{z}.tif")).collect(),
        };
        let planes = (0..u64::from(self.planes))
            .map(|z| {
                let mut plane = Vec::new();
                for y in 0..u64::from(self.height) {
                    for x in 0..u64::from(self.width) {
                        for c in 0..u64::from(self.channels) {
                            let v = self.value(c, z, y, x);
                            match self.sample {
                                SampleType::U8 => plane.push(v as u8),
                                SampleType::U16 => {
                                    plane.extend_from_slice(&(v as u16).to_ne_bytes())
                                }
                            }
                        }
                    }
                }
                plane
            })
            .collect();
        MemorySource::new(info, planes).expect("stack")
    }

    /// The expected bytes of a level-0 region (c, z, y, x ranges).
    fn expected(&self, r: &Region) -> Vec<u8> {
        let g = r.ranges();
        let mut out = Vec::new();
        for c in g[0].clone() {
            for z in g[1].clone() {
                for y in g[2].clone() {
                    for x in g[3].clone() {
                        let v = self.value(c, z, y, x);
                        match self.sample {
                            SampleType::U8 => out.push(v as u8),
                            SampleType::U16 => out.extend_from_slice(&(v as u16).to_ne_bytes()),
                        }
                    }
                }
            }
        }
        out
    }
}

const GRAY: Stack = Stack {
    width: 700,
    height: 600,
    planes: 3,
    channels: 1,
    sample: SampleType::U8,
};

/// Converts `stack` under `root` (pixels of 0.5 um) and returns the image's path.
fn convert_to(root: &Path, stack: &Stack, layout: Layout) -> PathBuf {
    common::convert_to(root, &mut stack.source(), layout, 0.5)
}

fn open(path: &Path) -> Image {
    Image::open(path.to_str().expect("utf-8 path")).expect("open image")
}

/// The same region read by zarrs straight from the folder.
fn zarrs_read(folder: &Path, level: usize, r: &Region) -> Vec<u8> {
    let store = Arc::new(FilesystemStore::new(folder).expect("fs store"));
    let array = Array::open(store, &format!("/{level}")).expect("zarrs open");
    let ranges: Vec<Range<u64>> = r.ranges().to_vec();
    let subset = ArraySubset::new_with_ranges(&ranges);
    let bytes: zarrs::array::ArrayBytes<'static> =
        array.retrieve_array_subset(&subset).expect("zarrs read");
    bytes.into_fixed().expect("fixed").into_owned()
}

#[test]
fn level_zero_equals_the_source_in_every_layout_and_type() {
    let rgb = Stack {
        channels: 3,
        ..GRAY
    };
    let wide = Stack {
        sample: SampleType::U16,
        ..GRAY
    };
    for stack in [&GRAY, &rgb, &wide] {
        for layout in [Layout::Folder, Layout::Ozx] {
            let dir = tempfile::tempdir().expect("tempdir");
            let img = open(&convert_to(dir.path(), stack, layout));
            assert_eq!(img.planes(), 3);
            assert_eq!(img.channels(), u64::from(stack.channels));
            assert_eq!(img.pixel_size(), Some(vec![0.5, 0.5, 2.0]));
            assert!(img.provenance().is_some());
            let l0 = img.level(0).expect("level 0").clone();
            assert_eq!(l0.shape, vec![u64::from(stack.channels), 3, 600, 700]);
            assert_eq!(l0.chunk_shape[2..], [128, 128]);
            let c = u64::from(stack.channels);
            for r in [
                Region::czyx(0..c, 0..3, 0..600, 0..700),
                Region::czyx(0..1, 1..2, 5..517, 3..515),
                Region::czyx(c - 1..c, 2..3, 599..600, 0..700),
                Region::czyx(0..c, 0..3, 127..129, 255..257),
                Region::czyx(0..1, 0..1, 10..10, 0..5),
            ] {
                assert_eq!(
                    img.read_region(0, &r).expect("read"),
                    stack.expected(&r),
                    "{r} of {layout:?}"
                );
            }
        }
    }
}

#[test]
fn a_caller_buffer_and_the_cache_give_the_same_pixels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = convert_to(dir.path(), &GRAY, Layout::Folder);
    let budget = 3 * 128 * 128;
    let img = Image::open_with(
        path.to_str().expect("utf-8"),
        ImageOptions::default().cache_bytes(budget),
    )
    .expect("open");
    let r = Region::czyx(0..1, 1..2, 100..300, 50..250);
    let mut buf = vec![0u8; 200 * 200];
    for _ in 0..3 {
        img.read_region_into(0, &r, &mut buf).expect("read");
        assert_eq!(buf, GRAY.expected(&r));
        assert!(img.cached_bytes() <= budget);
    }
    assert!(img.cached_bytes() > 0);
    let mut short = vec![0u8; 10];
    assert!(matches!(
        img.read_region_into(0, &r, &mut short),
        Err(Error::Buffer {
            want: 40000,
            got: 10,
            ..
        })
    ));
}

#[test]
fn many_threads_read_one_image_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = Arc::new(open(&convert_to(dir.path(), &GRAY, Layout::Ozx)));
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let img = Arc::clone(&img);
            s.spawn(move || {
                for i in 0..20u64 {
                    let (y, x) = ((t * 37 + i * 53) % 400, (t * 71 + i * 29) % 500);
                    let r = Region::czyx(0..1, i % 3..i % 3 + 1, y..y + 200, x..x + 200);
                    assert_eq!(img.read_region(0, &r).expect("read"), GRAY.expected(&r));
                }
            });
        }
    });
}

fn arb_region(shape: Vec<u64>) -> impl Strategy<Value = Region> {
    shape
        .into_iter()
        .map(|n| (0..n).prop_flat_map(move |a| (Just(a), a + 1..=n)))
        .collect::<Vec<_>>()
        .prop_map(|r| Region::new(r.into_iter().map(|(a, b)| a..b).collect()))
}

#[test]
fn random_regions_of_every_level_match_zarrs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = convert_to(dir.path(), &GRAY, Layout::Folder);
    let ozx_dir = tempfile::tempdir().expect("tempdir");
    let archive = open(&convert_to(ozx_dir.path(), &GRAY, Layout::Ozx));
    let img = open(&folder);
    assert_eq!(img.levels().len(), archive.levels().len());
    for level in 0..img.levels().len() {
        let shape = img.level(level).expect("level").shape.clone();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(24));
        runner
            .run(&arb_region(shape), |r| {
                let want = zarrs_read(&folder, level, &r);
                prop_assert_eq!(&img.read_region(level, &r).expect("folder read"), &want);
                prop_assert_eq!(&archive.read_region(level, &r).expect("ozx read"), &want);
                Ok(())
            })
            .expect("regions agree");
    }
}

#[test]
fn bad_requests_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = open(&convert_to(dir.path(), &GRAY, Layout::Folder));
    let levels = img.levels().len();
    match img.read_region(levels, &Region::czyx(0..1, 0..1, 0..1, 0..1)) {
        Err(e @ Error::NoSuchLevel { .. }) => {
            assert!(e.to_string().contains(&format!("no level {levels}")), "{e}");
        }
        other => panic!("expected NoSuchLevel, got {other:?}"),
    }
    for r in [
        Region::czyx(0..1, 0..1, 0..601, 0..1),
        Region::new(vec![0..1, Range { start: 2, end: 1 }, 0..1, 0..1]),
        Region::new(vec![0..1, 0..1]),
    ] {
        assert!(
            matches!(
                img.read_region(0, &r),
                Err(Error::OutOfBounds { level: 0, .. })
            ),
            "{r}"
        );
    }
    let small =
        Image::open_with(img.name(), ImageOptions::default().max_region_bytes(1000)).expect("open");
    assert!(matches!(
        small.read_region(0, &Region::czyx(0..1, 0..1, 0..100, 0..100)),
        Err(Error::TooLarge {
            bytes: 10000,
            limit: 1000,
            ..
        })
    ));
    for bad in ["", "http://x/y", "/nonexistent/x.ome.zarr"] {
        assert!(
            matches!(Image::open(bad), Err(Error::Location { .. })),
            "{bad}"
        );
    }
}

#[test]
fn hostile_images_give_errors_not_panics() {
    // A truncated shard: the index (at the end) is gone.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = convert_to(dir.path(), &GRAY, Layout::Folder);
    let shard = path.join("0/c.0.0.0.0");
    let len = std::fs::metadata(&shard).expect("shard").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    let img = open(&path);
    match img.read_region(0, &Region::czyx(0..1, 0..1, 0..10, 0..10)) {
        Err(Error::Chunk {
            level: 0, chunk, ..
        }) => assert_eq!(chunk, vec![0, 0, 0, 0]),
        other => panic!("expected a chunk error, got {other:?}"),
    }
    // Other levels are intact.
    assert!(
        img.read_region(1, &Region::czyx(0..1, 0..1, 0..10, 0..10))
            .is_ok()
    );

    // An index entry pointing past the end of the shard.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = convert_to(dir.path(), &GRAY, Layout::Folder);
    let shard = path.join("1/c.0.0.0.0");
    let mut bytes = std::fs::read(&shard).expect("shard");
    let chunks = 3 * 3 * 3; // 3 planes of 3 x 3 inner chunks at level 1 (300 x 350)
    let index_at = bytes.len() - (chunks * 16 + 4);
    bytes[index_at..index_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&shard, bytes).expect("write");
    let img = open(&path);
    assert!(matches!(
        img.read_region(1, &Region::czyx(0..1, 0..1, 0..10, 0..10)),
        Err(Error::Chunk { level: 1, .. })
    ));

    // A huge declared shape: refused at open by the index limit, nothing allocated for it.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = convert_to(dir.path(), &GRAY, Layout::Folder);
    strata_testkit::edit_json(&path.join("0/zarr.json"), |v| {
        v["shape"] = serde_json::json!([1, 3, 1u64 << 40, 1u64 << 40]);
        v["chunk_grid"]["configuration"]["chunk_shape"] =
            serde_json::json!([1, 3, 1u64 << 40, 1u64 << 40]);
    });
    match Image::open(path.to_str().expect("utf-8")) {
        Err(e @ Error::Metadata { .. }) => assert!(e.to_string().contains("level 0"), "{e}"),
        other => panic!("expected a metadata error, got {other:?}"),
    }

    // Metadata that is not JSON.
    std::fs::write(path.join("zarr.json"), b"{not json").expect("write");
    assert!(matches!(
        Image::open(path.to_str().expect("utf-8")),
        Err(Error::Metadata { .. })
    ));
}

#[test]
fn images_in_object_storage_read_like_local_ones() {
    let Some((_, bucket)) = strata_testkit::s3_bucket("strata-access", "reads from object storage")
    else {
        return;
    };
    let folder_dir = tempfile::tempdir().expect("tempdir");
    let folder = convert_to(folder_dir.path(), &GRAY, Layout::Folder);
    let ozx_dir = tempfile::tempdir().expect("tempdir");
    let archive = convert_to(ozx_dir.path(), &GRAY, Layout::Ozx);
    let options = strata_store::StageOptions::default();
    for (dir, prefix) in [(&folder_dir, "folder"), (&ozx_dir, "ozx")] {
        let src = strata_store::StoreUrl::File(dir.path().to_owned());
        let dst: strata_store::StoreUrl = format!("s3://{bucket}/{prefix}").parse().expect("url");
        strata_store::block_on(strata_store::stage_urls(&src, &dst, &options)).expect("stage");
    }
    let rel = |p: &Path, d: &Path| p.strip_prefix(d).expect("inside").display().to_string();
    let remote_folder = Image::open(&format!(
        "s3://{bucket}/folder/{}",
        rel(&folder, folder_dir.path())
    ))
    .expect("open S3 folder image");
    let remote_archive = Image::open(&format!(
        "s3://{bucket}/ozx/{}",
        rel(&archive, ozx_dir.path())
    ))
    .expect("open S3 .ozx image");
    for img in [&remote_folder, &remote_archive] {
        assert_eq!(img.pixel_size(), Some(vec![0.5, 0.5, 2.0]));
        for level in 0..img.levels().len() {
            let shape = img.level(level).expect("level").shape.clone();
            let r = Region::czyx(0..1, 1..3, shape[2] / 3..shape[2], 7..shape[3] / 2);
            assert_eq!(
                img.read_region(level, &r).expect("S3 read"),
                zarrs_read(&folder, level, &r),
                "{} level {level}",
                img.name()
            );
        }
    }
    assert!(matches!(
        Image::open(&format!("s3://{bucket}/nothing/x.ome.zarr")),
        Err(Error::Metadata { .. } | Error::Store { .. })
    ));
}

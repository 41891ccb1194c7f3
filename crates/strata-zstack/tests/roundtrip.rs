//! Pixels written by the converter read back equal through zarrs (an independent Zarr v3
//! reader with its own sharding codec), level 1 equals the 2 x 2 mean, the dataset is valid
//! BIDS, and conversions are deterministic.

use std::path::Path;
use strata_bids::name::{Label, Suffix};
use strata_zstack::{
    Compression, ConvertOptions, ImageOptions, MemorySource, NoHook, PixelSize, SampleType,
    Section, StackInfo, ZStackSource, convert,
};

mod common;
use common::read_level;

fn stack(w: u32, h: u32, planes: u32, channels: u32, st: SampleType) -> (StackInfo, Vec<Vec<u8>>) {
    let info = common::stack_info((w, h, planes), channels, st, |z| format!("plane{z:02}.tif"));
    let n = (w * h * channels) as usize;
    let planes: Vec<Vec<u8>> = (0..planes)
        .map(|z| {
            let mut seed = 0x9E37_79B9u32.wrapping_mul(z + 1);
            let samples: Vec<u16> = (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u16
                })
                .collect();
            match st {
                SampleType::U8 => samples.iter().map(|&v| v as u8).collect(),
                SampleType::U16 => samples.iter().flat_map(|v| v.to_ne_bytes()).collect(),
            }
        })
        .collect();
    (info, planes)
}

fn section(root: &Path) -> Section {
    Section {
        bids_root: root.to_owned(),
        subject: Label::new("sub", "BB01").expect("label"),
        session: None,
        sample: Label::new("sample", "0007").expect("label"),
        stain: Some(Label::new("stain", "HE").expect("label")),
        suffix: Suffix::BF,
    }
}

fn options(chunk: u32) -> ConvertOptions {
    segmented(chunk, None)
}

/// Options with column segments of `segment_chunks` inner chunks (`None`: the default).
fn segmented(chunk: u32, segment_chunks: Option<u32>) -> ConvertOptions {
    ConvertOptions {
        image: ImageOptions {
            chunk,
            compression: Compression::Zstd(3),
            planes_per_shard: None,
            segment_chunks,
        },
        pixel_size: Some(PixelSize {
            x: 0.25,
            y: 0.25,
            z: 2.0,
        }),
        ..ConvertOptions::default()
    }
}

/// Sample `(c, y, x)` of an interleaved plane as u64.
fn sample(plane: &[u8], info: &StackInfo, w: usize, c: usize, y: usize, x: usize) -> u64 {
    let ch = info.channels as usize;
    let i = (y * w + x) * ch + c;
    match info.sample_type {
        SampleType::U8 => u64::from(plane[i]),
        SampleType::U16 => u64::from(u16::from_ne_bytes([plane[2 * i], plane[2 * i + 1]])),
    }
}

/// The 2 x 2 mean (rounded half up) of an interleaved plane, as the converter defines it.
fn mean2(plane: &[u8], info: &StackInfo, w: usize, h: usize) -> Vec<Vec<Vec<u64>>> {
    let (ow, oh) = (w.div_ceil(2), h.div_ceil(2));
    (0..info.channels as usize)
        .map(|c| {
            (0..oh)
                .map(|y| {
                    (0..ow)
                        .map(|x| {
                            let mut s = 0;
                            let mut n = 0;
                            for yy in 2 * y..(2 * y + 2).min(h) {
                                for xx in 2 * x..(2 * x + 2).min(w) {
                                    s += sample(plane, info, w, c, yy, xx);
                                    n += 1;
                                }
                            }
                            (s + n / 2) / n
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// The 2 x 2 mean (rounded half up) of one channel's grid.
fn mean_grid(grid: &[Vec<u64>]) -> Vec<Vec<u64>> {
    let (h, w) = (grid.len(), grid[0].len());
    (0..h.div_ceil(2))
        .map(|y| {
            (0..w.div_ceil(2))
                .map(|x| {
                    let cells: Vec<u64> = (2 * y..(2 * y + 2).min(h))
                        .flat_map(|yy| (2 * x..(2 * x + 2).min(w)).map(move |xx| grid[yy][xx]))
                        .collect();
                    let n = cells.len() as u64;
                    (cells.iter().sum::<u64>() + n / 2) / n
                })
                .collect()
        })
        .collect()
}

/// Converts a random stack read in column segments of `seg` chunks, with `pps` planes per
/// shard, and checks every pixel of every level read back by zarrs.
fn check_roundtrip(
    (w, h, planes): (u32, u32, u32),
    channels: u32,
    st: SampleType,
    chunk: u32,
    seg: Option<u32>,
) {
    check_sharded((w, h, planes), channels, st, chunk, seg, None);
}

fn check_sharded(
    (w, h, planes): (u32, u32, u32),
    channels: u32,
    st: SampleType,
    chunk: u32,
    seg: Option<u32>,
    pps: Option<u32>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (info, data) = stack(w, h, planes, channels, st);
    let mut source = MemorySource::new(info.clone(), data.clone()).expect("source");
    let mut opts = segmented(chunk, seg);
    opts.image.planes_per_shard = pps;
    let summary = convert(&mut source, &section(dir.path()), &opts, &mut NoHook).expect("convert");
    if let Some(pps) = pps {
        for level in &summary.arrays.levels {
            assert_eq!(level.shards, planes.div_ceil(pps), "{level:?}");
        }
    }
    let image = &summary.output;
    let (wu, hu) = (w as usize, h as usize);

    let (shape, level0) = read_level(image, 0, st);
    assert_eq!(
        shape,
        [
            u64::from(channels),
            u64::from(planes),
            u64::from(h),
            u64::from(w)
        ]
    );
    let mut i = 0;
    for c in 0..channels as usize {
        for (z, plane) in data.iter().enumerate() {
            for y in 0..hu {
                for x in 0..wu {
                    assert_eq!(
                        level0[i],
                        sample(plane, &info, wu, c, y, x),
                        "c{c} z{z} y{y} x{x}"
                    );
                    i += 1;
                }
            }
        }
    }
    // Every lower level is the 2 x 2 mean of the level above, as stored.
    let mut expected: Vec<Vec<Vec<Vec<u64>>>> =
        data.iter().map(|p| mean2(p, &info, wu, hu)).collect();
    for level in 1..summary.arrays.levels.len() {
        let (shape, values) = read_level(image, level, st);
        let (oh, ow) = (expected[0][0].len(), expected[0][0][0].len());
        assert_eq!(shape[1..], [u64::from(planes), oh as u64, ow as u64]);
        let mut i = 0;
        for c in 0..channels as usize {
            for (z, m) in expected.iter().enumerate() {
                for (y, row) in m[c].iter().enumerate() {
                    for (x, want) in row.iter().enumerate() {
                        assert_eq!(values[i], *want, "level {level} c{c} z{z} y{y} x{x}");
                        i += 1;
                    }
                }
            }
        }
        for m in &mut expected {
            for grid in m.iter_mut() {
                *grid = mean_grid(grid);
            }
        }
    }
    let report = strata_bids::validate::validate(dir.path()).expect("validate");
    assert!(!report.has_errors(), "{:#?}", report.issues);
}

#[test]
fn gray8_with_odd_edges() {
    // Column segments of one chunk: 128 x 5 + 60.
    check_roundtrip((700, 530, 3), 1, SampleType::U8, 128, Some(1));
    check_roundtrip((700, 530, 3), 1, SampleType::U8, 128, None);
}

#[test]
fn several_shards_per_level_and_a_deep_pyramid() {
    // 5 planes in shards of 2 (the last holds one); 4 levels down to one 64 x 64 chunk, so
    // pyramid bands of one plane are still being encoded when the next plane starts.
    check_sharded((520, 390, 5), 1, SampleType::U8, 64, Some(2), Some(2));
    check_sharded((520, 390, 5), 1, SampleType::U8, 64, None, Some(3));
}

#[test]
fn rgb8() {
    check_roundtrip((300, 260, 2), 3, SampleType::U8, 128, Some(1));
}

#[test]
fn gray16() {
    // Segments of 192 and an odd 65.
    check_roundtrip((257, 300, 2), 1, SampleType::U16, 64, Some(3));
}

#[test]
fn single_chunk_image_has_one_level() {
    check_roundtrip((100, 90, 4), 1, SampleType::U8, 512, None);
}

/// A source that reads whole rows only (no regions), as a stripped TIFF does.
struct RowsOnly(MemorySource);

impl ZStackSource for RowsOnly {
    fn info(&self) -> &StackInfo {
        self.0.info()
    }

    fn read_band(
        &mut self,
        plane: u32,
        y0: u32,
        rows: u32,
        out: &mut [u8],
    ) -> strata_zstack::Result<()> {
        self.0.read_band(plane, y0, rows, out)
    }
}

/// Every file of a published image's levels (not the group metadata), by relative path.
fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    strata_testkit::files(root)
        .into_iter()
        .filter(|f| f.parent() != Some(root))
        .map(|f| {
            let name = f.strip_prefix(root).expect("prefix").display().to_string();
            let bytes = std::fs::read(&f).expect("read");
            (name, bytes)
        })
        .collect()
}

#[test]
fn column_segments_write_the_same_bytes_as_whole_rows() {
    for (w, h, channels, st, chunk) in [
        (1000, 700, 1, SampleType::U8, 64),
        (333, 260, 3, SampleType::U16, 32),
    ] {
        let (info, data) = stack(w, h, 3, channels, st);
        let convert_with = |seg: Option<u32>, rows_only: bool| {
            let dir = tempfile::tempdir().expect("tempdir");
            let memory = MemorySource::new(info.clone(), data.clone()).expect("source");
            let mut source: Box<dyn ZStackSource> = if rows_only {
                Box::new(RowsOnly(memory))
            } else {
                Box::new(memory)
            };
            let s = convert(
                &mut *source,
                &section(dir.path()),
                &segmented(chunk, seg),
                &mut NoHook,
            )
            .expect("convert");
            files(&s.output)
        };
        let whole = convert_with(None, true);
        assert!(whole.len() >= 6, "levels: {whole:?}");
        for seg in [Some(1), Some(2), Some(5), None] {
            assert!(
                convert_with(seg, false) == whole,
                "{w} x {h}, {channels} channels: segments of {seg:?} chunks differ from whole rows"
            );
        }
    }
}

#[test]
fn deterministic_and_inode_frugal() {
    let (info, data) = stack(1100, 1000, 5, 1, SampleType::U8);
    let mut shards = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut source = MemorySource::new(info.clone(), data.clone()).expect("source");
        let s = convert(
            &mut source,
            &section(dir.path()),
            &options(256),
            &mut NoHook,
        )
        .expect("convert");
        assert_eq!(s.arrays.levels.len(), 4, "1100 -> 550 -> 275 -> 138");
        // One shard per level, key `c.0.0.0.0`: no chunk directories.
        let mut count = 0;
        for l in 0..4 {
            let level = s.output.join(l.to_string());
            let names = strata_testkit::names(&level);
            assert_eq!(names.len(), 2, "{names:?}");
            count += names.len();
        }
        assert_eq!(count as u64 + 1 + 1, s.files);
        shards.push(std::fs::read(s.output.join("0/c.0.0.0.0")).expect("shard"));
    }
    assert_eq!(shards[0], shards[1]);
}

#[test]
fn interrupted_output_is_discarded_on_rerun() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sec = section(dir.path());
    let name = sec.name();
    let partial = sec.image_path().with_file_name(format!(".{name}.partial"));
    std::fs::create_dir_all(partial.join("0")).expect("mkdir");
    std::fs::write(partial.join("0/c.0.0.0.0"), b"half a shard").expect("write");
    let (info, data) = stack(64, 64, 2, 1, SampleType::U8);
    let mut source = MemorySource::new(info, data).expect("source");
    convert(&mut source, &sec, &options(512), &mut NoHook).expect("convert");
    assert!(!partial.exists());
    assert!(sec.image_path().join("zarr.json").exists());
}

//! The patch sampler: random patches land on tissue, positions are a function of the seed
//! and the epoch, shares of ranks and workers never overlap and together cover the grid, and
//! the read-ahead iterator yields the patches that `read` gives.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use strata_access::{Image, PatchSampler, Positions, Region, SamplerOptions};
use strata_zstack::{Layout, MemorySource, SampleType, StackInfo};

/// 1024 x 512, 3 planes: the left half is tissue (dark, textured), the right half background.
fn image(root: &Path) -> Arc<Image> {
    let (w, h, planes) = (1024u32, 512u32, 3u32);
    let info = StackInfo {
        width: w,
        height: h,
        planes,
        channels: 1,
        sample_type: SampleType::U8,
        pixel_size: None,
        plane_names: (0..planes).map(|z| format!("z{z}.tif")).collect(),
    };
    let data = (0..planes)
        .map(|z| {
            (0..w * h)
                .map(|i| {
                    let (x, y) = (i % w, i / w);
                    if x < w / 2 {
                        (40 + (x * 7 + y * 3 + z) % 60) as u8
                    } else {
                        (230 + (x + y) % 20) as u8
                    }
                })
                .collect()
        })
        .collect();
    let mut src = MemorySource::new(info, data).expect("stack");
    let path = common::convert_to(root, &mut src, Layout::Folder, 1.0);
    Arc::new(Image::open(path.to_str().expect("utf-8")).expect("open"))
}

#[test]
fn random_patches_land_on_tissue_and_follow_the_seed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path());
    let opts = SamplerOptions::new([64, 64])
        .positions(Positions::Random { per_epoch: 300 })
        .seed(11);
    let s = PatchSampler::new(vec![Arc::clone(&img)], opts.clone()).expect("sampler");
    let f = s.tissue_fractions()[0];
    assert!((0.4..0.6).contains(&f), "tissue fraction {f}");
    let a = s.positions(0, 0, 1);
    assert_eq!(a.len(), 300);
    // Centres on the tissue half (the mask is a coarse level: a margin of one mask pixel).
    for p in &a {
        assert!(p.x + 32 < 512 + 8, "{p:?} is off tissue");
        assert!(p.y + 64 <= 512 && p.x + 64 <= 1024 && p.z < 3);
    }
    assert_eq!(
        s.positions(0, 0, 1),
        a,
        "same seed and epoch, same positions"
    );
    assert_ne!(s.positions(1, 0, 1), a, "another epoch, other positions");
    let other = PatchSampler::new(vec![Arc::clone(&img)], opts.clone().seed(12)).expect("sampler");
    assert_ne!(other.positions(0, 0, 1), a, "another seed, other positions");
    // Without the tissue restriction, both halves are used.
    let anywhere = PatchSampler::new(vec![img], opts.tissue_only(false)).expect("sampler");
    assert!(anywhere.positions(0, 0, 1).iter().any(|p| p.x > 600));
}

#[test]
fn shares_of_ranks_and_workers_cover_the_grid_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path());
    let grid = |rank, world| {
        SamplerOptions::new([128, 128])
            .positions(Positions::Grid)
            .seed(3)
            .rank(rank, world)
    };
    let whole: Vec<_> = PatchSampler::new(vec![Arc::clone(&img)], grid(0, 1))
        .expect("sampler")
        .positions(0, 0, 1);
    // 3 planes x 4 rows x 4 tissue columns of 128 x 128 patches.
    assert_eq!(whole.len(), 3 * 4 * 4);
    let mut seen = BTreeSet::new();
    for rank in 0..2 {
        let s = PatchSampler::new(vec![Arc::clone(&img)], grid(rank, 2)).expect("sampler");
        for worker in 0..2 {
            for p in s.positions(0, worker, 2) {
                assert!(seen.insert(p), "{p:?} in two shares");
            }
        }
    }
    assert_eq!(seen, whole.iter().copied().collect::<BTreeSet<_>>());
    assert!(
        PatchSampler::new(vec![img], grid(2, 2)).is_err(),
        "rank outside the world"
    );
}

#[test]
fn the_read_ahead_iterator_yields_what_read_gives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path());
    let s = Arc::new(
        PatchSampler::new(
            vec![Arc::clone(&img)],
            SamplerOptions::new([100, 60])
                .positions(Positions::Random { per_epoch: 40 })
                .prefetch(3),
        )
        .expect("sampler"),
    );
    let want = s.positions(5, 1, 2);
    let got: Vec<_> = s.iter(5, 1, 2).map(|p| p.expect("patch")).collect();
    assert_eq!(got.len(), want.len());
    for (p, at) in got.iter().zip(&want) {
        assert_eq!(p.at, *at);
        let r = Region::czyx(0..1, at.z..at.z + 1, at.y..at.y + 100, at.x..at.x + 60);
        assert_eq!(p.data, img.read_region(0, &r).expect("read"));
    }
    // Dropping a half-read iterator ends its reader.
    let mut it = s.iter(0, 0, 1);
    assert!(it.next().is_some());
    drop(it);
    assert!(
        PatchSampler::new(vec![img], SamplerOptions::new([600, 10])).is_err(),
        "a patch taller than the image"
    );
}

//! Patches for training: random positions on tissue or a regular grid, over one or many
//! images, deterministic for a seed, split across ranks and loader workers without overlap,
//! read ahead by a bounded queue.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use crate::error::{Error, Result};
use crate::image::{Image, Region};

/// Where patches are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    /// `per_epoch` patches at random positions (on tissue if asked), over all ranks and
    /// workers together.
    Random {
        /// Patches per epoch, all ranks and workers together.
        per_epoch: usize,
    },
    /// Every patch of a regular grid (steps of the patch size, every plane), once per epoch
    /// (on tissue only if asked), in an order shuffled by the seed and the epoch.
    Grid,
}

/// What a [`PatchSampler`] yields and from where. `SamplerOptions::new(size)`: level 0,
/// 1,024 random patches per epoch on tissue, seed 0, one rank, a queue of 8 patches, the tissue
/// mask from the lowest level.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SamplerOptions {
    /// Patch height and width, in pixels of `level`.
    pub size: [u64; 2],
    /// The level patches are read from.
    pub level: usize,
    /// Random positions or a grid.
    pub positions: Positions,
    /// Only patches centred on tissue (brightfield: darker than the background, by Otsu's
    /// threshold on the mask level).
    pub tissue_only: bool,
    /// Seed of the positions and of the grid order.
    pub seed: u64,
    /// This process's rank among `world_size` (distributed training).
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
    /// Patches read ahead of the consumer.
    pub prefetch: usize,
    /// Level of the tissue mask (default: the lowest, smallest level).
    pub mask_level: Option<usize>,
}

impl SamplerOptions {
    /// Options for patches of `size` = `[height, width]`.
    #[must_use]
    pub fn new(size: [u64; 2]) -> Self {
        Self {
            size,
            level: 0,
            positions: Positions::Random { per_epoch: 1024 },
            tissue_only: true,
            seed: 0,
            rank: 0,
            world_size: 1,
            prefetch: 8,
            mask_level: None,
        }
    }

    /// Reads patches from `level`.
    #[must_use]
    pub fn level(mut self, level: usize) -> Self {
        self.level = level;
        self
    }

    /// Random positions or a grid.
    #[must_use]
    pub fn positions(mut self, positions: Positions) -> Self {
        self.positions = positions;
        self
    }

    /// Whether patches must be centred on tissue.
    #[must_use]
    pub fn tissue_only(mut self, on: bool) -> Self {
        self.tissue_only = on;
        self
    }

    /// The seed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// This process's share: rank `rank` of `world_size`.
    #[must_use]
    pub fn rank(mut self, rank: usize, world_size: usize) -> Self {
        self.rank = rank;
        self.world_size = world_size;
        self
    }

    /// Patches read ahead.
    #[must_use]
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n;
        self
    }
}

/// Where a patch comes from: results map back to the section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PatchAt {
    /// Index of the image in the sampler.
    pub image: usize,
    /// Level.
    pub level: usize,
    /// Plane.
    pub z: u64,
    /// First row.
    pub y: u64,
    /// First column.
    pub x: u64,
}

/// A patch and where it comes from: every channel, one plane, `size` rows and columns, in
/// C order (c, y, x), native byte order.
#[derive(Debug, Clone)]
pub struct Patch {
    /// Where it was read.
    pub at: PatchAt,
    /// Its samples.
    pub data: Vec<u8>,
}

/// Tissue pixels of one image's mask level, and how mask pixels map to the patch level.
#[derive(Debug)]
struct Mask {
    /// Flat indices (y * width + x) of the tissue pixels of the mask plane.
    tissue: Vec<u64>,
    width: u64,
    /// Patch-level pixels per mask pixel, along y and x.
    scale: [f64; 2],
}

/// Patches from a set of images (see [`SamplerOptions`]).
#[derive(Debug)]
pub struct PatchSampler {
    images: Vec<Arc<Image>>,
    masks: Vec<Option<Mask>>,
    /// Each image's share of random positions: its tissue pixels (all pixels without a mask).
    weights: Vec<u64>,
    options: SamplerOptions,
}

/// SplitMix64 of `(seed, a, b)`: the positions are a pure function of these, so any split of
/// the work sees the same positions (a general RNG crate's streams are not guaranteed to stay
/// the same across its versions).
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed
        .wrapping_add(a.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(b.wrapping_mul(0xd1b5_4a32_d192_ed03));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl PatchSampler {
    /// A sampler over `images`; computes each image's tissue mask (if asked) once, from the
    /// middle plane of the mask level.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] for a patch larger than an image's level, [`Error::NoSuchLevel`],
    /// [`Error::Metadata`] for images without `z`, `y`, `x` axes or a rank outside the world,
    /// and read errors of the mask level.
    pub fn new(images: Vec<Arc<Image>>, options: SamplerOptions) -> Result<Self> {
        if options.world_size == 0 || options.rank >= options.world_size {
            return Err(Error::Metadata {
                image: String::new(),
                reason: format!(
                    "rank {} is not one of world size {}",
                    options.rank, options.world_size
                ),
            });
        }
        let mut masks = Vec::with_capacity(images.len());
        for img in &images {
            let shape = &img.level(options.level)?.shape;
            let [h, w] = options.size;
            if shape.len() != 4 || h == 0 || w == 0 || h > shape[2] || w > shape[3] {
                return Err(Error::OutOfBounds {
                    image: img.name().to_owned(),
                    level: options.level,
                    region: format!("a patch of {h} x {w}"),
                    shape: shape.clone(),
                });
            }
            masks.push(if options.tissue_only {
                Some(mask(img, &options)?)
            } else {
                None
            });
        }
        let weights = masks
            .iter()
            .zip(&images)
            .map(|(m, img)| match m {
                Some(m) => m.tissue.len() as u64,
                None => img
                    .level(options.level)
                    .map_or(0, |l| l.shape[1] * l.shape[2] * l.shape[3]),
            })
            .collect();
        Ok(Self {
            images,
            masks,
            weights,
            options,
        })
    }

    /// The images.
    #[must_use]
    pub fn images(&self) -> &[Arc<Image>] {
        &self.images
    }

    /// The options the sampler was made with.
    #[must_use]
    pub fn options(&self) -> &SamplerOptions {
        &self.options
    }

    /// Fraction of each image's mask-level pixels that are tissue (1 without a mask).
    #[must_use]
    pub fn tissue_fractions(&self) -> Vec<f64> {
        self.images
            .iter()
            .zip(&self.masks)
            .map(|(img, m)| match m {
                None => 1.0,
                Some(m) => {
                    let lvl = img
                        .levels()
                        .len()
                        .saturating_sub(1)
                        .min(self.options.mask_level.unwrap_or(usize::MAX));
                    let area = img.level(lvl).map_or(1, |l| l.shape[2] * l.shape[3]).max(1);
                    m.tissue.len() as f64 / area as f64
                }
            })
            .collect()
    }

    /// The positions of `epoch` that belong to this rank's loader worker `worker` of
    /// `workers`: the epoch's positions, every `world_size * workers`-th from this share's
    /// offset (so shares never overlap and together cover the epoch).
    #[must_use]
    pub fn positions(&self, epoch: u64, worker: usize, workers: usize) -> Vec<PatchAt> {
        let workers = workers.max(1);
        let shares = self.options.world_size * workers;
        let share = self.options.rank * workers + worker.min(workers - 1);
        let all = self.epoch(epoch);
        all.into_iter().skip(share).step_by(shares).collect()
    }

    /// Every position of `epoch`, all ranks and workers together.
    fn epoch(&self, epoch: u64) -> Vec<PatchAt> {
        let o = &self.options;
        match o.positions {
            Positions::Random { per_epoch } => (0..per_epoch as u64)
                .filter_map(|i| self.random_at(mix(o.seed, epoch, i)))
                .collect(),
            Positions::Grid => {
                let mut grid = self.grid();
                // Fisher-Yates with the mixed stream of (seed, epoch).
                for i in (1..grid.len()).rev() {
                    let j = (mix(o.seed ^ 0x6772_6964, epoch, i as u64) % (i as u64 + 1)) as usize;
                    grid.swap(i, j);
                }
                grid
            }
        }
    }

    fn grid(&self) -> Vec<PatchAt> {
        let o = &self.options;
        let [h, w] = o.size;
        let mut out = Vec::new();
        for (image, img) in self.images.iter().enumerate() {
            let Ok(level) = img.level(o.level) else {
                continue;
            };
            let (planes, rows, cols) = (level.shape[1], level.shape[2], level.shape[3]);
            for z in 0..planes {
                for y in (0..=rows - h).step_by(h as usize) {
                    for x in (0..=cols - w).step_by(w as usize) {
                        let at = PatchAt {
                            image,
                            level: o.level,
                            z,
                            y,
                            x,
                        };
                        if self.on_tissue(&at) {
                            out.push(at);
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether the patch's centre lies on a tissue pixel of the mask (always without one).
    fn on_tissue(&self, at: &PatchAt) -> bool {
        let Some(Some(m)) = self.masks.get(at.image) else {
            return true;
        };
        let cy = ((at.y + self.options.size[0] / 2) as f64 / m.scale[0]) as u64;
        let cx = ((at.x + self.options.size[1] / 2) as f64 / m.scale[1]) as u64;
        m.tissue.binary_search(&(cy * m.width + cx)).is_ok()
    }

    /// A random position from the hash `r`: an image weighted by its tissue area, then a
    /// tissue pixel of its mask (or any pixel), the patch centred there within the level.
    fn random_at(&self, r: u64) -> Option<PatchAt> {
        let o = &self.options;
        let total: u64 = self.weights.iter().sum();
        if total == 0 {
            return None;
        }
        let mut pick = r % total;
        let image = self.weights.iter().position(|&wt| {
            if pick < wt {
                true
            } else {
                pick -= wt;
                false
            }
        })?;
        let level = self.images[image].level(o.level).ok()?;
        let (planes, rows, cols) = (level.shape[1], level.shape[2], level.shape[3]);
        let [h, w] = o.size;
        let r2 = mix(r, 1, 2);
        let z = r2 % planes;
        let (cy, cx) = match &self.masks[image] {
            Some(m) => {
                let p = m.tissue[(pick % m.tissue.len() as u64) as usize];
                let (my, mx) = (p / m.width, p % m.width);
                // Anywhere inside the mask pixel.
                let fy = (mix(r, 3, 4) % 1024) as f64 / 1024.0;
                let fx = (mix(r, 5, 6) % 1024) as f64 / 1024.0;
                (
                    ((my as f64 + fy) * m.scale[0]) as u64,
                    ((mx as f64 + fx) * m.scale[1]) as u64,
                )
            }
            None => {
                let i = pick % (rows * cols);
                (i / cols, i % cols)
            }
        };
        Some(PatchAt {
            image,
            level: o.level,
            z,
            y: cy.saturating_sub(h / 2).min(rows - h),
            x: cx.saturating_sub(w / 2).min(cols - w),
        })
    }

    /// Reads one patch.
    ///
    /// # Errors
    /// The image's read errors.
    pub fn read(&self, at: &PatchAt) -> Result<Patch> {
        let img = &self.images[at.image];
        let [h, w] = self.options.size;
        let c = img.level(at.level)?.shape[0];
        let region = Region::czyx(0..c, at.z..at.z + 1, at.y..at.y + h, at.x..at.x + w);
        Ok(Patch {
            at: *at,
            data: img.read_region(at.level, &region)?,
        })
    }

    /// The patches of `epoch` for loader worker `worker` of `workers`, read ahead by a thread
    /// (at most [`SamplerOptions::prefetch`] patches waiting). Dropping the iterator stops it.
    #[must_use]
    pub fn iter(self: &Arc<Self>, epoch: u64, worker: usize, workers: usize) -> PatchIter {
        let positions = self.positions(epoch, worker, workers);
        let (tx, rx) = sync_channel(self.options.prefetch.max(1));
        let me = Arc::clone(self);
        let reader = std::thread::Builder::new()
            .name("strata-patches".into())
            .spawn(move || {
                for at in positions {
                    if tx.send(me.read(&at)).is_err() {
                        break;
                    }
                }
            });
        PatchIter {
            rx: reader.ok().map(|_| rx),
        }
    }
}

/// Patches read ahead (see [`PatchSampler::iter`]).
#[derive(Debug)]
pub struct PatchIter {
    rx: Option<Receiver<Result<Patch>>>,
}

impl Iterator for PatchIter {
    type Item = Result<Patch>;

    fn next(&mut self) -> Option<Result<Patch>> {
        self.rx.as_ref()?.recv().ok()
    }
}

/// The tissue mask of one image: Otsu's threshold on the middle plane of the mask level
/// (channels averaged), tissue darker than the threshold.
fn mask(img: &Image, o: &SamplerOptions) -> Result<Mask> {
    let last = img.levels().len().saturating_sub(1);
    let lvl = o.mask_level.unwrap_or(last).min(last);
    let info = img.level(lvl)?.clone();
    let target = img.level(o.level)?.shape.clone();
    let (c, planes, rows, cols) = (info.shape[0], info.shape[1], info.shape[2], info.shape[3]);
    let region = Region::czyx(0..c, planes / 2..planes / 2 + 1, 0..rows, 0..cols);
    let data = img.read_region(lvl, &region)?;
    let px = (rows * cols) as usize;
    let sample = |i: usize| -> u32 {
        match info.element_size {
            1 => u32::from(data[i]),
            _ => u32::from(u16::from_ne_bytes([data[2 * i], data[2 * i + 1]])),
        }
    };
    let gray: Vec<u32> = (0..px)
        .map(|p| (0..c as usize).map(|ch| sample(ch * px + p)).sum::<u32>() / c.max(1) as u32)
        .collect();
    let bins = if info.element_size == 1 { 256 } else { 65536 };
    let mut hist = vec![0u64; bins];
    for &v in &gray {
        hist[(v as usize).min(bins - 1)] += 1;
    }
    let threshold = strata_qc::otsu_threshold(&hist).unwrap_or(0);
    let tissue = gray
        .iter()
        .enumerate()
        .filter(|&(_, &v)| v <= threshold)
        .map(|(i, _)| i as u64)
        .collect();
    Ok(Mask {
        tissue,
        width: cols,
        scale: [
            target[2] as f64 / rows.max(1) as f64,
            target[3] as f64 / cols.max(1) as f64,
        ],
    })
}

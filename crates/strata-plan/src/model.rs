//! The inode model: the BIDS tree plus DataLad/git-annex overhead, per dataset.
//!
//! Per dataset the model counts
//! - the work tree: every BIDS file (an annexed file is a symlink, still one inode), every
//!   directory, and DataLad's own files (`.datalad/`, `.gitattributes`, `.gitmodules`);
//! - git-annex content: per annexed key one object file and one key directory under
//!   `.git/annex/objects/Xx/Yy/KEY/`, plus the two `hashdirmixed` levels, which are shared
//!   (1,024 possible names each, so their number is the expected count of occupied buckets);
//! - git: a fixed `.git` skeleton (hooks, config, index, the git-annex databases...), and,
//!   before `git gc`, one loose object file per blob, tree and commit written in
//!   `.git/objects/xx/` (256 shared fan-out directories); after `git gc` one pack instead.
//!
//! Which files go to git: `annex.largefiles=nothing` for `*.json`, `*.tsv`, `README` and the
//! Zarr v2 dot files, so metadata lives in git and pixel data in the annex.
//!
//! The constants are fitted on real DataLad/git-annex runs (see [`Constants::CALIBRATED`]).

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::input::{AnnexOptions, Grouping, Layout, PlanInput};
use crate::layout::{SectionCounts, section_counts};

/// Dataset-level BIDS files written once at the root: `dataset_description.json`,
/// `participants.tsv`, `samples.tsv`, `README`.
pub const BIDS_ROOT_FILES: u64 = 4;

/// git's `gc.auto` default: `git commit` (which `datalad save` runs) packs loose objects once
/// about this many have accumulated, so a dataset never holds many more loose objects.
pub const GIT_GC_AUTO: f64 = 6700.0;
/// git's `gc.autoPackLimit` default: beyond this many packs, automatic gc consolidates them.
pub const GIT_GC_AUTO_PACK_LIMIT: f64 = 50.0;

/// The model's constants: what a dataset costs, and how many loose git objects each kind of
/// change writes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Constants {
    /// Work-tree files DataLad adds to every dataset (`.datalad/config`,
    /// `.datalad/.gitattributes`, `.gitattributes`).
    pub dataset_work_files: f64,
    /// Work-tree directories DataLad adds to every dataset (`.datalad/`).
    pub dataset_work_dirs: f64,
    /// Files in `.git` of a dataset apart from loose objects and annexed objects, before gc.
    pub git_files: f64,
    /// Directories in `.git` apart from loose-object fan-out and annex key/hash directories,
    /// before gc (`.git` itself included).
    pub git_dirs: f64,
    /// The same after `git gc --prune=now` (pack, index, reverse index, commit-graph...).
    pub git_files_gc: f64,
    /// Directories in `.git` after gc apart from annex key/hash directories.
    pub git_dirs_gc: f64,
    /// Loose objects per dataset independent of its content (creation commits).
    pub loose_base: f64,
    /// Loose objects per annexed file: the symlink blob, the git-annex location log blob and
    /// the git-annex branch trees leading to it.
    pub loose_per_annexed: f64,
    /// Loose objects per file in git (its blob).
    pub loose_per_git_file: f64,
    /// Loose objects per tracked directory (its tree).
    pub loose_per_dir: f64,
    /// Loose objects per save (commits on both branches, rewritten root and parent trees).
    pub loose_per_save: f64,
    /// Loose objects a parent writes per registered subdataset (creation commit, `.gitmodules`).
    pub loose_per_subdataset: f64,
}

impl Constants {
    /// Fitted by `calibration/fit.py` on 67 real DataLad runs (DataLad 1.7.1, git-annex
    /// 10.20230126, git 2.47; data in `calibration/data/`): every layout and grouping at 1, 2
    /// and 4 sections of 3 planes of 1024 x 1536 RGB, one recursive save per section, then
    /// `git gc --prune=now` in every repository. The `.git` skeleton counts came out the same
    /// in every run (45 files before gc, 49 after); the directory counts vary by +-4 around 20
    /// with the random occupancy of hash buckets; loose objects are a least-squares fit
    /// (largest residual 7 of 564 objects).
    pub const CALIBRATED: Constants = Constants {
        dataset_work_files: 3.0,
        dataset_work_dirs: 1.0,
        git_files: 45.0,
        git_dirs: 20.2,
        git_files_gc: 49.0,
        git_dirs_gc: 19.9,
        loose_base: 11.8,
        loose_per_annexed: 3.97,
        loose_per_git_file: 1.33,
        loose_per_dir: 0.91,
        loose_per_save: 4.81,
        loose_per_subdataset: 1.48,
    };
}

/// One kind of dataset in a grouping, with how many of it there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetShape {
    /// Datasets of this shape.
    pub count: u64,
    /// Sections each holds.
    pub sections: u64,
    /// Subdatasets each registers.
    pub subdatasets: u64,
    /// Files in git outside sections (BIDS root files, `.gitmodules`).
    pub extra_git_files: u64,
    /// Work-tree directories outside sections, the dataset root included.
    pub extra_dirs: u64,
    /// Entries of its fullest directory outside sections and `.git`.
    pub largest_dir: u64,
    /// Saves recorded in it.
    pub saves: u64,
}

/// Splits `n` items into `parts` nearly equal parts: `(count, size)` pairs.
fn split(n: u64, parts: u64) -> Vec<(u64, u64)> {
    let base = n / parts;
    let rem = n % parts;
    let mut out = Vec::new();
    if rem > 0 {
        out.push((rem, base + 1));
    }
    if parts - rem > 0 && base > 0 {
        out.push((parts - rem, base));
    }
    out
}

/// The datasets a grouping makes.
///
/// BIDS layouts: the root holds the dataset files, `sub-<s>/` and, without grouping,
/// `sub-<s>/micr/`; [`Grouping::PerSubject`] roots a subdataset at `sub-<s>/` and
/// [`Grouping::PerSections`] at `sub-<s>/ses-<k>/`, each with its own `micr/`. The raw layout
/// has no BIDS files and no `micr/`: section folders sit directly in the subject or group
/// directory.
///
/// # Errors
/// [`crate::Error::Input`] if the input is invalid or a group size is 0.
pub fn datasets(
    input: &PlanInput,
    layout: Layout,
    grouping: Grouping,
) -> Result<Vec<DatasetShape>> {
    input.validate()?;
    let sc = section_counts(input, layout)?;
    let bids = layout != Layout::RawTiff;
    let root_files = if bids { BIDS_ROOT_FILES } else { 0 };
    let micr = u64::from(bids);
    let per_subject = split(input.sections, input.subjects);
    let mut out = Vec::new();
    match grouping {
        Grouping::None => {
            let biggest = per_subject.first().map_or(0, |p| p.1);
            out.push(DatasetShape {
                count: 1,
                sections: input.sections,
                subdatasets: 0,
                extra_git_files: root_files,
                extra_dirs: 1 + input.subjects * (1 + micr),
                largest_dir: biggest
                    .saturating_mul(sc.parent_entries)
                    .max(input.subjects + root_files + 3),
                saves: input.sections,
            });
        }
        Grouping::PerSubject => {
            out.push(DatasetShape {
                count: 1,
                sections: 0,
                subdatasets: input.subjects,
                extra_git_files: root_files + 1,
                extra_dirs: 1,
                largest_dir: input.subjects + root_files + 4,
                saves: input.sections,
            });
            for (count, k) in per_subject {
                out.push(DatasetShape {
                    count,
                    sections: k,
                    subdatasets: 0,
                    extra_git_files: 0,
                    extra_dirs: 1 + micr,
                    largest_dir: k.saturating_mul(sc.parent_entries),
                    saves: k,
                });
            }
        }
        Grouping::PerSections(n) => {
            if n == 0 {
                return Err(crate::Error::Input(
                    "group size must be at least 1".to_owned(),
                ));
            }
            let mut groups = 0;
            let mut max_groups = 0;
            let mut shapes: Vec<(u64, u64)> = Vec::new();
            for &(subjects, k) in &per_subject {
                let full = k / n;
                let rest = k % n;
                groups += subjects * (full + u64::from(rest > 0));
                max_groups = max_groups.max(full + u64::from(rest > 0));
                if full > 0 {
                    shapes.push((subjects * full, n));
                }
                if rest > 0 {
                    shapes.push((subjects, rest));
                }
            }
            out.push(DatasetShape {
                count: 1,
                sections: 0,
                subdatasets: groups,
                extra_git_files: root_files + 1,
                extra_dirs: 1 + input.subjects,
                largest_dir: max_groups.max(input.subjects + root_files + 4),
                saves: input.sections,
            });
            for (count, k) in shapes {
                out.push(DatasetShape {
                    count,
                    sections: k,
                    subdatasets: 0,
                    extra_git_files: 0,
                    extra_dirs: 1 + micr,
                    largest_dir: k.saturating_mul(sc.parent_entries),
                    saves: k,
                });
            }
        }
    }
    Ok(out)
}

/// Expected number of occupied buckets when `keys` keys hash uniformly into `buckets`.
fn occupied(keys: f64, buckets: f64) -> f64 {
    if keys <= 0.0 {
        return 0.0;
    }
    buckets * (1.0 - (-keys / buckets).exp())
}

/// What one dataset shape costs (per dataset).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
struct DatasetCost {
    work_files: f64,
    work_dirs: f64,
    bids_files: f64,
    bids_dirs: f64,
    git_files: f64,
    git_dirs: f64,
    git_files_gc: f64,
    git_dirs_gc: f64,
    loose: f64,
    annexed: f64,
    largest_git_dir: f64,
}

fn dataset_cost(
    shape: &DatasetShape,
    sc: &SectionCounts,
    annex: AnnexOptions,
    k: &Constants,
) -> DatasetCost {
    #[allow(clippy::cast_precision_loss)]
    let f = |v: u64| v as f64;
    let annexed = f(shape.sections) * f(sc.annexed_files);
    let git_files = f(shape.sections) * f(sc.git_files) + f(shape.extra_git_files);
    let dirs = f(shape.sections) * f(sc.dirs) + f(shape.extra_dirs);
    let loose = k.loose_base
        + k.loose_per_annexed * annexed
        + k.loose_per_git_file * git_files
        + k.loose_per_dir * dirs
        + k.loose_per_save * f(shape.saves)
        + k.loose_per_subdataset * f(shape.subdatasets);
    // .git/annex/objects/Xx/Yy/KEY/KEY: hashdirmixed, 1,024 names per level; with
    // objecthash1 only the first level.
    let second = if annex.objecthash1 {
        0.0
    } else {
        occupied(annexed, 1024.0 * 1024.0)
    };
    let annex_dirs = if annexed > 0.0 {
        1.0 + occupied(annexed, 1024.0) + second + annexed
    } else {
        0.0
    };
    // Thin unlocked files share the object's inode.
    let objects = if annex.thin_unlocked { 0.0 } else { annexed };
    // Automatic gc keeps at most GIT_GC_AUTO loose objects (the peak is counted) and leaves a
    // pack (.pack, .idx, .rev) per round, consolidated past the pack limit.
    let total_loose = loose;
    let loose = total_loose.min(GIT_GC_AUTO);
    let auto_packs = (total_loose / GIT_GC_AUTO)
        .floor()
        .min(GIT_GC_AUTO_PACK_LIMIT);
    let fanout = occupied(loose, 256.0);
    DatasetCost {
        work_files: annexed + git_files + k.dataset_work_files,
        work_dirs: dirs + k.dataset_work_dirs,
        bids_files: annexed + git_files,
        bids_dirs: dirs,
        git_files: k.git_files + loose + 3.0 * auto_packs + objects,
        git_dirs: k.git_dirs + fanout + annex_dirs,
        git_files_gc: k.git_files_gc + objects,
        git_dirs_gc: k.git_dirs_gc + annex_dirs,
        loose,
        annexed,
        largest_git_dir: (loose / 256.0).max(occupied(annexed, 1024.0)),
    }
}

/// The model's answer for one layout and grouping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The layout.
    pub layout: Layout,
    /// The grouping.
    pub grouping: Grouping,
    /// Datasets (superdataset and subdatasets); 1 without grouping.
    pub datasets: u64,
    /// Files of the BIDS tree without DataLad.
    pub bids_files: u64,
    /// Directories of the BIDS tree without DataLad (subdataset roots included).
    pub bids_dirs: u64,
    /// Inodes of the tree without DataLad.
    pub inodes_plain: u64,
    /// Files that go to the annex.
    pub annexed_files: u64,
    /// Files that go to git.
    pub git_files: u64,
    /// Loose git objects before `git gc`, all datasets.
    pub loose_objects: u64,
    /// Inodes with DataLad before `git gc` (work tree, `.git`, annexed objects).
    pub inodes_before_gc: u64,
    /// Inodes with DataLad after `git gc --prune=now` in every dataset.
    pub inodes_after_gc: u64,
    /// Files (work tree and `.git`) before gc.
    pub files_before_gc: u64,
    /// Directories before gc.
    pub dirs_before_gc: u64,
    /// Files after gc.
    pub files_after_gc: u64,
    /// Directories after gc.
    pub dirs_after_gc: u64,
    /// Stored bytes (pixel data once in the annex, metadata in the work tree and in git).
    pub bytes: u64,
    /// Entries of the fullest directory, `.git` included (before gc).
    pub largest_dir: u64,
    /// Work-tree files of the biggest dataset (what `git status` walks).
    pub largest_dataset_files: u64,
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn round(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Predicts one layout and grouping with the calibrated constants.
///
/// # Errors
/// [`crate::Error::Input`] if the input is invalid.
pub fn predict(input: &PlanInput, layout: Layout, grouping: Grouping) -> Result<Prediction> {
    predict_with(input, layout, grouping, &Constants::CALIBRATED)
}

/// Predicts one layout and grouping with the given constants.
///
/// # Errors
/// [`crate::Error::Input`] if the input is invalid.
pub fn predict_with(
    input: &PlanInput,
    layout: Layout,
    grouping: Grouping,
    k: &Constants,
) -> Result<Prediction> {
    let sc = section_counts(input, layout)?;
    let shapes = datasets(input, layout, grouping)?;
    #[allow(clippy::cast_precision_loss)]
    let f = |v: u64| v as f64;
    let mut total = DatasetCost::default();
    let mut n = 0;
    let mut largest_dir = sc.largest_dir;
    let mut largest_dataset: f64 = 0.0;
    for s in &shapes {
        let c = dataset_cost(s, &sc, input.annex, k);
        let m = f(s.count);
        n += s.count;
        total.work_files += m * c.work_files;
        total.work_dirs += m * c.work_dirs;
        total.bids_files += m * c.bids_files;
        total.bids_dirs += m * c.bids_dirs;
        total.git_files += m * c.git_files;
        total.git_dirs += m * c.git_dirs;
        total.git_files_gc += m * c.git_files_gc;
        total.git_dirs_gc += m * c.git_dirs_gc;
        total.loose += m * c.loose;
        total.annexed += m * c.annexed;
        largest_dir = largest_dir.max(s.largest_dir).max(round(c.largest_git_dir));
        largest_dataset = largest_dataset.max(c.work_files);
    }
    let files_before = total.work_files + total.git_files;
    let dirs_before = total.work_dirs + total.git_dirs;
    let files_after = total.work_files + total.git_files_gc;
    let dirs_after = total.work_dirs + total.git_dirs_gc;
    let sections = u128::from(input.sections);
    let bytes = sections * u128::from(sc.data_bytes) + 2 * sections * u128::from(sc.meta_bytes);
    // (u128: sections < 2^41 and per-section bytes < 2^64, no overflow.)
    Ok(Prediction {
        layout,
        grouping,
        datasets: n,
        bids_files: round(total.bids_files),
        bids_dirs: round(total.bids_dirs),
        inodes_plain: round(total.bids_files + total.bids_dirs),
        annexed_files: round(total.annexed),
        git_files: round(total.bids_files - total.annexed),
        loose_objects: round(total.loose),
        inodes_before_gc: round(files_before + dirs_before),
        inodes_after_gc: round(files_after + dirs_after),
        files_before_gc: round(files_before),
        dirs_before_gc: round(dirs_before),
        files_after_gc: round(files_after),
        dirs_after_gc: round(dirs_after),
        bytes: u64::try_from(bytes).unwrap_or(u64::MAX),
        largest_dir,
        largest_dataset_files: round(largest_dataset),
    })
}

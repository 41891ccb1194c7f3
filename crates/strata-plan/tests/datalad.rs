//! The model against real DataLad/git-annex runs.
//!
//! `held_out`: predictions at sizes NOT used for calibration must be within 5% of the real
//! count (files + directories + symlinks), before and after `git gc`.
//! `calibrate` (ignored): the calibration matrix; prints one JSON line per run for
//! `calibration/fit.py`.

mod common;

use common::{build, datalad, small};
use strata_plan::{
    AnnexOptions, Grouping, KeySeparator, Layout, PlanInput, datasets, predict, section_counts,
};

fn features(input: &PlanInput, layout: Layout, grouping: Grouping) -> serde_json::Value {
    let sc = section_counts(input, layout).expect("counts");
    let mut f = [0u64; 6];
    for s in datasets(input, layout, grouping).expect("datasets") {
        f[0] += s.count;
        f[1] += s.count * s.sections * sc.annexed_files;
        f[2] += s.count * (s.sections * sc.git_files + s.extra_git_files);
        f[3] += s.count * (s.sections * sc.dirs + s.extra_dirs);
        f[4] += s.count * s.saves;
        f[5] += s.count * s.subdatasets;
    }
    serde_json::json!({
        "datasets": f[0], "annexed": f[1], "git_files": f[2], "dirs": f[3], "saves": f[4],
        "subdatasets": f[5],
    })
}

fn check(
    exe: &std::path::Path,
    input: &PlanInput,
    layout: Layout,
    grouping: Grouping,
) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ds");
    let run = build(exe, input, layout, grouping, &root);
    let p = predict(input, layout, grouping).expect("predict");
    #[allow(clippy::cast_precision_loss)]
    let err = |pred: u64, real: u64| (pred as f64 - real as f64) / real as f64;
    let before = err(p.inodes_before_gc, run.before.inodes());
    let after = err(p.inodes_after_gc, run.after.inodes());
    eprintln!(
        "{:16} {:16} real {:5} / {:5}  predicted {:5} / {:5}  error {:+.1}% / {:+.1}%",
        layout.name(),
        grouping.name(),
        run.before.inodes(),
        run.after.inodes(),
        p.inodes_before_gc,
        p.inodes_after_gc,
        100.0 * before,
        100.0 * after
    );
    // The annexed part is exact: one symlink per annexed file, or with thin unlocked files
    // one hard link (a second name, no second inode).
    let pointers = if input.annex.thin_unlocked {
        run.before.extra_links
    } else {
        run.before.symlinks
    };
    assert_eq!(
        pointers, p.annexed_files,
        "{layout:?} {grouping:?}: annexed files"
    );
    assert_eq!(
        run.before.annexed_objects, p.annexed_files,
        "{layout:?} {grouping:?}: objects"
    );
    (before, after)
}

/// Held-out sizes: 3 sections of 5 planes of 1536 x 2560 (calibration used 1, 2 and 4
/// sections of 3 planes of 1024 x 1536, git-annex defaults only), two subjects for the
/// per-subject grouping, `/` chunk keys for Zarr v3, and the tuned annex options (objecthash1,
/// thin unlocked files).
#[test]
fn held_out() {
    let Some(exe) = datalad() else { return };
    let input = small(3, 1, 5, 1536, 2560);
    let two = small(3, 2, 5, 1536, 2560);
    let slash = PlanInput {
        separator: KeySeparator::Slash,
        ..input.clone()
    };
    let tuned = PlanInput {
        annex: AnnexOptions::TUNED,
        ..input.clone()
    };
    let cases = [
        (&input, Layout::RawTiff, Grouping::None),
        (&tuned, Layout::RawTiff, Grouping::PerSections(1)),
        (&slash, Layout::ZarrV3, Grouping::None),
        (&input, Layout::ZarrV3Sharded, Grouping::None),
        (&input, Layout::Ozx, Grouping::PerSections(2)),
        (&input, Layout::ZarrV3Sharded, Grouping::PerSections(1)),
        (&two, Layout::ZarrV3Sharded, Grouping::PerSubject),
        (&tuned, Layout::ZarrV3Sharded, Grouping::PerSections(2)),
    ];
    let mut worst: f64 = 0.0;
    for (input, layout, grouping) in cases {
        let (b, a) = check(&exe, input, layout, grouping);
        worst = worst.max(b.abs()).max(a.abs());
    }
    eprintln!("worst error {:.2}%", 100.0 * worst);
    assert!(worst <= 0.05, "prediction off by {:.1}%", 100.0 * worst);
}

/// The calibration matrix (run with `--ignored --nocapture`); see `calibration/README.md`.
#[test]
#[ignore = "calibration run, minutes; run by calibration/run.sh"]
fn calibrate() {
    let Some(exe) = datalad() else { return };
    let groupings = [
        Grouping::None,
        Grouping::PerSubject,
        Grouping::PerSections(1),
        Grouping::PerSections(2),
    ];
    for sections in [1, 2, 4] {
        for layout in Layout::ALL {
            for grouping in groupings {
                if sections == 4
                    && grouping == Grouping::PerSections(1)
                    && layout != Layout::ZarrV3Sharded
                {
                    continue;
                }
                let subjects = if grouping == Grouping::PerSubject && sections > 1 {
                    2
                } else {
                    1
                };
                let input = small(sections, subjects, 3, 1024, 1536);
                let dir = tempfile::tempdir().expect("tempdir");
                let root = dir.path().join("ds");
                let run = build(&exe, &input, layout, grouping, &root);
                let line = serde_json::json!({
                    "layout": layout.name(), "grouping": grouping.name(), "sections": sections,
                    "features": features(&input, layout, grouping),
                    "before": run.before, "after": run.after,
                });
                println!("CALIBRATION {line}");
            }
        }
    }
}

/// Per-dataset-shape features of the calibration matrix (run with `--ignored --nocapture`),
/// joined with the `calibrate` output by `calibration/fit.py`.
#[test]
#[ignore = "prints the model's dataset shapes for calibration/fit.py"]
fn calibration_shapes() {
    let groupings = [
        Grouping::None,
        Grouping::PerSubject,
        Grouping::PerSections(1),
        Grouping::PerSections(2),
    ];
    for sections in [1, 2, 3, 4] {
        for layout in Layout::ALL {
            for grouping in groupings {
                let subjects = if grouping == Grouping::PerSubject && sections > 1 {
                    2
                } else {
                    1
                };
                for (planes, h, w) in [(3, 1024, 1536), (5, 1536, 2560)] {
                    let input = small(sections, subjects, planes, h, w);
                    let sc = section_counts(&input, layout).expect("counts");
                    let shapes: Vec<_> = datasets(&input, layout, grouping)
                        .expect("datasets")
                        .iter()
                        .map(|s| {
                            serde_json::json!({
                                "count": s.count,
                                "annexed": s.sections * sc.annexed_files,
                                "git_files": s.sections * sc.git_files + s.extra_git_files,
                                "dirs": s.sections * sc.dirs + s.extra_dirs,
                                "saves": s.saves,
                                "subdatasets": s.subdatasets,
                            })
                        })
                        .collect();
                    let line = serde_json::json!({
                        "layout": layout.name(), "grouping": grouping.name(), "sections": sections,
                        "subjects": subjects, "planes": planes, "shapes": shapes,
                    });
                    println!("SHAPES {line}");
                }
            }
        }
    }
}

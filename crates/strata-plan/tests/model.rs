//! The pure model: section counts against enumerated trees, known whole-brain numbers, the
//! tree counter on a hand-made tree, plan and recommendation.

use std::collections::BTreeSet;

use strata_plan::{
    AnnexMode, AnnexOptions, EntryKind, Error, Grouping, KeySeparator, Layout, PlanInput, datasets,
    measure, plan, plan_with, predict, recommend, render_svg, section_counts, section_entries,
};

fn small() -> PlanInput {
    PlanInput {
        sections: 3,
        planes: 4,
        height: 1500,
        width: 1100,
        ..PlanInput::whole_brain()
    }
}

#[test]
fn counts_match_enumeration_for_every_layout_and_separator() {
    for separator in [KeySeparator::Dot, KeySeparator::Slash] {
        for shard in [None, Some((2, 1024, 512))] {
            let input = PlanInput {
                separator,
                shard,
                ..small()
            };
            for layout in Layout::ALL {
                let c = section_counts(&input, layout).expect("counts");
                let e = section_entries(&input, layout, 1, 1, 100_000).expect("entries");
                let count = |k: EntryKind| e.iter().filter(|x| x.kind == k).count() as u64;
                assert_eq!(
                    count(EntryKind::Dir),
                    c.dirs,
                    "{layout:?} {separator:?} dirs"
                );
                assert_eq!(
                    count(EntryKind::GitFile),
                    c.git_files,
                    "{layout:?} git files"
                );
                assert_eq!(count(EntryKind::AnnexedFile), c.annexed_files, "{layout:?}");
                let unique: BTreeSet<_> = e.iter().map(|x| &x.path).collect();
                assert_eq!(unique.len(), e.len(), "{layout:?}: duplicate paths");
                // Parents come first.
                for (i, x) in e.iter().enumerate() {
                    if let Some((parent, _)) = x.path.rsplit_once('/') {
                        assert!(
                            e[..i]
                                .iter()
                                .any(|p| p.path == parent && p.kind == EntryKind::Dir),
                            "{layout:?}: {} before its parent",
                            x.path
                        );
                    }
                }
                // The fullest directory really has that many entries.
                let mut per_dir = std::collections::BTreeMap::<&str, u64>::new();
                for x in &e {
                    let parent = x.path.rsplit_once('/').map_or("", |p| p.0);
                    *per_dir.entry(parent).or_default() += 1;
                }
                let fullest = per_dir
                    .iter()
                    .filter(|(k, _)| !k.is_empty())
                    .map(|(_, v)| *v)
                    .max()
                    .unwrap_or(0);
                assert_eq!(fullest, c.largest_dir, "{layout:?} {separator:?} {shard:?}");
                assert_eq!(per_dir[""], c.parent_entries, "{layout:?}");
            }
        }
    }
}

#[test]
fn whole_brain_section_numbers() {
    let brain = PlanInput::whole_brain();
    // 150,000 x 120,000 halves 9 times down to 293 x 235: 10 levels, as the converter writes.
    let levels = brain.level_shapes();
    assert_eq!(levels.len(), 10);
    assert_eq!(levels[9], (293, 235));
    let s = section_counts(&brain, Layout::ZarrV3Sharded).expect("counts");
    assert_eq!((s.annexed_files, s.git_files, s.dirs), (10, 12, 11));
    assert_eq!(s.files() + s.dirs, 33);
    let raw = section_counts(&brain, Layout::RawTiff).expect("counts");
    assert_eq!(raw.files() + raw.dirs, 31);
    let v2 = section_counts(&brain, Layout::OmeZarrV2).expect("counts");
    // Level 0: 30 planes x 293 x 235 chunks of 512 x 512.
    let level0 = 30 * 293 * 235;
    // All levels: about 4/3 of level 0, more for the rounded-up edge chunks.
    assert_eq!(v2.annexed_files, 2_762_130);
    assert!(v2.annexed_files > level0 * 4 / 3);
    assert_eq!(v2.largest_dir, level0 + 1);
    // Uncompressed bytes: 3 x 30 x 150,000 x 120,000 = 1.62 TB at level 0.
    assert!(raw.data_bytes == 1_620_000_000_000);
    let ozx = section_counts(&brain, Layout::Ozx).expect("counts");
    assert_eq!(ozx.files() + ozx.dirs, 2);
}

#[test]
fn groupings_make_the_datasets_they_say() {
    let input = PlanInput {
        sections: 7000,
        subjects: 2,
        ..PlanInput::whole_brain()
    };
    let d = datasets(&input, Layout::ZarrV3Sharded, Grouping::PerSections(1000)).expect("ok");
    let subs: u64 = d.iter().skip(1).map(|s| s.count).sum();
    let sections: u64 = d.iter().map(|s| s.count * s.sections).sum();
    // 3,500 sections per subject: 3 full groups and one of 500 each.
    assert_eq!((subs, sections, d[0].subdatasets), (8, 7000, 8));
    let none = datasets(&input, Layout::ZarrV3Sharded, Grouping::None).expect("ok");
    assert_eq!(none.len(), 1);
    assert_eq!(none[0].largest_dir, 7000);
    assert!(matches!(
        datasets(&input, Layout::Ozx, Grouping::PerSections(0)),
        Err(Error::Input(_))
    ));
}

#[test]
fn datalad_overhead_per_file_and_dataset() {
    let input = PlanInput {
        sections: 1000,
        planes: 30,
        height: 4096,
        width: 4096,
        ..PlanInput::whole_brain()
    };
    let a = predict(&input, Layout::ZarrV3Sharded, Grouping::None).expect("ok");
    let b = predict(&input, Layout::ZarrV3Sharded, Grouping::PerSections(1)).expect("ok");
    // A subdataset per section costs its .git and DataLad files: dozens of inodes each.
    let per_ds = (b.inodes_after_gc - a.inodes_after_gc) as f64 / 1000.0;
    assert!((60.0..120.0).contains(&per_ds), "{per_ds}");
    // Per annexed file: object, key directory and (mostly) a second-level hash directory on top
    // of the symlink; plus 1,024 shared first-level directories over 10,000 keys.
    let plain = a.inodes_plain as f64;
    let per_annexed = (a.inodes_after_gc as f64 - plain) / a.annexed_files as f64;
    assert!((3.05..3.3).contains(&per_annexed), "{per_annexed}");
    let tuned = predict(
        &PlanInput {
            annex: AnnexOptions::TUNED,
            ..input
        },
        Layout::ZarrV3Sharded,
        Grouping::None,
    )
    .expect("ok");
    let per_annexed = (tuned.inodes_after_gc as f64 - plain) / tuned.annexed_files as f64;
    assert!((1.05..1.3).contains(&per_annexed), "{per_annexed}");
}

#[test]
fn invalid_input_is_an_error() {
    let bad = [
        PlanInput {
            sections: 0,
            ..small()
        },
        PlanInput {
            chunk: (0, 512),
            ..small()
        },
        PlanInput {
            shard: Some((1, 100, 512)),
            ..small()
        },
        PlanInput {
            compression_ratio: f64::NAN,
            ..small()
        },
        PlanInput {
            subjects: 4,
            ..small()
        },
        PlanInput {
            height: u64::MAX,
            ..small()
        },
    ];
    for input in bad {
        assert!(matches!(
            predict(&input, Layout::ZarrV3, Grouping::None),
            Err(Error::Input(_))
        ));
    }
    let e = section_entries(&small(), Layout::OmeZarrV2, 1, 1, 10);
    assert!(matches!(e, Err(Error::TooLarge { limit: 10, .. })));
}

#[test]
fn measure_counts_links_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join(".git/annex/objects/Xx/Yy/K")).expect("mkdir");
    std::fs::create_dir_all(root.join(".git/objects/ab")).expect("mkdir");
    std::fs::create_dir_all(root.join(".git/objects/pack")).expect("mkdir");
    std::fs::write(root.join(".git/annex/objects/Xx/Yy/K/K"), b"12345").expect("write");
    std::fs::write(root.join(".git/objects/ab/cdef"), b"x").expect("write");
    std::fs::write(root.join(".git/objects/pack/p.pack"), b"xy").expect("write");
    std::fs::write(root.join("meta.json"), b"{}").expect("write");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(".git/annex/objects/Xx/Yy/K/K", root.join("a.bin"))
            .expect("symlink");
        std::fs::hard_link(
            root.join(".git/annex/objects/Xx/Yy/K/K"),
            root.join("b.bin"),
        )
        .expect("link");
    }
    let m = measure(root).expect("measure");
    assert_eq!(m.dirs, 10);
    assert_eq!(m.git.dirs, 9);
    assert_eq!(m.git.loose_objects, 1);
    assert_eq!(m.annexed_objects, 1);
    assert_eq!(m.git.repositories, 1);
    #[cfg(unix)]
    {
        assert_eq!((m.files, m.symlinks, m.extra_links), (4, 1, 1));
        assert_eq!(m.bytes, 5 + 1 + 2 + 2);
        assert_eq!(m.inodes(), 15);
    }
    assert!(measure(&root.join("missing")).is_err());
}

#[test]
fn plan_and_recommendation_for_the_whole_brain() {
    let brain = PlanInput::whole_brain();
    let rows = plan(&brain, 3_000_000).expect("plan");
    assert!(rows.len() >= 2 * 6 * 8);
    let r = recommend(&rows, 3_000_000).expect("a row");
    assert!(r.row.layout.bids_valid(), "{r:?}");
    assert!(r.row.fits_quota && r.row.within_limits);
    // The smallest BIDS-valid row within the limits: compact annex, 2,000 sections per
    // subdataset (what `strata convert --datalad` does by default, plus the annex flag).
    assert_eq!(r.row.annex, AnnexMode::Compact);
    assert_eq!(r.row.grouping, Grouping::PerSections(2000));
    assert!(
        rows.iter()
            .filter(|o| o.layout.bids_valid() && o.within_limits && o.fits_quota)
            .all(|o| o.inodes_after_gc >= r.row.inodes_after_gc)
    );
    assert_eq!(
        r.convert_flags.as_deref(),
        Some("--layout zarr --datalad ROOT --datalad-group 2000 --datalad-annex compact")
    );
    assert!(
        r.reasons
            .iter()
            .any(|s| s.contains("with git-annex defaults the smallest")),
        "{r:?}"
    );
    let defaults = plan_with(&brain, 3_000_000, &[AnnexMode::Default]).expect("plan");
    assert!(defaults.iter().all(|o| o.annex == AnnexMode::Default));
    assert_eq!(defaults.len() * 2, rows.len());
    let d = recommend(&defaults, 3_000_000).expect("a row");
    assert_eq!(
        (d.row.annex, d.row.grouping),
        (AnnexMode::Default, Grouping::PerSections(2000))
    );
    assert!(d.row.inodes_after_gc > r.row.inodes_after_gc);
    // v2 one-file-per-chunk never fits: billions of chunk files.
    assert!(
        rows.iter()
            .filter(|r| r.layout == Layout::OmeZarrV2)
            .all(|r| !r.fits_quota)
    );
    let rows = plan(&brain, 350_000).expect("plan");
    let r = recommend(&rows, 350_000).expect("a row");
    assert!(
        r.row.layout.bids_valid() && r.row.inodes_after_gc <= 350_000,
        "{r:?}"
    );
    assert!(recommend(&[], 1).is_none());
}

#[test]
fn svg_has_a_line_per_layout_and_quota() {
    let brain = PlanInput::whole_brain();
    let svg = render_svg(
        &brain,
        &[
            (Layout::ZarrV3Sharded, AnnexOptions::DEFAULT),
            (Layout::ZarrV3Sharded, AnnexOptions::TUNED),
        ],
        &[1, 10, 100, 1000],
        &[("project quota", 3_000_000), ("archive <quota>", 500_000)],
    )
    .expect("svg");
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    assert_eq!(svg.matches("stroke-width=\"2\"><title>").count(), 2);
    assert!(svg.contains("<title>zarr-v3-sharded (hash1+thin)</title>"));
    assert_eq!(svg.matches("stroke-dasharray").count(), 2);
    assert!(svg.contains("archive &lt;quota&gt;"));
    assert!(render_svg(&brain, &[], &[1], &[]).is_err());
    assert!(render_svg(&brain, &[(Layout::Ozx, AnnexOptions::DEFAULT)], &[0], &[]).is_err());
}

#[test]
fn extreme_inputs_do_not_panic() {
    let huge = PlanInput {
        sections: 1 << 40,
        subjects: 1,
        planes: 1 << 20,
        height: 1 << 32,
        width: 1 << 32,
        dtype_bytes: 16,
        channels: 1 << 16,
        chunk: (1, 1),
        separator: KeySeparator::Slash,
        levels: Some(64),
        compression_ratio: 1000.0,
        ..PlanInput::whole_brain()
    };
    for layout in Layout::ALL {
        let p = predict(&huge, layout, Grouping::PerSections(7)).expect("predict");
        assert!(p.inodes_after_gc > 0);
    }
    let rows = plan(&huge, u64::MAX).expect("plan");
    assert!(!rows.is_empty());
    assert!(matches!(
        section_entries(&huge, Layout::ZarrV3, 1, 1, 1_000),
        Err(Error::TooLarge { .. })
    ));
}

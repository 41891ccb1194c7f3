//! `strata convert --datalad` with real DataLad and git-annex: sections land in the subdatasets
//! the planner models, one save per section with the provenance, metadata in git and arrays
//! annexed, the tree still BIDS-valid and as large as the planner predicts; a section that fails
//! its QC gate saves nothing.
//!
//! The DataLad tests run when `STRATA_DATALAD` points at a datalad executable and git-annex is
//! installed (`cargo xtask test` does both); they fail instead of skipping when
//! `STRATA_REQUIRE_PEERS` is set. Every `strata` runs with an empty `HOME` and no system git
//! config, like a fresh machine without a git identity.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use strata_plan::{Grouping, Layout, PlanInput, measure, predict, section_counts};

mod common;
use common::run;

/// The datalad executable, or `None` (skip); see [`strata_testkit::datalad`].
fn peers() -> Option<PathBuf> {
    strata_testkit::datalad()
}

/// A scratch folder with an empty home (no git identity).
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A command in the fresh-machine environment.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("HOME", self.path().join("home"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("XDG_CONFIG_HOME");
        for var in [
            "GIT_AUTHOR_NAME",
            "GIT_AUTHOR_EMAIL",
            "GIT_COMMITTER_NAME",
            "GIT_COMMITTER_EMAIL",
        ] {
            c.env_remove(var);
        }
        c
    }

    fn strata(&self) -> Command {
        self.command(env!("CARGO_BIN_EXE_strata"))
    }

    /// `strata convert <raw> --datalad <root>` with `datalad` as DataLad; the caller adds the
    /// section's flags.
    fn convert_into(&self, datalad: &Path, raw: &Path, root: &Path) -> Command {
        let mut c = self.strata();
        c.env("STRATA_DATALAD", datalad)
            .arg("convert")
            .arg(raw)
            .arg("--datalad")
            .arg(root);
        c
    }

    fn git(&self, repo: &Path, args: &[&str]) -> String {
        let out = run(self.command("git").arg("-C").arg(repo).args(args));
        assert!(
            out.status.success(),
            "git {args:?} in {}: {}",
            repo.display(),
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes a synthetic z-stack (distinct content per seed, so no two sections share an
    /// annex key).
    fn sample(&self, name: &str, seed: u64, extra: &[&str]) -> PathBuf {
        let raw = self.path().join(name);
        let out = run(self
            .strata()
            .arg("sample")
            .arg(&raw)
            .args(["--seed", &seed.to_string()])
            .args(extra));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        raw
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Commit messages of a repository that record a section.
fn section_saves(s: &Scratch, repo: &Path) -> Vec<String> {
    s.git(repo, &["log", "--format=%B%x00"])
        .split('\0')
        .map(str::trim)
        .filter(|m| m.starts_with("strata convert sub-"))
        .map(str::to_owned)
        .collect()
}

/// The provenance JSON below a save message's first line.
fn provenance(message: &str) -> Value {
    let (_, body) = message.split_once("\n\n").expect("message body");
    serde_json::from_str(body).expect("provenance JSON")
}

/// Files below `dir` (recursively), relative paths.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Three sections, two per subdataset: `sub-01/ses-01` gets two, `sub-01/ses-02` one.
#[test]
fn three_sections_into_two_subdatasets() {
    let Some(datalad) = peers() else { return };
    let s = Scratch::new();
    let root = s.path().join("bids");
    let mut summaries = Vec::new();
    for i in 1..=3u64 {
        let raw = s.sample(
            &format!("raw{i}"),
            i,
            &["--size", "1024x768", "--planes", "3"],
        );
        let out = run(s
            .convert_into(&datalad, &raw, &root)
            .args(["--datalad-group", "2", "--subject", "01", "--json"])
            .args(["--sample", &format!("{i:04}")]));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
        summaries.push(v);
    }
    let ses1 = root.join("sub-01/ses-01");
    let ses2 = root.join("sub-01/ses-02");
    let canonical = |p: &Path| std::fs::canonicalize(p).expect("canonicalize");

    // The JSON summary says where each section went and which commit saved it.
    for (i, v) in summaries.iter().enumerate() {
        let d = &v["datalad"];
        let ses = if i < 2 { &ses1 } else { &ses2 };
        assert_eq!(d["grouping"], "per-2-sections", "{v}");
        assert_eq!(
            canonical(Path::new(d["dataset"].as_str().expect("dataset"))),
            canonical(ses)
        );
        assert_eq!(d["session"], if i < 2 { "01" } else { "02" });
        assert_eq!(d["saved"], true);
        let output = v["output"].as_str().expect("output");
        assert!(
            output.ends_with(&format!(
                "sub-01/ses-{0}/micr/sub-01_ses-{0}_sample-{1:04}_BF.ome.zarr",
                if i < 2 { "01" } else { "02" },
                i + 1
            )),
            "{output}"
        );
    }
    let created = |i: usize| -> Vec<PathBuf> {
        summaries[i]["datalad"]["created"]
            .as_array()
            .expect("created")
            .iter()
            .map(|p| canonical(Path::new(p.as_str().expect("path"))))
            .collect()
    };
    assert_eq!(created(0), vec![canonical(&root), canonical(&ses1)]);
    assert!(created(1).is_empty());
    assert_eq!(created(2), vec![canonical(&ses2)]);
    assert_eq!(
        summaries[2]["datalad"]["commit"].as_str().expect("commit"),
        s.git(&ses2, &["rev-parse", "HEAD"]).trim()
    );
    assert_eq!(
        summaries[2]["datalad"]["superdataset_commit"]
            .as_str()
            .expect("commit"),
        s.git(&root, &["rev-parse", "HEAD"]).trim()
    );

    // Exactly one save per section: in its subdataset and (recursively) in the superdataset.
    let saves1 = section_saves(&s, &ses1);
    let saves2 = section_saves(&s, &ses2);
    assert_eq!(saves1.len(), 2, "{saves1:#?}");
    assert_eq!(saves2.len(), 1, "{saves2:#?}");
    assert_eq!(section_saves(&s, &root).len(), 3);
    assert!(saves2[0].starts_with("strata convert sub-01 sample-0003 (3 planes, 2 levels)\n"));
    let p = provenance(&saves2[0]);
    assert_eq!(p["strata_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(p["session"], "02");
    assert_eq!(p["parameters"]["datalad_group"], "per-2-sections");
    let sources = p["source"]["files"].as_array().expect("source files");
    assert_eq!(sources.len(), 3);
    assert!(
        sources
            .iter()
            .all(|f| f["bytes"].as_u64().is_some_and(|b| b > 0))
    );
    assert_eq!(p["record"]["sources"].as_array().map(Vec::len), Some(3));
    assert!(p["started"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Arrays annexed, metadata in git.
    for (ses, label, samples) in [(&ses1, "01", &[1, 2][..]), (&ses2, "02", &[3][..])] {
        let annexed: Vec<String> = s
            .git(ses, &["annex", "find"])
            .lines()
            .map(str::to_owned)
            .collect();
        let mut shards = Vec::new();
        for n in samples {
            let stem = format!("sub-01_ses-{label}_sample-{n:04}_BF");
            let image = ses.join("micr").join(format!("{stem}.ome.zarr"));
            for f in files(&image) {
                let rel = f
                    .strip_prefix(ses)
                    .expect("inside")
                    .to_string_lossy()
                    .into_owned();
                let meta = std::fs::symlink_metadata(&f).expect("stat");
                let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                if name.starts_with("c.") {
                    assert!(meta.file_type().is_symlink(), "{rel} not annexed");
                    let target = std::fs::read_link(&f).expect("link");
                    assert!(
                        target.to_string_lossy().contains(".git/annex/objects"),
                        "{rel}"
                    );
                    shards.push(rel);
                } else {
                    assert_eq!(name, "zarr.json", "{rel}");
                    assert!(meta.file_type().is_file(), "{rel} is not a regular file");
                    s.git(ses, &["ls-files", "--error-unmatch", &rel]);
                }
            }
            let sidecar = format!("micr/{stem}.json");
            assert!(
                std::fs::symlink_metadata(ses.join(&sidecar))
                    .expect("sidecar")
                    .is_file()
            );
            s.git(ses, &["ls-files", "--error-unmatch", &sidecar]);
        }
        shards.sort();
        let mut found = annexed.clone();
        found.sort();
        assert_eq!(found, shards, "annexed files of {}", ses.display());
        assert_eq!(shards.len(), 2 * samples.len());
    }
    for f in [
        "samples.tsv",
        "participants.tsv",
        "dataset_description.json",
    ] {
        assert!(std::fs::symlink_metadata(root.join(f)).expect(f).is_file());
        s.git(&root, &["ls-files", "--error-unmatch", f]);
    }
    assert!(s.git(&root, &["annex", "find"]).trim().is_empty());

    // Nothing left unsaved, anywhere.
    let status = run(s.command(&datalad).args(["status", "-r", "-d"]).arg(&root));
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("working tree clean"),
        "{}",
        text(&status)
    );
    for repo in [&root, &ses1, &ses2] {
        assert_eq!(
            s.git(repo, &["status", "--porcelain"]),
            "",
            "{}",
            repo.display()
        );
    }

    // Still a valid BIDS dataset with DataLad's dot files in it.
    let out = run(s.strata().arg("validate").arg(&root));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The planner's model of exactly this tree: the per-section layout is exact, the whole
    // tree (DataLad included) within 5% before and after gc.
    let input = PlanInput {
        sections: 3,
        subjects: 1,
        planes: 3,
        height: 768,
        width: 1024,
        dtype_bytes: 1,
        channels: 1,
        ..PlanInput::whole_brain()
    };
    let sc = section_counts(&input, Layout::ZarrV3Sharded).expect("counts");
    let image = ses2.join("micr/sub-01_ses-02_sample-0003_BF.ome.zarr");
    let image_files = files(&image).len() as u64;
    let image_dirs = 1 + std::fs::read_dir(&image)
        .expect("image")
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .count() as u64;
    assert_eq!(
        image_files + 1,
        sc.files(),
        "files per section (sidecar included)"
    );
    assert_eq!(image_dirs, sc.dirs, "folders per section");
    let predicted = predict(&input, Layout::ZarrV3Sharded, Grouping::PerSections(2)).expect("plan");
    let before = measure(&root).expect("measure");
    assert_eq!(before.symlinks, predicted.annexed_files);
    assert_eq!(before.annexed_objects, predicted.annexed_files);
    assert_eq!(before.git.repositories, predicted.datasets);
    for repo in [&root, &ses1, &ses2] {
        s.git(repo, &["gc", "--prune=now", "--quiet"]);
    }
    let after = measure(&root).expect("measure");
    #[allow(clippy::cast_precision_loss)]
    let error = |p: u64, r: u64| (p as f64 - r as f64) / r as f64;
    let (eb, ea) = (
        error(predicted.inodes_before_gc, before.inodes()),
        error(predicted.inodes_after_gc, after.inodes()),
    );
    eprintln!(
        "real {} / {} inodes before / after gc, predicted {} / {}: {:+.1}% / {:+.1}%",
        before.inodes(),
        after.inodes(),
        predicted.inodes_before_gc,
        predicted.inodes_after_gc,
        100.0 * eb,
        100.0 * ea
    );
    assert!(eb.abs() <= 0.05 && ea.abs() <= 0.05, "prediction off");
}

/// A section that fails its QC gate creates no dataset and saves nothing.
#[test]
fn qc_failure_saves_nothing() {
    let Some(datalad) = peers() else { return };
    let s = Scratch::new();
    let root = s.path().join("bids");
    let convert = |raw: &Path, sample: &str| {
        run(s
            .convert_into(&datalad, raw, &root)
            .arg("--bids-root")
            .arg(&root)
            .args(["--subject", "A", "--sample", sample, "--qc-gate", "--json"]))
    };
    // A stack that passes, with the default grouping (the planner's whole-brain one).
    let good = s.sample("good", 1, &["--size", "512x512", "--planes", "5"]);
    let out = convert(&good, "1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["datalad"]["grouping"], "per-2000-sections");
    let ses = root.join("sub-A/ses-01");
    // The QC report is saved with the section: JSON in git, the HTML page annexed.
    s.git(
        &root,
        &[
            "ls-files",
            "--error-unmatch",
            "derivatives/qc/sub-A/sub-A_ses-01_sample-1_BF_qc.json",
        ],
    );
    let heads = |s: &Scratch| {
        (
            s.git(&root, &["rev-parse", "HEAD"]),
            s.git(&ses, &["rev-parse", "HEAD"]),
        )
    };
    let before = heads(&s);

    // The focus peak at the first plane: the stack missed focus.
    let bad = s.sample(
        "bad",
        2,
        &["--size", "512x512", "--planes", "5", "--in-focus", "0"],
    );
    let out = convert(&bad, "2");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(heads(&s), before, "a failing section was saved");
    assert_eq!(section_saves(&s, &root).len(), 1);
    assert_eq!(section_saves(&s, &ses).len(), 1);
    let micr: Vec<String> = std::fs::read_dir(ses.join("micr"))
        .expect("micr")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.contains("sample-2"))
        .collect();
    assert!(micr.is_empty(), "published despite failing QC: {micr:?}");
}

/// Usage and environment errors exit with 2 before anything is converted.
#[test]
fn datalad_errors_are_clear() {
    let s = Scratch::new();
    let raw = s.sample("raw", 1, &["--size", "256x256", "--planes", "2"]);
    let root = s.path().join("bids");
    let convert = |extra: &[&str]| {
        run(s
            .strata()
            .env("STRATA_DATALAD", s.path().join("no/such/datalad"))
            .arg("convert")
            .arg(&raw)
            .args(["--subject", "01", "--sample", "1"])
            .args(extra))
    };
    let r = root.to_string_lossy().into_owned();
    let out = convert(&["--datalad", &r]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("STRATA_DATALAD") && err.contains("pip install datalad"),
        "{err}"
    );
    assert!(err.contains("git-annex"), "{err}");
    assert!(!root.exists(), "converted although DataLad is missing");

    let other = s.path().join("other").to_string_lossy().into_owned();
    let out = convert(&["--datalad", &r, "--bids-root", &other]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be the BIDS root"));

    let out = convert(&["--datalad", &r, "--datalad-group", "2", "--session", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--session"));

    let out = convert(&["--bids-root", &r, "--datalad-group", "2"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--datalad-group without --datalad"
    );
    let out = convert(&["--datalad", &r, "--datalad-group", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--datalad-annex compact`: new datasets use one hash directory level and thin unlocked
/// files, so a shard costs one inode (the work-tree file is the annexed object), and the
/// pixels read back through the work tree.
#[test]
fn compact_annex_costs_one_inode_per_shard() {
    use std::os::unix::fs::MetadataExt;
    let Some(datalad) = peers() else { return };
    let s = Scratch::new();
    let root = s.path().join("bids");
    let raw = s.sample("raw", 7, &["--size", "1024x768", "--planes", "3"]);
    let out = run(s
        .convert_into(&datalad, &raw, &root)
        .args(["--datalad-group", "section", "--datalad-annex", "compact"])
        .args(["--subject", "01", "--sample", "0001", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(v["datalad"]["annex"], "compact", "{v}");
    let dataset = root.join("sub-01/ses-01");
    for repo in [&root, &dataset] {
        assert_eq!(
            s.git(repo, &["config", "annex.tune.objecthash1"]).trim(),
            "true"
        );
        assert_eq!(s.git(repo, &["config", "annex.thin"]).trim(), "true");
    }
    let image = dataset.join("micr/sub-01_ses-01_sample-0001_BF.ome.zarr");
    let shards: Vec<PathBuf> = files(&image)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("c."))
        })
        .collect();
    assert!(!shards.is_empty());
    let annexed = s.git(&dataset, &["annex", "find"]);
    for shard in &shards {
        let meta = std::fs::symlink_metadata(shard).expect("shard");
        // A regular file hard-linked to its annexed object: two names, one inode.
        assert!(
            meta.file_type().is_file(),
            "{} is not a regular file",
            shard.display()
        );
        assert_eq!(meta.nlink(), 2, "{}", shard.display());
        let rel = shard.strip_prefix(&dataset).expect("inside the dataset");
        assert!(
            annexed.contains(&*rel.to_string_lossy()),
            "{} not annexed",
            rel.display()
        );
    }
    // objecthash1: objects/<hash>/<KEY>/<KEY>, one hash level.
    for object in files(&dataset.join(".git/annex/objects")) {
        let depth = object
            .strip_prefix(dataset.join(".git/annex/objects"))
            .expect("below objects")
            .components()
            .count();
        assert_eq!(depth, 3, "{}", object.display());
    }
    // The work tree still reads as the image: strata validate checks every array.
    let out = run(s.strata().arg("validate").arg(&root));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s.git(&dataset, &["status", "--porcelain"]).trim(), "");
}

//! Builds real DataLad datasets the way a conversion run fills them: one save per section.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

use strata_plan::{
    AnnexOptions, EntryKind, Grouping, Layout, Measurement, PlanInput, datalad::ensure_rules,
    measure, section_entries,
};

pub use strata_testkit::datalad;

fn run(cmd: &mut Command) {
    let out = cmd
        .env("GIT_AUTHOR_NAME", "Strata Test")
        .env("GIT_AUTHOR_EMAIL", "test@strata.invalid")
        .env("GIT_COMMITTER_NAME", "Strata Test")
        .env("GIT_COMMITTER_EMAIL", "test@strata.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn create(datalad: &Path, annex: AnnexOptions, parent: Option<&Path>, path: &Path) {
    // The annex settings and `.gitattributes` rules `strata convert --datalad` uses.
    let mut cmd = Command::new(datalad);
    // Read by `git annex init`, which `datalad create` runs.
    cmd.envs(annex.init_env());
    cmd.arg("create");
    if let Some(p) = parent {
        cmd.arg("-d").arg(p);
    }
    run(cmd.arg(path));
    for (key, value) in annex.repo_config() {
        run(Command::new("git")
            .arg("-C")
            .arg(path)
            .args(["config", key, value]));
    }
    ensure_rules(path).expect("write .gitattributes");
}

fn write_section(input: &PlanInput, layout: Layout, parent: &Path, subject: u64, index: u64) {
    std::fs::create_dir_all(parent).expect("mkdir");
    let entries = section_entries(input, layout, subject, index, 1_000_000).expect("entries");
    for e in entries {
        let path = parent.join(&e.path);
        match e.kind {
            EntryKind::Dir => std::fs::create_dir_all(&path).expect("mkdir"),
            EntryKind::GitFile => {
                std::fs::write(&path, format!("{{\"path\": \"{}\"}}\n", e.path)).expect("write")
            }
            // Unique binary content, so every file is its own annex key.
            EntryKind::AnnexedFile => {
                std::fs::write(&path, format!("\0\u{1}{}/{}\0", parent.display(), e.path))
                    .expect("write");
            }
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Before `git gc`.
    pub before: Measurement,
    /// After `git gc --prune=now` in every repository.
    pub after: Measurement,
}

fn repos(root: &Path, out: &mut Vec<PathBuf>) {
    if root.join(".git").exists() {
        out.push(root.to_path_buf());
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) && e.file_name() != ".git" {
            repos(&p, out);
        }
    }
}

/// Every repository under `root`.
pub fn repositories(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    repos(root, &mut out);
    out
}

/// Builds the tree of `input` in `root` (which must not exist) with real DataLad: the root
/// dataset, subdatasets as the grouping says, one recursive save per section; then measures it,
/// runs `git gc --prune=now` in every repository and measures again.
pub fn build(
    datalad: &Path,
    input: &PlanInput,
    layout: Layout,
    grouping: Grouping,
    root: &Path,
) -> Run {
    create(datalad, input.annex, None, root);
    let bids = layout != Layout::RawTiff;
    let base = input.sections / input.subjects;
    let rem = input.sections % input.subjects;
    let mut index = 0;
    let mut samples = String::from("sample_id\tparticipant_id\n");
    let mut participants = String::from("participant_id\n");
    for subject in 1..=input.subjects {
        let k = base + u64::from(subject <= rem);
        participants.push_str(&format!("sub-{subject:02}\n"));
        for local in 0..k {
            index += 1;
            let sub = root.join(format!("sub-{subject:02}"));
            let ds = match grouping {
                Grouping::None => sub.clone(),
                Grouping::PerSubject => {
                    if local == 0 {
                        create(datalad, input.annex, Some(root), &sub);
                    }
                    sub.clone()
                }
                Grouping::PerSections(n) => {
                    let ses = sub.join(format!("ses-{:02}", local / n + 1));
                    if local % n == 0 {
                        std::fs::create_dir_all(&sub).expect("mkdir");
                        create(datalad, input.annex, Some(root), &ses);
                    }
                    ses
                }
                _ => unreachable!("grouping"),
            };
            let parent = if bids { ds.join("micr") } else { ds };
            write_section(input, layout, &parent, subject, index);
            if bids {
                samples.push_str(&format!("sample-{index:04}\tsub-{subject:02}\n"));
                std::fs::write(root.join("samples.tsv"), &samples).expect("write");
                std::fs::write(root.join("participants.tsv"), &participants).expect("write");
                if index == 1 {
                    std::fs::write(root.join("dataset_description.json"), "{\"Name\": \"t\"}\n")
                        .expect("write");
                    std::fs::write(root.join("README"), "test\n").expect("write");
                }
            }
            run(Command::new(datalad)
                .arg("save")
                .arg("-d")
                .arg(root)
                .arg("-r")
                .arg("-m")
                .arg(format!("section {index}")));
        }
    }
    let before = measure(root).expect("measure");
    for repo in repositories(root) {
        run(Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["gc", "--prune=now", "--quiet"]));
    }
    let after = measure(root).expect("measure");
    Run { before, after }
}

/// A small input: `sections` sections of `planes` planes of `height` x `width`, RGB.
pub fn small(sections: u64, subjects: u64, planes: u64, height: u64, width: u64) -> PlanInput {
    PlanInput {
        sections,
        subjects,
        planes,
        height,
        width,
        ..PlanInput::whole_brain()
    }
}

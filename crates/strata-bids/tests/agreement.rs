//! Verdict agreement with the official BIDS validator on the public microscopy examples and on
//! broken copies of them.
//!
//! The examples are read in place from `../shared/conformance/bids-examples` (next to the
//! repository). When `STRATA_BIDS_VALIDATOR` names the official validator (`cargo xtask test`
//! sets it to the venv's `bids-validator-deno`), every case is also run through it and the two
//! verdicts must agree; `STRATA_REQUIRE_PEERS=1` makes its absence a failure.

use serde_json::Value;
use std::path::{Path, PathBuf};
use strata_bids::validate::{Report, Severity, validate};
use strata_testkit::{bids_examples as examples, bids_validator_errors as official_errors};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::write(&target, std::fs::read(e.path()).expect("read")).expect("write");
        }
    }
}

fn errors(r: &Report) -> Vec<(String, String)> {
    r.issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| (i.code.clone(), i.location.clone()))
        .collect()
}

/// Validates `root` with Strata (and the official validator if configured), checks both
/// verdicts equal `expect_valid`, and that Strata reports every code in `codes`.
fn check(case: &str, root: &Path, expect_valid: bool, codes: &[&str]) {
    let report = validate(root).unwrap_or_else(|e| panic!("{case}: {e}"));
    let ours = errors(&report);
    assert_eq!(
        ours.is_empty(),
        expect_valid,
        "{case}: strata verdict wrong; errors: {ours:#?}"
    );
    for code in codes {
        assert!(
            ours.iter().any(|(c, _)| c == code),
            "{case}: expected {code}, got {ours:#?}"
        );
    }
    for issue in &report.issues {
        assert!(
            !issue.message.is_empty(),
            "{case}: empty message for {issue:?}"
        );
    }
    if let Some(official) = official_errors(root) {
        assert_eq!(
            official.is_empty(),
            expect_valid,
            "{case}: official verdict differs from the expected one: {official:#?}"
        );
        // Where the official validator reports an error, so does Strata, at the same file.
        for (code, location) in &official {
            let location = location.trim_end_matches('/');
            assert!(
                ours.iter()
                    .any(|(_, l)| l.trim_end_matches('/') == location)
                    || location.is_empty() && ours.iter().any(|(c, _)| c == code),
                "{case}: official reports {code} at {location:?}; strata: {ours:#?}"
            );
        }
    }
}

#[test]
fn public_examples_agree() {
    let ex = examples();
    for (name, valid, codes) in [
        ("micr_SEM", true, &[][..]),
        ("micr_SEMzarr", true, &[]),
        ("micr_SPIM", true, &[]),
        ("micr_XPCTzarr", false, &["EMPTY_FILE"]),
    ] {
        check(name, &ex.join(name), valid, codes);
    }
}

type Mutation = fn(&Path);

fn sem_sidecar(root: &Path) -> PathBuf {
    root.join("sub-01/ses-01/micr/sub-01_ses-01_sample-A_SEM.json")
}

fn sem_image(root: &Path) -> PathBuf {
    root.join("sub-01/ses-01/micr/sub-01_ses-01_sample-A_SEM.png")
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    strata_testkit::edit_json(path, |v| f(v.as_object_mut().expect("object")));
}

fn rename_image(root: &Path, new_name: &str) {
    let from = sem_image(root);
    std::fs::rename(&from, from.with_file_name(new_name)).expect("rename");
}

fn write(path: PathBuf, text: &str) {
    std::fs::write(path, text).expect("write");
}

fn units_only_inherited(root: &Path, top_sidecar: &str) {
    for ses in ["ses-01", "ses-02"] {
        let p = root.join(format!("sub-01/{ses}/micr/sub-01_{ses}_sample-A_SEM.json"));
        edit_json(&p, |m| {
            m.remove("PixelSizeUnits");
        });
    }
    write(root.join(top_sidecar), "{\"PixelSizeUnits\": \"um\"}");
}

const CASES: &[(&str, Mutation, bool, &[&str])] = &[
    (
        "missing PixelSize",
        |r| {
            edit_json(&sem_sidecar(r), |m| {
                m.remove("PixelSize");
            });
        },
        false,
        &["SIDECAR_KEY_REQUIRED"],
    ),
    (
        "missing sidecar",
        |r| std::fs::remove_file(sem_sidecar(r)).expect("rm"),
        false,
        &["SIDECAR_KEY_REQUIRED"],
    ),
    (
        "bad unit",
        |r| {
            edit_json(&sem_sidecar(r), |m| {
                m.insert("PixelSizeUnits".into(), "cm".into());
            });
        },
        false,
        &["JSON_SCHEMA_VALIDATION_ERROR"],
    ),
    (
        "negative pixel size",
        |r| {
            edit_json(&sem_sidecar(r), |m| {
                m.insert("PixelSize".into(), serde_json::json!([-1, 2]));
            });
        },
        false,
        &["JSON_SCHEMA_VALIDATION_ERROR"],
    ),
    (
        "pixel size as a string",
        |r| {
            edit_json(&sem_sidecar(r), |m| {
                m.insert("PixelSize".into(), "1".into());
            });
        },
        false,
        &["JSON_SCHEMA_VALIDATION_ERROR"],
    ),
    (
        "malformed sidecar JSON",
        |r| write(sem_sidecar(r), "{\"PixelSize\": [1,"),
        false,
        &["JSON_INVALID"],
    ),
    (
        "empty sidecar",
        |r| write(sem_sidecar(r), ""),
        false,
        &["EMPTY_FILE", "JSON_INVALID"],
    ),
    (
        "entity order",
        |r| rename_image(r, "sub-01_sample-A_ses-01_SEM.png"),
        false,
        &["FILENAME_MISMATCH"],
    ),
    (
        "unknown suffix",
        |r| rename_image(r, "sub-01_ses-01_sample-A_XYZ.png"),
        false,
        &["NOT_INCLUDED", "SIDECAR_WITHOUT_DATAFILE"],
    ),
    (
        "bad label",
        |r| rename_image(r, "sub-01_ses-01_sample-A_B_SEM.png"),
        false,
        &["ENTITY_WITH_NO_LABEL"],
    ),
    (
        "bad extension",
        |r| rename_image(r, "sub-01_ses-01_sample-A_SEM.bmp"),
        false,
        &["EXTENSION_MISMATCH"],
    ),
    (
        "subject of another folder",
        |r| rename_image(r, "sub-02_ses-01_sample-A_SEM.png"),
        false,
        &["INVALID_LOCATION"],
    ),
    (
        "missing description",
        |r| std::fs::remove_file(r.join("dataset_description.json")).expect("rm"),
        false,
        &["MISSING_DATASET_DESCRIPTION"],
    ),
    (
        "description without BIDSVersion",
        |r| {
            edit_json(&r.join("dataset_description.json"), |m| {
                m.remove("BIDSVersion");
            });
        },
        false,
        &["JSON_KEY_REQUIRED"],
    ),
    (
        "malformed description",
        |r| write(r.join("dataset_description.json"), "{\"Name\":"),
        false,
        &["JSON_INVALID", "JSON_KEY_REQUIRED"],
    ),
    (
        "wrong datatype folder",
        |r| {
            let anat = r.join("sub-01/ses-01/anat");
            std::fs::create_dir_all(&anat).expect("mkdir");
            for f in [sem_image(r), sem_sidecar(r)] {
                std::fs::rename(&f, anat.join(f.file_name().expect("name"))).expect("mv");
            }
        },
        false,
        &["DATATYPE_MISMATCH"],
    ),
    (
        "missing samples table",
        |r| std::fs::remove_file(r.join("samples.tsv")).expect("rm"),
        false,
        &["SIDECAR_WITHOUT_DATAFILE"],
    ),
    (
        "missing samples table and its sidecar",
        |r| {
            std::fs::remove_file(r.join("samples.tsv")).expect("rm");
            std::fs::remove_file(r.join("samples.json")).expect("rm");
        },
        true,
        &[],
    ),
    (
        "bad sample_type",
        |r| {
            write(
                r.join("samples.tsv"),
                "sample_id\tparticipant_id\tsample_type\nsample-A\tsub-01\tbanana\n",
            );
        },
        false,
        &["TSV_VALUE_INCORRECT_TYPE"],
    ),
    (
        "ragged samples row",
        |r| {
            write(
                r.join("samples.tsv"),
                "sample_id\tparticipant_id\tsample_type\nsample-A\tsub-01\n",
            );
        },
        false,
        &["TSV_EQUAL_ROWS"],
    ),
    (
        "samples without sample_type",
        |r| {
            write(
                r.join("samples.tsv"),
                "sample_id\tparticipant_id\nsample-A\tsub-01\n",
            )
        },
        false,
        &["TSV_COLUMN_MISSING"],
    ),
    (
        "duplicate sample row",
        |r| {
            write(
                r.join("samples.tsv"),
                "sample_id\tparticipant_id\tsample_type\nsample-A\tsub-01\ttissue\nsample-A\tsub-01\ttissue\n",
            );
        },
        false,
        &["TSV_INDEX_VALUE_NOT_UNIQUE"],
    ),
    (
        "participant missing",
        |r| write(r.join("participants.tsv"), "participant_id\nsub-02\n"),
        false,
        &["PARTICIPANT_ID_MISMATCH"],
    ),
    (
        "sessions without session_id",
        |r| write(r.join("sub-01/sub-01_sessions.tsv"), "session\nses-01\n"),
        false,
        &["TSV_COLUMN_MISSING"],
    ),
    (
        "stray file",
        |r| write(r.join("notes.txt"), "hi"),
        false,
        &["NOT_INCLUDED"],
    ),
    (
        "stray file in a subject folder",
        |r| write(r.join("sub-01/junk.dat"), "hi"),
        false,
        &["NOT_INCLUDED"],
    ),
    (
        "units inherited from the dataset root",
        |r| units_only_inherited(r, "sample-A_SEM.json"),
        true,
        &[],
    ),
    (
        "units inherited from a sidecar of another sample",
        |r| units_only_inherited(r, "sample-B_SEM.json"),
        false,
        &["SIDECAR_KEY_REQUIRED", "SIDECAR_WITHOUT_DATAFILE"],
    ),
    (
        "hidden files are ignored",
        |r| write(r.join(".samples.tsv.lock"), ""),
        true,
        &[],
    ),
];

#[test]
fn broken_copies_agree() {
    let ex = examples().join("micr_SEM");
    for (case, mutate, valid, codes) in CASES {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(&ex, dir.path());
        mutate(dir.path());
        check(case, dir.path(), *valid, codes);
    }
}

#[test]
fn empty_chunk_inside_ome_zarr() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&examples().join("micr_SEMzarr"), dir.path());
    let chunk = dir
        .path()
        .join("sub-01/ses-01/micr/sub-01_ses-01_sample-A_SPIM.ome.zarr/0/0/0");
    write(chunk, "");
    check("empty chunk", dir.path(), false, &["EMPTY_FILE"]);
}

#[test]
fn not_a_directory_is_an_error_not_a_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x");
    write(file.clone(), "x");
    let e = validate(&file).expect_err("file");
    assert!(e.to_string().contains("not a directory"), "{e}");
    assert!(validate(&dir.path().join("missing")).is_err());
}

//! The `strata` command as a user runs it: exit codes, JSON output, the demo dataset, and
//! concurrent writers to one dataset.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use strata_testkit::{bids_examples as examples, edit_json as edit, names, read_json, stdout_json};

mod common;
use common::{convert, run, sample, strata};

/// How many errors the official validator reports, `None` when it is not configured.
fn official_errors(root: &Path) -> Option<usize> {
    strata_testkit::bids_validator_errors(root).map(|errors| errors.len())
}

#[test]
fn validate_exit_codes() {
    let ok = run(strata().arg("validate").arg(examples().join("micr_SEM")));
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let bad = run(strata()
        .arg("validate")
        .arg(examples().join("micr_XPCTzarr")));
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(text.contains("EMPTY_FILE"), "{text}");
    let missing = run(strata().args(["validate", "/nonexistent/dataset"]));
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not a directory"));
    let usage = run(strata().args(["validate", "--no-such-flag"]));
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn validate_json_shape() {
    let out = run(strata()
        .args(["validate", "--json"])
        .arg(examples().join("micr_XPCTzarr")));
    assert_eq!(out.status.code(), Some(1));
    let v = stdout_json(&out);
    let issues = v["issues"].as_array().expect("issues array");
    let empty = issues
        .iter()
        .find(|i| i["code"] == "EMPTY_FILE")
        .expect("EMPTY_FILE issue");
    assert_eq!(empty["severity"], "error");
    assert_eq!(
        empty["location"],
        "/sub-01/ses-01/micr/sub-01_ses-01_sample-brain_XPCT.ome.zarr/"
    );
    assert!(empty["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(v["summary"]["errors"], 1);
    assert_eq!(v["summary"]["subjects"], serde_json::json!(["01"]));
}

#[test]
fn demo_writes_a_valid_dataset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("ds");
    let r = run(strata()
        .args([
            "demo",
            "--json",
            "--sections",
            "2",
            "--size",
            "700x600",
            "--planes",
            "3",
            "--out",
        ])
        .arg(&out));
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let v = stdout_json(&r);
    assert_eq!(v["validation"]["summary"]["errors"], 0);
    // The demo records what a scanner would: a newcomer sees no warning.
    assert_eq!(
        v["validation"]["summary"]["warnings"], 0,
        "{}",
        v["validation"]["issues"]
    );
    assert_eq!(v["validation"]["summary"]["samples"], 2);
    let sidecar = strata_testkit::read_json(
        &out.join("sub-BB01/micr/sub-BB01_sample-0001_stain-Nissl_BF.json"),
    );
    assert_eq!(sidecar["SampleStaining"], "Nissl");
    assert!(out.join("README").is_file());
    let conversion = &v["conversions"][1];
    assert_eq!(conversion["planes"], 3);
    // 700 x 600 -> 350 x 300: two levels, one shard each, no chunk folders.
    assert_eq!(
        conversion["arrays"]["levels"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(conversion["files"], 6);
    let image = out.join("sub-BB01/micr/sub-BB01_sample-0002_stain-Nissl_BF.ome.zarr");
    let group = read_json(&image.join("zarr.json"));
    assert_eq!(group["attributes"]["ome"]["version"], "0.5");
    assert_eq!(
        group["attributes"]["strata"]["sources"][2]["name"],
        "z02.tif"
    );
    assert!(image.join("1/c.0.0.0.0").is_file());
    // The raw z-stack is kept as BIDS source data.
    assert!(
        out.join("sourcedata/sub-BB01/sample-0002/z00.tif")
            .is_file()
    );
    if let Some(errors) = official_errors(&out) {
        assert_eq!(errors, 0, "the official validator rejects the demo dataset");
    }
}

#[test]
fn sample_then_convert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw");
    sample(
        &raw,
        &["--size", "300x200", "--planes", "4", "--rgb", "--json"],
    );
    let bids = dir.path().join("bids");
    let r = run(convert(&raw, &bids).args(["--subject", "X1", "--sample", "7", "--json"]));
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let v = stdout_json(&r);
    assert_eq!(
        v["arrays"]["levels"][0]["shape"],
        serde_json::json!([3, 4, 200, 300])
    );
    assert!(v["peak_memory_bytes"].as_u64().is_some_and(|b| b > 0));
    // Pixel size came from the TIFF resolution tags (0.25 um default of `strata sample`).
    let sidecar = read_json(&bids.join("sub-X1/micr/sub-X1_sample-7_BF.json"));
    assert_eq!(sidecar["PixelSize"], serde_json::json!([0.25, 0.25, 1.0]));
    // Provenance in the image: every source file's name, size and SHA-256 (as coreutils'
    // sha256sum computes it), and when the conversion ran.
    let group = read_json(&bids.join("sub-X1/micr/sub-X1_sample-7_BF.ome.zarr/zarr.json"));
    let record = &group["attributes"]["strata"];
    let sources = record["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 4);
    for (z, f) in sources.iter().enumerate() {
        let path = raw.join(format!("z{z:02}.tif"));
        assert_eq!(f["name"], format!("z{z:02}.tif"));
        assert_eq!(f["bytes"], std::fs::metadata(&path).expect("tif").len());
        let sum = run(Command::new("sha256sum").arg(&path));
        let want = String::from_utf8_lossy(&sum.stdout);
        assert_eq!(f["sha256"].as_str(), want.split_whitespace().next());
    }
    assert_eq!(v["sources"], record["sources"]);
    assert!(record["started"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(record["finished"].as_str() >= record["started"].as_str());
    // Without checksums: names and sizes only.
    let r = run(convert(&raw, &bids).args([
        "--subject",
        "X1",
        "--sample",
        "9",
        "--no-checksums",
        "--json",
    ]));
    let v = stdout_json(&r);
    assert!(v["sources"][0]["bytes"].as_u64().is_some_and(|b| b > 0));
    assert!(v["sources"][0].get("sha256").is_none(), "{}", v["sources"]);
    let r = run(strata().arg("validate").arg(&bids));
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    // Bad input: a folder without TIFFs, a bad label.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let r = run(convert(&empty, &bids).args(["--subject", "X1", "--sample", "8"]));
    assert_eq!(r.status.code(), Some(2));
    let r = run(convert(&raw, &bids).args(["--subject", "X_1", "--sample", "8"]));
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("X_1"));
}

#[test]
fn concurrent_demos_lose_no_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("ds");
    let children: Vec<_> = (0..4)
        .map(|k| {
            strata()
                .args(["demo", "--json", "--size", "128x128", "--planes", "2"])
                .args(["--sections", "5", "--first"])
                .arg((k * 5 + 1).to_string())
                .args(["--subject", if k % 2 == 0 { "A" } else { "B" }, "--out"])
                .arg(&out)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut c in children {
        c.wait().expect("wait");
    }
    let samples = std::fs::read_to_string(out.join("samples.tsv")).expect("samples.tsv");
    assert_eq!(samples.lines().count(), 1 + 20, "{samples}");
    let participants = std::fs::read_to_string(out.join("participants.tsv")).expect("tsv");
    assert_eq!(participants.lines().count(), 1 + 2, "{participants}");
    let r = run(strata().arg("validate").arg(&out));
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    if let Some(errors) = official_errors(&out) {
        assert_eq!(errors, 0);
    }
}

#[test]
fn demo_rejects_a_bad_subject_label() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run(strata()
        .args(["demo", "--subject", "../etc", "--out"])
        .arg(dir.path()));
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("sub-../etc") || err.contains("`sub-"), "{err}");
}

#[test]
fn full_validation_agrees_on_the_public_examples() {
    for (name, code) in [
        ("micr_SEM", 0),
        ("micr_SEMzarr", 0),
        ("micr_SPIM", 0),
        ("micr_XPCTzarr", 1),
    ] {
        let r = run(strata().arg("validate").arg(examples().join(name)));
        assert_eq!(
            r.status.code(),
            Some(code),
            "{name}: {}",
            String::from_utf8_lossy(&r.stdout)
        );
    }
}

/// Writes a demo dataset, breaks it with `mutate`, and returns the error codes reported.
fn demo_broken(mutate: impl FnOnce(&Path)) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("ds");
    let r = run(strata()
        .args(["demo", "--json", "--sections", "1", "--out"])
        .arg(&out));
    assert_eq!(r.status.code(), Some(0));
    mutate(&out.join("sub-BB01/micr"));
    let r = run(strata().args(["validate", "--json"]).arg(&out));
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    let v = stdout_json(&r);
    v["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .filter(|i| i["severity"] == "error")
        .map(|i| i["code"].as_str().unwrap_or_default().to_owned())
        .collect()
}

const IMAGE: &str = "sub-BB01_sample-0001_stain-Nissl_BF";

#[test]
fn ome_zarr_contents_are_checked() {
    let codes = demo_broken(|micr| {
        edit(&micr.join(format!("{IMAGE}.json")), |v| {
            v["PixelSize"] = serde_json::json!([0.5, 0.25, 2.0]);
        });
    });
    assert_eq!(codes, ["PIXEL_SIZE_MISMATCH"]);

    let codes = demo_broken(|micr| {
        edit(&micr.join(format!("{IMAGE}.ome.zarr/1/zarr.json")), |v| {
            v["shape"] = serde_json::json!([1, 2, 40, 300]);
        });
    });
    assert!(
        codes.contains(&"NGFF_DATA_MISMATCH".to_owned()),
        "{codes:?}"
    );

    let codes = demo_broken(|micr| {
        std::fs::write(
            micr.join(format!("{IMAGE}.ome.zarr/zarr.json")),
            "{\"zarr_format\": 3,",
        )
        .expect("write");
    });
    assert_eq!(codes, ["NGFF_METADATA_INVALID"]);

    let codes = demo_broken(|micr| {
        edit(&micr.join(format!("{IMAGE}.ome.zarr/zarr.json")), |v| {
            v["attributes"]["ome"]["multiscales"][0]["axes"][3]["type"] = "channel".into();
        });
    });
    assert!(codes.contains(&"NGFF_INVALID".to_owned()), "{codes:?}");

    let codes = demo_broken(|micr| {
        std::fs::remove_file(micr.join(format!("{IMAGE}.ome.zarr/zarr.json"))).expect("rm");
    });
    assert_eq!(codes, ["NGFF_METADATA_MISSING"]);
}

/// `strata validate` is the library's whole check: on an example whose image has a broken
/// `zarr.json`, the command's JSON report is the one `strata_validate` returns.
#[test]
fn validate_reports_what_the_library_reports() {
    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("read_dir").flatten() {
            if e.file_type().expect("type").is_dir() {
                copy_tree(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ds");
    copy_tree(&examples().join("micr_SEMzarr"), &root);
    let image = root.join("sub-01/ses-01/micr/sub-01_ses-01_sample-A_SPIM.ome.zarr");
    std::fs::write(image.join("zarr.json"), "{\"zarr_format\": 3,").expect("write");
    let r = run(strata().args(["validate", "--json"]).arg(&root));
    assert_eq!(r.status.code(), Some(1));
    let cli: Value = serde_json::from_slice(&r.stdout).expect("JSON");
    let library = strata_validate::validate_dataset(&root).expect("validate");
    assert_eq!(cli, serde_json::to_value(&library).expect("JSON"));
    assert_eq!(cli["issues"][0]["code"], "NGFF_METADATA_INVALID");
}

#[test]
fn qc_finds_the_known_focus_plane() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (extra, planes, focus)) in [
        (&[][..], 7, 3),
        (&["--rgb"][..], 6, 2),
        (&["--bits", "16"][..], 5, 1),
        (&["--rgb", "--bits", "16"][..], 9, 7),
    ]
    .into_iter()
    .enumerate()
    {
        let raw = dir.path().join(format!("z{i}"));
        let (planes_arg, focus_arg) = (planes.to_string(), focus.to_string());
        let mut args = vec!["--size", "640x512", "--json"];
        args.extend(["--planes", &planes_arg, "--in-focus", &focus_arg]);
        args.extend(extra);
        sample(&raw, &args);
        let r = run(strata().args(["qc", "--json"]).arg(&raw));
        let v = stdout_json(&r);
        assert_eq!(v["best_plane"], focus, "{extra:?}: {v}");
        assert_eq!(v["passed"], true, "{extra:?}: {}", v["reasons"]);
        assert_eq!(r.status.code(), Some(0));
        assert_eq!(v["planes"].as_array().map(Vec::len), Some(planes));
    }
}

#[test]
fn qc_gate_publishes_nothing_for_a_failing_stack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw");
    // The focus peak at the first plane: the stack missed focus.
    sample(
        &raw,
        &["--size", "512x512", "--planes", "5", "--in-focus", "0"],
    );
    let qc = run(strata().args(["qc", "--json"]).arg(&raw));
    assert_eq!(qc.status.code(), Some(1));
    let bids = dir.path().join("bids");
    let r = run(convert(&raw, &bids).args(["--subject", "A", "--sample", "1", "--qc-gate"]));
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(String::from_utf8_lossy(&r.stderr).contains("best_plane_not_at_edge"));
    let micr = bids.join("sub-A/micr");
    let left = names(&micr);
    assert!(left.is_empty(), "published despite failing QC: {left:?}");
    // The same as one archive: its level 0 was being streamed into the archive, which is
    // never published, and no temporary file stays behind.
    let r = run(convert(&raw, &bids).args([
        "--subject",
        "A",
        "--sample",
        "1",
        "--qc-gate",
        "--layout",
        "ozx",
    ]));
    assert_eq!(r.status.code(), Some(1));
    let left = names(&micr);
    assert!(
        left.is_empty(),
        "ozx published despite failing QC: {left:?}"
    );
    assert!(
        bids.join("derivatives/qc/sub-A/sub-A_sample-1_BF_qc.json")
            .is_file()
    );
    assert!(
        bids.join("derivatives/qc/sub-A/sub-A_sample-1_BF_qc.html")
            .is_file()
    );
}

#[test]
fn plan_recommends_a_bids_valid_layout_within_the_quota() {
    let r = run(strata().args(["plan", "--json", "--quota-inodes", "500000"]));
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let v = stdout_json(&r);
    let rec = &v["recommendation"]["row"];
    assert_eq!(rec["layout"], "zarr-v3-sharded", "{rec}");
    assert!(
        rec["inodes_after_gc"]
            .as_u64()
            .is_some_and(|n| n <= 500_000)
    );
    // Rows for both annex layouts, each naming its own; the smallest valid one is chosen and
    // the flags that produce it are given.
    let rows = v["rows"].as_array().expect("rows");
    for mode in ["default", "compact"] {
        assert!(rows.iter().any(|r| r["annex"] == mode), "{mode}");
    }
    assert_eq!(rec["annex"], "compact", "{rec}");
    assert_eq!(
        v["recommendation"]["convert_flags"],
        "--layout zarr --datalad ROOT --datalad-group 2000 --datalad-annex compact"
    );
    let r = run(strata().args(["plan", "--json", "--annex", "default"]));
    let v = stdout_json(&r);
    let rows = v["rows"].as_array().expect("rows");
    assert!(!rows.is_empty() && rows.iter().all(|r| r["annex"] == "default"));
    assert_eq!(v["recommendation"]["row"]["inodes_after_gc"], 444_863);
    let r = run(strata().args(["plan", "--annex", "tiny"]));
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("use default or compact"));
    let r = run(strata().args(["plan", "--dtype", "float64"]));
    assert_eq!(r.status.code(), Some(2));
}

#[test]
fn stage_between_folders_and_a_zip_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = dir.path().join("ds");
    let r = run(strata()
        .args([
            "demo",
            "--json",
            "--sections",
            "1",
            "--size",
            "700x300",
            "--planes",
            "2",
            "--out",
        ])
        .arg(&ds));
    assert_eq!(r.status.code(), Some(0));
    let image = ds.join("sub-BB01/micr/sub-BB01_sample-0001_stain-Nissl_BF.ome.zarr");
    let src = format!("file://{}", image.display());
    let ozx = format!("zip://{}/section.ozx", dir.path().display());
    let back = dir.path().join("back");
    let journal = dir.path().join("journal");
    let dry = run(strata()
        .args(["stage", "--dry-run", "--json", &src, &ozx, "--journal"])
        .arg(&journal));
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let v = stdout_json(&dry);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["copied"], 0);
    let objects = v["objects"].as_u64().expect("objects");
    assert_eq!(
        objects, 5,
        "group zarr.json + 2 levels x (zarr.json + shard)"
    );
    let up = run(strata()
        .args(["stage", "--json", &src, &ozx, "--journal"])
        .arg(&journal));
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let down = run(strata()
        .args(["stage", "--json", &ozx])
        .arg(format!("file://{}", back.display()))
        .arg("--journal")
        .arg(dir.path().join("journal2")));
    assert_eq!(
        down.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let v = stdout_json(&down);
    assert_eq!(v["verified"], objects);
    for key in ["zarr.json", "0/zarr.json", "0/c.0.0.0.0", "1/c.0.0.0.0"] {
        assert_eq!(
            std::fs::read(image.join(key)).expect("source"),
            std::fs::read(back.join(key)).expect("copy"),
            "{key}"
        );
    }
    let bad = run(strata().args(["stage", "ftp://x/y", &src]));
    assert_eq!(bad.status.code(), Some(2));
}

/// The group metadata of an image, without the provenance's start and finish times (the only
/// part that differs between two conversions of the same stack).
fn group_without_times(image: &Path) -> Value {
    let mut v = read_json(&image.join("zarr.json"));
    let record = &mut v["attributes"]["strata"];
    assert!(record["finished"].is_string(), "{record}");
    record["started"] = Value::Null;
    record["finished"] = Value::Null;
    v
}

/// Kills `strata convert --layout <layout>` of a 2048 x 2048 x 8 stack after 10%, 25%, 40%
/// and 55% of the time a whole conversion takes (measured on the reference conversion, so
/// that a kill lands mid-way on fast and slow machines alike, well before publication): each
/// time nothing that looks like a converted section may exist (no image `published`, no
/// sidecar); then the same command runs again and `check(delay, bids, reference)` inspects
/// its output against a folder-layout conversion of the same stack.
fn killed_then_rerun(layout: &str, published: &str, mut check: impl FnMut(u64, &Path, &Path)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw");
    sample(
        &raw,
        &[
            "--size",
            "2048x2048",
            "--planes",
            "8",
            "--compression",
            "none",
        ],
    );
    let convert = |bids: &Path, layout: &str| {
        let mut c = convert(&raw, bids);
        c.args(["--subject", "A", "--sample", "1", "--layout", layout])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let reference = dir.path().join("reference");
    let started = std::time::Instant::now();
    assert!(
        convert(&reference, "zarr")
            .status()
            .expect("convert")
            .success()
    );
    let whole_ms = started.elapsed().as_millis() as u64;
    let bids = dir.path().join("bids");
    let mut killed_mid_way = false;
    for percent in [10u64, 25, 40, 55] {
        let delay_ms = (whole_ms * percent / 100).max(percent);
        let _ = std::fs::remove_dir_all(&bids);
        let mut child = convert(&bids, layout).spawn().expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let finished = child.try_wait().expect("try_wait").is_some();
        let _ = child.kill();
        let _ = child.wait();
        if finished {
            break;
        }
        killed_mid_way = true;
        // Nothing that looks like a converted section: no image, no sidecar, no table row.
        assert!(
            !bids.join(published).exists(),
            "killed after {delay_ms} ms but published"
        );
        assert!(!bids.join("sub-A/micr/sub-A_sample-1_BF.json").exists());
        assert!(convert(&bids, layout).status().expect("rerun").success());
        check(delay_ms, &bids, &reference);
    }
    assert!(killed_mid_way, "the conversion finished before any kill");
}

/// Unpacks an `.ozx` archive into the folder `back` with `strata stage`.
fn unpack(archive: &Path, back: &Path, journal: &Path) {
    let r = run(strata()
        .arg("stage")
        .arg(format!("zip://{}", archive.display()))
        .arg(format!("file://{}", back.display()))
        .arg("--journal")
        .arg(journal));
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

#[test]
fn killed_conversion_is_never_published_and_rerun_is_byte_identical() {
    let image = "sub-A/micr/sub-A_sample-1_BF.ome.zarr";
    killed_then_rerun("zarr", image, |delay_ms, bids, reference| {
        // The rerun resumes by converting again and gives the same bytes: the same arrays,
        // and the same group metadata but for the provenance's times.
        assert_eq!(
            group_without_times(&bids.join(image)),
            group_without_times(&reference.join(image))
        );
        for key in ["0/zarr.json", "0/c.0.0.0.0", "1/c.0.0.0.0", "2/c.0.0.0.0"] {
            assert!(
                std::fs::read(bids.join(image).join(key)).expect("rerun output")
                    == std::fs::read(reference.join(image).join(key)).expect("reference"),
                "{key} differs after a kill at {delay_ms} ms and a rerun"
            );
        }
        let left: Vec<_> = names(&bids.join("sub-A/micr"))
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    });
}

#[test]
fn killed_ozx_conversion_is_never_published_and_rerun_cleans_up() {
    let archive = "sub-A/micr/sub-A_sample-1_BF.ozx";
    let scratch = tempfile::tempdir().expect("tempdir");
    killed_then_rerun("ozx", archive, |delay_ms, bids, reference| {
        // Only the archive and its sidecar: no temporary archive, no partial folder.
        assert_eq!(
            names(&bids.join("sub-A/micr")),
            ["sub-A_sample-1_BF.json", "sub-A_sample-1_BF.ozx"]
        );
        // The archive holds the same shards as the folder layout.
        let back = scratch.path().join(format!("back-{delay_ms}"));
        unpack(
            &bids.join(archive),
            &back,
            &scratch.path().join(format!("journal-{delay_ms}")),
        );
        let folder = reference.join("sub-A/micr/sub-A_sample-1_BF.ome.zarr");
        for key in ["0/c.0.0.0.0", "1/c.0.0.0.0", "2/zarr.json"] {
            assert!(
                std::fs::read(back.join(key)).expect("unpacked")
                    == std::fs::read(folder.join(key)).expect("reference"),
                "{key} differs after a kill at {delay_ms} ms and a rerun"
            );
        }
    });
}

#[test]
fn ozx_layout_is_one_file_with_the_same_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw");
    sample(&raw, &["--size", "700x600", "--planes", "3"]);
    let convert = |bids: &Path, layout: &str| {
        run(convert(&raw, bids).args([
            "--subject",
            "A",
            "--sample",
            "1",
            "--layout",
            layout,
            "--json",
        ]))
    };
    let folder = dir.path().join("folder");
    assert_eq!(convert(&folder, "zarr").status.code(), Some(0));
    let zipped = dir.path().join("zipped");
    let r = convert(&zipped, "ozx");
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let micr: Vec<String> = names(&zipped.join("sub-A/micr"))
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(micr, ["sub-A_sample-1_BF.json", "sub-A_sample-1_BF.ozx"]);
    // Unpack it with `strata stage` and compare every object with the folder layout.
    let back = dir.path().join("back");
    let ozx = zipped.join("sub-A/micr/sub-A_sample-1_BF.ozx");
    unpack(&ozx, &back, &dir.path().join("j"));
    let image = folder.join("sub-A/micr/sub-A_sample-1_BF.ome.zarr");
    assert_eq!(group_without_times(&image), group_without_times(&back));
    for key in ["0/zarr.json", "0/c.0.0.0.0", "1/zarr.json", "1/c.0.0.0.0"] {
        assert!(
            std::fs::read(image.join(key)).expect("folder")
                == std::fs::read(back.join(key)).expect("ozx"),
            "{key}"
        );
    }
}

/// Output into a pipe whose reader has gone (`strata plan | head -0`): the command ends
/// quietly with exit code 0, no panic message.
#[test]
fn a_closed_output_pipe_is_no_panic() {
    let mut child = strata()
        .args(["plan", "--sections", "7000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn strata plan");
    // Close the reading end before the program (still starting) writes its first line.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// What a run killed while writing leaves in its partial folder (objects written, and the
/// temporary file of the shard being written) never ends up in the image the next run
/// publishes.
#[test]
fn a_killed_runs_temporary_files_do_not_reach_the_published_image() {
    let tmp = tempfile::tempdir().expect("tmp");
    let zstack = tmp.path().join("zstack");
    sample(&zstack, &["--size", "256x256", "--planes", "3"]);
    let bids = tmp.path().join("bids");
    let micr = bids.join("sub-k/micr");
    let partial = micr.join(strata_fs::partial_name("sub-k_sample-1_BF.ome.zarr"));
    std::fs::create_dir_all(partial.join("0")).expect("partial");
    std::fs::write(partial.join("0/zarr.json"), b"{}").expect("old metadata");
    let temp = strata_fs::temp_name(&partial.join("0/c.0.0.0.0"));
    std::fs::write(&temp, b"").expect("temporary");
    strata_testkit::run_ok(convert(&zstack, &bids).args(["--subject", "k", "--sample", "1"]));
    let image = micr.join("sub-k_sample-1_BF.ome.zarr");
    let hidden: Vec<String> = strata_testkit::files(&image)
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "left in the published image: {hidden:?}");
    assert!(!partial.exists());
    let v = run(strata().arg("validate").arg(&bids));
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

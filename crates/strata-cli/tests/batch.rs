//! `strata batch` on a real one-node Slurm cluster (`SLURM_CONF`, started by
//! `cargo xtask test`): sections planned, submitted as array jobs, cancelled, retried, and
//! the dataset compared byte for byte with a clean conversion; and the errors a user meets.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use strata_testkit::{files, peer, run, run_ok, stderr, stdout_json};

fn strata() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strata"))
}

/// Writes a synthetic z-stack of `planes` planes of `size` into `dir`.
fn sample(dir: &Path, size: &str, planes: u32, seed: u64) {
    run_ok(
        strata()
            .arg("sample")
            .arg(dir)
            .args(["--size", size, "--planes", &planes.to_string()])
            .args(["--seed", &seed.to_string()]),
    );
}

/// A scanner root with `n` sections `slide<i>` (the one at `big`, if any, 4096^2) and the
/// map naming them sub-`subject` sample-`<prefix><i>`.
fn scanner(root: &Path, n: usize, big: Option<usize>, subject: &str, prefix: &str) -> PathBuf {
    let scan = root.join(format!("scan-{subject}"));
    let mut map = String::from("folder\tsubject\tsample\tstain\n");
    for i in 0..n {
        let size = if Some(i) == big {
            "4096x4096"
        } else {
            "384x256"
        };
        sample(&scan.join(format!("slide{i}")), size, 12, i as u64 + 1);
        map.push_str(&format!("slide{i}\t{subject}\t{prefix}{i:03}\tn/a\n"));
    }
    std::fs::write(root.join(format!("map-{subject}.tsv")), map).expect("map");
    scan
}

fn plan(scan: &Path, map: &Path, bids: &Path, manifest: &Path) {
    run_ok(&mut plan_cmd(scan, map, bids, manifest));
}

/// `strata batch plan` of `scan` through `map` into `bids`; the caller adds flags.
fn plan_cmd(scan: &Path, map: &Path, bids: &Path, manifest: &Path) -> Command {
    let mut c = strata();
    c.args(["batch", "plan"])
        .arg(scan)
        .arg("--map")
        .arg(map)
        .arg("--bids-root")
        .arg(bids)
        .arg("--manifest")
        .arg(manifest);
    c
}

/// One scanner root and manifest per subject (`n` sections each, samples `<prefix><i>`),
/// all into the dataset `bids`; returns the manifests.
fn subjects(root: &Path, bids: &Path, subjects: &[&str], n: usize, prefix: &str) -> Vec<PathBuf> {
    let mut manifests = Vec::new();
    for subject in subjects {
        let scan = scanner(root, n, None, subject, prefix);
        let manifest = root.join(format!("{subject}.json"));
        plan(
            &scan,
            &root.join(format!("map-{subject}.tsv")),
            bids,
            &manifest,
        );
        manifests.push(manifest);
    }
    manifests
}

fn status(manifest: &Path, slurm: &std::ffi::OsStr) -> Value {
    stdout_json(&run_ok(
        strata()
            .args(["batch", "status", "--json", "--manifest"])
            .arg(manifest)
            .env("SLURM_CONF", slurm),
    ))
}

/// Waits until no task of the batch is queued or running; returns the last status.
fn wait_idle(manifest: &Path, slurm: &std::ffi::OsStr) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let s = status(manifest, slurm);
        let busy = ["queued", "converting"]
            .iter()
            .any(|k| s["counts"].get(*k).is_some());
        if !busy {
            return s;
        }
        assert!(Instant::now() < deadline, "the batch did not finish: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every file of a dataset, relative path to bytes: the group metadata without the
/// conversion's times, tables as sorted lines (tasks append rows in any order), the
/// tables' lock files left out.
fn dataset(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for f in files(root) {
        let rel = f
            .strip_prefix(root)
            .expect("inside")
            .to_string_lossy()
            .into_owned();
        // Only the tables' lock files are not content: a hidden file anywhere else (a
        // temporary of a killed run, say) is a difference.
        if f.file_name().is_some_and(strata_fs::is_lock_name) {
            continue;
        }
        let mut bytes = std::fs::read(&f).expect("read");
        if rel.ends_with(".ome.zarr/zarr.json") {
            let mut v: Value = serde_json::from_slice(&bytes).expect("json");
            let r = v
                .pointer_mut("/attributes/strata")
                .and_then(Value::as_object_mut)
                .expect("provenance");
            r.remove("started");
            r.remove("finished");
            bytes = serde_json::to_vec_pretty(&v).expect("json");
        } else if rel.ends_with(".tsv") {
            let text = String::from_utf8(bytes).expect("utf-8");
            let mut lines: Vec<&str> = text.lines().collect();
            lines[1..].sort_unstable();
            bytes = lines.join("\n").into_bytes();
        }
        out.insert(rel, bytes);
    }
    out
}

fn sample_rows(bids: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(bids.join("samples.tsv")).expect("samples.tsv");
    text.lines().skip(1).map(str::to_owned).collect()
}

#[test]
fn six_sections_through_slurm_one_cancelled_then_retried_equal_a_clean_run() {
    let Some(slurm) = peer("SLURM_CONF") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let scan = scanner(tmp.path(), 6, Some(3), "b01", "s");
    let map = tmp.path().join("map-b01.tsv");
    let bids = tmp.path().join("bids");
    let manifest = tmp.path().join("brain.json");
    plan(&scan, &map, &bids, &manifest);

    // The dry run prints the script and submits nothing.
    let dry = run_ok(
        strata()
            .args(["batch", "submit", "--dry-run", "--manifest"])
            .arg(&manifest)
            .env("SLURM_CONF", &slurm),
    );
    let script = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(script.contains("#SBATCH --array=0-5\n"), "{script}");
    assert!(!bids.exists(), "a dry run converted something");

    let sub = stdout_json(&run_ok(
        strata()
            .args([
                "batch",
                "submit",
                "--json",
                "--cpus",
                "1",
                "--concurrency",
                "2",
            ])
            .arg("--manifest")
            .arg(&manifest)
            .env("SLURM_CONF", &slurm),
    ));
    let job = sub["job_id"].as_str().expect("job id").to_owned();
    assert_eq!(sub["requests_from"], "measured", "{sub}");
    assert_eq!(sub["pilot"]["index"], 0, "{sub}");
    assert!(sub["requests"]["mem_mib"].as_u64().expect("mem") >= 256);

    // Cancel section 3 (the large one) while it converts.
    let report = manifest.with_extension("logs").join("3.json");
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let running = std::fs::read(&report)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|v| v["outcome"] == "running");
        if running {
            break;
        }
        assert!(Instant::now() < deadline, "task 3 never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    run_ok(
        Command::new("scancel")
            .arg(format!("{job}_3"))
            .env("SLURM_CONF", &slurm),
    );
    let s = wait_idle(&manifest, &slurm);
    assert_eq!(s["counts"]["published"], 5, "{s}");
    assert_eq!(s["counts"]["lost"], 1, "{s}");
    let lost = &s["sections"][3];
    assert_eq!(lost["state"], "lost", "{s}");
    assert_eq!(lost["folder"], "slide3");
    // The human status names it too.
    let text = run_ok(
        strata()
            .args(["batch", "status", "--manifest"])
            .arg(&manifest)
            .env("SLURM_CONF", &slurm),
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("lost 3 (slide3)"), "{text}");
    // Nothing of it is published.
    let image = bids.join("sub-b01/micr/sub-b01_sample-s003_BF.ome.zarr");
    assert!(!image.exists(), "a cancelled section was published");
    assert_eq!(sample_rows(&bids).len(), 5);

    // The retry submits section 3 alone and finishes it.
    let again = stdout_json(&run_ok(
        strata()
            .args(["batch", "retry", "--json", "--cpus", "1", "--manifest"])
            .arg(&manifest)
            .env("SLURM_CONF", &slurm),
    ));
    assert_eq!(again["indices"], serde_json::json!([3]), "{again}");
    let s = wait_idle(&manifest, &slurm);
    assert_eq!(s["counts"]["published"], 6, "{s}");
    assert_eq!(sample_rows(&bids).len(), 6);
    // Nothing left to retry.
    let none = stdout_json(&run_ok(
        strata()
            .args(["batch", "retry", "--json", "--manifest"])
            .arg(&manifest)
            .env("SLURM_CONF", &slurm),
    ));
    assert_eq!(none["indices"], serde_json::json!([]));

    // The same batch run task by task, without Slurm, into a clean dataset.
    let clean = tmp.path().join("clean");
    let clean_manifest = tmp.path().join("clean.json");
    plan(&scan, &map, &clean, &clean_manifest);
    for i in 0..6 {
        run_ok(
            strata()
                .args(["batch", "run", "--index", &i.to_string(), "--manifest"])
                .arg(&clean_manifest),
        );
    }
    let (a, b) = (dataset(&bids), dataset(&clean));
    // Six images (group and level metadata, a shard per level), their sidecars, 3 tables.
    assert!(a.len() >= 6 * 4 + 3, "{:?}", a.keys().collect::<Vec<_>>());
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "different files"
    );
    for (k, v) in &a {
        assert!(v == &b[k], "{k} differs from a clean conversion");
    }
    let v = run(strata().arg("validate").arg(&bids));
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    // The state cache remembers the attempts: section 3 was submitted twice.
    let cached: Value = stdout_json(&run_ok(
        strata()
            .args(["batch", "status", "--cached", "--json", "--manifest"])
            .arg(&manifest),
    ));
    assert_eq!(cached[3]["attempts"], 2, "{cached}");
    assert_eq!(cached[0]["attempts"], 1, "{cached}");
    assert_eq!(cached[3]["state"], "published");
}

#[test]
fn two_arrays_into_one_dataset_lose_and_duplicate_no_row() {
    let Some(slurm) = peer("SLURM_CONF") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let bids = tmp.path().join("bids");
    let manifests = subjects(tmp.path(), &bids, &["b02", "b03"], 4, "t");
    for m in &manifests {
        run_ok(
            strata()
                .args(["batch", "submit", "--json", "--cpus", "1", "--mem", "512"])
                .args(["--time", "10", "--manifest"])
                .arg(m)
                .env("SLURM_CONF", &slurm),
        );
    }
    for m in &manifests {
        let s = wait_idle(m, &slurm);
        assert_eq!(s["counts"]["published"], 4, "{s}");
    }
    let mut rows = sample_rows(&bids);
    rows.sort();
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.split('\t').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    let mut expected = Vec::new();
    for s in ["b02", "b03"] {
        for i in 0..4 {
            expected.push(format!("sample-t{i:03} sub-{s}"));
        }
    }
    expected.sort();
    assert_eq!(ids, expected, "samples.tsv:\n{}", rows.join("\n"));
    let participants = std::fs::read_to_string(bids.join("participants.tsv")).expect("tsv");
    assert_eq!(participants.lines().count(), 3, "{participants}");
    let v = run(strata().arg("validate").arg(&bids));
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn a_task_is_idempotent_and_notices_a_changed_source() {
    let tmp = tempfile::tempdir().expect("tmp");
    let scan = scanner(tmp.path(), 2, None, "b04", "u");
    let manifest = tmp.path().join("m.json");
    let bids = tmp.path().join("bids");
    plan(&scan, &tmp.path().join("map-b04.tsv"), &bids, &manifest);
    let task = |i: usize| {
        strata()
            .args(["batch", "run", "--index", &i.to_string(), "--manifest"])
            .arg(&manifest)
            .output()
            .expect("run")
    };
    let first = task(0);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(stdout_json(&first)["outcome"], "published");
    let zarr = bids.join("sub-b04/micr/sub-b04_sample-u000_BF.ome.zarr/zarr.json");
    let before = std::fs::read(&zarr).expect("published");
    let second = task(0);
    assert_eq!(stdout_json(&second)["outcome"], "skipped");
    assert_eq!(
        std::fs::read(&zarr).expect("still there"),
        before,
        "a skip rewrote the image"
    );

    // A plane rewritten after the plan: the task refuses, naming the folder.
    let plane = scan.join("slide1/z05.tif");
    let bytes = std::fs::read(&plane).expect("plane");
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&plane, bytes).expect("rewrite");
    let changed = task(1);
    assert_eq!(changed.status.code(), Some(2));
    let err = stderr(&changed);
    assert!(
        err.contains("slide1") && err.contains("strata batch plan"),
        "{err}"
    );
    let report: Value = serde_json::from_slice(
        &std::fs::read(manifest.with_extension("logs").join("1.json")).expect("report"),
    )
    .expect("json");
    assert_eq!(report["outcome"], "failed");
    // Without the queue, status still tells published from failed.
    let s = stdout_json(&run_ok(
        strata()
            .args(["batch", "status", "--no-queue", "--json", "--manifest"])
            .arg(&manifest),
    ));
    assert_eq!(s["sections"][0]["state"], "published", "{s}");
    assert_eq!(s["sections"][1]["state"], "failed", "{s}");
    // An index past the end is a clear error.
    let past = task(7);
    assert_eq!(past.status.code(), Some(2));
    assert!(stderr(&past).contains("2 sections"), "{}", stderr(&past));
}

/// `strata batch plan` with `map` over a scanner root of the given sections (folder, planes).
fn plan_err(sections: &[(&str, u32)], map: &str) -> String {
    let tmp = tempfile::tempdir().expect("tmp");
    let scan = tmp.path().join("scan");
    for (i, (folder, planes)) in sections.iter().enumerate() {
        sample(&scan.join(folder), "64x64", *planes, i as u64);
    }
    let map_path = tmp.path().join("map.tsv");
    std::fs::write(&map_path, map).expect("map");
    let out = run(strata()
        .args(["batch", "plan"])
        .arg(&scan)
        .arg("--map")
        .arg(&map_path)
        .arg("--bids-root")
        .arg(tmp.path().join("bids"))
        .arg("--manifest")
        .arg(tmp.path().join("m.json")));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        !tmp.path().join("m.json").exists(),
        "a failed plan wrote a manifest"
    );
    stderr(&out)
}

#[test]
fn bad_plans_are_named() {
    let two = [("a", 3), ("b", 3)];
    let err = plan_err(&two, "folder\tsubject\tsample\na\tx\t1\n");
    assert!(err.contains("not in") && err.contains(": b"), "{err}");
    let err = plan_err(&two, "folder\tsubject\tsample\na\tx\t1\nb\tx\t1\n");
    assert!(
        err.contains("folders a and b are both sub-x sample-1"),
        "{err}"
    );
    let err = plan_err(
        &[("a", 3), ("b", 3), ("c", 2)],
        "folder\tsubject\tsample\na\tx\t1\nb\tx\t2\nc\tx\t3\n",
    );
    assert!(
        err.contains("do not have 3 TIFF planes: c (2 planes)"),
        "{err}"
    );
    let err = plan_err(
        &two,
        "folder\tsubject\tsample\na\tx\t1\nb\tx\t2\nzz\tx\t3\n",
    );
    assert!(err.contains("not found") && err.contains("zz"), "{err}");
    let err = plan_err(&two, "folder\tsubject\na\tx\nb\tx\n");
    assert!(err.contains("no column \"sample\""), "{err}");
    let err = plan_err(&two, "folder\tsubject\tsample\na\tx_y\t1\nb\tx\t2\n");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn a_manifest_edited_into_nonsense_and_a_missing_slurm_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let scan = scanner(tmp.path(), 2, None, "b05", "v");
    let manifest = tmp.path().join("m.json");
    plan(
        &scan,
        &tmp.path().join("map-b05.tsv"),
        &tmp.path().join("bids"),
        &manifest,
    );
    let good = std::fs::read_to_string(&manifest).expect("manifest");

    // Slurm not installed: a PATH without its commands.
    let out = run(strata()
        .args([
            "batch",
            "submit",
            "--mem",
            "512",
            "--time",
            "5",
            "--manifest",
        ])
        .arg(&manifest)
        .env("PATH", tmp.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("sbatch not found") && stderr(&out).contains("slurm-client"),
        "{}",
        stderr(&out)
    );
    // Slurm installed but its controller unreachable.
    if Command::new("sbatch")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let conf = tmp.path().join("slurm.conf");
        std::fs::write(
            &conf,
            "ClusterName=nowhere\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=9\nMessageTimeout=2\n\
             NodeName=localhost CPUs=1\nPartitionName=p Nodes=localhost Default=YES\n",
        )
        .expect("conf");
        let out = run(strata()
            .args(["batch", "status", "--manifest"])
            .arg(&manifest)
            .env("SLURM_CONF", &conf));
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("squeue") && stderr(&out).contains("slurmctld"),
            "{}",
            stderr(&out)
        );
    }

    for (edit, expect) in [
        (
            good.replace("\"version\": 1", "\"version\": 9"),
            "version 9",
        ),
        (
            good.replace("\"subject\": \"b05\"", "\"subject\": \"b 05\""),
            "section 0",
        ),
        (
            good.replace("\"layout\": \"zarr\"", "\"layout\": \"tar\""),
            "layout",
        ),
        (
            good.replace("\"chunk\": 512", "\"chunk\": \"big\""),
            "invalid type",
        ),
        (
            good.replace("\"sample\": \"v001\"", "\"sample\": \"v000\""),
            "appears twice",
        ),
        (good[..good.len() / 2].to_owned(), "EOF"),
        (good.replace("\"planes\"", "\"plains\""), "unknown field"),
    ] {
        std::fs::write(&manifest, &edit).expect("edit");
        let out = run(strata()
            .args(["batch", "run", "--index", "0", "--manifest"])
            .arg(&manifest));
        assert_eq!(out.status.code(), Some(2), "{edit}");
        let err = stderr(&out);
        assert!(
            err.contains(expect) && err.contains("strata batch plan"),
            "{expect}: {err}"
        );
    }
}

/// `git -C repo args`, its trimmed stdout.
fn git(repo: &Path, args: &[&str]) -> String {
    let out = run_ok(Command::new("git").arg("-C").arg(repo).args(args));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn batch_save_commits_once_per_subdataset_and_leaves_a_clean_dataset() {
    let Some(datalad) = strata_testkit::datalad() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let bids = tmp.path().join("bids");
    let manifests = subjects(tmp.path(), &bids, &["b06", "b07"], 3, "w");
    // Two sections of b06 and all of b07 finished; the third of b06 not yet.
    for (m, n) in [(&manifests[0], 2), (&manifests[1], 3)] {
        for i in 0..n {
            run_ok(
                strata()
                    .args(["batch", "run", "--index", &i.to_string(), "--manifest"])
                    .arg(m),
            );
        }
    }
    let save_with = |m: &Path, extra: &[&str]| {
        let mut cmd = strata();
        cmd.args(["batch", "save", "--json", "--manifest"])
            .arg(m)
            .args(extra)
            .env("STRATA_DATALAD", &datalad);
        stdout_json(&run_ok(strata_testkit::git_identity(&mut cmd)))
    };
    let save = |m: &Path| save_with(m, &[]);
    // The commits a save made in the dataset `ds`: `before..commit`.
    let range_of = |s: &Value, ds: &Path| {
        let d = s["saved"]["datasets"]
            .as_array()
            .expect("datasets")
            .iter()
            .find(|d| d["dataset"].as_str() == ds.to_str())
            .expect("dataset saved")
            .clone();
        (
            format!(
                "{}..{}",
                d["before"].as_str().expect("before"),
                d["commit"].as_str().expect("commit")
            ),
            d["sections"].clone(),
        )
    };
    let commits = |s: &Value, ds: &Path| git(ds, &["rev-list", "--count", &range_of(s, ds).0]);
    // One save per section on request: two commits for two sections.
    let s = save_with(&manifests[0], &["--per-section"]);
    assert_eq!(s["sections"], 2, "{s}");
    assert_eq!(s["unpublished"], 1, "{s}");
    assert_eq!(commits(&s, &bids.join("sub-b06")), "2", "{s}");
    let s = save(&manifests[1]);
    assert_eq!(s["sections"], 3, "{s}");
    // One commit in the subject's subdataset for its three sections, and one in the
    // superdataset.
    let sub = bids.join("sub-b07");
    assert_eq!(range_of(&s, &sub).1, 3, "{s}");
    assert_eq!(commits(&s, &sub), "1", "{s}");
    for ds in [&bids, &sub, &bids.join("sub-b06")] {
        assert_eq!(
            git(ds, &["status", "--porcelain"]),
            "",
            "{} not clean",
            ds.display()
        );
    }
    // Shards are annexed, metadata is in git.
    let shard = sub.join("micr/sub-b07_sample-w000_BF.ome.zarr/0/c.0.0.0.0");
    assert!(
        shard
            .symlink_metadata()
            .expect("shard")
            .file_type()
            .is_symlink()
    );
    let meta = sub.join("micr/sub-b07_sample-w000_BF.ome.zarr/zarr.json");
    assert!(
        !meta
            .symlink_metadata()
            .expect("meta")
            .file_type()
            .is_symlink()
    );
    // The third section of b06 finishes; status tells it from the saved ones, and the next
    // save commits only it, in sub-b06.
    run_ok(
        strata()
            .args(["batch", "run", "--index", "2", "--manifest"])
            .arg(&manifests[0]),
    );
    let st = |m: &Path| {
        stdout_json(&run_ok(
            strata()
                .args(["batch", "status", "--no-queue", "--json", "--manifest"])
                .arg(m),
        ))
    };
    let s0 = st(&manifests[0]);
    assert_eq!(s0["counts"]["saved"], 2, "{s0}");
    assert_eq!(s0["sections"][2]["state"], "published", "{s0}");
    assert_eq!(st(&manifests[1])["counts"]["saved"], 3);
    let s = save(&manifests[0]);
    assert_eq!(s["sections"], 3, "{s}");
    let b06 = bids.join("sub-b06");
    let range = range_of(&s, &b06).0;
    assert_eq!(git(&b06, &["rev-list", "--count", &range]), "1", "{s}");
    let files = git(&b06, &["diff", "--name-only", &range]);
    assert!(files.lines().all(|f| f.contains("sample-w002")), "{files}");
    for ds in [&bids, &sub, &b06] {
        assert_eq!(
            git(ds, &["status", "--porcelain"]),
            "",
            "{} not clean",
            ds.display()
        );
    }
    assert_eq!(st(&manifests[0])["counts"]["saved"], 3);
    // An image changed after its save is published, not saved.
    let sidecar = bids.join("sub-b07/micr/sub-b07_sample-w001_BF.json");
    let text = std::fs::read_to_string(&sidecar).expect("sidecar");
    std::fs::write(&sidecar, text.replace('{', "{\n ")).expect("edit");
    let s1 = st(&manifests[1]);
    assert_eq!(s1["sections"][1]["state"], "published", "{s1}");
    assert_eq!(s1["counts"]["saved"], 2, "{s1}");
    std::fs::write(&sidecar, text).expect("restore");
    let v = run(strata().arg("validate").arg(&bids));
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn the_gateway_submits_complete_stacks_to_slurm() {
    let Some(slurm) = peer("SLURM_CONF") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let drop = scanner(tmp.path(), 2, None, "b08", "x");
    let bids = tmp.path().join("bids");
    let manifest = tmp.path().join("gateway.json");
    let pass = || {
        let out = run_ok(
            strata()
                .args(["ingest", "--once", "--json", "--slurm", "--planes", "12"])
                .args([
                    "--settle", "0", "--mem", "512", "--time", "10", "--cpus", "1",
                ])
                .arg("--watch")
                .arg(&drop)
                .arg("--map")
                .arg(tmp.path().join("map-b08.tsv"))
                .arg("--bids-root")
                .arg(&bids)
                .arg("--manifest")
                .arg(&manifest)
                .env("SLURM_CONF", &slurm),
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("event"))
            .collect::<Vec<_>>()
    };
    let events = pass();
    let submitted: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "submitted")
        .collect();
    assert_eq!(submitted.len(), 2, "{events:?}");
    // While queued or running they are not submitted again; once published, never.
    let again = pass();
    assert!(again.iter().all(|e| e["event"] != "submitted"), "{again:?}");
    let s = wait_idle(&manifest, &slurm);
    assert_eq!(s["counts"]["published"], 2, "{s}");
    let again = pass();
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn a_batch_stages_each_section_to_object_storage_and_says_so() {
    let Some((endpoint, bucket)) = strata_testkit::s3_bucket("strata-batch-stage", "staging")
    else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let scan = scanner(tmp.path(), 2, None, "b09", "y");
    let bids = tmp.path().join("bids");
    let manifest = tmp.path().join("m.json");
    let target = format!("s3://{bucket}/tier2");
    let map = tmp.path().join("map-b09.tsv");
    run_ok(plan_cmd(&scan, &map, &bids, &manifest).args(["--stage-to", &target]));
    let task = |i: usize| {
        stdout_json(&run_ok(
            strata()
                .args(["batch", "run", "--index", &i.to_string(), "--manifest"])
                .arg(&manifest)
                .env("STRATA_S3_ENDPOINT", &endpoint),
        ))
    };
    let r = task(0);
    assert_eq!(r["outcome"], "published", "{r}");
    // Image objects (group, level, shard) and the sidecar, each read back.
    let staged = &r["staged"];
    assert_eq!(staged["objects"], 4, "{r}");
    assert_eq!(staged["verified"], 4, "{r}");
    let status = || {
        stdout_json(&run_ok(
            strata()
                .args(["batch", "status", "--no-queue", "--json", "--manifest"])
                .arg(&manifest)
                .env("STRATA_S3_ENDPOINT", &endpoint),
        ))
    };
    let s = status();
    assert_eq!(s["sections"][0]["state"], "staged", "{s}");
    assert_eq!(s["sections"][1]["state"], "pending", "{s}");
    // Run again: nothing converted, nothing copied.
    let again = task(0);
    assert_eq!(again["outcome"], "skipped", "{again}");
    assert!(again.get("staged").is_none(), "{again}");
    // What is at the target equals the dataset, byte for byte.
    let rel = "sub-b09/micr/sub-b09_sample-y000_BF.ome.zarr";
    let back = tmp.path().join("back");
    run_ok(
        strata()
            .args(["stage", &format!("{target}/{rel}")])
            .arg(format!("file://{}", back.display()))
            .arg("--journal")
            .arg(tmp.path().join("journal"))
            .env("STRATA_S3_ENDPOINT", &endpoint),
    );
    let local = bids.join(rel);
    let mut n = 0;
    for f in files(&local) {
        let rel = f.strip_prefix(&local).expect("inside");
        assert_eq!(
            std::fs::read(&f).expect("local"),
            std::fs::read(back.join(rel)).expect("staged copy"),
            "{}",
            rel.display()
        );
        n += 1;
    }
    assert_eq!(n, 3);
    // A target that is not a store is refused at plan time.
    let out = run(plan_cmd(&scan, &map, &bids, &tmp.path().join("bad.json"))
        .args(["--stage-to", "zip:///tmp/x.ozx"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--stage-to"), "{}", stderr(&out));
}

#[test]
fn a_section_published_but_not_staged_is_staged_by_the_next_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let scan = scanner(tmp.path(), 1, None, "b10", "z");
    let manifest = tmp.path().join("m.json");
    let tier2 = tmp.path().join("tier2");
    let (map, bids) = (tmp.path().join("map-b10.tsv"), tmp.path().join("bids"));
    run_ok(
        plan_cmd(&scan, &map, &bids, &manifest)
            .arg("--stage-to")
            .arg(&tier2),
    );
    let task = || {
        stdout_json(&run_ok(
            strata()
                .args(["batch", "run", "--index", "0", "--manifest"])
                .arg(&manifest),
        ))
    };
    let state = || {
        stdout_json(&run_ok(
            strata()
                .args(["batch", "status", "--no-queue", "--json", "--manifest"])
                .arg(&manifest),
        ))["sections"][0]["state"]
            .clone()
    };
    assert_eq!(task()["staged"]["objects"], 4);
    assert_eq!(state(), "staged");
    // The copy at the target lost its sidecar (a stage cut short looks the same): published,
    // not staged; the next run converts nothing and stages it again.
    std::fs::remove_file(tier2.join("sub-b10/micr/sub-b10_sample-z000_BF.json")).expect("rm");
    assert_eq!(state(), "published");
    let r = task();
    assert_eq!(r["outcome"], "skipped", "{r}");
    assert_eq!(r["staged"]["objects"], 4, "{r}");
    assert_eq!(state(), "staged");
}

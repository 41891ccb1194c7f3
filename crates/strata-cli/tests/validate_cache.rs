//! `strata validate --cache`: after random edits of a dataset (metadata rewritten in place at
//! the same size, sidecars changed, arrays removed or emptied, archives damaged, images
//! replaced, added and removed), a run with the cache gives the report of a full run, and it
//! reuses the verdicts on the images that did not change.

mod common;

use common::strata;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use strata_testkit::{edit_json, run_ok, stdout_json};

/// Past the cache's window for images changed just before a run (2 s).
const SETTLE: Duration = Duration::from_millis(2200);

/// `strata validate --json [--cache cache]` on `root`: (issues and summary, cache stats).
fn validate(root: &Path, cache: Option<&Path>) -> (Value, Value) {
    let mut c = strata();
    c.args(["validate", "--json"]).arg(root);
    if let Some(cache) = cache {
        c.arg("--cache").arg(cache);
    }
    let out = strata_testkit::run(&mut c);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "strata validate failed: {}",
        strata_testkit::output_text(&out)
    );
    let mut report = stdout_json(&out);
    let stats = report
        .as_object_mut()
        .and_then(|m| m.remove("cache"))
        .unwrap_or(Value::Null);
    (report, stats)
}

fn count(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {stats}"))
}

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The images of the dataset (folders and archives), sorted.
fn images(micr: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(micr)
        .expect("micr")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".ome.zarr") || n.ends_with(".ozx")
        })
        .collect();
    v.sort();
    v
}

/// The first file under `dir` that is not a `zarr.json` (a shard).
fn shard(dir: &Path) -> Option<PathBuf> {
    strata_testkit::files(dir)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n != "zarr.json"))
}

/// The sidecar beside an image.
fn sidecar(image: &Path) -> PathBuf {
    let name = image.file_name().unwrap_or_default().to_string_lossy();
    let stem = name
        .strip_suffix(".ome.zarr")
        .or_else(|| name.strip_suffix(".ozx"))
        .unwrap_or(&name);
    image.with_file_name(format!("{stem}.json"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// Applies edit `kind` to `image`; returns what it did, for the failure message.
fn edit(kind: usize, image: &Path, other: &Path) -> String {
    let is_archive = image.extension().is_some_and(|e| e == "ozx");
    let what = format!("edit {kind} of {}", image.display());
    if is_archive {
        // Damaged in place, then (next time) replaced by a shorter copy of itself.
        let mut bytes = std::fs::read(image).expect("read archive");
        let n = bytes.len();
        if kind.is_multiple_of(2) {
            bytes[n / 2] ^= 0xff;
            bytes[n - 30] ^= 0xff;
        } else {
            bytes.truncate(n * 3 / 4);
        }
        std::fs::write(image, bytes).expect("write archive");
        return what;
    }
    let group = image.join("zarr.json");
    match kind {
        // The NGFF version rewritten in place, the same size: only the times change.
        0 => {
            if let Ok(text) = std::fs::read_to_string(&group) {
                std::fs::write(&group, text.replacen("\"0.5\"", "\"0.3\"", 1)).expect("write");
            }
        }
        // Level 0's pixel size no longer the sidecar's.
        1 => {
            if group.is_file() {
                edit_json(&group, |v| {
                    v["attributes"]["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"]
                        [0]["scale"][3] = 9.5.into();
                });
            }
        }
        // The sidecar's pixel size changed: the image's files are untouched.
        2 => {
            let side = sidecar(image);
            if side.is_file() {
                edit_json(&side, |v| v["PixelSize"] = serde_json::json!([0.31, 0.31]));
            }
        }
        // Level 0's array metadata removed.
        3 => {
            let _ = std::fs::remove_file(image.join("0/zarr.json"));
        }
        // A shard emptied.
        4 => {
            if let Some(s) = shard(image) {
                std::fs::write(s, b"").expect("truncate");
            }
        }
        // Replaced by a copy of another image (new inodes, other contents).
        5 => {
            if other.is_dir() && other != image {
                std::fs::remove_dir_all(image).expect("rm");
                copy_tree(other, image);
            }
        }
        // Removed, with its sidecar.
        _ => {
            let _ = std::fs::remove_dir_all(image);
            let _ = std::fs::remove_file(sidecar(image));
        }
    }
    what
}

#[test]
fn cached_runs_agree_with_full_runs_after_random_edits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ds");
    let cache = dir.path().join("cache/validate.json");
    run_ok(
        strata()
            .args(["demo", "--json", "--sections", "6", "--size", "256x256"])
            .args(["--planes", "2", "--out"])
            .arg(&root),
    );
    // One section as a single-file archive, checked through the virtual view.
    let raw = dir.path().join("raw");
    common::sample(&raw, &["--size", "256x256", "--planes", "2"]);
    run_ok(common::convert(&raw, &root).args([
        "--subject",
        "BB01",
        "--sample",
        "0007",
        "--layout",
        "ozx",
    ]));
    let micr = root.join("sub-BB01/micr");
    let total = images(&micr).len();
    assert_eq!(total, 7, "{:?}", images(&micr));
    std::thread::sleep(SETTLE);

    // A first run fills the cache; the next reuses every verdict.
    let (full, _) = validate(&root, None);
    let (first, stats) = validate(&root, Some(&cache));
    assert_eq!(first, full);
    assert_eq!(count(&stats, "checked"), 7, "{stats}");
    assert_eq!(count(&stats, "stored"), 7, "{stats}");
    let (second, stats) = validate(&root, Some(&cache));
    assert_eq!(second, full);
    assert_eq!(count(&stats, "reused"), 7, "{stats}");
    assert_eq!(count(&stats, "checked"), 0, "{stats}");

    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let mut done = Vec::new();
    for round in 0..4 {
        let all = images(&micr);
        let mut edited = Vec::new();
        for _ in 0..2 {
            let image = all[rng.below(all.len())].clone();
            let other = all[rng.below(all.len())].clone();
            done.push(edit(rng.below(7), &image, &other));
            edited.push(image);
        }
        edited.sort();
        edited.dedup();
        if round == 2 {
            // A new section appears.
            let copy = micr.join("sub-BB01_sample-0008_stain-Nissl_BF.ome.zarr");
            if !copy.exists() {
                copy_tree(&all[0], &copy);
                let side = sidecar(&all[0]);
                if side.is_file() {
                    std::fs::copy(side, sidecar(&copy)).expect("sidecar");
                }
                edited.push(copy);
            }
        }
        let (full, _) = validate(&root, None);
        let (cached, stats) = validate(&root, Some(&cache));
        assert_eq!(cached, full, "round {round} after {done:?}");
        let now = images(&micr).len() as u64;
        assert_eq!(
            count(&stats, "reused") + count(&stats, "checked"),
            now,
            "{stats}"
        );
        let present = edited.iter().filter(|p| p.exists()).count() as u64;
        assert!(
            count(&stats, "checked") >= present.min(now),
            "round {round}: {stats} after {done:?}"
        );
        assert!(
            count(&stats, "reused") >= now.saturating_sub(2 * 2 + 1),
            "round {round}: little reused: {stats}"
        );
        std::thread::sleep(SETTLE);
    }
}

#[test]
fn a_damaged_cache_is_rebuilt_and_an_unwritable_one_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ds");
    run_ok(
        strata()
            .args(["demo", "--json", "--sections", "2", "--size", "256x256"])
            .args(["--planes", "2", "--out"])
            .arg(&root),
    );
    let cache = dir.path().join("validate.json");
    std::fs::write(&cache, b"{not json").expect("write");
    let (full, _) = validate(&root, None);
    let (cached, stats) = validate(&root, Some(&cache));
    assert_eq!(cached, full);
    assert!(
        stats["discarded"]
            .as_str()
            .is_some_and(|s| s.contains("not a validation cache")),
        "{stats}"
    );
    // Rewritten as a cache the next run reads.
    let (_, stats) = validate(&root, Some(&cache));
    assert!(stats.get("discarded").is_none(), "{stats}");

    // A cache under a regular file cannot be written: the command says where and fails.
    let blocked = dir.path().join("file/validate.json");
    std::fs::write(dir.path().join("file"), b"").expect("write");
    let out = strata_testkit::run(
        strata()
            .args(["validate", "--cache"])
            .arg(&blocked)
            .arg(&root),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        strata_testkit::output_text(&out)
    );
    let named = dir.path().join("file").display().to_string();
    assert!(
        strata_testkit::stderr(&out).contains(&named),
        "{}",
        strata_testkit::output_text(&out)
    );
}

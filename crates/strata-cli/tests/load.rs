//! Eight conversions into one dataset at once, `strata validate` in a loop beside them: the
//! tables are never torn, no finished section is ever reported invalid, only sections still
//! being written may be (an image published a moment before its sidecar), and at the end
//! every section is there once and the dataset validates.

mod common;
use common::{convert, sample, strata};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const SECTIONS: usize = 8;

#[test]
fn eight_conversions_into_one_dataset_with_validate_beside_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw");
    sample(&raw, &["--size", "512x512", "--planes", "4"]);
    let bids = dir.path().join("bids");
    // Sections whose conversion has ended (their process exited).
    let done: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    let validator = {
        let (bids, done, stop) = (bids.clone(), Arc::clone(&done), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut runs = 0u64;
            let mut violations = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if !bids.join("dataset_description.json").exists() {
                    std::thread::yield_now();
                    continue;
                }
                let finished = done.lock().expect("lock").clone();
                let out = strata()
                    .args(["validate", "--json"])
                    .arg(&bids)
                    .output()
                    .expect("validate");
                runs += 1;
                let Ok(report) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
                    violations.push(format!(
                        "validate printed no report: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                    continue;
                };
                for issue in report["issues"].as_array().into_iter().flatten() {
                    if issue["severity"] != "error" {
                        continue;
                    }
                    let at = issue["location"].as_str().unwrap_or_default();
                    let section = (0..SECTIONS)
                        .map(|k| format!("sample-{k}_"))
                        .find(|s| at.contains(s.as_str()));
                    // A subject's folder and its participants.tsv row are two writes: a
                    // subject with a section still being written may be caught between them.
                    let message = issue["message"].as_str().unwrap_or_default();
                    let named: Vec<usize> = (0..3)
                        .filter(|s| message.contains(&format!("\"sub-S{s}\"")))
                        .collect();
                    let subject_busy = issue["code"] == "PARTICIPANT_ID_MISMATCH"
                        && !named.is_empty()
                        && named.iter().all(|&s| {
                            (0..SECTIONS)
                                .filter(|k| k % 3 == s)
                                .any(|k| !finished.contains(&format!("sample-{k}_")))
                        });
                    match section {
                        // A section still being written may be caught between its steps.
                        Some(s) if !finished.contains(&s) => {}
                        None if subject_busy => {}
                        _ => violations.push(format!("{issue}")),
                    }
                }
                for table in ["samples.tsv", "participants.tsv"] {
                    if let Ok(text) = std::fs::read_to_string(bids.join(table)) {
                        let mut lines = text.lines();
                        let width = lines.next().map_or(0, |h| h.split('\t').count());
                        if let Some(bad) = lines.find(|l| l.split('\t').count() != width) {
                            violations.push(format!("{table}: a torn row {bad:?}"));
                        }
                    }
                }
            }
            (runs, violations)
        })
    };

    let children: Vec<_> = (0..SECTIONS)
        .map(|k| {
            let child = convert(&raw, &bids)
                .args([
                    "--subject",
                    &format!("S{}", k % 3),
                    "--sample",
                    &k.to_string(),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn");
            (k, child)
        })
        .collect();
    let mut failed = Vec::new();
    for (k, child) in children {
        let out = child.wait_with_output().expect("wait");
        done.lock().expect("lock").insert(format!("sample-{k}_"));
        if !out.status.success() {
            failed.push(format!("{k}: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let (runs, violations) = validator.join().expect("validator thread");
    assert!(failed.is_empty(), "conversions failed: {failed:?}");
    assert!(
        runs >= 2,
        "validate ran only {runs} times beside the conversions"
    );
    assert!(
        violations.is_empty(),
        "{} violations: {violations:#?}",
        violations.len()
    );

    let samples = std::fs::read_to_string(bids.join("samples.tsv")).expect("samples.tsv");
    for k in 0..SECTIONS {
        let rows = samples
            .lines()
            .filter(|l| l.starts_with(&format!("sample-{k}\t")))
            .count();
        assert_eq!(
            rows, 1,
            "sample-{k} in samples.tsv {rows} times:\n{samples}"
        );
    }
    let participants =
        std::fs::read_to_string(bids.join("participants.tsv")).expect("participants.tsv");
    assert_eq!(participants.lines().count(), 1 + 3, "{participants}");
    let out = strata()
        .arg("validate")
        .arg(&bids)
        .output()
        .expect("validate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

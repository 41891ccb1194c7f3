//! `strata ingest --watch`: the scanner gateway as a real long-running process, fed plane by
//! plane, killed with SIGKILL and restarted.

use serde_json::Value;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata_testkit::{run, run_ok, stdout_json};

fn strata() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strata"))
}

fn sample(dir: &Path, size: &str, planes: u32, extra: &[&str]) {
    run_ok(
        strata()
            .arg("sample")
            .arg(dir)
            .args(["--size", size, "--planes", &planes.to_string()])
            .args(extra),
    );
}

/// Copies the TIFF planes `range` of `src` into `dst` (created).
fn copy_planes(src: &Path, dst: &Path, range: std::ops::Range<usize>, pause: Duration) {
    std::fs::create_dir_all(dst).expect("mkdir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(src)
        .expect("src")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tif"))
        .collect();
    files.sort();
    for f in &files[range] {
        let name = f.file_name().expect("name");
        // Written under a temporary name and renamed, as a scanner's copy would appear.
        let tmp = dst.join(format!(".{}.part", name.to_string_lossy()));
        std::fs::copy(f, &tmp).expect("copy");
        std::fs::rename(&tmp, dst.join(name)).expect("rename");
        std::thread::sleep(pause);
    }
}

/// A running gateway and the events it has printed, with the time each arrived.
struct Gateway {
    child: Child,
    events: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Gateway {
    fn start(args: &[&std::ffi::OsStr]) -> Self {
        let mut child = strata()
            .arg("ingest")
            .args(args)
            .args(["--json", "--settle", "1", "--poll", "0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start strata ingest");
        let out = child.stdout.take().expect("stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line).expect("an event is JSON");
                sink.lock().expect("lock").push((Instant::now(), v));
            }
        });
        Self { child, events }
    }

    /// Waits for an event `kind` of `folder`; returns when it arrived.
    fn wait(&self, kind: &str, folder: &str) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some((t, _)) = self
                .events
                .lock()
                .expect("lock")
                .iter()
                .find(|(_, e)| e["event"] == kind && e["folder"] == folder)
            {
                return *t;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} event for {folder}: {:?}",
                self.events.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn events_of(&self, folder: &str) -> Vec<String> {
        self.events
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, e)| e["folder"] == folder)
            .map(|(_, e)| e["event"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn image(bids: &Path, sample: &str) -> PathBuf {
    bids.join(format!("sub-g01/micr/sub-g01_sample-{sample}_BF.ome.zarr"))
}

#[test]
fn the_gateway_converts_complete_stacks_once_and_survives_sigkill() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    sample(&src.join("small"), "256x256", 6, &["--seed", "3"]);
    sample(&src.join("big"), "4096x4096", 6, &["--seed", "4"]);
    sample(&src.join("blurred"), "256x256", 6, &["--in-focus", "0"]);
    let drop = tmp.path().join("drop");
    std::fs::create_dir_all(&drop).expect("drop");
    let map = tmp.path().join("map.tsv");
    std::fs::write(
        &map,
        "folder\tsubject\tsample\ns0\tg01\t0\ns1\tg01\t1\ns2\tg01\t2\nsq\tg01\t9\n",
    )
    .expect("map");
    let bids = tmp.path().join("bids");
    let args: Vec<&std::ffi::OsStr> = vec![
        "--watch".as_ref(),
        drop.as_os_str(),
        "--map".as_ref(),
        map.as_os_str(),
        "--bids-root".as_ref(),
        bids.as_os_str(),
        "--planes".as_ref(),
        "6".as_ref(),
        "--qc-gate".as_ref(),
    ];
    let gw = Gateway::start(&args);

    // Plane by plane: nothing is converted before the stack is whole and settled.
    copy_planes(
        &src.join("small"),
        &drop.join("s0"),
        0..4,
        Duration::from_millis(300),
    );
    gw.wait("waiting", "s0");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!image(&bids, "0").exists(), "converted with 4 of 6 planes");
    copy_planes(&src.join("small"), &drop.join("s0"), 4..6, Duration::ZERO);
    let last_copy = Instant::now();
    let complete = gw.wait("complete", "s0");
    assert!(
        complete.duration_since(last_copy) >= Duration::from_millis(900),
        "complete before the settle time"
    );
    gw.wait("published", "s0");
    assert!(image(&bids, "0").join("zarr.json").exists());

    // A stack that fails QC: reported, not published, its report kept.
    copy_planes(&src.join("blurred"), &drop.join("sq"), 0..6, Duration::ZERO);
    gw.wait("qc_failed", "sq");
    assert!(!image(&bids, "9").exists(), "a QC failure was published");
    assert!(
        bids.join("derivatives/qc/sub-g01/sub-g01_sample-9_BF_qc.json")
            .exists()
    );

    // Killed while converting the large one.
    copy_planes(&src.join("big"), &drop.join("s1"), 0..6, Duration::ZERO);
    gw.wait("complete", "s1");
    let mut gw = gw;
    gw.child.kill().expect("SIGKILL");
    gw.child.wait().expect("wait");
    assert!(
        !image(&bids, "1").join("zarr.json").exists(),
        "published before it was killed"
    );
    copy_planes(&src.join("small"), &drop.join("s2"), 0..6, Duration::ZERO);
    let s0_meta = image(&bids, "0").join("zarr.json");
    let before = (
        std::fs::read(&s0_meta).expect("s0"),
        std::fs::metadata(&s0_meta)
            .expect("s0")
            .modified()
            .expect("mtime"),
    );
    drop_gateway(gw);

    // Restarted: finishes the rest, redoes nothing published, does not retry the QC failure.
    let gw = Gateway::start(&args);
    gw.wait("published", "s1");
    gw.wait("published", "s2");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(gw.events_of("s0"), Vec::<String>::new(), "s0 was redone");
    assert_eq!(
        gw.events_of("sq"),
        Vec::<String>::new(),
        "the QC failure was retried"
    );
    let after = (
        std::fs::read(&s0_meta).expect("s0"),
        std::fs::metadata(&s0_meta)
            .expect("s0")
            .modified()
            .expect("mtime"),
    );
    assert!(before == after, "s0's image was rewritten");

    // SIGTERM stops it cleanly.
    run_ok(Command::new("kill").args(["-TERM", &gw.child.id().to_string()]));
    let mut gw = gw;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = gw.child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "SIGTERM did not stop the gateway"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");

    let samples = std::fs::read_to_string(bids.join("samples.tsv")).expect("samples.tsv");
    let mut rows: Vec<&str> = samples
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect();
    rows.sort_unstable();
    assert_eq!(rows, ["sample-0", "sample-1", "sample-2"], "{samples}");
    let v = run(strata().arg("validate").arg(&bids));
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    // The gateway's sections through `strata batch status`.
    let s = stdout_json(&run_ok(
        strata()
            .args(["batch", "status", "--no-queue", "--json", "--manifest"])
            .arg(drop.join(".strata-ingest/ingest.json")),
    ));
    assert_eq!(s["counts"]["published"], 3, "{s}");
    assert_eq!(s["counts"]["qc_failed"], 1, "{s}");
}

fn drop_gateway(gw: Gateway) {
    drop(gw);
}

#[test]
fn a_marker_completes_a_stack_at_once_and_a_short_one_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let drop = tmp.path().join("drop");
    sample(&drop.join("ok"), "128x128", 4, &[]);
    sample(&drop.join("short"), "128x128", 3, &[]);
    sample(&drop.join("later"), "128x128", 4, &[]);
    std::fs::write(drop.join("ok/DONE"), b"").expect("marker");
    std::fs::write(drop.join("short/DONE"), b"").expect("marker");
    let map = tmp.path().join("map.tsv");
    std::fs::write(
        &map,
        "folder\tsubject\tsample\nok\tg02\t1\nshort\tg02\t2\nlater\tg02\t3\n",
    )
    .expect("map");
    let bids = tmp.path().join("bids");
    let tier2 = tmp.path().join("tier2");
    let once = || {
        let out = run_ok(
            strata()
                .args([
                    "ingest", "--once", "--json", "--planes", "4", "--settle", "3600",
                ])
                .arg("--stage-to")
                .arg(&tier2)
                .args(["--marker", "DONE", "--watch"])
                .arg(&drop)
                .arg("--map")
                .arg(&map)
                .arg("--bids-root")
                .arg(&bids),
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("event"))
            .collect::<Vec<_>>()
    };
    let events = once();
    let of = |folder: &str| {
        events
            .iter()
            .filter(|e| e["folder"] == folder)
            .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(of("ok"), ["complete", "published"], "{events:?}");
    assert_eq!(of("short"), ["failed"], "{events:?}");
    let short = events
        .iter()
        .find(|e| e["folder"] == "short")
        .expect("short");
    assert!(
        short["error"].as_str().expect("error").contains("3 of 4"),
        "{short}"
    );
    // Published and staged: the second tier holds the same files.
    let published = events
        .iter()
        .find(|e| e["event"] == "published")
        .expect("published");
    assert_eq!(published["staged"], true, "{published}");
    let rel = "sub-g02/micr/sub-g02_sample-1_BF.ome.zarr";
    let mut n = 0;
    for f in strata_testkit::files(&bids.join(rel)) {
        let r = f.strip_prefix(bids.join(rel)).expect("inside");
        assert_eq!(
            std::fs::read(&f).expect("local"),
            std::fs::read(tier2.join(rel).join(r)).expect("staged"),
            "{}",
            r.display()
        );
        n += 1;
    }
    assert!(n >= 3);
    assert!(tier2.join("sub-g02/micr/sub-g02_sample-1_BF.json").exists());
    // Without its marker, `later` waits for the settle time (an hour): not converted.
    assert!(of("later").is_empty(), "{events:?}");
    assert!(
        !bids
            .join("sub-g02/micr/sub-g02_sample-3_BF.ome.zarr")
            .exists()
    );
    // A second pass converts nothing again.
    let events = once();
    assert!(events.iter().all(|e| e["folder"] != "ok"), "{events:?}");
}

//! Writing onto a full or a read-only file system: a small tmpfs the test mounts (it needs
//! root, as `cargo xtask test` runs in CI; skipped otherwise unless STRATA_REQUIRE_PEERS is
//! set). `strata convert` and `strata stage` fail with the system's error naming the path,
//! leave no temporary file and no half-published section, and succeed once there is room.
//! A source file that changes while it is converted is caught and nothing is published; a
//! target the user may not write to (the command run as `nobody`) is refused the same way.

mod common;
use common::{convert, run, sample, strata};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            strata_testkit::missing("permission to mount a tmpfs (root) for the full-disk tests");
            return None;
        }
        Some(Self(dir.to_owned()))
    }

    fn remount(&self, options: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .expect("mount");
        assert!(st.success(), "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Every path under `root`, relative.
fn tree(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).expect("under").display().to_string());
            if p.is_dir() {
                walk(&p, root, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The command failed as an error (exit 2, no panic) with the system's `reason` and the
/// path it concerns (`under` or a path below it).
fn assert_refused(o: &std::process::Output, reason: &str, under: &Path) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(reason),
        "the error does not say {reason:?}: {err}"
    );
    assert!(
        err.contains(&under.display().to_string()),
        "the error names no path: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn convert_and_stage_onto_a_full_file_system_fail_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(fs) = Tmpfs::mount(&dir.path().join("small"), "6m") else {
        return;
    };
    let raw = dir.path().join("raw");
    sample(&raw, &["--size", "1024x1024", "--planes", "12"]);
    // A finished section that fits, then one that does not (12 MiB of raw pixels).
    let bids = fs.0.join("bids");
    let small = dir.path().join("small-raw");
    sample(&small, &["--size", "256x256", "--planes", "2"]);
    let o = run(convert(&small, &bids).args(["--subject", "A", "--sample", "1"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let before = tree(&bids);

    let o = run(convert(&raw, &bids).args([
        "--subject",
        "A",
        "--sample",
        "2",
        "--compression",
        "none",
    ]));
    assert_refused(&o, "No space left on device", &bids);
    // Nothing of the failed section, not even its partial output: the space is free again.
    assert_eq!(
        tree(&bids),
        before,
        "the failed conversion left files behind"
    );

    // A stage of the big source into the full file system: the same.
    let o = run(strata()
        .args([
            "stage",
            &format!("file://{}", raw.display()),
            &format!("file://{}", fs.0.join("copy").display()),
            "--journal",
        ])
        .arg(dir.path().join("stage.journal")));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let left: Vec<String> = tree(&fs.0.join("copy"))
        .into_iter()
        .filter(|p| strata_fs::is_temp_name(Path::new(p).file_name().unwrap_or_default()))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    let journal = std::fs::read_to_string(dir.path().join("stage.journal")).unwrap_or_default();
    for line in journal.lines().filter(|l| !l.starts_with('#')) {
        let key = line.split('\t').nth(2).expect("journal line");
        let size: u64 = line
            .split('\t')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("size");
        let got = std::fs::metadata(fs.0.join("copy").join(key)).map(|m| m.len());
        assert_eq!(got.ok(), Some(size), "journaled {key} is not there whole");
    }

    // With room, the same commands succeed.
    let _ = std::fs::remove_dir_all(fs.0.join("copy"));
    fs.remount("size=64m");
    let o = run(convert(&raw, &bids).args([
        "--subject",
        "A",
        "--sample",
        "2",
        "--compression",
        "none",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(strata().args(["validate"]).arg(&bids));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn convert_onto_a_read_only_file_system_fails_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(fs) = Tmpfs::mount(&dir.path().join("ro"), "16m") else {
        return;
    };
    let raw = dir.path().join("raw");
    sample(&raw, &["--size", "256x256", "--planes", "2"]);
    let bids = fs.0.join("bids");
    let o = run(convert(&raw, &bids).args(["--subject", "A", "--sample", "1"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let before = tree(&bids);
    fs.remount("ro");
    let o = run(convert(&raw, &bids).args(["--subject", "A", "--sample", "2"]));
    assert_refused(&o, "Read-only file system", &bids);
    fs.remount("rw");
    assert_eq!(tree(&bids), before);
}

/// Converts a stack and, once its first shard is written (one plane per shard, so well before
/// the end), does `disturb` to the first plane file, as a scanner or a user might; the
/// conversion must fail naming that file with `names` in its error, and publish nothing.
fn disturb_a_source_during_the_conversion(disturb: fn(&Path), names: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw");
    sample(&raw, &["--size", "2048x2048", "--planes", "8"]);
    let bids = dir.path().join("bids");
    let mut planes: Vec<PathBuf> = std::fs::read_dir(&raw)
        .expect("raw")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "tif"))
        .collect();
    planes.sort();
    let first = planes.first().expect("a plane").clone();
    let child = convert(&raw, &bids)
        .args(["--subject", "A", "--sample", "1", "--planes-per-shard", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let t0 = std::time::Instant::now();
    while !bids.join("sub-A").exists()
        || tree(&bids.join("sub-A"))
            .iter()
            .all(|p| !p.contains("/0/c"))
    {
        assert!(t0.elapsed().as_secs() < 120, "no shard appeared");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    disturb(&first);
    let o = child.wait_with_output().expect("wait");
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "the conversion did not notice: {err}"
    );
    assert!(
        err.contains("changed while it was being converted") && err.contains(names),
        "{err}"
    );
    assert!(err.contains(&first.display().to_string()), "{err}");
    let image = bids.join("sub-A/micr/sub-A_sample-1_BF.ome.zarr");
    assert!(!image.exists(), "the image was published");
    assert!(!bids.join("sub-A/micr/sub-A_sample-1_BF.json").exists());
}

#[test]
fn a_source_file_that_changes_during_the_conversion_is_not_published() {
    // The scanner appends to the first plane while the conversion runs.
    disturb_a_source_during_the_conversion(
        |first| {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(first)
                .expect("open");
            std::io::Write::write_all(&mut f, b"late bytes").expect("append");
        },
        "bytes at the start",
    );
}

#[test]
fn a_source_file_that_disappears_during_the_conversion_is_not_published() {
    // The plane is deleted (already read: the conversion still notices before publishing).
    disturb_a_source_during_the_conversion(
        |first| std::fs::remove_file(first).expect("remove"),
        "No such file",
    );
}

/// `strata` run as the unprivileged user `nobody` (uid and gid 65534), through util-linux's
/// `setpriv`; `None` (after [`strata_testkit::missing`]) unless the test runs as root with
/// `setpriv` at hand.
fn as_nobody() -> Option<Command> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && setpriv) {
        strata_testkit::missing("root and setpriv, to run strata as another user");
        return None;
    }
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_strata"));
    Some(c)
}

/// Makes `dir` readable and searchable by every user (a temporary folder is private).
fn open_to_all(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn targets_without_write_permission_fail_clearly_and_change_nothing() {
    let Some(_) = as_nobody() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    open_to_all(dir.path());
    let raw = dir.path().join("raw");
    sample(&raw, &["--size", "256x256", "--planes", "2"]);
    // A dataset of root's (folders 0755, files 0644): readable by anyone, writable by root.
    let bids = dir.path().join("bids");
    let o = run(convert(&raw, &bids).args(["--subject", "A", "--sample", "1"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let before = tree(&bids);
    let samples = std::fs::read(bids.join("samples.tsv")).expect("samples.tsv");

    let mut cmd = as_nobody().expect("checked above");
    let o = run(cmd
        .arg("convert")
        .arg(&raw)
        .arg("--bids-root")
        .arg(&bids)
        .args(["--subject", "A", "--sample", "2"]));
    assert_refused(&o, "Permission denied", &bids);
    assert_eq!(
        tree(&bids),
        before,
        "the refused conversion changed the dataset"
    );
    assert_eq!(
        std::fs::read(bids.join("samples.tsv")).expect("samples"),
        samples
    );

    // A stage into a folder of root's: refused the same way, nothing written, and the
    // journal (the user's own file) records nothing as staged.
    let dest = dir.path().join("dest");
    std::fs::create_dir(&dest).expect("dest");
    open_to_all(&dest);
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).expect("mine");
    std::os::unix::fs::chown(&mine, Some(65534), Some(65534)).expect("chown");
    let journal = mine.join("stage.journal");
    let mut cmd = as_nobody().expect("checked above");
    let o = run(cmd
        .args([
            "stage",
            &format!("file://{}", bids.display()),
            &format!("file://{}", dest.join("copy").display()),
            "--journal",
        ])
        .arg(&journal));
    assert_refused(&o, "Permission denied", &dest);
    assert!(tree(&dest).is_empty(), "{:?}", tree(&dest));
    let staged = std::fs::read_to_string(&journal).unwrap_or_default();
    assert!(
        staged.lines().all(|l| l.starts_with('#')),
        "the journal records objects as staged: {staged}"
    );
}

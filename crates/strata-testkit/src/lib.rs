//! Test support shared by the Strata crates' integration tests.
//!
//! Tests that compare Strata with a peer (a Python reader, the official BIDS validator,
//! DataLad, an S3 server) find it through an environment variable that `cargo xtask test`
//! sets. Without the variable the test is skipped and says so; with `STRATA_REQUIRE_PEERS`
//! set (as `cargo xtask test` does) a missing peer is a failure, so a CI run never passes by
//! skipping.
//!
//! Around the peers, the scaffolding every test binary would otherwise write again:
//! running a command and reading its JSON output ([`run`], [`run_ok`], [`stdout_json`]),
//! running a peer script with the peers' Python ([`run_python`], [`python_json`]) or the
//! official BIDS validator ([`bids_validator_errors`]), the example data next to the
//! workspace ([`conformance`], [`bids_examples`]), listing a folder ([`names`], [`files`]),
//! reading and editing JSON files ([`read_json`], [`edit_json`]), and a git identity for
//! commands that commit ([`git_identity`]).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use serde_json::Value;

/// The variable that turns a missing peer from a skip into a failure.
pub const REQUIRE_PEERS: &str = "STRATA_REQUIRE_PEERS";

/// The value of `var` (a peer's executable, endpoint, ...), or `None` when it is unset or
/// empty: the caller skips its test, and this prints why.
///
/// # Panics
/// When the peer is missing and [`REQUIRE_PEERS`] is set.
#[must_use]
pub fn peer(var: &str) -> Option<OsString> {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(v) => Some(v),
        None => {
            missing(&format!("{var} is not set"));
            None
        }
    }
}

/// The Python with the peer readers (`STRATA_PYTHON`), see [`peer`].
///
/// # Panics
/// As [`peer`].
#[must_use]
pub fn python() -> Option<PathBuf> {
    peer("STRATA_PYTHON").map(PathBuf::from)
}

/// The datalad executable (`STRATA_DATALAD`), when it exists and git-annex runs too; see
/// [`peer`].
///
/// # Panics
/// As [`peer`], also when the executable or git-annex is missing.
#[must_use]
pub fn datalad() -> Option<PathBuf> {
    let exe = PathBuf::from(peer("STRATA_DATALAD")?);
    let annex = Command::new("git").args(["annex", "version"]).output();
    if exe.exists() && annex.is_ok_and(|o| o.status.success()) {
        Some(exe)
    } else {
        missing(&format!(
            "datalad ({}) or git-annex is missing",
            exe.display()
        ));
        None
    }
}

/// Reports a missing peer: a skip, or a failure under [`REQUIRE_PEERS`].
///
/// # Panics
/// When [`REQUIRE_PEERS`] is set.
pub fn missing(what: &str) {
    assert!(
        std::env::var_os(REQUIRE_PEERS).is_none(),
        "{REQUIRE_PEERS} is set but {what}"
    );
    eprintln!("skipped: {what}");
}

/// The workspace root (the folder holding the root `Cargo.toml` and `crates/`).
#[must_use]
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map_or_else(|| here.join("../.."), Path::to_path_buf)
}

/// The peer script `name` of the workspace's `tests/peers/` (shared by the crates' tests).
#[must_use]
pub fn peer_script(name: &str) -> PathBuf {
    workspace_root().join("tests/peers").join(name)
}

/// `rel` in the public example data, `shared/conformance/` next to the workspace
/// (`../shared/conformance` from the workspace root), read in place.
///
/// # Panics
/// When it does not exist: the tests need the data, and say where it belongs.
#[must_use]
pub fn conformance(rel: &str) -> PathBuf {
    let p = workspace_root().join("../shared/conformance").join(rel);
    assert!(
        p.exists(),
        "conformance data missing at {}: the repository must sit next to shared/ \
         (shared/conformance/{rel})",
        p.display()
    );
    p
}

/// The BIDS example datasets, [`conformance`]`("bids-examples")`.
///
/// # Panics
/// As [`conformance`].
#[must_use]
pub fn bids_examples() -> PathBuf {
    conformance("bids-examples")
}

/// Runs `cmd` to completion and returns what it printed, whatever its exit status.
///
/// # Panics
/// When the command cannot start (the message names it).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Runs `cmd` like [`run`] and checks that it succeeded.
///
/// # Panics
/// When the command cannot start or exits unsuccessfully (the message shows its output).
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        output_text(&out)
    );
    out
}

/// The standard output of a run, parsed as JSON.
///
/// # Panics
/// When it is not JSON (the message shows the run's output).
#[must_use]
pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "standard output is not JSON ({e}; {}): {}",
            out.status,
            output_text(out)
        )
    })
}

/// The standard output of a run, as text.
#[must_use]
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The standard error of a run, as text.
#[must_use]
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The standard output and standard error of a run, one after the other.
#[must_use]
pub fn output_text(out: &Output) -> String {
    format!("{}\n{}", stdout(out), stderr(out))
}

/// Runs `script` (a file, or `-c` and the code as the first of `args`) with `python` (the
/// peers' Python, from [`python`]) and `args`, and checks that it succeeded.
///
/// # Panics
/// When the script cannot start or fails (the message shows its output).
pub fn run_python<I, S>(python: &Path, script: impl AsRef<OsStr>, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_ok(Command::new(python).arg(script).args(args))
}

/// Runs a peer script like [`run_python`] and parses what it printed as JSON.
///
/// # Panics
/// As [`run_python`], also when the output is not JSON.
#[must_use]
pub fn python_json<I, S>(python: &Path, script: impl AsRef<OsStr>, args: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    stdout_json(&run_python(python, script, args))
}

/// The errors the official BIDS validator (`STRATA_BIDS_VALIDATOR`, run with `--json`)
/// reports for the dataset at `root`, as (code, location) pairs in its order; `None` when the
/// validator is not configured (see [`peer`]).
///
/// # Panics
/// When the validator is required but missing, cannot start, or prints no JSON.
#[must_use]
pub fn bids_validator_errors(root: &Path) -> Option<Vec<(String, String)>> {
    let bin = peer("STRATA_BIDS_VALIDATOR")?;
    let v = stdout_json(&run(Command::new(bin).arg("--json").arg(root)));
    let issues = v["issues"]["issues"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Some(
        issues
            .iter()
            .filter(|i| i["severity"] == "error")
            .map(|i| {
                (
                    i["code"].as_str().unwrap_or_default().to_owned(),
                    i["location"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    )
}

/// The names of the entries of the folder `dir` (files and folders, hidden ones too),
/// sorted; none when `dir` does not exist.
///
/// # Panics
/// When `dir` exists but cannot be listed.
#[must_use]
pub fn names(dir: &Path) -> Vec<String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    let mut names: Vec<String> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Every file below `dir`, in every subfolder (symbolic links count as files and are not
/// followed), as paths starting with `dir`, sorted; none when `dir` does not exist.
///
/// # Panics
/// When a folder below `dir` exists but cannot be listed.
#[must_use]
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(d) = folders.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && d == dir => break,
            Err(e) => panic!("cannot list {}: {e}", d.display()),
        };
        for e in entries {
            let e = e.unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()));
            let t = e
                .file_type()
                .unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
            if t.is_dir() {
                folders.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// The JSON file at `path`.
///
/// # Panics
/// When it cannot be read or is not JSON (the message names it).
#[must_use]
pub fn read_json(path: &Path) -> Value {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// Reads the JSON file at `path`, changes it with `f` and writes it back (compact).
///
/// # Panics
/// As [`read_json`], also when it cannot be written.
pub fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v = read_json(path);
    f(&mut v);
    let text = serde_json::to_vec(&v).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The author and committer name of [`git_identity`].
pub const GIT_NAME: &str = "Strata Test";

/// The author and committer e-mail of [`git_identity`].
pub const GIT_EMAIL: &str = "test@strata.invalid";

/// Gives `cmd` (git, git-annex, DataLad, or a `strata` that commits) a git identity of its
/// own ([`GIT_NAME`], [`GIT_EMAIL`] as author and committer) and no system git
/// configuration, so that commits work alike on every machine.
pub fn git_identity(cmd: &mut Command) -> &mut Command {
    cmd.env("GIT_AUTHOR_NAME", GIT_NAME)
        .env("GIT_AUTHOR_EMAIL", GIT_EMAIL)
        .env("GIT_COMMITTER_NAME", GIT_NAME)
        .env("GIT_COMMITTER_EMAIL", GIT_EMAIL)
        .env("GIT_CONFIG_NOSYSTEM", "1")
}

/// A fresh bucket `<name>-<pid>` on the test S3 server (`STRATA_S3_ENDPOINT`), as
/// `(endpoint, bucket)`; `None` without a server, after [`missing`] (which fails the test when
/// `STRATA_REQUIRE_PEERS` is set). `purpose` says what the server is for.
#[must_use]
pub fn s3_bucket(name: &str, purpose: &str) -> Option<(String, String)> {
    let Some(endpoint) = peer("STRATA_S3_ENDPOINT") else {
        missing(&format!("STRATA_S3_ENDPOINT (an S3 server) for {purpose}"));
        return None;
    };
    let endpoint = endpoint.to_string_lossy().into_owned();
    let bucket = format!("{name}-{}", std::process::id());
    create_bucket(&endpoint, &bucket);
    Some((endpoint, bucket))
}

/// Creates a bucket on the test S3 server at `endpoint` (`http://host:port`) with a plain
/// HTTP `PUT /<bucket>` (the test server accepts unsigned requests; `object_store` cannot
/// create buckets). Panics with the server's answer when it refuses.
pub fn create_bucket(endpoint: &str, bucket: &str) {
    use std::io::{Read, Write};
    let hostport = endpoint
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("bucket creation needs an http:// endpoint, not {endpoint}"))
        .trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(hostport)
        .unwrap_or_else(|e| panic!("connecting to the S3 server at {hostport}: {e}"));
    let request = format!(
        "PUT /{bucket} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut resp = String::new();
    s.write_all(request.as_bytes())
        .and_then(|()| s.read_to_string(&mut resp))
        .unwrap_or_else(|e| panic!("creating bucket {bucket} at {endpoint}: {e}"));
    let status = resp.lines().next().unwrap_or_default();
    assert!(
        status.contains(" 200"),
        "creating bucket {bucket} at {endpoint}: {status}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_paths() {
        let root = workspace_root();
        assert!(root.join("Cargo.toml").is_file(), "{}", root.display());
        assert!(root.join("crates/strata-testkit").is_dir());
        assert_eq!(
            peer_script("x.py"),
            root.join("tests").join("peers").join("x.py")
        );
    }

    #[test]
    fn names_and_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("b/c")).expect("mkdir");
        for f in ["a.txt", ".hidden", "b/one", "b/c/two"] {
            std::fs::write(d.join(f), f).expect("write");
        }
        std::fs::create_dir(d.join("empty")).expect("mkdir");
        assert_eq!(names(d), [".hidden", "a.txt", "b", "empty"]);
        assert_eq!(names(&d.join("b")), ["c", "one"]);
        assert!(names(&d.join("missing")).is_empty());
        assert_eq!(
            files(d),
            [".hidden", "a.txt", "b/c/two", "b/one"].map(|f| d.join(f))
        );
        assert!(files(&d.join("empty")).is_empty());
        assert!(files(&d.join("missing")).is_empty());
    }

    #[test]
    fn json_files_and_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.json");
        std::fs::write(&p, r#"{"a": 1, "b": [true]}"#).expect("write");
        edit_json(&p, |v| v["a"] = 2.into());
        assert_eq!(read_json(&p), serde_json::json!({"a": 2, "b": [true]}));
        let out = run_ok(Command::new("sh").args(["-c", "echo '{\"ok\": 1}'; echo e >&2"]));
        assert_eq!(stdout_json(&out)["ok"], 1);
        assert_eq!(stderr(&out), "e\n");
        let failed = run(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]));
        assert_eq!(failed.status.code(), Some(3));
        assert_eq!(output_text(&failed), "out\n\nerr\n");
    }

    #[test]
    #[should_panic(expected = "failed")]
    fn run_ok_panics_on_failure() {
        let _ = run_ok(Command::new("sh").args(["-c", "exit 1"]));
    }

    #[test]
    #[should_panic(expected = "not JSON")]
    fn stdout_json_panics_on_text() {
        let _ = stdout_json(&run(Command::new("sh").args(["-c", "echo hello"])));
    }

    #[test]
    fn git_identity_commits_without_a_configured_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        std::fs::create_dir(&home).expect("home");
        let git = |args: &[&str]| {
            let mut c = Command::new("git");
            c.env("HOME", &home)
                .env_remove("XDG_CONFIG_HOME")
                .arg("-C")
                .arg(dir.path())
                .args(args);
            c
        };
        run_ok(git_identity(&mut git(&["init", "-q"])));
        std::fs::write(dir.path().join("f"), "x").expect("write");
        run_ok(git_identity(&mut git(&["add", "f"])));
        run_ok(git_identity(&mut git(&["commit", "-q", "-m", "one"])));
        let log = run_ok(&mut git(&["log", "--format=%an <%ae> / %cn <%ce>"]));
        assert_eq!(
            stdout(&log).trim(),
            format!("{GIT_NAME} <{GIT_EMAIL}> / {GIT_NAME} <{GIT_EMAIL}>")
        );
    }
}

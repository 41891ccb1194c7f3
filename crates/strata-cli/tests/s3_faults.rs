//! `strata stage` and `strata read` against a faulty object store: a TCP proxy in front of
//! the test S3 server (`STRATA_S3_ENDPOINT`) that answers 500/503 SlowDown, cuts connections
//! before answering or in the middle of a response body, and stalls. Intermittent faults are
//! ridden out by retries with backoff and the result equals a fault-free run; persistent
//! faults end in a clear error within the retry limit, with nothing recorded as staged.

mod common;
use common::{convert, run, sample, strata};
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the proxy does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Forward it and relay the answer.
    Pass,
    /// Answer this status with an S3 error document of this code, without forwarding.
    Status(u16, &'static str),
    /// Close the connection without answering.
    CutBeforeAnswer,
    /// Forward it, then relay only half of the answer and close.
    CutMidBody,
    /// Hold the connection this long without answering, then close it.
    Stall(Duration),
}

/// Chooses the fault of the n-th request (0-based) by method and path.
type Plan = dyn Fn(u64, &str, &str) -> Fault + Send + Sync;

/// A proxy on a loopback port; one request per connection (answers say `Connection: close`).
struct Proxy {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    faults: Arc<AtomicU64>,
}

impl Proxy {
    fn start(upstream: &str, plan: Arc<Plan>) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// endpoint")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicU64::new(0));
        let faults = Arc::new(AtomicU64::new(0));
        let (r, f) = (Arc::clone(&requests), Arc::clone(&faults));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (upstream, plan, r, f) = (
                    upstream.clone(),
                    Arc::clone(&plan),
                    Arc::clone(&r),
                    Arc::clone(&f),
                );
                std::thread::spawn(move || {
                    let _ = serve_one(conn, &upstream, plan.as_ref(), &r, &f);
                });
            }
        });
        Self {
            addr,
            requests,
            faults,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The position just after the blank line that ends an HTTP head, if it is in `buf`.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The head's lines without the ones named `drop` (lower case), and its Content-Length.
fn head_lines(head: &str, drop: &str) -> (Vec<String>, usize) {
    let mut len = 0;
    let mut lines = Vec::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if name == "content-length" {
            len = line[line.find(':').map_or(0, |i| i + 1)..]
                .trim()
                .parse()
                .unwrap_or(0);
        }
        if name != drop {
            lines.push(line.to_owned());
        }
    }
    (lines, len)
}

/// Reads one whole message (head and Content-Length body) from `s`.
fn read_message(s: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 << 10];
    let end = loop {
        if let Some(e) = head_end(&buf) {
            break e;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let (_, len) = head_lines(&head, "");
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some((head, body)))
}

fn serve_one(
    mut client: TcpStream,
    upstream: &str,
    plan: &Plan,
    requests: &AtomicU64,
    faults: &AtomicU64,
) -> std::io::Result<()> {
    let Some((head, body)) = read_message(&mut client)? else {
        return Ok(());
    };
    let mut words = head.split_whitespace();
    let (method, path) = (
        words.next().unwrap_or_default().to_owned(),
        words.next().unwrap_or_default().to_owned(),
    );
    let fault = plan(requests.fetch_add(1, Ordering::SeqCst), &method, &path);
    if fault != Fault::Pass {
        faults.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Fault::Status(status, code) => {
            let doc = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
            );
            write!(
                client,
                "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{doc}",
                doc.len()
            )?;
            return Ok(());
        }
        Fault::CutBeforeAnswer => return client.shutdown(Shutdown::Both),
        Fault::Stall(d) => {
            std::thread::sleep(d);
            return Ok(());
        }
        Fault::Pass | Fault::CutMidBody => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    let (lines, _) = head_lines(&head, "connection");
    up.write_all(format!("{}\r\nConnection: close\r\n\r\n", lines.join("\r\n")).as_bytes())?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    let end = head_end(&answer).unwrap_or(answer.len());
    let (lines, _) = head_lines(&String::from_utf8_lossy(&answer[..end]), "connection");
    let mut out = format!("{}\r\nConnection: close\r\n\r\n", lines.join("\r\n")).into_bytes();
    let rest = &answer[end..];
    if fault == Fault::CutMidBody {
        if rest.len() < 2 {
            // No body to cut: cut the head instead.
            out.truncate(out.len() / 2);
        } else {
            out.extend_from_slice(&rest[..rest.len() / 2]);
        }
        client.write_all(&out)?;
        return client.shutdown(Shutdown::Both);
    }
    out.extend_from_slice(rest);
    client.write_all(&out)
}

/// A converted dataset folder (one section) under `dir`.
fn dataset(dir: &Path) -> std::path::PathBuf {
    let raw = dir.join("raw");
    sample(&raw, &["--size", "600x500", "--planes", "3"]);
    let bids = dir.join("bids");
    let out = run(convert(&raw, &bids).args(["--subject", "F", "--sample", "1"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bids
}

/// Every regular file under `root` (relative path, bytes), lock files of the tables aside.
fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if !strata_fs::is_lock_name(e.file_name()) {
                let rel = p
                    .strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// `strata stage` through `endpoint`, with the given retry settings.
fn stage(
    endpoint: &str,
    src: &str,
    dst: &str,
    journal: &Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut c = strata();
    c.env("STRATA_S3_ENDPOINT", endpoint)
        .args(["stage", src, dst, "--json", "--journal"])
        .arg(journal);
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c)
}

#[test]
fn stage_rides_out_an_intermittently_failing_object_store() {
    let Some((endpoint, bucket)) = strata_testkit::s3_bucket("faults-ride", "a faulty S3") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let bids = dataset(dir.path());
    // Of every 8 requests: SlowDown, a 500, a cut mid-body, a connection closed unanswered.
    let plan: Arc<Plan> = Arc::new(|n, _, _| match n % 8 {
        1 => Fault::Status(503, "SlowDown"),
        3 => Fault::Status(500, "InternalError"),
        5 => Fault::CutMidBody,
        6 => Fault::CutBeforeAnswer,
        _ => Fault::Pass,
    });
    let proxy = Proxy::start(&endpoint, plan);
    let url = format!("s3://{bucket}/staged");
    let out = stage(
        &proxy.endpoint(),
        &format!("file://{}", bids.display()),
        &url,
        &dir.path().join("up.journal"),
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let objects = summary["objects"].as_u64().expect("objects");
    assert_eq!(summary["verified"].as_u64(), Some(objects), "{summary}");
    assert!(
        proxy.faults.load(Ordering::SeqCst) >= 4,
        "the proxy injected only {} faults in {} requests",
        proxy.faults.load(Ordering::SeqCst),
        proxy.requests.load(Ordering::SeqCst)
    );
    // Read back without the proxy (and back through it, faults and all): the bytes of the
    // source.
    for (via, name) in [(endpoint.clone(), "direct"), (proxy.endpoint(), "proxied")] {
        let back = dir.path().join(name);
        let out = stage(
            &via,
            &url,
            &format!("file://{}", back.display()),
            &dir.path().join(format!("{name}.journal")),
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (got, want) = (files(&back), files(&bids));
        assert_eq!(got.len() as u64, objects);
        assert_eq!(got, want, "the {name} copy differs from the source");
    }
}

#[test]
fn stage_into_a_failing_object_store_fails_clearly_and_records_nothing() {
    let Some((endpoint, bucket)) = strata_testkit::s3_bucket("faults-fail", "a faulty S3") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let bids = dataset(dir.path());
    let plan: Arc<Plan> = Arc::new(|_, method, _| {
        if method == "PUT" || method == "POST" {
            Fault::Status(503, "SlowDown")
        } else {
            Fault::Pass
        }
    });
    let proxy = Proxy::start(&endpoint, plan);
    let journal = dir.path().join("up.journal");
    let t0 = Instant::now();
    let out = stage(
        &proxy.endpoint(),
        &format!("file://{}", bids.display()),
        &format!("s3://{bucket}/never"),
        &journal,
        &[
            ("STRATA_S3_MAX_RETRIES", "2"),
            ("STRATA_S3_RETRY_TIMEOUT_SECS", "20"),
        ],
    );
    let took = t0.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("SlowDown") || err.contains("503"),
        "the error does not say what the store answered: {err}"
    );
    assert!(
        err.contains(&bucket),
        "the error does not name the store: {err}"
    );
    assert!(
        took < Duration::from_secs(60),
        "gave up only after {took:?}"
    );
    // Each PUT was tried once and retried twice before the stage gave up.
    assert!(proxy.faults.load(Ordering::SeqCst) >= 3);
    let recorded = std::fs::read_to_string(&journal).unwrap_or_default();
    assert!(
        recorded.lines().all(|l| l.starts_with('#')),
        "objects recorded as staged: {recorded}"
    );
}

#[test]
fn reads_retry_cut_and_refused_requests_and_time_out_on_a_stalled_store() {
    let Some((endpoint, bucket)) = strata_testkit::s3_bucket("faults-read", "a faulty S3") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw");
    sample(&raw, &["--size", "600x500", "--planes", "3"]);
    let url = format!("s3://{bucket}/bids");
    let mut c = convert(&raw, url.as_ref());
    let out = run(c
        .env("STRATA_S3_ENDPOINT", &endpoint)
        .args(["--subject", "F", "--sample", "1"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = format!("{url}/sub-F/micr/sub-F_sample-1_BF.ome.zarr");
    let read = |via: &str, out: &Path, env: &[(&str, &str)]| {
        let mut c = strata();
        c.env("STRATA_S3_ENDPOINT", via)
            .args(["read", &image, "--region", "0:3,0:500,0:600", "--out"])
            .arg(out);
        for (k, v) in env {
            c.env(k, v);
        }
        run(&mut c)
    };
    let direct = dir.path().join("direct.npy");
    let o = read(&endpoint, &direct, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let plan: Arc<Plan> = Arc::new(|n, _, _| match n % 5 {
        1 => Fault::CutMidBody,
        2 => Fault::Status(503, "SlowDown"),
        4 => Fault::CutBeforeAnswer,
        _ => Fault::Pass,
    });
    let proxy = Proxy::start(&endpoint, plan);
    let proxied = dir.path().join("proxied.npy");
    let o = read(&proxy.endpoint(), &proxied, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(proxy.faults.load(Ordering::SeqCst) >= 2);
    assert_eq!(
        std::fs::read(&proxied).expect("proxied"),
        std::fs::read(&direct).expect("direct"),
        "pixels read through the faulty proxy differ"
    );

    // A store that never answers: a timeout per request, a bounded number of retries, then
    // an error naming the image.
    let stalled = Proxy::start(
        &endpoint,
        Arc::new(|_, _, _| Fault::Stall(Duration::from_secs(30))),
    );
    let t0 = Instant::now();
    let o = read(
        &stalled.endpoint(),
        &dir.path().join("stalled.npy"),
        &[
            ("STRATA_S3_TIMEOUT_SECS", "1"),
            ("STRATA_S3_MAX_RETRIES", "1"),
            ("STRATA_S3_RETRY_TIMEOUT_SECS", "5"),
        ],
    );
    let took = t0.elapsed();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        took < Duration::from_secs(25),
        "gave up only after {took:?}"
    );
    assert!(
        err.contains("sub-F_sample-1_BF"),
        "the error does not name the image: {err}"
    );
    assert!(
        err.to_lowercase().contains("timed out") || err.to_lowercase().contains("timeout"),
        "the error does not say the store timed out: {err}"
    );
    assert!(!dir.path().join("stalled.npy").exists());
}

//! `strata-serve` over real sockets: HTTP semantics, the `.ozx` virtual view, hostile
//! requests, limits, tokens, HTTP/2, graceful shutdown, and an S3-backed dataset.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_serve::{Dataset, Origins, ServeOptions};
use strata_store::{OzxOptions, PosixStore, StoreKey, WritableStore};
use tokio::sync::oneshot;

const IMAGE: &str = "sub-01/micr/sub-01_sample-A_BF.ome.zarr";
const ARCHIVE: &str = "sub-01/micr/sub-01_sample-B_BF.ozx";
const VIEW: &str = "sub-01/micr/sub-01_sample-B_BF.ome.zarr";

/// A shard-sized object with distinct bytes everywhere.
fn shard_bytes() -> Vec<u8> {
    (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A small BIDS-shaped dataset: one image folder, the same image as an `.ozx`, a sidecar,
/// hidden entries that must never be served, and a symlink leading out of the root.
fn dataset(root: &Path, outside: &Path) {
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            "dataset_description.json".into(),
            br#"{"Name":"t"}"#.to_vec(),
        ),
        (
            "participants.tsv".into(),
            b"participant_id\nsub-01\n".to_vec(),
        ),
        (
            "sub-01/micr/sub-01_sample-A_BF.json".into(),
            br#"{"PixelSize":[1,1,1]}"#.to_vec(),
        ),
        (
            format!("{IMAGE}/zarr.json"),
            br#"{"zarr_format":3}"#.to_vec(),
        ),
        (format!("{IMAGE}/0/zarr.json"), br#"{"shape":[1]}"#.to_vec()),
        (format!("{IMAGE}/0/c.0.0.0.0"), shard_bytes()),
    ];
    for (rel, bytes) in &files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(&p, bytes).expect("write");
    }
    let store = PosixStore::open(root).expect("store");
    let image = StoreKey::new(IMAGE).expect("key");
    strata_store::block_on(strata_store::ozx::pack(
        &store,
        Some(&image),
        &store,
        &StoreKey::new(ARCHIVE).expect("key"),
        OzxOptions::default(),
    ))
    .expect("pack");
    std::fs::create_dir_all(root.join(".git")).expect("mkdir");
    std::fs::write(root.join(".git/config"), "[core]\n").expect("write");
    std::fs::create_dir_all(root.join("sub-01/.datalad")).expect("mkdir");
    std::fs::write(root.join("sub-01/.datalad/config"), "x").expect("write");
    std::fs::write(root.join(".participants.tsv.lock"), "").expect("write");
    std::fs::write(outside.join("secret.txt"), "secret").expect("write");
    std::os::unix::fs::symlink(outside, root.join("sub-01/escape")).expect("symlink");
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("leak.txt")).expect("symlink");
}

/// A server on a free loopback port in its own runtime; stopped when dropped.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(dataset: Dataset, options: ServeOptions) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send");
                strata_serve::serve(listener, Arc::new(dataset), options, async {
                    let _ = stop_rx.await;
                })
                .await
                .expect("serve");
            });
        });
        let addr = addr_rx.recv().expect("server address");
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops the server and waits until it has returned.
    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Sends `raw` (a whole request, as bytes) on a fresh connection and reads until the server
/// closes it.
fn raw_request(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(raw).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_reply(&out)
}

/// `method path` with extra headers, `Connection: close`.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    raw_request(addr, raw.as_bytes())
}

fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, "GET", path, headers)
}

fn folder_server() -> (tempfile::TempDir, tempfile::TempDir, Running) {
    let root = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    dataset(root.path(), outside.path());
    let ds = Dataset::open(&root.path().display().to_string()).expect("open");
    let server = Running::start(ds, ServeOptions::default());
    (root, outside, server)
}

#[test]
fn ranges_validators_and_types() {
    let (_root, _outside, server) = folder_server();
    let a = server.addr;
    let shard = shard_bytes();
    let size = shard.len();
    let path = format!("/{IMAGE}/0/c.0.0.0.0");

    let whole = get(a, &path, &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, shard, "the whole object, streamed in pieces");
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(
        whole.header("content-type"),
        Some("application/octet-stream")
    );
    let etag = whole.header("etag").expect("an ETag").to_owned();
    let modified = whole
        .header("last-modified")
        .expect("Last-Modified")
        .to_owned();

    for (range, want) in [
        ("bytes=0-99", 0..100),
        ("bytes=1000-", 1000..size),
        ("bytes=-16", size - 16..size),
        ("bytes=10-99999999", 10..size),
        ("bytes=-99999999", 0..size),
    ] {
        let r = get(a, &path, &[("Range", range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body, shard[want.clone()], "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {}-{}/{size}", want.start, want.end - 1).as_str()),
            "{range}"
        );
    }
    for unsatisfiable in [format!("bytes={size}-"), "bytes=-0".to_owned()] {
        let r = get(a, &path, &[("Range", &unsatisfiable)]);
        assert_eq!(r.status, 416, "{unsatisfiable}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes */{size}").as_str())
        );
    }
    // Several ranges or a syntax error: the whole object.
    for ignored in ["bytes=0-1,5-6", "bytes=9-2", "lines=1-2"] {
        let r = get(a, &path, &[("Range", ignored)]);
        assert_eq!((r.status, r.body.len()), (200, size), "{ignored}");
    }

    assert_eq!(get(a, &path, &[("If-None-Match", &etag)]).status, 304);
    assert_eq!(
        get(a, &path, &[("If-Modified-Since", &modified)]).status,
        304
    );
    assert_eq!(get(a, &path, &[("If-None-Match", "\"stale\"")]).status, 200);
    let fresh = get(a, &path, &[("Range", "bytes=0-9"), ("If-Range", &etag)]);
    assert_eq!(fresh.status, 206);
    let stale = get(
        a,
        &path,
        &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")],
    );
    assert_eq!((stale.status, stale.body.len()), (200, size));

    let head = request(a, "HEAD", &path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(size.to_string().as_str())
    );
    assert!(head.body.is_empty());

    let json = get(a, &format!("/{IMAGE}/zarr.json"), &[]);
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.body, br#"{"zarr_format":3}"#);
    let tsv = get(a, "/participants.tsv", &[]);
    assert!(
        tsv.header("content-type")
            .is_some_and(|t| t.starts_with("text/tab-separated-values"))
    );
    assert_eq!(get(a, "/healthz", &[]).status, 200);
}

#[test]
fn the_ozx_is_served_as_its_folder() {
    let (root, _outside, server) = folder_server();
    let a = server.addr;
    let shard = shard_bytes();
    for member in ["zarr.json", "0/zarr.json", "0/c.0.0.0.0"] {
        let direct = std::fs::read(root.path().join(IMAGE).join(member)).expect("read");
        let view = get(a, &format!("/{VIEW}/{member}"), &[]);
        assert_eq!(view.status, 200, "{member}");
        assert_eq!(view.body, direct, "{member} from inside the archive");
    }
    let path = format!("/{VIEW}/0/c.0.0.0.0");
    let tail = get(a, &path, &[("Range", "bytes=-20")]);
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, shard[shard.len() - 20..]);
    let etag = tail.header("etag").expect("an ETag").to_owned();
    assert_eq!(get(a, &path, &[("If-None-Match", &etag)]).status, 304);
    assert_eq!(get(a, &format!("/{VIEW}/0/missing"), &[]).status, 404);

    // The listing presents the archive as the folder it is served as, hidden entries not.
    let listing = get(a, "/sub-01/micr/?list", &[]);
    assert_eq!(listing.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&listing.body).expect("JSON");
    let names: Vec<&str> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "sub-01_sample-A_BF.ome.zarr/",
            "sub-01_sample-B_BF.ome.zarr/",
            "sub-01_sample-A_BF.json"
        ]
    );
    assert_eq!(v["entries"][1]["archive"], true);
    let inside = get(a, &format!("/{VIEW}/"), &[("Accept", "application/json")]);
    let v: serde_json::Value = serde_json::from_slice(&inside.body).expect("JSON");
    assert_eq!(v["entries"][0]["name"], "0/");
    assert_eq!(v["entries"][1]["name"], "zarr.json");
    let top = get(a, "/?list", &[]);
    let text = String::from_utf8_lossy(&top.body);
    assert!(!text.contains(".git") && !text.contains(".lock"), "{text}");
    // A folder without ?list is not an object.
    assert_eq!(get(a, "/sub-01/micr/", &[]).status, 404);

    // A replaced archive is noticed (after the recheck interval).
    let archive = root.path().join(ARCHIVE);
    let image = root.path().join(IMAGE);
    std::fs::write(image.join("zarr.json"), br#"{"zarr_format":3,"v":2}"#).expect("write");
    std::fs::remove_file(&archive).expect("rm");
    let store = PosixStore::open(root.path()).expect("store");
    strata_store::block_on(strata_store::ozx::pack(
        &store,
        Some(&StoreKey::new(IMAGE).expect("key")),
        &store,
        &StoreKey::new(ARCHIVE).expect("key"),
        OzxOptions::default(),
    ))
    .expect("pack");
    std::thread::sleep(Duration::from_millis(2100));
    let again = get(a, &format!("/{VIEW}/zarr.json"), &[]);
    assert_eq!(again.body, br#"{"zarr_format":3,"v":2}"#);
}

#[test]
fn hostile_requests_get_clean_answers() {
    let (_root, _outside, server) = folder_server();
    let a = server.addr;
    for path in [
        "/../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E%2Fetc%2Fpasswd",
        "/sub-01/..%2f..%2fparticipants.tsv",
        "/%252e%252e/participants.tsv",
        "/sub-01\\..\\participants.tsv",
        "/sub-01%5c..%5cparticipants.tsv",
        "/participants.tsv%00.json",
        "//etc/passwd",
        "/.git/config",
        "/%2egit/config",
        "/sub-01/.datalad/config",
        "/.participants.tsv.lock",
        "/sub-01/escape/secret.txt",
        "/leak.txt",
    ] {
        let r = get(a, path, &[]);
        assert_eq!(r.status, 404, "{path}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("secret"),
            "{path}"
        );
    }
    for method in ["PUT", "DELETE", "POST", "PATCH", "PROPFIND"] {
        let r = request(a, method, "/participants.tsv", &[("Content-Length", "0")]);
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    }
    assert_eq!(get(a, "/a%zz", &[]).status, 400);
    assert_eq!(raw_request(a, b"GARBAGE\r\n\r\n").status, 400);
    assert_eq!(
        raw_request(
            a,
            b"GET /participants.tsv HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"
        )
        .status,
        400
    );
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 << 10)
    );
    assert_eq!(raw_request(a, huge.as_bytes()).status, 431);
    // Still serving after all of it.
    assert_eq!(get(a, "/participants.tsv", &[]).status, 200);
}

#[test]
fn cors_and_tokens() {
    let root = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    dataset(root.path(), outside.path());
    let open = || Dataset::open(&root.path().display().to_string()).expect("open");

    let any = Running::start(open(), ServeOptions::default());
    let r = get(
        any.addr,
        "/participants.tsv",
        &[("Origin", "http://viewer")],
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(
        r.header("access-control-expose-headers")
            .is_some_and(|h| h.contains("content-range") && h.contains("etag"))
    );
    let pre = request(
        any.addr,
        "OPTIONS",
        "/participants.tsv",
        &[
            ("Origin", "http://viewer"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "range"),
        ],
    );
    assert!(pre.status == 200 || pre.status == 204, "{}", pre.status);
    assert!(
        pre.header("access-control-allow-headers")
            .is_some_and(|h| h.contains("range"))
    );

    let listed = Running::start(
        open(),
        ServeOptions::default()
            .origins(Origins::List(vec!["http://good".into()]))
            .token(Some("s3cret".into())),
    );
    let a = listed.addr;
    let bearer = [("Authorization", "Bearer s3cret")];
    let ok = get(
        a,
        "/participants.tsv",
        &[bearer[0], ("Origin", "http://good")],
    );
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("http://good")
    );
    let other = get(
        a,
        "/participants.tsv",
        &[bearer[0], ("Origin", "http://evil")],
    );
    assert_eq!(other.header("access-control-allow-origin"), None);
    let none = get(a, "/participants.tsv", &[]);
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        get(a, "/participants.tsv", &[("Authorization", "Bearer wrong")]).status,
        401
    );
    assert_eq!(get(a, "/healthz", &[]).status, 200);
    // A preflight carries no credentials and is answered.
    let pre = request(
        a,
        "OPTIONS",
        "/participants.tsv",
        &[
            ("Origin", "http://good"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization, range"),
        ],
    );
    assert!(pre.status == 200 || pre.status == 204, "{}", pre.status);
}

#[test]
fn slow_clients_do_not_starve_others() {
    let root = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    dataset(root.path(), outside.path());
    let ds = Dataset::open(&root.path().display().to_string()).expect("open");
    let server = Running::start(
        ds,
        ServeOptions::default()
            .max_connections(4)
            .header_timeout(Duration::from_secs(1)),
    );
    // Four clients hold every connection slot, sending their headers byte by byte.
    let slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).expect("connect");
            s.write_all(b"GET /participants.tsv HTTP/1.1\r\nX-Slow: ")
                .expect("send");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // A normal client is served once the slow ones time out, well before they would finish.
    let started = Instant::now();
    let r = get(server.addr, "/participants.tsv", &[]);
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "served after {:?}",
        started.elapsed()
    );
    // The slow clients were disconnected.
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
}

/// A client that asks for a large file and stops reading loses its connection after the
/// write timeout, and its slot serves the next client; the bytes it did take are the file's.
#[test]
fn a_client_that_stops_reading_is_cut_off() {
    let root = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    dataset(root.path(), outside.path());
    let size: usize = 64 << 20;
    let big: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.path().join("big.bin"), &big).expect("write");
    let ds = Dataset::open(&root.path().display().to_string()).expect("open");
    let server = Running::start(
        ds,
        ServeOptions::default()
            .max_connections(1)
            .write_timeout(Duration::from_secs(1)),
    );
    let mut stalled = TcpStream::connect(server.addr).expect("connect");
    stalled
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    std::thread::sleep(Duration::from_millis(300));
    // The only slot is held by the stalled client until its write times out.
    let started = Instant::now();
    let r = get(server.addr, "/participants.tsv", &[]);
    assert_eq!(r.status, 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(10),
        "served after {waited:?}"
    );
    // The stalled client gets what was sent before the cut, then the end of the stream.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = Vec::new();
    let _ = stalled.read_to_end(&mut got);
    let head_end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .expect("a response head");
    let body = &got[head_end..];
    assert!(
        body.len() < size,
        "the whole file went out: {} bytes",
        body.len()
    );
    assert_eq!(body, &big[..body.len()]);
}

#[test]
fn keep_alive_and_http2() {
    let (_root, _outside, server) = folder_server();
    // Two requests on one HTTP/1.1 connection.
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for _ in 0..2 {
        s.write_all(b"GET /participants.tsv HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut buf = vec![0; 4096];
        let n = s.read(&mut buf).expect("read");
        let r = parse_reply(&buf[..n]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"participant_id\nsub-01\n");
    }
    // HTTP/2 with prior knowledge (h2c).
    let addr = server.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        use http_body_util::BodyExt;
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .expect("h2 handshake");
        tokio::spawn(conn);
        let req = http::Request::get(format!("http://{addr}/{IMAGE}/0/c.0.0.0.0"))
            .header("range", "bytes=-100")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .expect("request");
        let resp = send.send_request(req).await.expect("h2 request");
        assert_eq!(resp.status(), 206);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let shard = shard_bytes();
        assert_eq!(&body[..], &shard[shard.len() - 100..]);
    });
}

#[test]
fn shutdown_lets_in_flight_requests_finish() {
    let (_root, _outside, mut server) = folder_server();
    let addr = server.addr;
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(
        format!("GET /{IMAGE}/0/c.0.0.0.0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .expect("send");
    // Read the first bytes, so the response is under way, then stop the server.
    let mut first = vec![0; 1024];
    let n = s.read(&mut first).expect("read");
    first.truncate(n);
    let stopper = std::thread::spawn(move || server.stop());
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("read the rest");
    first.extend(rest);
    let r = parse_reply(&first);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, shard_bytes(), "the download finished in full");
    stopper.join().expect("stopped");
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "no longer accepting"
    );
}

#[test]
fn a_dataset_in_s3_and_one_archive_as_the_root() {
    // One .ozx as the whole dataset.
    let (root, _outside, _server) = folder_server();
    let ds = Dataset::open(&format!("zip://{}", root.path().join(ARCHIVE).display()))
        .expect("open the archive");
    let server = Running::start(ds, ServeOptions::default());
    let r = get(server.addr, "/0/c.0.0.0.0", &[("Range", "bytes=5-9")]);
    assert_eq!(r.body, shard_bytes()[5..10]);

    let Some((endpoint, bucket)) = strata_testkit::s3_bucket("serve", "an S3-backed dataset")
    else {
        return;
    };
    let options = strata_store::S3Options::new(&bucket)
        .endpoint(&endpoint)
        .allow_http(true);
    let s3 = strata_store::ObjectStoreBackend::s3(&options)
        .expect("s3")
        .with_prefix(&StoreKey::new("ds").expect("key"));
    let local = PosixStore::open(root.path()).expect("store");
    for rel in [
        format!("{IMAGE}/0/c.0.0.0.0"),
        format!("{IMAGE}/zarr.json"),
        ARCHIVE.to_owned(),
    ] {
        let key = StoreKey::new(rel).expect("key");
        let bytes = std::fs::read(local.path_of(&key)).expect("read");
        strata_store::block_on(s3.put(&key, bytes.into())).expect("put");
    }
    let server = Running::start(Dataset::new(Arc::new(s3)), ServeOptions::default());
    let a = server.addr;
    let shard = shard_bytes();
    let r = get(
        a,
        &format!("/{IMAGE}/0/c.0.0.0.0"),
        &[("Range", "bytes=-64")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, shard[shard.len() - 64..]);
    let etag = r.header("etag").expect("the object's ETag").to_owned();
    assert_eq!(
        get(
            a,
            &format!("/{IMAGE}/0/c.0.0.0.0"),
            &[("If-None-Match", &etag)]
        )
        .status,
        304
    );
    let view = get(
        a,
        &format!("/{VIEW}/0/c.0.0.0.0"),
        &[("Range", "bytes=100-199")],
    );
    assert_eq!(view.status, 206);
    assert_eq!(view.body, shard[100..200]);
    let listing = get(a, "/sub-01/micr/?list", &[]);
    let text = String::from_utf8_lossy(&listing.body);
    assert!(text.contains("sub-01_sample-B_BF.ome.zarr/"), "{text}");
    assert_eq!(get(a, "/missing.json", &[]).status, 404);
}

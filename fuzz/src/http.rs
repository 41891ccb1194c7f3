//! Target `http_request`: `strata serve`'s request handling, over a real TCP connection.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use strata_serve::{Dataset, ServeOptions, serve};
use strata_zstack::Layout;

use crate::{scratch, template};

/// The content of the files the server must never send: one outside the dataset (reachable
/// only through `..` or a symlink) and hidden ones inside it.
const SECRET: &[u8] = b"STRATA-FUZZ-SECRET-7f3a9c";

/// Bytes of a response read at most.
const MAX_RESPONSE: usize = 8 << 20;

/// The time a client waits for the server's bytes.
const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// The server's address: started on first use, on a runtime of its own in a background
/// thread, and left running until the process ends.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(start)
}

/// Writes the dataset (an `.ozx` section and a folder section converted from the template
/// stack, hidden files and symlinks that lead out of it, a secret beside it) and starts the
/// server on a free loopback port.
fn start() -> SocketAddr {
    let dir = scratch::folder("http_request");
    let dataset = dir.join("dataset");
    let _ = template::convert_template(&dataset, "0001", Layout::Ozx);
    let _ = template::convert_template(&dataset, "0002", Layout::Folder);
    let outside = dir.join("outside");
    let mkdir = |p: &Path| {
        std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
    };
    mkdir(&outside);
    mkdir(&dataset.join(".git"));
    scratch::write(&outside.join("secret.txt"), SECRET);
    scratch::write(&dataset.join(".git/config"), SECRET);
    scratch::write(&dataset.join(".secret.txt"), SECRET);
    scratch::write(&dataset.join("notes.txt.lock"), SECRET);
    for (link, target) in [
        ("leak.txt", "../outside/secret.txt"),
        ("leak", "../outside"),
        ("sub-BB01/leak.txt", "../../outside/secret.txt"),
    ] {
        let at = dataset.join(link);
        std::os::unix::fs::symlink(target, &at)
            .unwrap_or_else(|e| panic!("cannot create the symlink {}: {e}", at.display()));
    }
    let location = dataset
        .to_str()
        .unwrap_or_else(|| panic!("the scratch path {} is not UTF-8", dataset.display()))
        .to_owned();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the server's runtime: {e}"));
        runtime.block_on(async move {
            let dataset = Dataset::open(&location)
                .unwrap_or_else(|e| panic!("cannot open the dataset {location}: {e}"));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
            let addr = listener
                .local_addr()
                .unwrap_or_else(|e| panic!("the listener has no address: {e}"));
            let _ = tx.send(addr);
            let options = ServeOptions::default()
                .header_timeout(Duration::from_secs(2))
                .write_timeout(Duration::from_secs(2));
            if let Err(e) =
                serve(listener, Arc::new(dataset), options, std::future::pending()).await
            {
                panic!("the server stopped: {e}");
            }
        });
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the server did not start: {e}"))
}

/// What follows every input on its connection: an empty line (ending a request head the
/// input leaves open), then a request that makes the server close the connection after
/// answering, so that the exchange ends without waiting for a timeout.
const CLOSING: &[u8] = b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";

/// Sends `request` and then [`CLOSING`] on a new connection, and returns what the server
/// answers until it closes the connection (or sends nothing for [`READ_TIMEOUT`]). The
/// sending half stays open: the server drops a connection whose client has finished
/// sending, with requests still unanswered.
fn exchange(addr: SocketAddr, request: &[u8]) -> Exchange {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("the server no longer accepts connections: {e}"));
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    // The server may answer and close before it has read everything: write errors are fine.
    let _ = stream
        .write_all(request)
        .and_then(|()| stream.write_all(CLOSING));
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut ended = String::from("the response limit");
    while out.len() < MAX_RESPONSE {
        match stream.read(&mut buf) {
            Ok(0) => {
                ended = "the server closing the connection".into();
                break;
            }
            // libFuzzer's timeout alarm (SIGALRM each second) interrupts reads.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                ended = format!("a read error ({e})");
                break;
            }
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    Exchange { bytes: out, ended }
}

/// What one connection received.
struct Exchange {
    bytes: Vec<u8>,
    /// What ended the exchange (for failure messages).
    ended: String,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Target `http_request`: sends the input as the raw bytes of one connection to a running
/// `strata_serve::serve` (any number of pipelined HTTP/1.1 requests, or HTTP/2 with prior
/// knowledge; [`CLOSING`] follows it), then checks that the server still answers `GET /?list` (the dataset root's
/// listing). Fails when the server stops answering, answers 5xx (the dataset is intact), or
/// sends the content of a file outside the dataset or of a hidden one.
pub fn http_request(data: &[u8]) {
    let addr = server();
    let response = exchange(addr, data).bytes;
    assert!(
        find(&response, SECRET).is_none(),
        "the server sent a file from outside the dataset or a hidden one:\n{}",
        String::from_utf8_lossy(&response)
    );
    if let Some(at) = find(&response, b"HTTP/1.1 5") {
        let line = response[at..]
            .split(|&b| b == b'\n')
            .next()
            .unwrap_or_default();
        panic!(
            "the server answers a server error: {}",
            String::from_utf8_lossy(line).trim_end()
        );
    }
    let started = std::time::Instant::now();
    let health = exchange(addr, b"GET /?list HTTP/1.1\r\nHost: fuzz\r\n\r\n");
    assert!(
        health.bytes.starts_with(b"HTTP/1.1 200")
            && find(&health.bytes, b"dataset_description.json").is_some(),
        "after this input the server no longer lists the dataset root: {:?} (ended by {} after {:?})",
        String::from_utf8_lossy(&health.bytes),
        health.ended,
        started.elapsed()
    );
}

//! `cargo xtask bench-serve [--seconds N] [--json] [--strata BIN]`: `strata serve` against nginx
//! (Debian) under a viewer's access pattern, in the same run. One synthetic 8 x 4096 x 4096 stack
//! is converted twice into one BIDS root (one shard per plane): sample A as an `.ome.zarr`
//! folder, sample B as one `.ozx` file. The request list is built offline from the shard files:
//! a random shard of level 0, its index by a suffix range, then the exact byte ranges of a 3 x 3
//! window of its inner chunks. wrk replays it (a generated Lua script, which counts every answer
//! that is not 206) with 1, 16 and 64 connections against nginx on the folder, strata serve on
//! the folder, and strata serve on sample B's virtual `.ome.zarr/` view of its `.ozx`; every
//! range is first fetched once from each target and compared with the bytes on disk. Prints
//! requests/s and p99 latency per target with the ratios to nginx (markdown); `--json` also
//! writes `target/bench-serve/results.json`. `--strata BIN` measures that build of `strata`
//! instead of building this tree's in release mode.
//!
//! The shard index and the zip directory are parsed here by hand: the xtask stays light (serde_json
//! only, no build of the workspace) and checks the bytes on disk independently of strata-store.

use crate::bench_convert::sample;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Debian packages of this benchmark only (not the tests': see `setup::APT_PACKAGES`).
const APT_PACKAGES: &[&str] = &["nginx", "wrk"];
const SIZE: &str = "4096x4096";
const PLANES: u32 = 8;
/// Viewer steps in the request list: one shard index and up to 3 x 3 chunks each.
const STEPS: usize = 200;
const WINDOW: u64 = 3;
const SEED: u64 = 0x5eed_5e7e;
const CONNECTIONS: &[u32] = &[1, 16, 64];
/// The goals, as fractions of nginx's requests/s.
const FOLDER_GOAL: f64 = 1.0;
const OZX_GOAL: f64 = 0.8;

/// One request of the list: a shard and a byte range of it.
#[derive(Clone, PartialEq, Debug)]
struct Request {
    /// The shard's path relative to the image, e.g. `0/c.0.3.0.0`.
    key: String,
    /// The `Range` header.
    range: String,
    /// The answer's first byte within the shard and its length.
    start: u64,
    len: u64,
}

/// Where an image's files are read from for the request list: its folder, or the stored
/// members of its `.ozx` (read here with a zip reader of our own, not with strata's).
enum Source {
    Folder(PathBuf),
    Zip {
        bytes: Vec<u8>,
        members: BTreeMap<String, (usize, usize)>,
    },
}

impl Source {
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, String> {
        match self {
            Source::Folder(dir) => match std::fs::read(dir.join(rel)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("{}: {e}", dir.join(rel).display())),
            },
            Source::Zip { bytes, members } => Ok(members
                .get(rel)
                .and_then(|&(at, len)| bytes.get(at..at + len))
                .map(<[u8]>::to_vec)),
        }
    }

    fn json(&self, rel: &str) -> Result<Value, String> {
        let bytes = self.read(rel)?.ok_or_else(|| format!("{rel} is missing"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{rel}: {e}"))
    }
}

/// Level 0 of an image as the sharding codec lays it out.
struct Level {
    path: String,
    shard_grid: Vec<u64>,
    chunks_per_shard: Vec<u64>,
    /// Bytes of the shard index: 16 per inner chunk, plus 4 with the crc32c codec.
    index_len: u64,
    index_at_end: bool,
    crc32c: bool,
    /// `c` prefix (the `default` key encoding) and separator.
    key_prefix: bool,
    separator: String,
}

impl Level {
    fn key(&self, coords: &[u64]) -> String {
        let parts: Vec<String> = coords.iter().map(u64::to_string).collect();
        let mut key = format!("{}/", self.path);
        if self.key_prefix {
            key.push('c');
            key.push_str(&self.separator);
        }
        key.push_str(&parts.join(&self.separator));
        key
    }
}

fn u64s(v: &Value, what: &str) -> Result<Vec<u64>, String> {
    v.as_array()
        .and_then(|a| a.iter().map(Value::as_u64).collect())
        .ok_or_else(|| format!("{what} is not a list of integers"))
}

fn level0(src: &Source) -> Result<Level, String> {
    let root = src.json("zarr.json")?;
    let path = root["attributes"]["ome"]["multiscales"][0]["datasets"][0]["path"]
        .as_str()
        .unwrap_or("0")
        .to_owned();
    let meta = src.json(&format!("{path}/zarr.json"))?;
    let shape = u64s(&meta["shape"], "shape")?;
    let shard = u64s(
        &meta["chunk_grid"]["configuration"]["chunk_shape"],
        "chunk_shape",
    )?;
    let codec = &meta["codecs"][0];
    if codec["name"] != "sharding_indexed" {
        return Err(format!("level {path} is not sharded"));
    }
    let conf = &codec["configuration"];
    let inner = u64s(&conf["chunk_shape"], "inner chunk_shape")?;
    if shape.len() != shard.len() || inner.len() != shard.len() || shard.len() < 2 {
        return Err(format!("level {path}: shapes of different ranks"));
    }
    let shard_grid = shape
        .iter()
        .zip(&shard)
        .map(|(n, s)| n.div_ceil(*s))
        .collect();
    let chunks_per_shard: Vec<u64> = shard.iter().zip(&inner).map(|(s, c)| s / c).collect();
    let crc32c = conf["index_codecs"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["name"] == "crc32c"));
    let chunks: u64 = chunks_per_shard.iter().product();
    let encoding = &meta["chunk_key_encoding"];
    let key_prefix = encoding["name"] != "v2";
    let default_sep = if key_prefix { "/" } else { "." };
    Ok(Level {
        path,
        shard_grid,
        chunks_per_shard,
        index_len: 16 * chunks + if crc32c { 4 } else { 0 },
        index_at_end: conf["index_location"].as_str().unwrap_or("end") == "end",
        crc32c,
        key_prefix,
        separator: encoding["configuration"]["separator"]
            .as_str()
            .unwrap_or(default_sep)
            .to_owned(),
    })
}

/// Every coordinate of a grid, in C order.
fn grid(shape: &[u64]) -> Vec<Vec<u64>> {
    let mut all = vec![Vec::new()];
    for &n in shape {
        all = all
            .into_iter()
            .flat_map(|c: Vec<u64>| {
                (0..n).map(move |i| {
                    let mut c = c.clone();
                    c.push(i);
                    c
                })
            })
            .collect();
    }
    all
}

/// The shards of level 0 that exist, by key.
fn shards(src: &Source, level: &Level) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    for coords in grid(&level.shard_grid) {
        let key = level.key(&coords);
        if let Some(bytes) = src.read(&key)? {
            out.insert(key, bytes);
        }
    }
    if out.is_empty() {
        return Err(format!("level {} has no shard", level.path));
    }
    Ok(out)
}

/// CRC-32C (Castagnoli), bitwise: the checksum of the shard index's crc32c codec.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn le(b: &[u8], at: usize, n: usize) -> Result<u64, String> {
    let bytes = b
        .get(at..at + n)
        .ok_or_else(|| format!("truncated at byte {at}"))?;
    Ok(bytes
        .iter()
        .rev()
        .fold(0, |acc, &x| (acc << 8) | u64::from(x)))
}

fn raw_sizeof(v: u64) -> Result<usize, String> {
    usize::try_from(v).map_err(|e| e.to_string())
}

/// The (offset, nbytes) pairs of a shard's index, checked against its crc32c and its size.
fn shard_index(key: &str, shard: &[u8], level: &Level) -> Result<Vec<(u64, u64)>, String> {
    let n = raw_sizeof(level.index_len)?;
    if shard.len() < n {
        return Err(format!(
            "{key}: {} bytes, shorter than its index",
            shard.len()
        ));
    }
    let index = if level.index_at_end {
        &shard[shard.len() - n..]
    } else {
        &shard[..n]
    };
    let entries = n / 16;
    if level.crc32c {
        let stored = le(index, 16 * entries, 4)?;
        let computed = u64::from(crc32c(&index[..16 * entries]));
        if stored != computed {
            return Err(format!(
                "{key}: index checksum {stored:#x}, computed {computed:#x} (wrong index size?)"
            ));
        }
    }
    let mut out = Vec::with_capacity(entries);
    for i in 0..entries {
        let (off, len) = (le(index, 16 * i, 8)?, le(index, 16 * i + 8, 8)?);
        if off != u64::MAX && off.checked_add(len).is_none_or(|e| e > shard.len() as u64) {
            return Err(format!(
                "{key}: chunk {i} at {off}+{len} is outside the shard"
            ));
        }
        out.push((off, len));
    }
    Ok(out)
}

/// SplitMix64: small, fixed, and the same on every machine for a seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next number below `n` (0 for `n` = 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// A viewer's requests: per step a random shard, its index (a suffix range when the index is
/// at the end), then the exact ranges of a random window of up to 3 x 3 of its inner chunks in
/// one plane (empty chunks skipped).
fn request_list(level: &Level, shards: &BTreeMap<String, Vec<u8>>) -> Result<Vec<Request>, String> {
    let keys: Vec<&String> = shards.keys().collect();
    let mut rng = Rng(SEED);
    let mut out = Vec::new();
    let cps = &level.chunks_per_shard;
    let nd = cps.len();
    for _ in 0..STEPS {
        let key = keys[raw_sizeof(rng.below(keys.len() as u64))?];
        let shard = &shards[key];
        let size = shard.len() as u64;
        let n = level.index_len;
        let (range, start) = if level.index_at_end {
            (format!("bytes=-{n}"), size - n)
        } else {
            (format!("bytes=0-{}", n - 1), 0)
        };
        out.push(Request {
            key: key.clone(),
            range,
            start,
            len: n,
        });
        let index = shard_index(key, shard, level)?;
        let mut corner: Vec<u64> = cps[..nd - 2].iter().map(|&c| rng.below(c)).collect();
        let mut window = Vec::new();
        for &c in &cps[nd - 2..] {
            let w = WINDOW.min(c);
            corner.push(rng.below(c - w + 1));
            window.push(w);
        }
        for dy in 0..window[0] {
            for dx in 0..window[1] {
                let mut c = corner.clone();
                c[nd - 2] += dy;
                c[nd - 1] += dx;
                let linear = c.iter().zip(cps).fold(0, |acc, (i, n)| acc * n + i);
                let (off, len) = index[raw_sizeof(linear)?];
                if off == u64::MAX || len == 0 {
                    continue;
                }
                out.push(Request {
                    key: key.clone(),
                    range: format!("bytes={off}-{}", off + len - 1),
                    start: off,
                    len,
                });
            }
        }
    }
    Ok(out)
}

/// The stored members of a zip file, name to (data offset, size); ZIP64 aware.
fn zip_members(z: &[u8]) -> Result<BTreeMap<String, (usize, usize)>, String> {
    const EOCD: u64 = 0x0605_4b50;
    let last = z.len().checked_sub(22).ok_or("not a zip file: too short")?;
    let eocd = (last.saturating_sub(65535)..=last)
        .rev()
        .find(|&i| le(z, i, 4) == Ok(EOCD))
        .ok_or("not a zip file: no end of central directory")?;
    let (mut entries, mut cd) = (le(z, eocd + 10, 2)?, le(z, eocd + 16, 4)?);
    if entries == 0xffff || cd == 0xffff_ffff {
        let locator = eocd.checked_sub(20).ok_or("no ZIP64 locator")?;
        if le(z, locator, 4)? != 0x0706_4b50 {
            return Err("no ZIP64 end of central directory locator".into());
        }
        let record = raw_sizeof(le(z, locator + 8, 8)?)?;
        if le(z, record, 4)? != 0x0606_4b50 {
            return Err("no ZIP64 end of central directory record".into());
        }
        entries = le(z, record + 32, 8)?;
        cd = le(z, record + 48, 8)?;
    }
    let mut p = raw_sizeof(cd)?;
    let mut out = BTreeMap::new();
    for _ in 0..entries {
        if le(z, p, 4)? != 0x0201_4b50 {
            return Err(format!("bad central directory entry at byte {p}"));
        }
        let method = le(z, p + 10, 2)?;
        let (mut size, mut raw_size, mut local) =
            (le(z, p + 20, 4)?, le(z, p + 24, 4)?, le(z, p + 42, 4)?);
        let name_len = raw_sizeof(le(z, p + 28, 2)?)?;
        let extra_len = raw_sizeof(le(z, p + 30, 2)?)?;
        let comment_len = raw_sizeof(le(z, p + 32, 2)?)?;
        let name = z
            .get(p + 46..p + 46 + name_len)
            .ok_or("truncated central directory")?;
        let name = String::from_utf8_lossy(name).into_owned();
        let (mut x, end) = (p + 46 + name_len, p + 46 + name_len + extra_len);
        while x + 4 <= end {
            let (id, len) = (le(z, x, 2)?, raw_sizeof(le(z, x + 2, 2)?)?);
            if id == 1 {
                let mut f = x + 4;
                for field in [&mut raw_size, &mut size, &mut local] {
                    if *field == 0xffff_ffff {
                        *field = le(z, f, 8)?;
                        f += 8;
                    }
                }
            }
            x += 4 + len;
        }
        if method != 0 || size != raw_size {
            return Err(format!("{name} is compressed (method {method})"));
        }
        let local = raw_sizeof(local)?;
        if le(z, local, 4)? != 0x0403_4b50 {
            return Err(format!("{name}: bad local header"));
        }
        let data =
            local + 30 + raw_sizeof(le(z, local + 26, 2)?)? + raw_sizeof(le(z, local + 28, 2)?)?;
        out.insert(name, (data, raw_sizeof(size)?));
        p = end + comment_len;
    }
    Ok(out)
}

/// A server process, stopped with SIGTERM (nginx's master then stops its workers, which a
/// SIGKILL would leave running), killed if it does not stop within 10 s.
struct Server {
    name: String,
    child: Option<Child>,
}

impl Server {
    fn stop(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return if status.success() || status.code().is_none() {
                    Ok(())
                } else {
                    Err(format!("{} exited with {status} on SIGTERM", self.name))
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("{} did not stop within 10 s of SIGTERM", self.name))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Waits until `port` accepts connections, failing early if the server exits.
fn wait_port(server: &mut Server, port: u16, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        let exited = match server.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            _ => None,
        };
        if let Some(status) = exited {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("{} exited with {status}: {log}", server.name));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not listen on port {port} within 30 s",
                server.name
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn start_nginx(work: &Path, bids: &Path, port: u16) -> Result<Server, String> {
    let dir = work.join("nginx");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let d = dir.display();
    // nginx's workers drop to `nobody` unless told otherwise when the master runs as root.
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let user = if root_user { "user root;\n" } else { "" };
    // nginx as one would tune it for this: sendfile, open files cached, keep-alive without
    // limit, no access log. `tcp_nopush` (TCP_CORK with sendfile) stays off: on loopback it
    // stalled about one answer in fifty by 40 ms (a delayed ACK), which cut one connection
    // from ~7,000 to ~270 requests/s.
    let conf = format!(
        "# Written by `cargo xtask bench-serve`: nginx as a static file server of the BIDS root.\n\
         daemon off;\n{user}worker_processes auto;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 1024; }}\n\
         http {{\n    access_log off;\n    sendfile on;\n    tcp_nopush off;\n    tcp_nodelay on;\n\
         \x20   keepalive_timeout 65;\n    keepalive_requests 1000000;\n\
         \x20   open_file_cache max=1024 inactive=60s;\n    types {{ }}\n\
         \x20   default_type application/octet-stream;\n\
         \x20   client_body_temp_path {d}/client_body;\n    proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   server {{\n        listen 127.0.0.1:{port};\n        root {};\n    }}\n}}\n",
        bids.display()
    );
    let conf_path = work.join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|e| format!("{}: {e}", conf_path.display()))?;
    let log = dir.join("error.log");
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let mut server = Server {
        name: "nginx".into(),
        child: Some(child),
    };
    wait_port(&mut server, port, &log)?;
    eprintln!("xtask: nginx on 127.0.0.1:{port} ({})", conf_path.display());
    Ok(server)
}

/// `strata serve --help`, if the build has the subcommand.
fn serve_help(strata: &Path) -> Option<String> {
    let out = Command::new(strata)
        .args(["serve", "--help"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts `strata serve` and waits for its first stdout line and its port. Access logging is
/// switched off by its flag if it has one (stderr then goes to a log file), else stderr goes
/// to /dev/null.
fn start_strata(
    strata: &Path,
    help: &str,
    work: &Path,
    bids: &Path,
    port: u16,
    problems: &mut Vec<String>,
) -> Result<Server, String> {
    let quiet = ["--no-access-log", "--quiet"].into_iter().find(|f| {
        help.split(|c: char| c.is_whitespace() || c == ',')
            .any(|w| w == *f)
    });
    let log = work.join("strata-serve.log");
    let mut cmd = Command::new(strata);
    cmd.arg("serve")
        .arg(bids)
        .args(["--addr", &format!("127.0.0.1:{port}")]);
    let stderr = match quiet {
        Some(flag) => {
            cmd.arg(flag);
            Stdio::from(std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?)
        }
        None => Stdio::null(),
    };
    eprintln!("xtask: running {cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", strata.display()))?;
    let stdout = child.stdout.take().ok_or("strata serve has no stdout")?;
    let mut server = Server {
        name: "strata serve".into(),
        child: Some(child),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        // Keep reading so that the server never blocks on a full pipe.
        for _ in lines {}
    });
    let first = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(Ok(line))) => line,
        Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            let _ = server.stop();
            return Err(format!(
                "strata serve exited without printing its address (stderr: {})",
                log.display()
            ));
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            return Err("strata serve printed nothing within 30 s".into());
        }
    };
    let expected = format!("serving {} at http://127.0.0.1:{port}/", bids.display());
    if first != expected {
        problems.push(format!(
            "strata serve's first line is {first:?}, expected {expected:?}"
        ));
    }
    wait_port(&mut server, port, &log)?;
    eprintln!("xtask: {first}");
    Ok(server)
}

/// Status, headers (lowercase names) and body of an HTTP answer.
type Response = (u16, BTreeMap<String, String>, Vec<u8>);

/// One GET with a `Range` header on a fresh connection.
fn http_get(port: u16, path: &str, range: &str) -> Result<Response, String> {
    let io = |e: std::io::Error| format!("GET {path} ({range}): {e}");
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nRange: {range}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(io)?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("GET {path}: no end of headers"))?;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("GET {path}: bad status line"))?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[head_end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("bad chunked body")?;
            let size = String::from_utf8_lossy(&rest[..eol]);
            let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|e| format!("bad chunk size: {e}"))?;
            if size == 0 {
                break;
            }
            let data = rest
                .get(eol + 2..eol + 2 + size)
                .ok_or("truncated chunked body")?;
            out.extend_from_slice(data);
            rest = rest.get(eol + 4 + size..).ok_or("truncated chunked body")?;
        }
        body = out;
    } else if let Some(n) = headers.get("content-length") {
        let n: usize = n.parse().map_err(|e| format!("content-length: {e}"))?;
        if body.len() < n {
            return Err(format!("GET {path}: body of {} < {n} bytes", body.len()));
        }
        body.truncate(n);
    }
    Ok((status, headers, body))
}

/// Fetches every request of the list once and compares status, Content-Range and body with
/// the bytes on disk; returns the first few differences.
fn check_content(
    target: &Target,
    shards: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<String>, String> {
    let mut bad = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in target.requests {
        if !seen.insert((&r.key, &r.range)) {
            continue;
        }
        let path = format!("/{}/{}", target.prefix, r.key);
        let (status, headers, body) = http_get(target.port, &path, &r.range)?;
        let shard = &shards[&r.key];
        let (start, end) = (raw_sizeof(r.start)?, raw_sizeof(r.start + r.len)?);
        let want_range = format!("bytes {}-{}/{}", r.start, r.start + r.len - 1, shard.len());
        let got_range = headers.get("content-range").map_or("", String::as_str);
        let problem = if status != 206 {
            Some(format!("status {status}"))
        } else if got_range != want_range {
            Some(format!(
                "Content-Range {got_range:?}, expected {want_range:?}"
            ))
        } else if body != shard[start..end] {
            Some(format!("{} bytes that differ from the file", body.len()))
        } else {
            None
        };
        if let Some(p) = problem {
            bad.push(format!("{}: GET {path} ({}): {p}", target.name, r.range));
            if bad.len() >= 5 {
                break;
            }
        }
    }
    Ok(bad)
}

/// The wrk script: cycles through the request list (each thread from its own place), and
/// prints the count of answers that are not 206 at the end.
fn lua_script(prefix: &str, requests: &[Request]) -> Result<String, String> {
    let mut s = String::from(
        "-- Written by `cargo xtask bench-serve`: a viewer's requests on level 0, cycled.\n",
    );
    let quoted = |x: &str| -> Result<String, String> {
        if x.contains(['"', '\\', '\n']) {
            Err(format!("cannot quote {x:?} in Lua"))
        } else {
            Ok(format!("\"{x}\""))
        }
    };
    s.push_str(&format!(
        "local prefix = {}\nlocal reqs = {{\n",
        quoted(&format!("/{prefix}/"))?
    ));
    for r in requests {
        s.push_str(&format!(
            "  {{{}, {}}},\n",
            quoted(&r.key)?,
            quoted(&r.range)?
        ));
    }
    s.push_str(
        r#"}
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  first_bad = 0
  i = (id * 997) % #reqs
end

function request()
  i = i % #reqs + 1
  local r = reqs[i]
  return wrk.format("GET", prefix .. r[1], { ["Range"] = r[2] })
end

function response(status, headers, body)
  if status ~= 206 then
    bad = bad + 1
    if first_bad == 0 then first_bad = status end
  end
end

function done(summary, latency, requests)
  local n, first = 0, 0
  for _, t in ipairs(threads) do
    n = n + t:get("bad")
    if first == 0 then first = t:get("first_bad") end
  end
  io.write(string.format("non-206 responses: %d (first status %d)\n", n, first))
end
"#,
    );
    Ok(s)
}

struct Target<'a> {
    name: &'static str,
    port: u16,
    /// The image's path under the BIDS root, as served.
    prefix: String,
    requests: &'a [Request],
    script: PathBuf,
}

struct Run {
    target: &'static str,
    connections: u32,
    threads: u32,
    rps: f64,
    p99_ms: f64,
    non_206: u64,
    socket_errors: Option<String>,
    transfer: String,
}

/// The fraction of CPU time not idle over one second, from `/proc/stat`.
fn cpu_busy() -> Option<f64> {
    let sample = || -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let times: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait ...: idle and iowait count as idle.
        let idle = times.get(3)? + times.get(4).unwrap_or(&0);
        Some((idle, times.iter().sum()))
    };
    let (idle0, total0) = sample()?;
    std::thread::sleep(Duration::from_secs(1));
    let (idle1, total1) = sample()?;
    let total = total1.saturating_sub(total0).max(1) as f64;
    Some(1.0 - idle1.saturating_sub(idle0) as f64 / total)
}

/// A wrk duration (`12.34us`, `1.2ms`, `2.00s`, `1.00m`) in milliseconds.
fn millis(s: &str) -> Option<f64> {
    let unit_at = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(unit_at);
    let n: f64 = n.parse().ok()?;
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    Some(n * scale)
}

fn wrk(target: &Target, connections: u32, seconds: u64) -> Result<Run, String> {
    let threads = connections.min(2);
    let mut cmd = Command::new("wrk");
    cmd.args(["-t", &threads.to_string(), "-c", &connections.to_string()])
        .args(["-d", &format!("{seconds}s"), "--latency", "-s"])
        .arg(&target.script)
        .arg(format!("http://127.0.0.1:{}", target.port));
    let shown = format!("{cmd:?}");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{shown} failed with {}: {text}", out.status));
    }
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    let parse_err = || format!("{shown}: cannot read its output:\n{text}");
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(parse_err)?;
    let p99_ms = field("99%").and_then(millis).ok_or_else(parse_err)?;
    let non_206 = field("non-206 responses:")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(parse_err)?;
    Ok(Run {
        target: target.name,
        connections,
        threads,
        rps,
        p99_ms,
        non_206,
        socket_errors: field("Socket errors:").map(str::to_owned),
        transfer: field("Transfer/sec:").unwrap_or("?").to_owned(),
    })
}

/// Converts the stack into `bids` twice (sample A as a folder, B as `.ozx`, one shard per
/// plane), once. Returns both outputs.
fn dataset(strata: &Path, zstack: &Path, bids: &Path) -> Result<(PathBuf, PathBuf), String> {
    let samples = [("A", "zarr"), ("B", "ozx")];
    let extra = ["--planes-per-shard", "1", "--no-checksums"];
    match crate::bench_convert::convert_once(strata, zstack, bids, &samples, &extra)?.as_slice() {
        [a, b] => Ok((a.into(), b.into())),
        other => Err(format!("expected two conversions, got {other:?}")),
    }
}

/// The path of an image under the BIDS root, as a URL path (an `.ozx` as its virtual
/// `.ome.zarr/` view).
fn url_prefix(bids: &Path, image: &Path) -> Result<String, String> {
    let rel = image
        .strip_prefix(bids)
        .map_err(|_| format!("{} is not under {}", image.display(), bids.display()))?;
    let rel = rel.to_string_lossy().replace('\\', "/");
    Ok(match rel.strip_suffix(".ozx") {
        Some(stem) => format!("{stem}.ome.zarr"),
        None => rel,
    })
}

fn write_json(
    work: &Path,
    seconds: u64,
    requests: usize,
    runs: &[Run],
    busy: Option<f64>,
    problems: &[String],
) -> Result<(), String> {
    let path = work.join("results.json");
    let runs: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "target": r.target,
                "connections": r.connections,
                "threads": r.threads,
                "requests_per_second": r.rps,
                "p99_latency_ms": r.p99_ms,
                "non_206_responses": r.non_206,
                "socket_errors": r.socket_errors,
                "transfer_per_second": r.transfer,
            })
        })
        .collect();
    let v = json!({
        "stack": format!("{PLANES} x {} uint8, one shard per plane", SIZE.replace('x', " x ")),
        "seconds_per_run": seconds,
        "requests_in_list": requests,
        "cpu_busy_before": busy,
        "runs": runs,
        "problems": problems,
    });
    let text = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

fn print_tables(runs: &[Run], seconds: u64) {
    for &c in CONNECTIONS {
        let rows: Vec<&Run> = runs.iter().filter(|r| r.connections == c).collect();
        let Some(&base) = rows.iter().find(|r| r.target == NGINX) else {
            continue;
        };
        println!(
            "\n### {c} connection{} ({} wrk thread{}, {seconds} s)\n",
            if c == 1 { "" } else { "s" },
            base.threads,
            if base.threads == 1 { "" } else { "s" }
        );
        println!("| target | requests/s | p99 latency | req/s vs nginx | p99 vs nginx |");
        println!("|---|---:|---:|---:|---:|");
        for r in &rows {
            println!(
                "| {} | {:.0} | {:.2} ms | {:.2}x | {:.2}x |",
                r.target,
                r.rps,
                r.p99_ms,
                r.rps / base.rps.max(f64::MIN_POSITIVE),
                r.p99_ms / base.p99_ms.max(f64::MIN_POSITIVE)
            );
        }
    }
}

fn print_goals(runs: &[Run]) {
    println!();
    for (target, goal) in [(FOLDER, FOLDER_GOAL), (OZX, OZX_GOAL)] {
        let mut parts = Vec::new();
        let mut met = true;
        for &c in CONNECTIONS {
            let rate = |t: &str| runs.iter().find(|r| r.connections == c && r.target == t);
            if let (Some(n), Some(s)) = (rate(NGINX), rate(target)) {
                let ratio = s.rps / n.rps.max(f64::MIN_POSITIVE);
                met &= ratio >= goal;
                parts.push(format!("{ratio:.2}x at {c}"));
            }
        }
        if !parts.is_empty() {
            println!(
                "goal: {target} >= {:.0}% of nginx's requests/s: {} ({})",
                goal * 100.0,
                if met { "met" } else { "NOT met" },
                parts.join(", ")
            );
        }
    }
}

const NGINX: &str = "nginx (folder)";
const FOLDER: &str = "strata serve (folder)";
const OZX: &str = "strata serve (.ozx view)";

/// With `binary`, that `strata` is measured as it is; else this tree's, built in release mode.
pub(crate) fn run(
    root: &Path,
    seconds: u64,
    write_results: bool,
    binary: Option<&Path>,
) -> Result<(), String> {
    crate::setup::apt(APT_PACKAGES)?;
    let strata = match binary {
        Some(b) => b.to_path_buf(),
        None => crate::build_strata(root)?,
    };
    let work = root.join("target/bench-serve");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let zstack = work.join(format!("zstack-{SIZE}x{PLANES}"));
    sample(&strata, &zstack, SIZE, PLANES)?;
    let bids = work.join("bids");
    let (folder, archive) = dataset(&strata, &zstack, &bids)?;

    // The request list, from sample A's files; sample B's from its own `.ozx` members.
    let src_a = Source::Folder(folder.clone());
    let level = level0(&src_a)?;
    let shards_a = shards(&src_a, &level)?;
    let list_a = request_list(&level, &shards_a)?;
    let bytes = std::fs::read(&archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let members = zip_members(&bytes).map_err(|e| format!("{}: {e}", archive.display()))?;
    let src_b = Source::Zip { bytes, members };
    let level_b = level0(&src_b)?;
    let shards_b = shards(&src_b, &level_b)?;
    let list_b = request_list(&level_b, &shards_b)?;
    let same = shards_a == shards_b && list_a == list_b;
    let chunks = list_a.len() - STEPS;
    eprintln!(
        "xtask: {} requests ({STEPS} shard indexes of {} bytes, {chunks} chunks) over {} shards of level {}; sample B's shards {} sample A's",
        list_a.len(),
        level.index_len,
        shards_a.len(),
        level.path,
        if same {
            "are byte for byte"
        } else {
            "DIFFER from"
        }
    );

    let prefix_a = url_prefix(&bids, &folder)?;
    let prefix_b = url_prefix(&bids, &archive)?;
    let mut problems = Vec::new();
    let help = serve_help(&strata);
    if help.is_none() {
        problems.push(format!(
            "strata serve is missing (`{} serve --help` fails): measured nginx only",
            strata.display()
        ));
        eprintln!("xtask: strata serve is MISSING from this build: nginx only");
    }
    let nginx_port = crate::services::free_port()?;
    let mut nginx = start_nginx(&work, &bids, nginx_port)?;
    let mut strata_server = None;
    let mut targets = vec![Target {
        name: NGINX,
        port: nginx_port,
        prefix: prefix_a.clone(),
        requests: &list_a,
        script: work.join("nginx.lua"),
    }];
    if let Some(help) = &help {
        let port = crate::services::free_port()?;
        strata_server = Some(start_strata(
            &strata,
            help,
            &work,
            &bids,
            port,
            &mut problems,
        )?);
        targets.push(Target {
            name: FOLDER,
            port,
            prefix: prefix_a,
            requests: &list_a,
            script: work.join("strata-folder.lua"),
        });
        targets.push(Target {
            name: OZX,
            port,
            prefix: prefix_b,
            requests: &list_b,
            script: work.join("strata-ozx.lua"),
        });
    }
    for t in &targets {
        let script = lua_script(&t.prefix, t.requests)?;
        std::fs::write(&t.script, script).map_err(|e| format!("{}: {e}", t.script.display()))?;
        let shards = if t.name == OZX { &shards_b } else { &shards_a };
        let bad = check_content(t, shards)?;
        if bad.is_empty() {
            eprintln!(
                "xtask: {}: every range answered 206 with the file's bytes",
                t.name
            );
        }
        problems.extend(bad);
    }

    // The servers and wrk share the cores: anything else running skews the numbers.
    let busy = cpu_busy();
    // Alternating: every target at one connection count before the next count.
    let mut runs = Vec::new();
    for &c in CONNECTIONS {
        for t in &targets {
            let run = wrk(t, c, seconds)?;
            eprintln!(
                "xtask: {}, {c} connections: {:.0} requests/s, p99 {:.2} ms, {} non-206, {}/s",
                t.name, run.rps, run.p99_ms, run.non_206, run.transfer
            );
            if run.non_206 > 0 {
                problems.push(format!(
                    "{}, {c} connections: {} answers were not 206",
                    t.name, run.non_206
                ));
            }
            runs.push(run);
        }
    }
    if let Err(e) = nginx.stop() {
        problems.push(e);
    }
    if let Some(mut s) = strata_server.take()
        && let Err(e) = s.stop()
    {
        problems.push(e);
    }

    println!(
        "bench-serve: a viewer's range requests on level 0 ({} requests: {STEPS} shard indexes, {chunks} inner chunks) of a {PLANES} x {} uint8 stack, one shard per plane ({}), wrk {seconds} s per run, targets alternating",
        list_a.len(),
        SIZE.replace('x', " x "),
        bids.display()
    );
    if let Some(busy) = busy.filter(|&b| b >= 0.2) {
        println!(
            "WARNING: the cores were {:.0}% busy just before the runs (something else is running): the numbers are noisy",
            busy * 100.0
        );
    }
    print_tables(&runs, seconds);
    print_goals(&runs);
    if write_results {
        write_json(&work, seconds, list_a.len(), &runs, busy, &problems)?;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "bench-serve is not valid:\n  {}",
            problems.join("\n  ")
        ))
    }
}

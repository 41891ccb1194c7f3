//! File checksums.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The read buffer: 1 MiB, large enough for sequential reads to run at disk speed.
const BUFFER: usize = 1 << 20;

/// Size in bytes and SHA-256 (lower-case hex) of a file, read once in 1 MiB pieces.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn sha256_file(path: &Path) -> Result<(u64, String)> {
    let never = AtomicBool::new(false);
    sha256_file_until(path, &never).map(|r| r.unwrap_or_default())
}

/// [`sha256_file`] that gives up, returning `Ok(None)`, once `stop` is set (checked before
/// each 1 MiB read), so that an interrupted run does not finish reading a large file.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn sha256_file_until(path: &Path, stop: &AtomicBool) -> Result<Option<(u64, String)>> {
    let mut file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut buf = vec![0u8; BUFFER];
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        hash.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(Some((bytes, hex(&hash.finalize()))))
}

/// Lower-case hex of bytes.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").expect("write");
        assert_eq!(
            sha256_file(&empty).expect("hash"),
            (
                0,
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned()
            )
        );
        let abc = dir.path().join("abc");
        std::fs::write(&abc, b"abc").expect("write");
        assert_eq!(
            sha256_file(&abc).expect("hash").1,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn spans_several_buffers_and_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big");
        let data: Vec<u8> = (0..(BUFFER * 2 + 17)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&big, &data).expect("write");
        let (bytes, hex_digest) = sha256_file(&big).expect("hash");
        assert_eq!(bytes, data.len() as u64);
        assert_eq!(hex_digest, hex(&Sha256::digest(&data)));
        let stop = AtomicBool::new(true);
        assert_eq!(sha256_file_until(&big, &stop).expect("stopped"), None);
        let e = sha256_file(&dir.path().join("missing")).expect_err("missing");
        assert!(e.to_string().contains("missing"), "{e}");
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}

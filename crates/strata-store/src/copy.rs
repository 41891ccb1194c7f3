//! Copying and hashing objects in ranges, so memory per object stays at one piece however
//! large the object is.

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::key::StoreKey;
use crate::traits::{PutStream, ReadableStore};

/// The piece size [`sha256_object`] reads in.
pub const DEFAULT_PIECE: u64 = 1 << 20;

/// Copies the `size` bytes of the object under `key` of `src` into `dst`, reading ranges
/// of at most `piece` bytes (one read of the whole object when it is no larger than a
/// piece) and feeding every byte to `hasher` when there is one. Returns the bytes copied.
///
/// The stream is neither completed nor aborted: the caller does either.
///
/// # Errors
/// The first read or write error; [`crate::Error::InvalidRange`] when the object is
/// shorter than `size`.
pub async fn copy_object<S>(
    src: &S,
    key: &StoreKey,
    size: u64,
    dst: &mut dyn PutStream,
    piece: u64,
    mut hasher: Option<&mut Sha256>,
) -> Result<u64>
where
    S: ReadableStore + ?Sized,
{
    let piece = piece.max(1);
    let (mut off, mut n) = (0, 0);
    while off < size {
        let end = off.saturating_add(piece).min(size);
        let b = src.get_range(key, (off..end).into()).await?;
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&b);
        }
        n += b.len() as u64;
        dst.write(b).await?;
        off = end;
    }
    Ok(n)
}

/// The SHA-256 (lowercase hex) and the size of the `size`-byte object under `key`, read in
/// ranges of at most `piece` bytes (in one read when it is no larger than a piece). The
/// size returned is what was read, so a caller can tell an object that changed.
///
/// # Errors
/// The first read error.
pub async fn sha256_object_ranged<S>(
    store: &S,
    key: &StoreKey,
    size: u64,
    piece: u64,
) -> Result<(String, u64)>
where
    S: ReadableStore + ?Sized,
{
    let piece = piece.max(1);
    let mut h = Sha256::new();
    let mut n = 0;
    if size <= piece {
        let b = store.get(key).await?;
        h.update(&b);
        n = b.len() as u64;
    } else {
        let mut off = 0;
        while off < size {
            let end = off.saturating_add(piece).min(size);
            let b = store.get_range(key, (off..end).into()).await?;
            h.update(&b);
            n += b.len() as u64;
            off = end;
        }
    }
    Ok((hex(&h.finalize()), n))
}

/// The SHA-256 of the object under `key`, as lowercase hex (the checksum git-annex uses
/// for its `SHA256E` keys), read in pieces of [`DEFAULT_PIECE`] bytes.
///
/// # Errors
/// [`crate::Error::NotFound`] when there is no object; the first read error.
pub async fn sha256_object<S>(store: &S, key: &StoreKey) -> Result<String>
where
    S: ReadableStore + ?Sized,
{
    let size = store.size(key).await?;
    Ok(sha256_object_ranged(store, key, size, DEFAULT_PIECE)
        .await?
        .0)
}

/// Lowercase hex of a digest.
pub(crate) fn hex(d: &[u8]) -> String {
    use std::fmt::Write as _;
    d.iter()
        .fold(String::with_capacity(2 * d.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

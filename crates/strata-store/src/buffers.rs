//! Reusable read buffers. A server answers thousands of chunk ranges a second, each a
//! fresh buffer of hundreds of KiB; allocations that large come straight from the kernel
//! (glibc maps them), so every read would fault in and zero new pages and unmap them again
//! afterwards (a tenth of a server's time, measured with `cargo xtask bench-serve`). The
//! pool keeps a bounded number of freed buffers for the next reads. Written here because a
//! general-purpose pool crate would not hand buffers out as [`Bytes`] that return on drop.

use std::sync::Mutex;

use bytes::Bytes;

/// Buffers smaller than this are left to the allocator (its own caches serve them well).
const MIN: usize = 64 << 10;
/// The largest of the small buffers (chunk ranges); at most [`KEEP`] bytes of them are kept.
const MAX: usize = 4 << 20;
/// At most this much memory is kept in small buffers.
const KEEP: usize = 32 << 20;
/// Buffers larger than this are not kept at all.
const MAX_LARGE: usize = 256 << 20;
/// At most this much memory is kept in large buffers (staging pieces of 8 MiB, four whole
/// objects of 64 MiB in flight): a fresh 64 MiB buffer costs 16,384 page faults, each page
/// zeroed by the kernel, which made whole-object reads a quarter slower than `dd`'s reused
/// buffer.
const KEEP_LARGE: usize = 256 << 20;

static POOL: Mutex<Pool> = Mutex::new(Pool {
    free: Vec::new(),
    bytes: 0,
    large: Vec::new(),
    large_bytes: 0,
});

struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
    large: Vec<Vec<u8>>,
    large_bytes: usize,
}

fn pooled(n: usize) -> bool {
    (MIN..=MAX_LARGE).contains(&n)
}

/// A vector with room for at least `n` bytes: a pooled one when one fits (at most twice the
/// size asked, so small reads do not pin large buffers), holding the stale bytes of its last
/// use (initialized memory the caller overwrites: reusing it costs no zeroing), else a new
/// empty one.
pub(crate) fn take(n: usize) -> Vec<u8> {
    if pooled(n)
        && let Ok(mut pool) = POOL.lock()
    {
        let pool = &mut *pool;
        let (free, bytes) = if n <= MAX {
            (&mut pool.free, &mut pool.bytes)
        } else {
            (&mut pool.large, &mut pool.large_bytes)
        };
        if let Some(i) = free
            .iter()
            .position(|b| b.capacity() >= n && b.capacity() <= 2 * n)
        {
            let b = free.swap_remove(i);
            *bytes -= b.capacity();
            return b;
        }
    }
    Vec::with_capacity(n)
}

/// `buf` as [`Bytes`]; a buffer of the pooled sizes goes back to the pool when the last
/// [`Bytes`] of it is dropped.
pub(crate) fn into_bytes(buf: Vec<u8>) -> Bytes {
    if pooled(buf.capacity()) {
        Bytes::from_owner(Pooled(buf))
    } else {
        Bytes::from(buf)
    }
}

struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // The contents stay: they are initialized, so the next user overwrites them in place.
        let buf = std::mem::take(&mut self.0);
        let Ok(mut pool) = POOL.lock() else { return };
        let pool = &mut *pool;
        let (free, bytes, keep) = if buf.capacity() <= MAX {
            (&mut pool.free, &mut pool.bytes, KEEP)
        } else {
            (&mut pool.large, &mut pool.large_bytes, KEEP_LARGE)
        };
        if *bytes + buf.capacity() <= keep {
            *bytes += buf.capacity();
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_buffers_come_back_and_the_pool_stays_bounded() {
        let held: Vec<Bytes> = (0..(2 * KEEP / MIN))
            .map(|i| {
                let mut b = take(MIN);
                b.resize(MIN, u8::try_from(i % 251).unwrap_or(0));
                into_bytes(b)
            })
            .collect();
        for (i, b) in held.iter().enumerate() {
            assert!(b.iter().all(|&x| usize::from(x) == i % 251), "buffer {i}");
        }
        drop(held);
        let kept = POOL.lock().map(|p| p.bytes).unwrap_or(usize::MAX);
        assert!(kept <= KEEP, "{kept} bytes kept");
        assert!(kept >= MIN, "freed buffers are kept");
        // A reused buffer comes with room for the request.
        assert!(take(MIN).capacity() >= MIN);
        // Large buffers come back too, within their own bound.
        let big: Vec<Bytes> = (0..3)
            .map(|_| {
                let mut b = take(64 << 20);
                b.resize(64 << 20, 1);
                into_bytes(b)
            })
            .collect();
        drop(big);
        let large = POOL.lock().map(|p| p.large_bytes).unwrap_or(usize::MAX);
        assert!(
            (64 << 20..=KEEP_LARGE).contains(&large),
            "{large} large bytes kept"
        );
        assert!(take(64 << 20).capacity() >= 64 << 20);
        // Small and huge reads bypass the pool.
        assert!(take(16).capacity() >= 16);
        assert!(into_bytes(vec![7; 10]).len() == 10);
    }
}

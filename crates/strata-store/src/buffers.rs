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
/// Buffers larger than this are not kept (rare: whole-object reads).
const MAX: usize = 4 << 20;
/// At most this much memory is kept in the pool.
const KEEP: usize = 32 << 20;

static POOL: Mutex<Pool> = Mutex::new(Pool {
    free: Vec::new(),
    bytes: 0,
});

struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

/// A vector with room for at least `n` bytes: a pooled one when one fits (at most twice the
/// size asked, so small reads do not pin large buffers), holding the stale bytes of its last
/// use (initialized memory the caller overwrites: reusing it costs no zeroing), else a new
/// empty one.
pub(crate) fn take(n: usize) -> Vec<u8> {
    if (MIN..=MAX).contains(&n)
        && let Ok(mut pool) = POOL.lock()
        && let Some(i) = pool
            .free
            .iter()
            .position(|b| b.capacity() >= n && b.capacity() <= 2 * n)
    {
        let b = pool.free.swap_remove(i);
        pool.bytes -= b.capacity();
        return b;
    }
    Vec::with_capacity(n)
}

/// `buf` as [`Bytes`]; a buffer of the pooled sizes goes back to the pool when the last
/// [`Bytes`] of it is dropped.
pub(crate) fn into_bytes(buf: Vec<u8>) -> Bytes {
    if (MIN..=MAX).contains(&buf.capacity()) {
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
        if let Ok(mut pool) = POOL.lock()
            && pool.bytes + buf.capacity() <= KEEP
        {
            pool.bytes += buf.capacity();
            pool.free.push(buf);
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
        // Small and huge reads bypass the pool.
        assert!(take(16).capacity() >= 16);
        assert!(into_bytes(vec![7; 10]).len() == 10);
    }
}

//! A decoded-chunk cache with a byte budget, least recently used out first.
//!
//! zarrs' own chunk caches hold whole chunks, and a Strata level is one shard (one chunk of the
//! array's grid): the unit worth caching is the inner chunk, which zarrs' caches do not key.

use std::sync::{Arc, Mutex};

use lru::LruCache;

/// Key of a cached chunk: the level and the inner chunk's grid indices.
pub(crate) type ChunkKey = (usize, Vec<u64>);

/// Decoded inner chunks, shared by every thread reading the image.
#[derive(Debug)]
pub(crate) struct ChunkCache {
    budget: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    chunks: LruCache<ChunkKey, Arc<Vec<u8>>>,
    bytes: usize,
}

impl ChunkCache {
    /// A cache that holds at most `budget` bytes of decoded chunks.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            state: Mutex::new(State {
                chunks: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    /// The chunk if cached (and marks it recently used).
    pub(crate) fn get(&self, key: &ChunkKey) -> Option<Arc<Vec<u8>>> {
        let mut state = self.state.lock().ok()?;
        state.chunks.get(key).cloned()
    }

    /// Caches a chunk, evicting the least recently used ones until under the budget; a chunk
    /// larger than the whole budget is not kept.
    pub(crate) fn put(&self, key: ChunkKey, chunk: Arc<Vec<u8>>) {
        let size = chunk.len();
        if size > self.budget {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if let Some(old) = state.chunks.put(key, chunk) {
            state.bytes -= old.len();
        }
        state.bytes += size;
        while state.bytes > self.budget {
            match state.chunks.pop_lru() {
                Some((_, c)) => state.bytes -= c.len(),
                None => break,
            }
        }
    }

    /// Bytes held now.
    pub(crate) fn bytes(&self) -> usize {
        self.state.lock().map_or(0, |s| s.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_to_its_budget_evicting_least_recent() {
        let cache = ChunkCache::new(10);
        cache.put((0, vec![0]), Arc::new(vec![0; 4]));
        cache.put((0, vec![1]), Arc::new(vec![1; 4]));
        assert!(cache.get(&(0, vec![0])).is_some()); // 0 is now the most recent
        cache.put((0, vec![2]), Arc::new(vec![2; 4]));
        assert_eq!(cache.bytes(), 8);
        assert!(cache.get(&(0, vec![1])).is_none());
        assert!(cache.get(&(0, vec![0])).is_some());
        cache.put((1, vec![0]), Arc::new(vec![9; 11]));
        assert!(cache.get(&(1, vec![0])).is_none());
        assert_eq!(cache.bytes(), 8);
    }
}

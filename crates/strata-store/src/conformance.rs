//! The conformance suite every backend runs (feature `conformance`).
//!
//! Each function exercises one behaviour users depend on and panics with a message naming the
//! backend and the failed expectation. Every function works under its own key prefix
//! (`conformance/<test>/`), so all of them can share one store. A backend's test calls
//! [`run_all`] (or single functions):
//!
//! ```no_run
//! # async fn t() {
//! let store = std::sync::Arc::new(strata_store::ObjectStoreBackend::memory());
//! strata_store::conformance::run_all(store, strata_store::conformance::Size::Full).await;
//! # }
//! ```

#![allow(clippy::missing_panics_doc)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::{
    ByteRange, DynStore, Error, ListableStore, ReadableStore, StoreExt, StoreKey, WritableStoreExt,
};

/// How large the streaming test is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// 64 MiB in 8 MiB parts.
    Full,
    /// 12 MiB in 3 MiB parts (slow backends, quick runs).
    Small,
}

fn key(s: &str) -> StoreKey {
    match StoreKey::new(s) {
        Ok(k) => k,
        Err(e) => panic!("test key {s:?} rejected: {e}"),
    }
}

fn ok<T>(what: &str, store: &DynStore, r: crate::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{store:?}: {what} failed: {e}"),
    }
}

/// Deterministic, position-dependent test bytes (so shifted or reordered data is detected).
#[must_use]
pub fn pattern(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

/// Runs every test of the suite.
pub async fn run_all(store: DynStore, size: Size) {
    put_get(&store).await;
    ranged(&store).await;
    list(&store).await;
    delete(&store).await;
    usage(&store).await;
    bad_keys(&store).await;
    streaming(&store, size).await;
    stream_abort_and_drop(&store).await;
    atomic_visibility(&store).await;
    concurrent_writers(&store).await;
}

/// put, get, overwrite, size, empty objects, missing keys.
pub async fn put_get(store: &DynStore) {
    let k = key("conformance/put_get/a/b.bin");
    let v = pattern(1, 100_003);
    ok("put", store, store.put(&k, v.clone()).await);
    assert_eq!(
        ok("get", store, store.get(&k).await),
        v,
        "{store:?}: get returns what put stored"
    );
    assert_eq!(
        ok("size", store, store.size(&k).await),
        100_003,
        "{store:?}: size"
    );
    let v2 = pattern(2, 17);
    ok("overwrite", store, store.put(&k, v2.clone()).await);
    assert_eq!(
        ok("get", store, store.get(&k).await),
        v2,
        "{store:?}: overwrite replaces"
    );
    let empty = key("conformance/put_get/empty");
    ok("put empty", store, store.put(&empty, Bytes::new()).await);
    assert!(
        ok("get empty", store, store.get(&empty).await).is_empty(),
        "{store:?}: empty object"
    );
    assert_eq!(ok("size empty", store, store.size(&empty).await), 0);
    let missing = key("conformance/put_get/missing");
    match store.get(&missing).await {
        Err(e @ Error::NotFound { .. }) => {
            assert!(
                e.to_string().contains("conformance/put_get/missing"),
                "{store:?}: NotFound names the key: {e}"
            );
        }
        other => panic!("{store:?}: get of a missing key must be NotFound, got {other:?}"),
    }
    assert!(
        matches!(store.size(&missing).await, Err(Error::NotFound { .. })),
        "{store:?}: size of missing key"
    );
    assert_eq!(ok("get_opt", store, store.get_opt(&missing).await), None);
    assert!(!ok("exists", store, store.exists(&missing).await));
    assert!(ok("exists", store, store.exists(&k).await));
    // A prefix of other keys is not an object.
    assert!(
        matches!(
            store.get(&key("conformance/put_get/a")).await,
            Err(Error::NotFound { .. })
        ),
        "{store:?}: a prefix is not an object"
    );
}

/// Ranged reads: bounded, open, suffix, edge cases and errors.
pub async fn ranged(store: &DynStore) {
    let k = key("conformance/ranged/obj");
    let v = pattern(3, 10_000);
    ok("put", store, store.put(&k, v.clone()).await);
    let cases: [(ByteRange, std::ops::Range<usize>); 7] = [
        ((0..10).into(), 0..10),
        ((1234..5678).into(), 1234..5678),
        ((9990..10_000).into(), 9990..10_000),
        (ByteRange::From(9000), 9000..10_000),
        (ByteRange::Suffix(16), 9984..10_000),
        (ByteRange::Suffix(20_000), 0..10_000),
        ((10_000..10_000).into(), 10_000..10_000),
    ];
    for (r, want) in cases {
        let got = ok("get_range", store, store.get_range(&k, r.clone()).await);
        assert_eq!(got, v.slice(want), "{store:?}: range {r}");
    }
    for r in [
        ByteRange::Bounded(9_000..10_001),
        ByteRange::Bounded(20_000..20_010),
        ByteRange::From(10_001),
    ] {
        match store.get_range(&k, r.clone()).await {
            Err(e @ Error::InvalidRange { .. }) => {
                assert!(
                    e.to_string().contains("conformance/ranged/obj"),
                    "{store:?}: error names the key: {e}"
                );
            }
            other => {
                panic!("{store:?}: range {r} beyond the object must be InvalidRange, got {other:?}")
            }
        }
    }
    assert!(
        matches!(
            store
                .get_range(&key("conformance/ranged/missing"), (0..1).into())
                .await,
            Err(Error::NotFound { .. })
        ),
        "{store:?}: ranged read of a missing key"
    );
    // The blocking read, where the backend has one, gives the same bytes and the same errors.
    if let Some(got) = store.get_range_blocking(&k, (1234..5678).into()) {
        let got = ok("get_range_blocking", store, got);
        assert_eq!(got, v.slice(1234..5678), "{store:?}: blocking range");
        assert!(
            matches!(
                store.get_range_blocking(&k, ByteRange::From(10_001)),
                Some(Err(Error::InvalidRange { .. }))
            ),
            "{store:?}: blocking range beyond the object"
        );
        assert!(
            matches!(
                store.get_range_blocking(&key("conformance/ranged/missing"), (0..1).into()),
                Some(Err(Error::NotFound { .. }))
            ),
            "{store:?}: blocking read of a missing key"
        );
    }
    opened(store, &k, &v).await;
    assert!(
        matches!(
            store.open_blocking(&key("conformance/ranged/missing")),
            None | Some(Err(Error::NotFound { .. }))
        ),
        "{store:?}: opening a missing key"
    );
    let parts = ok(
        "get_ranges",
        store,
        store
            .get_ranges(&k, &[(0..2).into(), ByteRange::Suffix(2)])
            .await,
    );
    assert_eq!(
        parts,
        vec![v.slice(0..2), v.slice(9998..)],
        "{store:?}: get_ranges"
    );
}

/// An object opened for reading, where the backend opens objects: its head is the store's,
/// ranges equal the object's, a range beyond it is [`Error::InvalidRange`].
async fn opened<S: ReadableStore + ?Sized>(store: &S, k: &StoreKey, v: &Bytes) {
    let Some(reader) = store.open_blocking(k) else {
        return;
    };
    let reader = reader.unwrap_or_else(|e| panic!("{store:?}: open {k}: {e}"));
    let head = store
        .head(k)
        .await
        .unwrap_or_else(|e| panic!("{store:?}: head {k}: {e}"));
    assert_eq!(*reader.head(), head, "{store:?}: head of the opened {k}");
    let n = v.len() as u64;
    for r in [0..n, n / 3..n / 2, n.saturating_sub(1)..n, n / 2..n / 2] {
        let got = reader
            .read_blocking(r.clone())
            .unwrap_or_else(|e| panic!("{store:?}: opened {k}: read {r:?}: {e}"));
        assert_eq!(
            &got[..],
            &v[r.start as usize..r.end as usize],
            "{store:?}: opened {k}: read {r:?}"
        );
    }
    assert!(
        matches!(
            reader.read_blocking(n.saturating_sub(1)..n + 1),
            Err(Error::InvalidRange { .. })
        ),
        "{store:?}: opened {k}: a read beyond the object"
    );
}

/// Listing: recursive, prefix is segment-wise, sorted, sizes, missing prefix.
pub async fn list(store: &DynStore) {
    let base = "conformance/list";
    let keys = ["a/x", "a/y/z", "ab/x", "b", "a/y/w"];
    for (i, k) in keys.iter().enumerate() {
        ok(
            "put",
            store,
            store
                .put(&key(&format!("{base}/{k}")), pattern(i as u64, i * 10))
                .await,
        );
    }
    let all = ok("list", store, store.list(Some(&key(base))).await);
    let names: Vec<&str> = all.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        names,
        [
            "conformance/list/a/x",
            "conformance/list/a/y/w",
            "conformance/list/a/y/z",
            "conformance/list/ab/x",
            "conformance/list/b"
        ],
        "{store:?}: list is recursive and sorted"
    );
    let sizes: Vec<u64> = all.iter().map(|m| m.size).collect();
    assert_eq!(sizes, [0, 40, 10, 20, 30], "{store:?}: list sizes");
    let a = ok(
        "list",
        store,
        store.list(Some(&key(&format!("{base}/a")))).await,
    );
    let names: Vec<&str> = a.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        names,
        [
            "conformance/list/a/x",
            "conformance/list/a/y/w",
            "conformance/list/a/y/z"
        ],
        "{store:?}: prefix 'a' matches by segment, not 'ab'"
    );
    assert!(
        ok(
            "list",
            store,
            store.list(Some(&key("conformance/list/none"))).await
        )
        .is_empty(),
        "{store:?}: missing prefix lists nothing"
    );
    assert!(
        ok(
            "list",
            store,
            store.list(Some(&key("conformance/list/b"))).await
        )
        .is_empty(),
        "{store:?}: an object is not a prefix of itself"
    );
    let whole = ok("list", store, store.list(None).await);
    assert!(
        whole
            .iter()
            .any(|m| m.key.as_str() == "conformance/list/a/y/z"),
        "{store:?}: list(None) lists everything"
    );
}

/// Delete: removes, is idempotent, leaves siblings.
pub async fn delete(store: &DynStore) {
    let k = key("conformance/delete/d/x");
    let sib = key("conformance/delete/d2/y");
    ok("put", store, store.put(&k, pattern(5, 10)).await);
    ok("put", store, store.put(&sib, pattern(6, 10)).await);
    ok("delete", store, store.delete(&k).await);
    assert!(
        matches!(store.get(&k).await, Err(Error::NotFound { .. })),
        "{store:?}: deleted object is gone"
    );
    ok("delete missing", store, store.delete(&k).await);
    assert_eq!(
        ok("get sibling", store, store.get(&sib).await),
        pattern(6, 10),
        "{store:?}: sibling intact"
    );
    let listed = ok(
        "list",
        store,
        store.list(Some(&key("conformance/delete"))).await,
    );
    assert_eq!(
        listed.len(),
        1,
        "{store:?}: only the sibling is listed: {listed:?}"
    );
    // delete_prefix removes a subtree, segment-wise.
    for k in ["tree/a", "tree/b/c", "treex"] {
        ok(
            "put",
            store,
            store
                .put(&key(&format!("conformance/delete/{k}")), pattern(8, 5))
                .await,
        );
    }
    let n = ok(
        "delete_prefix",
        store,
        store
            .delete_prefix(Some(&key("conformance/delete/tree")))
            .await,
    );
    assert_eq!(
        n, 2,
        "{store:?}: delete_prefix removes the two objects under tree/"
    );
    assert!(
        ok(
            "list",
            store,
            store.list(Some(&key("conformance/delete/tree"))).await
        )
        .is_empty()
    );
    assert!(
        ok(
            "exists",
            store,
            store.exists(&key("conformance/delete/treex")).await
        ),
        "{store:?}: 'treex' is not under 'tree'"
    );
    ok(
        "delete",
        store,
        store.delete(&key("conformance/delete/treex")).await,
    );
    // The key can be written again.
    ok("put again", store, store.put(&k, pattern(7, 3)).await);
    assert_eq!(ok("get", store, store.get(&k).await), pattern(7, 3));
}

/// Usage: objects and bytes under a prefix.
pub async fn usage(store: &DynStore) {
    for i in 0..3u64 {
        ok(
            "put",
            store,
            store
                .put(&key(&format!("conformance/usage/s/{i}")), pattern(i, 1000))
                .await,
        );
    }
    let u = ok(
        "usage",
        store,
        store.usage(Some(&key("conformance/usage/s"))).await,
    );
    assert_eq!(
        (u.objects, u.bytes),
        (3, 3000),
        "{store:?}: usage counts objects and bytes"
    );
    if let Some(inodes) = u.inodes {
        assert_eq!(inodes, 4, "{store:?}: 3 files + their directory");
    }
}

/// Keys that must be rejected before they reach any backend.
pub async fn bad_keys(store: &DynStore) {
    for bad in [
        "",
        "/etc/passwd",
        "../escape",
        "a/../../b",
        "a//b",
        "a/",
        "nul\0x",
        "./a",
        "a\\b",
    ] {
        match StoreKey::new(bad) {
            Err(e @ Error::InvalidKey { .. }) => {
                assert!(e.to_string().contains("invalid store key"), "{e}");
            }
            other => panic!("key {bad:?} must be rejected, got {other:?}"),
        }
    }
    // Nothing escaped into the store.
    let listed = ok("list", store, store.list(None).await);
    assert!(
        listed.iter().all(|m| !m.key.as_str().contains("escape")),
        "{store:?}: no bad key was stored"
    );
}

/// A large object written in parts; invisible until complete; ranged reads across parts.
pub async fn streaming(store: &DynStore, size: Size) {
    let (part, parts) = match size {
        Size::Full => (8 << 20, 8),
        Size::Small => (3 << 20, 4),
    };
    let k = key("conformance/streaming/large.bin");
    let mut s = ok("put_stream", store, store.put_stream(&k).await);
    let mut expected = Vec::with_capacity(part * parts);
    for i in 0..parts {
        let chunk = pattern(100 + i as u64, part);
        expected.extend_from_slice(&chunk);
        ok("write", store, s.write(chunk).await);
        if i == parts / 2 {
            assert!(
                !ok("exists", store, store.exists(&k).await),
                "{store:?}: object visible before complete"
            );
            let listed = ok(
                "list",
                store,
                store.list(Some(&key("conformance/streaming"))).await,
            );
            assert!(
                listed.is_empty(),
                "{store:?}: in-flight write listed: {listed:?}"
            );
        }
    }
    let n = ok("complete", store, s.complete().await);
    assert_eq!(
        n,
        (part * parts) as u64,
        "{store:?}: complete reports the size"
    );
    assert_eq!(ok("size", store, store.size(&k).await), n);
    let got = ok("get", store, store.get(&k).await);
    assert!(
        got == expected[..],
        "{store:?}: streamed object differs from what was written"
    );
    let (a, b) = ((part - 100) as u64, (part + 100) as u64);
    let mid = ok("get_range", store, store.get_range(&k, (a..b).into()).await);
    assert_eq!(
        &mid[..],
        &expected[part - 100..part + 100],
        "{store:?}: range across a part boundary"
    );
    let listed = ok(
        "list",
        store,
        store.list(Some(&key("conformance/streaming"))).await,
    );
    assert_eq!(
        listed.len(),
        1,
        "{store:?}: only the object is listed after complete: {listed:?}"
    );
    // Chunks of odd sizes through the helper.
    let k2 = key("conformance/streaming/odd.bin");
    let chunks: Vec<Bytes> = (0..5)
        .map(|i| pattern(200 + i, 1 + 777 * i as usize))
        .collect();
    let all: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    ok("put_chunks", store, store.put_chunks(&k2, chunks).await);
    assert_eq!(
        &ok("get", store, store.get(&k2).await)[..],
        &all[..],
        "{store:?}: odd chunk sizes"
    );
}

/// Aborted and dropped streams publish nothing and keep the previous object.
pub async fn stream_abort_and_drop(store: &DynStore) {
    let k = key("conformance/abort/x");
    ok("put", store, store.put(&k, pattern(9, 100)).await);
    let mut s = ok("put_stream", store, store.put_stream(&k).await);
    ok("write", store, s.write(pattern(10, 6 << 20)).await);
    ok("abort", store, s.abort().await);
    assert_eq!(
        ok("get", store, store.get(&k).await),
        pattern(9, 100),
        "{store:?}: abort keeps the old object"
    );
    let mut s = ok("put_stream", store, store.put_stream(&k).await);
    ok("write", store, s.write(pattern(11, 1000)).await);
    drop(s);
    assert_eq!(
        ok("get", store, store.get(&k).await),
        pattern(9, 100),
        "{store:?}: drop keeps the old object"
    );
    let fresh = key("conformance/abort/never");
    let mut s = ok("put_stream", store, store.put_stream(&fresh).await);
    ok("write", store, s.write(pattern(12, 10)).await);
    ok("abort", store, s.abort().await);
    assert!(
        !ok("exists", store, store.exists(&fresh).await),
        "{store:?}: aborted object must not exist"
    );
    let listed = ok(
        "list",
        store,
        store.list(Some(&key("conformance/abort"))).await,
    );
    assert_eq!(
        listed.len(),
        1,
        "{store:?}: no leftovers listed: {listed:?}"
    );
}

/// A reader racing a writer that keeps replacing an object sees only whole objects.
pub async fn atomic_visibility(store: &DynStore) {
    let k = key("conformance/atomic/obj");
    let a = Bytes::from(vec![0xAA; 3 << 20]);
    let b = Bytes::from(vec![0xBB; (2 << 20) + 7]);
    ok("put", store, store.put(&k, a.clone()).await);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, k, a, b, stop) = (
            Arc::clone(store),
            k.clone(),
            a.clone(),
            b.clone(),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            for i in 0..24 {
                let v = if i % 2 == 0 { b.clone() } else { a.clone() };
                if i % 3 == 0 {
                    // Streaming writes too, in two chunks.
                    let mid = v.len() / 2;
                    store
                        .put_chunks(&k, [v.slice(..mid), v.slice(mid..)])
                        .await?;
                } else {
                    store.put(&k, v).await?;
                }
            }
            stop.store(true, Ordering::SeqCst);
            Ok::<_, Error>(())
        })
    };
    let mut reads = 0u32;
    let mut seen = [false; 2];
    // At least one read, then as many as the writer leaves time for.
    while reads == 0 || (!stop.load(Ordering::SeqCst) && reads < 10_000) {
        let got = ok("get during writes", store, store.get(&k).await);
        if got == a {
            seen[0] = true;
        } else if got == b {
            seen[1] = true;
        } else {
            panic!(
                "{store:?}: reader saw a partial or mixed object of {} bytes",
                got.len()
            );
        }
        reads += 1;
        tokio::task::yield_now().await;
    }
    match writer.await {
        Ok(r) => ok("writer", store, r),
        Err(e) => panic!("{store:?}: writer task failed: {e}"),
    }
    assert!(reads > 0, "{store:?}: the reader ran");
    let last = ok("get", store, store.get(&k).await);
    assert!(last == a, "{store:?}: the last write wins");
    let _ = seen;
}

/// Many writers to different keys at once; every object reads back intact.
pub async fn concurrent_writers(store: &DynStore) {
    let mut tasks = Vec::new();
    for i in 0..16u64 {
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            let k = key(&format!("conformance/concurrent/{}/obj-{i}", i % 4));
            let v = pattern(1000 + i, (1 << 20) + i as usize);
            if i % 2 == 0 {
                store.put(&k, v.clone()).await?;
            } else {
                store
                    .put_chunks(&k, [v.slice(..1000), v.slice(1000..)])
                    .await?;
            }
            Ok::<_, Error>((k, v))
        }));
    }
    let mut written = Vec::new();
    for t in tasks {
        match t.await {
            Ok(r) => written.push(ok("concurrent put", store, r)),
            Err(e) => panic!("{store:?}: writer task failed: {e}"),
        }
    }
    for (k, v) in &written {
        assert!(
            ok("get", store, store.get(k).await) == *v,
            "{store:?}: {k} intact after concurrent writes"
        );
    }
    let listed = ok(
        "list",
        store,
        store.list(Some(&key("conformance/concurrent"))).await,
    );
    assert_eq!(listed.len(), 16, "{store:?}: all 16 objects listed");
}

/// Objects for read-only backends (archives): write them with the backend's own writer, then
/// check them with [`read_only`]. Includes an empty object and one of several MiB.
#[must_use]
pub fn fixture() -> Vec<(StoreKey, Bytes)> {
    vec![
        (
            key("zarr.json"),
            Bytes::from_static(br#"{"zarr_format":3,"node_type":"group"}"#),
        ),
        (
            key("0/zarr.json"),
            Bytes::from_static(br#"{"zarr_format":3,"node_type":"array"}"#),
        ),
        (key("0/c/0/0/0"), pattern(300, 100_000)),
        (key("0/c/0/0/1"), pattern(301, (5 << 20) + 3)),
        (key("0/c/0/1/0"), Bytes::new()),
        (key("labels/a b/x"), pattern(302, 10)),
    ]
}

/// Checks a read-only store holding exactly [`fixture`]: gets, sizes, ranges, listing,
/// missing keys.
pub async fn read_only<S: ReadableStore + ListableStore + std::fmt::Debug + ?Sized>(
    store: &S,
    fixture: &[(StoreKey, Bytes)],
) {
    for (k, v) in fixture {
        let got = store
            .get(k)
            .await
            .unwrap_or_else(|e| panic!("{store:?}: get {k}: {e}"));
        assert!(
            got == *v,
            "{store:?}: {k} differs ({} vs {} bytes)",
            got.len(),
            v.len()
        );
        assert_eq!(
            store.size(k).await.ok(),
            Some(v.len() as u64),
            "{store:?}: size of {k}"
        );
        let n = v.len() as u64;
        for r in [
            ByteRange::Bounded(n / 3..n / 2),
            ByteRange::From(n / 2),
            ByteRange::Suffix(7),
        ] {
            let want = r.resolve(k, n).unwrap_or_else(|e| panic!("{e}"));
            let got = store
                .get_range(k, r.clone())
                .await
                .unwrap_or_else(|e| panic!("{store:?}: range {r} of {k}: {e}"));
            assert_eq!(
                &got[..],
                &v[want.start as usize..want.end as usize],
                "{store:?}: range {r} of {k}"
            );
            if let Some(blocking) = store.get_range_blocking(k, r.clone()) {
                let blocking = blocking
                    .unwrap_or_else(|e| panic!("{store:?}: blocking range {r} of {k}: {e}"));
                assert_eq!(blocking, got, "{store:?}: blocking range {r} of {k}");
            }
        }
        opened(store, k, v).await;
        assert!(
            matches!(
                store.get_range(k, ByteRange::Bounded(0..n + 1)).await,
                Err(Error::InvalidRange { .. })
            ),
            "{store:?}: range past the end of {k}"
        );
    }
    let mut want: Vec<&str> = fixture.iter().map(|(k, _)| k.as_str()).collect();
    want.sort_unstable();
    let listed = store
        .list(None)
        .await
        .unwrap_or_else(|e| panic!("{store:?}: list: {e}"));
    let got: Vec<&str> = listed.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(got, want, "{store:?}: list(None)");
    let sub = store
        .list(Some(&key("0/c")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sub.len(), 3, "{store:?}: list(0/c): {sub:?}");
    assert!(
        matches!(
            store.get(&key("nope/zarr.json")).await,
            Err(Error::NotFound { .. })
        ),
        "{store:?}: missing key"
    );
    assert!(
        matches!(store.get(&key("0/c")).await, Err(Error::NotFound { .. })),
        "{store:?}: a prefix is not an object"
    );
    let u = store
        .usage(Some(&key("0")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(u.objects, 4, "{store:?}: usage(0)");
}

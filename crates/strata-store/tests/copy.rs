//! The shared ranged copy and SHA-256 of an object.

use strata_store::conformance::pattern;
use strata_store::sha2::{Digest, Sha256};
use strata_store::{
    Bytes, Error, ObjectStoreBackend, ReadableStore, StoreExt, StoreKey, WritableStore,
    copy_object, sha256_object, sha256_object_ranged,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn k(s: &str) -> StoreKey {
    StoreKey::new(s).unwrap_or_else(|e| panic!("{e}"))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_of_objects_small_large_and_missing() -> TestResult {
    let mem = ObjectStoreBackend::memory();
    mem.put(&k("abc"), Bytes::from_static(b"abc")).await?;
    assert_eq!(
        sha256_object(&mem, &k("abc")).await?,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    mem.put(&k("empty"), Bytes::new()).await?;
    assert_eq!(
        sha256_object(&mem, &k("empty")).await?,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // Larger than a piece: read in ranges, same digest as the whole.
    let big = pattern(1, (3 << 20) + 17);
    mem.put(&k("big"), big.clone()).await?;
    let want = hex(&Sha256::digest(&big));
    assert_eq!(sha256_object(&mem, &k("big")).await?, want);
    let (got, n) = sha256_object_ranged(&mem, &k("big"), big.len() as u64, 100_000).await?;
    assert_eq!((got, n), (want, big.len() as u64));
    let err = sha256_object(&mem, &k("none")).await.err();
    assert!(matches!(err, Some(Error::NotFound { .. })), "{err:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_in_ranges_hashing_along() -> TestResult {
    let (src, dst) = (ObjectStoreBackend::memory(), ObjectStoreBackend::memory());
    let v = pattern(2, (2 << 20) + 1);
    src.put(&k("a"), v.clone()).await?;
    let mut s = dst.put_stream(&k("b")).await?;
    let mut h = Sha256::new();
    let n = copy_object(
        &src,
        &k("a"),
        v.len() as u64,
        s.as_mut(),
        1 << 20,
        Some(&mut h),
    )
    .await?;
    s.complete().await?;
    assert_eq!(n, v.len() as u64);
    assert_eq!(dst.get(&k("b")).await?, v);
    assert_eq!(hex(&h.finalize()), hex(&Sha256::digest(&v)));
    // Asking for more than the object holds is an error, not a short copy.
    let mut s = dst.put_stream(&k("c")).await?;
    let err = copy_object(&src, &k("a"), v.len() as u64 + 5, s.as_mut(), 1 << 20, None)
        .await
        .err();
    assert!(matches!(err, Some(Error::InvalidRange { .. })), "{err:?}");
    s.abort().await?;
    assert!(!dst.exists(&k("c")).await?);
    Ok(())
}

//! Single-file OME-Zarr (.ozx): written by streaming into POSIX and S3, read back with
//! ranged reads, cross-checked with the `zip` crate, zarrs through it, damaged archives.

mod common;

use std::io::Read;
use std::sync::Arc;

use strata_store::conformance::{self, fixture, pattern};
use strata_store::ozx::{self, OzxOptions, OzxStore, OzxWriter};
use strata_store::zarr::ZarrsStorage;
use strata_store::{
    Bytes, DynReadableStore, Error, ListableStore, ObjectStoreBackend, PosixStore, ReadableStore,
    S3Options, StoreExt, StoreKey, WritableStore,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn k(s: &str) -> StoreKey {
    StoreKey::new(s).unwrap_or_else(|e| panic!("{e}"))
}

/// Writes the fixture the way a metadata-last converter would: data first (the large
/// object streamed), then `zarr.json` documents.
async fn write_fixture(dst: &dyn WritableStore, archive: &StoreKey) -> Result<u64, Error> {
    let w = OzxWriter::create(dst, archive, OzxOptions::default()).await?;
    let fx = fixture();
    // Root metadata first (goes to the start of the file), a placeholder for 0/zarr.json.
    w.put(&fx[0].0, fx[0].1.clone()).await?;
    w.put(&fx[1].0, Bytes::from_static(b"placeholder")).await?;
    for (key, v) in &fx[2..] {
        if v.len() > 1 << 20 {
            let mut s = w.put_stream(key).await?;
            for piece in v.chunks(1 << 20) {
                s.write(Bytes::copy_from_slice(piece)).await?;
            }
            s.complete().await?;
        } else {
            w.put(key, v.clone()).await?;
        }
    }
    // A stream that is dropped publishes nothing.
    let mut s = w.put_stream(&k("0/c/9/9/9")).await?;
    s.write(Bytes::from_static(b"lost")).await?;
    drop(s);
    // Metadata last: replaces the placeholder, held until finish.
    w.put(&fx[1].0, fx[1].1.clone()).await?;
    // A deleted entry disappears from the directory.
    w.put(&k("tmp/x"), Bytes::from_static(b"x")).await?;
    w.delete(&k("tmp/x")).await?;
    w.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ozx_on_posix_roundtrip_and_zip_crate_agrees() -> TestResult {
    let dir = tempfile::tempdir()?;
    let posix = Arc::new(PosixStore::open(dir.path())?);
    let archive = k("sub-01/micr/sub-01_sample-1_BF.ozx");
    let size = write_fixture(posix.as_ref(), &archive).await?;
    assert_eq!(posix.size(&archive).await?, size);
    // One inode for the whole hierarchy (plus its directories).
    assert_eq!(posix.list(None).await?.len(), 1);

    let store = OzxStore::open(posix.clone() as DynReadableStore, archive.clone()).await?;
    assert_eq!(store.comment(), r#"{"ome":{"version":"0.5"}}"#);
    conformance::read_only(&store, &fixture()).await;

    // Independent reader: the zip crate.
    let raw = std::fs::read(posix.path_of(&archive))?;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(raw.clone()))?;
    assert_eq!(z.comment(), br#"{"ome":{"version":"0.5"}}"#);
    let mut names = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i)?;
        assert_eq!(f.compression(), zip::CompressionMethod::Stored);
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?; // checks the CRC
        let want = fixture()
            .into_iter()
            .find(|(key, _)| key.as_str() == f.name())
            .map(|(_, v)| v);
        assert_eq!(Some(Bytes::from(buf)), want, "{}", f.name());
        names.push(f.name().to_owned());
    }
    // Central directory: root zarr.json first, then other zarr.json breadth-first.
    assert_eq!(names[..2], ["zarr.json", "0/zarr.json"]);
    assert_eq!(names.len(), fixture().len());
    // File order: the root zarr.json is the first entry of the file.
    assert_eq!(&raw[..4], b"PK\x03\x04");
    assert_eq!(&raw[30..39], b"zarr.json");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pack_puts_metadata_first_in_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let posix = Arc::new(PosixStore::open(dir.path())?);
    for (key, v) in fixture() {
        posix.put(&k(&format!("img.ome.zarr/{key}")), v).await?;
    }
    let archive = k("img.ozx");
    ozx::pack(
        posix.as_ref(),
        Some(&k("img.ome.zarr")),
        posix.as_ref(),
        &archive,
        OzxOptions::default(),
    )
    .await?;
    let raw = std::fs::read(posix.path_of(&archive))?;
    // The first two local headers are the zarr.json documents, root first.
    assert_eq!(&raw[30..39], b"zarr.json");
    let first_len = 30 + 9 + 20 + fixture()[0].1.len();
    assert_eq!(&raw[first_len + 30..first_len + 41], b"0/zarr.json");
    let store = OzxStore::open(posix as DynReadableStore, archive).await?;
    conformance::read_only(&store, &fixture()).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ozx_on_s3_streams_with_multipart_and_reads_ranges() -> TestResult {
    let Some(endpoint) = common::s3_endpoint() else {
        return Ok(());
    };
    let bucket = common::unique("ozx");
    common::create_bucket(&endpoint, &bucket)?;
    let s3 = Arc::new(ObjectStoreBackend::s3(&S3Options::from_env(&bucket))?);
    let archive = k("sections/s0001.ozx");
    write_fixture(s3.as_ref(), &archive).await?;
    let store = OzxStore::open(s3 as DynReadableStore, archive).await?;
    conformance::read_only(&store, &fixture()).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_is_invisible_until_finished() -> TestResult {
    let mem = Arc::new(ObjectStoreBackend::memory());
    let archive = k("a.ozx");
    let w = OzxWriter::create(mem.as_ref(), &archive, OzxOptions::default()).await?;
    w.put(&k("zarr.json"), Bytes::from_static(b"{}")).await?;
    w.put(&k("c/0"), pattern(1, 6 << 20)).await?;
    assert!(!mem.exists(&archive).await?, "no archive before finish");
    drop(w);
    assert!(
        !mem.exists(&archive).await?,
        "a dropped writer publishes nothing"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zarrs_writes_and_reads_an_array_in_an_ozx() -> TestResult {
    use zarrs::array::{ArrayBuilder, ArraySubset, data_type};
    let dir = tempfile::tempdir()?;
    let posix = Arc::new(PosixStore::open(dir.path())?);
    let archive = k("img.ozx");
    let writer =
        Arc::new(OzxWriter::create(posix.as_ref(), &archive, OzxOptions::default()).await?);
    let storage = Arc::new(ZarrsStorage::new(writer.clone()));
    zarrs::group::GroupBuilder::new()
        .build(storage.clone(), "/")?
        .async_store_metadata()
        .await?;
    let array = ArrayBuilder::new(vec![30, 64, 64], vec![30, 64, 64], data_type::uint8(), 0u8)
        .subchunk_shape(vec![1, 32, 32])
        .build(storage.clone(), "/0")?;
    array.async_store_metadata().await?;
    let data: Vec<u8> = (0..30 * 64 * 64).map(|i| (i % 253) as u8 + 1).collect();
    array.async_store_chunk(&[0, 0, 0], data.clone()).await?;
    drop(array);
    drop(storage);
    let writer = Arc::try_unwrap(writer).map_err(|_| "writer still shared")?;
    writer.finish().await?;

    let store = Arc::new(OzxStore::open(posix as DynReadableStore, archive).await?);
    let keys: Vec<String> = ListableStore::list(store.as_ref(), None)
        .await?
        .into_iter()
        .map(|m| m.key.to_string())
        .collect();
    assert_eq!(keys, ["0/c/0/0/0", "0/zarr.json", "zarr.json"]);
    let reader = Arc::new(ZarrsStorage::new(store));
    let array = zarrs::array::Array::async_open(reader, "/0").await?;
    let patch: Vec<u8> = array
        .async_retrieve_array_subset(&ArraySubset::new_with_ranges(&[7..8, 32..64, 0..32]))
        .await?;
    let want: Vec<u8> = (32..64)
        .flat_map(|y| (0..32).map(move |x| 7 * 64 * 64 + y * 64 + x))
        .map(|i| data[i])
        .collect();
    assert_eq!(patch, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_archives_are_errors_never_panics() -> TestResult {
    let mem = Arc::new(ObjectStoreBackend::memory());
    let good = k("good.ozx");
    let w = OzxWriter::create(mem.as_ref(), &good, OzxOptions::default()).await?;
    w.put(&k("zarr.json"), Bytes::from_static(b"{}")).await?;
    w.put(&k("c/0"), pattern(2, 3000)).await?;
    w.finish().await?;
    let raw = mem.get(&good).await?;

    // Not a zip at all.
    mem.put(&k("junk.ozx"), pattern(3, 5000)).await?;
    let err = OzxStore::open(mem.clone() as DynReadableStore, k("junk.ozx"))
        .await
        .err();
    assert!(matches!(err, Some(Error::Corrupt { .. })), "{err:?}");
    assert!(
        err.map(|e| e.to_string())
            .unwrap_or_default()
            .contains("junk.ozx")
    );

    // Every truncation, and byte flips all over the archive: errors or consistent reads.
    let bad = k("bad.ozx");
    for cut in (0..raw.len()).step_by(7) {
        mem.put(&bad, raw.slice(..cut)).await?;
        assert!(
            OzxStore::open(mem.clone() as DynReadableStore, bad.clone())
                .await
                .is_err(),
            "truncated at {cut}"
        );
    }
    for pos in 0..raw.len() {
        let mut v = raw.to_vec();
        v[pos] ^= 0xFF;
        mem.put(&bad, Bytes::from(v)).await?;
        if let Ok(s) = OzxStore::open(mem.clone() as DynReadableStore, bad.clone()).await {
            for m in ListableStore::list(&s, None).await.unwrap_or_default() {
                let _ = s.get(&m.key).await;
            }
        }
    }
    // Missing archive.
    let err = OzxStore::open(mem as DynReadableStore, k("none.ozx"))
        .await
        .err();
    assert!(matches!(err, Some(Error::NotFound { .. })), "{err:?}");
    Ok(())
}

/// Where the local header of `name` starts in `raw`, with its flags, CRC and the size in
/// its ZIP64 extra field.
fn local_header(raw: &[u8], name: &str) -> Option<(usize, u16, u32, u64)> {
    let n = name.len();
    (0..raw.len().saturating_sub(30 + n + 20)).find_map(|i| {
        let h = &raw[i..];
        let found = h[..4] == *b"PK\x03\x04"
            && usize::from(u16::from_le_bytes([h[26], h[27]])) == n
            && &h[30..30 + n] == name.as_bytes();
        found.then(|| {
            let flags = u16::from_le_bytes([h[6], h[7]]);
            let crc = u32::from_le_bytes([h[14], h[15], h[16], h[17]]);
            let mut s = [0; 8];
            s.copy_from_slice(&h[30 + n + 4..30 + n + 12]);
            (i, flags, crc, u64::from_le_bytes(s))
        })
    })
}

/// Three streams open at once with interleaved writes, `put`s and a `zarr.json` stream
/// meanwhile, from one task (which would deadlock if a stream held the archive). Returns
/// the entries the archive must hold.
async fn write_concurrently(
    dst: &dyn WritableStore,
    archive: &StoreKey,
) -> Result<Vec<(StoreKey, Bytes)>, Error> {
    let w = OzxWriter::create(dst, archive, OzxOptions::default()).await?;
    let root = Bytes::from_static(br#"{"zarr_format":3,"node_type":"group"}"#);
    w.put(&k("zarr.json"), root.clone()).await?;
    // Level 0 (owns the archive), level 1 (larger than the memory limit: spooled to a
    // file), level 2 (small: spooled in memory).
    let (a_key, b_key, c_key) = (k("0/c/0/0/0"), k("1/c/0/0/0"), k("2/c/0/0/0"));
    let a = pattern(10, (3 << 20) + 11);
    let b = pattern(11, (5 << 20) / 2 + 7);
    let c = pattern(12, 70_001);
    let mut sa = w.put_stream(&a_key).await?;
    let mut sb = w.put_stream(&b_key).await?;
    let mut sc = w.put_stream(&c_key).await?;
    let pieces = 7;
    let cut = |v: &Bytes, i: usize| v.slice(v.len() * i / pieces..v.len() * (i + 1) / pieces);
    let meta1 = Bytes::from_static(br#"{"zarr_format":3,"node_type":"array","l":1}"#);
    let extra = pattern(13, 5000);
    for i in 0..pieces {
        sa.write(cut(&a, i)).await?;
        sb.write(cut(&b, i)).await?;
        sc.write(cut(&c, i)).await?;
        if i == 2 {
            // A data put and a metadata put while the streams are open.
            w.put(&k("3/c/0/0/0"), extra.clone()).await?;
            w.put(&k("1/zarr.json"), meta1.clone()).await?;
        }
        if i == 4 {
            let mut m = w.put_stream(&k("0/zarr.json")).await?;
            m.write(Bytes::from_static(br#"{"zarr_format":3,"#)).await?;
            m.write(Bytes::from_static(br#""node_type":"array"}"#))
                .await?;
            m.complete().await?;
        }
    }
    // Completion order: c (waits), a (frees the archive: 3/c/0/0/0 and c follow it), b
    // (appended at once). Then a new stream owns the archive again.
    sc.complete().await?;
    sa.complete().await?;
    sb.complete().await?;
    let d = pattern(14, 123_456);
    let mut sd = w.put_stream(&k("4/c/0/0/0")).await?;
    sd.write(d.clone()).await?;
    sd.complete().await?;
    w.finish().await?;
    Ok(vec![
        (k("zarr.json"), root),
        (
            k("0/zarr.json"),
            Bytes::from_static(br#"{"zarr_format":3,"node_type":"array"}"#),
        ),
        (k("1/zarr.json"), meta1),
        (a_key, a),
        (b_key, b),
        (c_key, c),
        (k("3/c/0/0/0"), extra),
        (k("4/c/0/0/0"), d),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_open_at_once_and_puts_meanwhile() -> TestResult {
    let mem = Arc::new(ObjectStoreBackend::memory());
    let archive = k("multi.ozx");
    let want = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        write_concurrently(mem.as_ref(), &archive),
    )
    .await??;

    // Through OzxStore: every entry exact, nothing else.
    let store = OzxStore::open(mem.clone() as DynReadableStore, archive.clone()).await?;
    let mut listed: Vec<String> = ListableStore::list(&store, None)
        .await?
        .into_iter()
        .map(|m| m.key.to_string())
        .collect();
    let mut names: Vec<String> = want.iter().map(|(key, _)| key.to_string()).collect();
    listed.sort();
    names.sort();
    assert_eq!(listed, names);
    for (key, v) in &want {
        assert_eq!(&store.get(key).await?, v, "{key}");
    }

    // Through the zip crate (which checks every CRC).
    let raw = mem.get(&archive).await?;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(raw.to_vec()))?;
    assert_eq!(z.len(), want.len());
    for i in 0..z.len() {
        let mut f = z.by_index(i)?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        let v = want.iter().find(|(key, _)| key.as_str() == f.name());
        assert_eq!(v.map(|(_, v)| &v[..]), Some(&buf[..]), "{}", f.name());
    }
    assert_eq!(z.by_index(0)?.name(), "zarr.json");

    // File order follows the calls: the owner first, then what waited in completion
    // order, then the later stream; metadata after data at the end.
    let at = |name: &str| local_header(&raw, name).map(|h| h.0);
    let order = [
        "zarr.json",
        "0/c/0/0/0",
        "3/c/0/0/0",
        "2/c/0/0/0",
        "1/c/0/0/0",
        "4/c/0/0/0",
    ];
    let offsets: Vec<Option<usize>> = order.iter().map(|n| at(n)).collect();
    assert!(offsets.iter().all(Option::is_some), "{offsets:?}");
    assert!(offsets.windows(2).all(|p| p[0] < p[1]), "{offsets:?}");
    for meta in ["0/zarr.json", "1/zarr.json"] {
        assert!(at(meta) > at("4/c/0/0/0"), "{meta} is held until finish");
    }
    // The owner's entry has a data descriptor; appended entries carry size and CRC in
    // their local header.
    let descriptor = 1 << 3;
    let (_, flags, _, _) = local_header(&raw, "0/c/0/0/0").ok_or("no header")?;
    assert_ne!(flags & descriptor, 0);
    for (key, v) in &want[4..7] {
        let (_, flags, crc, size) = local_header(&raw, key.as_str()).ok_or("no header")?;
        assert_eq!(flags & descriptor, 0, "{key}");
        assert_eq!(size, v.len() as u64, "{key}");
        assert_eq!(crc, store.crc32(key).ok_or("no crc")?, "{key}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_calls_give_the_same_archive() -> TestResult {
    let (m1, m2) = (ObjectStoreBackend::memory(), ObjectStoreBackend::memory());
    let archive = k("same.ozx");
    write_concurrently(&m1, &archive).await?;
    write_concurrently(&m2, &archive).await?;
    let (a, b) = (m1.get(&archive).await?, m2.get(&archive).await?);
    assert!(
        a == b,
        "two runs differ ({} and {} bytes)",
        a.len(),
        b.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_beyond_its_memory_limit_reads_back_exactly() -> TestResult {
    let dir = tempfile::tempdir()?;
    let posix = Arc::new(PosixStore::open(dir.path())?);
    let archive = k("spool.ozx");
    let limit = 64 << 10;
    let w = OzxWriter::create(
        posix.as_ref(),
        &archive,
        OzxOptions::default().spool_memory(limit),
    )
    .await?;
    let owner = pattern(20, 1000);
    let mut so = w.put_stream(&k("a")).await?;
    so.write(owner.clone()).await?;
    // Exactly at the limit (stays in memory), and far beyond it in uneven pieces (moves
    // to a file part-way, then is read back in 1 MiB pieces).
    let at_limit = pattern(21, limit);
    let big = pattern(22, (5 << 20) + 3);
    let mut s1 = w.put_stream(&k("b")).await?;
    s1.write(at_limit.clone()).await?;
    let mut s2 = w.put_stream(&k("c")).await?;
    let mut off = 0;
    for (i, len) in [10, limit - 20, 30, 3 << 20, 1]
        .into_iter()
        .cycle()
        .enumerate()
    {
        if off == big.len() {
            break;
        }
        let end = (off + len + i).min(big.len());
        s2.write(big.slice(off..end)).await?;
        off = end;
    }
    // A dropped spooled stream and an aborted one publish nothing.
    let mut lost = w.put_stream(&k("lost/1")).await?;
    lost.write(pattern(23, 200_000)).await?;
    drop(lost);
    let mut lost = w.put_stream(&k("lost/2")).await?;
    lost.write(pattern(24, 300)).await?;
    lost.abort().await?;
    assert_eq!(s2.complete().await?, big.len() as u64);
    assert_eq!(s1.complete().await?, limit as u64);
    so.complete().await?;
    w.finish().await?;

    let store = OzxStore::open(posix.clone() as DynReadableStore, archive.clone()).await?;
    let keys: Vec<String> = ListableStore::list(&store, None)
        .await?
        .into_iter()
        .map(|m| m.key.to_string())
        .collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(store.get(&k("a")).await?, owner);
    assert_eq!(store.get(&k("b")).await?, at_limit);
    assert_eq!(store.get(&k("c")).await?, big);
    let raw = std::fs::read(posix.path_of(&archive))?;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(raw))?;
    for name in ["a", "b", "c"] {
        let mut buf = Vec::new();
        z.by_name(name)?.read_to_end(&mut buf)?;
        assert_eq!(buf, store.get(&k(name)).await?, "{name}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_with_a_stream_open_is_an_error() -> TestResult {
    let mem = Arc::new(ObjectStoreBackend::memory());
    let archive = k("open.ozx");
    let w = OzxWriter::create(mem.as_ref(), &archive, OzxOptions::default()).await?;
    let mut done = w.put_stream(&k("c/0")).await?;
    done.write(pattern(30, 100)).await?;
    let mut open = w.put_stream(&k("c/1")).await?;
    open.write(pattern(31, 100)).await?;
    done.complete().await?;
    let err = w.finish().await.err();
    assert!(matches!(err, Some(Error::Unsupported { .. })), "{err:?}");
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("c/1") && msg.contains("open.ozx"), "{msg}");
    assert!(!mem.exists(&archive).await?, "nothing is published");
    drop(open);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_from_many_tasks_at_once() -> TestResult {
    let mem = Arc::new(ObjectStoreBackend::memory());
    let archive = k("tasks.ozx");
    let w = Arc::new(OzxWriter::create(mem.as_ref(), &archive, OzxOptions::default()).await?);
    let mut tasks = Vec::new();
    for t in 0..6_u64 {
        let w = Arc::clone(&w);
        tasks.push(tokio::spawn(async move {
            let data = pattern(40 + t, 300_000 * (t as usize + 1));
            let mut s = w.put_stream(&k(&format!("{t}/c/0"))).await?;
            for piece in data.chunks(100_000) {
                s.write(Bytes::copy_from_slice(piece)).await?;
                tokio::task::yield_now().await;
            }
            s.complete().await?;
            w.put(&k(&format!("{t}/c/1")), pattern(50 + t, 1000))
                .await?;
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        tokio::time::timeout(std::time::Duration::from_secs(120), t).await???;
    }
    let w = Arc::try_unwrap(w).map_err(|_| "writer still shared")?;
    w.finish().await?;
    let store = OzxStore::open(mem as DynReadableStore, archive).await?;
    assert_eq!(ListableStore::list(&store, None).await?.len(), 12);
    for t in 0..6_u64 {
        let want = pattern(40 + t, 300_000 * (t as usize + 1));
        assert_eq!(store.get(&k(&format!("{t}/c/0"))).await?, want);
        assert_eq!(
            store.get(&k(&format!("{t}/c/1"))).await?,
            pattern(50 + t, 1000)
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_owner_frees_the_archive_for_what_waits() -> TestResult {
    let mem = Arc::new(ObjectStoreBackend::memory());
    let archive = k("dropped.ozx");
    let w = OzxWriter::create(mem.as_ref(), &archive, OzxOptions::default()).await?;
    let mut owner = w.put_stream(&k("a")).await?;
    owner.write(pattern(60, 1000)).await?;
    let mut waiting = w.put_stream(&k("b")).await?;
    waiting.write(pattern(61, 2000)).await?;
    waiting.complete().await?;
    w.put(&k("c"), pattern(62, 3000)).await?;
    drop(owner);
    // A new stream owns the archive at once; what waited is appended before it.
    let mut next = w.put_stream(&k("d")).await?;
    next.write(pattern(63, 4000)).await?;
    next.complete().await?;
    w.finish().await?;
    let store = OzxStore::open(mem.clone() as DynReadableStore, archive.clone()).await?;
    let keys: Vec<String> = ListableStore::list(&store, None)
        .await?
        .into_iter()
        .map(|m| m.key.to_string())
        .collect();
    assert_eq!(keys, ["b", "c", "d"]);
    assert_eq!(store.get(&k("b")).await?, pattern(61, 2000));
    assert_eq!(store.get(&k("c")).await?, pattern(62, 3000));
    assert_eq!(store.get(&k("d")).await?, pattern(63, 4000));
    let raw = mem.get(&archive).await?;
    let at = |n: &str| local_header(&raw, n).map(|h| h.0);
    assert!(at("a") < at("b") && at("b") < at("c") && at("c") < at("d"));
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(raw.to_vec()))?;
    for name in ["b", "c", "d"] {
        let mut buf = Vec::new();
        z.by_name(name)?.read_to_end(&mut buf)?;
        assert_eq!(buf, store.get(&k(name)).await?, "{name}");
    }
    Ok(())
}

/// An archive on POSIX is read through one open file: its members opened for reading equal
/// the fixture, and once read, the archive keeps answering from the version whose central
/// directory it loaded when another file is renamed over it (never old offsets into new
/// bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_read_through_the_archive_opened_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let posix = Arc::new(PosixStore::open(dir.path())?);
    let archive = k("x.ozx");
    write_fixture(posix.as_ref(), &archive).await?;
    let store = OzxStore::open(posix.clone() as DynReadableStore, archive.clone()).await?;
    let (key, want) = fixture()
        .into_iter()
        .max_by_key(|(_, v)| v.len())
        .ok_or("a fixture")?;
    let reader = store
        .open_blocking(&key)
        .ok_or("archives on POSIX open members")??;
    assert_eq!(*reader.head(), store.head(&key).await?);
    assert_eq!(reader.read_blocking(0..want.len() as u64)?, want);
    posix.put(&archive, pattern(9, 1 << 20)).await?;
    let n = want.len() as u64;
    assert_eq!(
        reader.read_blocking(n / 2..n)?,
        want.slice(want.len() / 2..)
    );
    let again = store
        .get_range_blocking(&key, (0..n).into())
        .ok_or("a blocking read")??;
    assert_eq!(again, want);
    assert!(matches!(
        store.open_blocking(&k("no/such/member")),
        Some(Err(Error::NotFound { .. }))
    ));
    Ok(())
}

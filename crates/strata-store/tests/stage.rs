//! Staging between tiers: copies verify, interrupted stages resume without copying finished
//! objects again, nothing is lost or doubled; the S3 fault test stops a real server mid-stage.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use strata_store::conformance::pattern;
use strata_store::{
    ByteRange, Bytes, Error, ListableStore, ObjectMeta, ObjectStoreBackend, PosixStore, PutStream,
    ReadableStore, S3Options, StageOptions, StoreKey, StoreUrl, WritableStore, stage, stage_urls,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn k(s: &str) -> StoreKey {
    StoreKey::new(s).unwrap_or_else(|e| panic!("{e}"))
}

/// A small section: metadata, shards (one larger than the piece size), a sidecar.
async fn fill(store: &dyn WritableStore) -> Result<Vec<(String, Bytes)>, Error> {
    let mut objs = vec![
        (
            "sec/zarr.json".to_owned(),
            Bytes::from_static(b"{\"zarr_format\":3}"),
        ),
        ("sec/0/zarr.json".to_owned(), Bytes::from_static(b"{}")),
        ("sec/0/c/0/0/0".to_owned(), pattern(1, (3 << 20) + 5)),
        (
            "sec.json".to_owned(),
            Bytes::from_static(b"{\"PixelSize\":[0.25,0.25]}"),
        ),
    ];
    for i in 0..12 {
        objs.push((
            format!("sec/1/c/0/{i}"),
            pattern(10 + i, 40_000 + i as usize),
        ));
    }
    for (key, v) in &objs {
        store.put(&k(key), v.clone()).await?;
    }
    objs.sort();
    Ok(objs)
}

async fn contents<S: ReadableStore + ListableStore + ?Sized>(
    s: &S,
    prefix: Option<&StoreKey>,
) -> Result<Vec<(String, Bytes)>, Error> {
    let mut out = Vec::new();
    for m in s.list(prefix).await? {
        let rel = match prefix {
            Some(p) => m.key.as_str()[p.as_str().len() + 1..].to_owned(),
            None => m.key.to_string(),
        };
        out.push((rel, s.get(&m.key).await?));
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posix_to_memory_to_posix_verifies_everything() -> TestResult {
    let a = tempfile::tempdir()?;
    let b = tempfile::tempdir()?;
    let src = PosixStore::open(a.path())?;
    let objs = fill(&src).await?;
    let mem = ObjectStoreBackend::memory();
    let opts = StageOptions::default().piece_size(1 << 20).concurrency(4);
    let s1 = stage(&src, None, &mem, Some(&k("tier2/brain01")), &opts).await?;
    assert_eq!(
        (s1.objects, s1.copied, s1.verified, s1.skipped),
        (16, 16, 16, 0)
    );
    assert_eq!(
        s1.bytes,
        objs.iter().map(|(_, v)| v.len() as u64).sum::<u64>()
    );
    let dst = PosixStore::open(b.path())?;
    let s2 = stage(&mem, Some(&k("tier2/brain01")), &dst, None, &opts).await?;
    assert_eq!((s2.objects, s2.copied, s2.verified), (16, 16, 16));
    assert_eq!(contents(&dst, None).await?, objs);
    let json = s2.to_json();
    assert!(
        json.contains("\"objects\":16") && json.contains("\"verified\":16"),
        "{json}"
    );
    // Dry run counts and copies nothing.
    let empty = ObjectStoreBackend::memory();
    let d = stage(
        &src,
        None,
        &empty,
        None,
        &StageOptions::default().dry_run(true),
    )
    .await?;
    assert_eq!((d.objects, d.copied, d.dry_run), (16, 0, true));
    assert!(empty.list(None).await?.is_empty());
    Ok(())
}

/// Fails every write after the first `ok` ones.
#[derive(Debug)]
struct Flaky {
    inner: ObjectStoreBackend,
    ok: usize,
    writes: AtomicUsize,
}

impl Flaky {
    fn check(&self, key: &StoreKey) -> Result<(), Error> {
        if self.writes.fetch_add(1, Ordering::SeqCst) >= self.ok {
            return Err(Error::Backend {
                op: "put",
                key: key.to_string(),
                store: "flaky".into(),
                source: "connection refused".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ReadableStore for Flaky {
    async fn get(&self, key: &StoreKey) -> strata_store::Result<Bytes> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &StoreKey, range: ByteRange) -> strata_store::Result<Bytes> {
        self.inner.get_range(key, range).await
    }
    async fn size(&self, key: &StoreKey) -> strata_store::Result<u64> {
        self.inner.size(key).await
    }
    fn location(&self) -> String {
        self.inner.location()
    }
}

#[async_trait]
impl WritableStore for Flaky {
    async fn put(&self, key: &StoreKey, value: Bytes) -> strata_store::Result<()> {
        self.check(key)?;
        self.inner.put(key, value).await
    }
    async fn put_stream(&self, key: &StoreKey) -> strata_store::Result<Box<dyn PutStream>> {
        self.check(key)?;
        self.inner.put_stream(key).await
    }
    async fn delete(&self, key: &StoreKey) -> strata_store::Result<()> {
        self.inner.delete(key).await
    }
}

#[async_trait]
impl ListableStore for Flaky {
    async fn list(&self, prefix: Option<&StoreKey>) -> strata_store::Result<Vec<ObjectMeta>> {
        self.inner.list(prefix).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_stage_resumes_without_recopying() -> TestResult {
    let a = tempfile::tempdir()?;
    let j = tempfile::tempdir()?;
    let src = PosixStore::open(a.path())?;
    let objs = fill(&src).await?;
    let journal = j.path().join("stage.journal");
    let dst = Flaky {
        inner: ObjectStoreBackend::memory(),
        ok: 7,
        writes: AtomicUsize::new(0),
    };
    let opts = StageOptions::default()
        .journal(&journal)
        .concurrency(1)
        .piece_size(1 << 20);
    let err = stage(&src, None, &dst, None, &opts)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("connection refused") && err.contains("flaky"),
        "{err}"
    );
    let journaled = std::fs::read_to_string(&journal)?.lines().count() - 1;
    assert_eq!(journaled, 7, "the 7 finished objects are journaled");

    // Resume with the store healthy again: only the rest is copied.
    let dst = Flaky {
        inner: dst.inner,
        ok: usize::MAX,
        writes: AtomicUsize::new(0),
    };
    let s = stage(&src, None, &dst, None, &opts).await?;
    assert_eq!((s.objects, s.skipped, s.copied, s.verified), (16, 7, 9, 9));
    assert_eq!(
        dst.writes.load(Ordering::SeqCst),
        9,
        "no finished object written again"
    );
    assert_eq!(contents(&dst, None).await?, objs, "nothing lost or doubled");

    // A journaled object that vanished from the destination is copied again.
    dst.delete(&k("sec.json")).await?;
    let s = stage(&src, None, &dst, None, &opts).await?;
    assert_eq!((s.skipped, s.copied), (15, 1));
    assert_eq!(contents(&dst, None).await?, objs);

    // The journal belongs to this source/destination pair.
    let other = ObjectStoreBackend::memory();
    let err = stage(&src, None, &other, Some(&k("x")), &opts).await.err();
    assert!(matches!(err, Some(Error::Config { .. })), "{err:?}");
    Ok(())
}

#[test]
fn store_urls_parse() -> TestResult {
    assert_eq!(
        "file:///gpfs/fast/ds".parse::<StoreUrl>()?,
        StoreUrl::File("/gpfs/fast/ds".into())
    );
    assert_eq!(
        "/gpfs/x".parse::<StoreUrl>()?,
        StoreUrl::File("/gpfs/x".into())
    );
    assert_eq!(
        "s3://bucket/brains/b01/".parse::<StoreUrl>()?,
        StoreUrl::S3 {
            bucket: "bucket".into(),
            prefix: Some(k("brains/b01"))
        }
    );
    assert_eq!(
        "s3://bucket".parse::<StoreUrl>()?,
        StoreUrl::S3 {
            bucket: "bucket".into(),
            prefix: None
        }
    );
    assert_eq!(
        "zip:///a/b.ozx".parse::<StoreUrl>()?,
        StoreUrl::Zip("/a/b.ozx".into())
    );
    for bad in ["s3://", "gs://x", "zip://", "", "s3://b/../x"] {
        let e = bad
            .parse::<StoreUrl>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!e.is_empty(), "{bad:?} must be rejected");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_to_zip_to_file_through_urls() -> TestResult {
    let a = tempfile::tempdir()?;
    let z = tempfile::tempdir()?;
    let b = tempfile::tempdir()?;
    let src = PosixStore::open(a.path())?;
    let objs = fill(&src).await?;
    let archive = z.path().join("section.ozx");
    let src_url: StoreUrl = format!("file://{}", a.path().display()).parse()?;
    let zip_url: StoreUrl = format!("zip://{}", archive.display()).parse()?;
    let dst_url: StoreUrl = format!("file://{}", b.path().join("out").display()).parse()?;
    let opts = StageOptions::default().piece_size(1 << 20);
    let s = stage_urls(&src_url, &zip_url, &opts).await?;
    assert_eq!((s.objects, s.copied, s.verified), (16, 16, 16));
    assert_eq!(strata_testkit::names(z.path()).len(), 1, "one file");
    let s = stage_urls(&zip_url, &dst_url, &opts).await?;
    assert_eq!((s.objects, s.copied, s.verified), (16, 16, 16));
    assert_eq!(
        contents(&PosixStore::open(b.path().join("out"))?, None).await?,
        objs
    );
    Ok(())
}

struct Moto {
    child: std::process::Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> Option<std::path::PathBuf> {
    let p = std::env::var_os("STRATA_MOTO_SERVER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server")
        });
    p.exists().then_some(p)
}

fn start_moto(bin: &std::path::Path, port: u16) -> Result<Moto, Box<dyn std::error::Error>> {
    let child = std::process::Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let m = Moto { child };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if std::time::Instant::now() > deadline {
            return Err("moto_server did not start".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(m)
}

/// The fault test: a stage to a real S3 server that is stopped in the middle fails with a
/// clear message; after a restart the same stage completes, verifies, and the bucket holds
/// exactly the source objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_server_stopped_mid_stage_then_resumed() -> TestResult {
    let creds = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
    let Some(bin) = moto_binary().filter(|_| creds) else {
        strata_testkit::missing("moto_server or AWS_ACCESS_KEY_ID is missing");
        return Ok(());
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = Arc::new(std::sync::Mutex::new(Some(start_moto(&bin, port)?)));
    common::create_bucket(&endpoint, "fault")?;
    let s3 = ObjectStoreBackend::s3(
        &S3Options::new("fault")
            .endpoint(&endpoint)
            .allow_http(true)
            .region("us-east-1")
            .retries(1, std::time::Duration::from_secs(2)),
    )?;

    let a = tempfile::tempdir()?;
    let j = tempfile::tempdir()?;
    let src = PosixStore::open(a.path())?;
    let objs = fill(&src).await?;
    let done = Arc::new(AtomicUsize::new(0));
    let (d2, srv2) = (Arc::clone(&done), Arc::clone(&server));
    let opts = StageOptions::default()
        .journal(j.path().join("j"))
        .concurrency(2)
        .piece_size(1 << 20)
        .progress(Arc::new(move |_, _| {
            if d2.fetch_add(1, Ordering::SeqCst) + 1 == 5 {
                // Stop the server after 5 objects.
                if let Ok(mut s) = srv2.lock() {
                    s.take();
                }
            }
        }));
    let err = stage(&src, None, &s3, None, &opts)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    eprintln!("stage failed as expected: {err}");
    assert!(
        err.contains("AmazonS3(fault)"),
        "the error names the store: {err}"
    );
    assert!(
        err.contains("error sending request") || err.contains("onnection"),
        "the error says the server is unreachable: {err}"
    );
    assert!(
        done.load(Ordering::SeqCst) < objs.len(),
        "the stage stopped early"
    );

    // Restart (moto keeps nothing: the bucket is new and empty) and run the same stage.
    drop(server.lock().map_err(|_| "lock")?.take());
    let restarted = start_moto(&bin, port)?;
    *server.lock().map_err(|_| "lock")? = Some(restarted);
    common::create_bucket(&endpoint, "fault")?;
    let s = stage(&src, None, &s3, None, &opts).await?;
    assert_eq!(s.objects, 16);
    assert_eq!(s.copied + s.skipped, 16);
    assert_eq!(s.verified, s.copied);
    assert_eq!(contents(&s3, None).await?, objs, "nothing lost or doubled");
    Ok(())
}

//! POSIX backend: the conformance suite plus what only a file system has (symlinks, temp
//! files, inodes, fsync policies).

use std::sync::Arc;

use strata_store::conformance::{self, Size};
use strata_store::{
    Bytes, DynStore, Error, FsyncPolicy, ListableStore, PosixOptions, PosixStore, ReadableStore,
    StoreKey, WritableStore,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_default_options() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: DynStore = Arc::new(PosixStore::open(dir.path())?);
    conformance::run_all(store, Size::Full).await;
    // No temporary file is left behind anywhere.
    let leftovers: Vec<_> = strata_testkit::files(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".strata-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_every_fsync_policy_and_small_buffer() -> TestResult {
    for fsync in [FsyncPolicy::None, FsyncPolicy::FileAndDir] {
        let dir = tempfile::tempdir()?;
        let opts = PosixOptions::default().fsync(fsync).write_buffer(64 << 10);
        let store: DynStore = Arc::new(PosixStore::with_options(dir.path(), opts)?);
        conformance::run_all(store, Size::Small).await;
    }
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_out_of_the_root_are_refused() -> TestResult {
    let outside = tempfile::tempdir()?;
    std::fs::write(outside.path().join("secret"), b"secret")?;
    let dir = tempfile::tempdir()?;
    std::os::unix::fs::symlink(outside.path(), dir.path().join("escape"))?;
    std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("file-link"))?;
    std::fs::create_dir(dir.path().join("inside"))?;
    std::fs::write(dir.path().join("inside/ok"), b"ok")?;
    std::os::unix::fs::symlink(dir.path().join("inside"), dir.path().join("good-link"))?;
    let store = PosixStore::open(dir.path())?;

    for k in ["escape/secret", "file-link"] {
        let key = StoreKey::new(k)?;
        match store.get(&key).await {
            Err(e @ Error::OutsideRoot { .. }) => {
                assert!(e.to_string().contains(k), "error names the key: {e}");
            }
            other => panic!("get {k}: expected OutsideRoot, got {other:?}"),
        }
        assert!(matches!(
            store.size(&key).await,
            Err(Error::OutsideRoot { .. })
        ));
    }
    // Writes through the escaping link fail and create nothing outside.
    let w = StoreKey::new("escape/new")?;
    assert!(matches!(
        store.put(&w, Bytes::from_static(b"x")).await,
        Err(Error::OutsideRoot { .. })
    ));
    assert!(
        !outside.path().join("new").exists(),
        "nothing written outside the root"
    );
    assert!(matches!(
        store.delete(&StoreKey::new("escape/secret")?).await,
        Err(Error::OutsideRoot { .. })
    ));
    assert!(
        outside.path().join("secret").exists(),
        "nothing deleted outside the root"
    );
    assert!(matches!(
        store.list(Some(&StoreKey::new("escape")?)).await,
        Err(Error::OutsideRoot { .. })
    ));
    // Links that stay inside are followed.
    assert_eq!(
        &store.get(&StoreKey::new("good-link/ok")?).await?[..],
        b"ok"
    );
    // Listing the root never reports the escaping links.
    let listed = store.list(None).await?;
    let names: Vec<&str> = listed.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(names, ["inside/ok"], "escaping links are not listed");
    Ok(())
}

#[tokio::test]
async fn temp_files_are_hidden_and_in_the_target_directory() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = PosixStore::open(dir.path())?;
    let key = StoreKey::new("sub-01/micr/x.ome.zarr/0/c/0")?;
    let mut s = store.put_stream(&key).await?;
    s.write(Bytes::from(vec![1u8; 1000])).await?;
    let micr = dir.path().join("sub-01/micr/x.ome.zarr/0/c");
    let names = strata_testkit::names(&micr);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with(".0.strata-tmp-"),
        "hidden temp name beside the target: {names:?}"
    );
    assert!(store.list(None).await?.is_empty(), "temp file not listed");
    s.complete().await?;
    assert_eq!(std::fs::read(store.path_of(&key))?, vec![1u8; 1000]);
    Ok(())
}

#[tokio::test]
async fn usage_counts_inodes_and_delete_prunes_directories() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = PosixStore::open(dir.path())?;
    // 3 files in sec/a/b, 1 in sec: 4 files + dirs sec, a, b = 7 inodes.
    for k in ["sec/a/b/1", "sec/a/b/2", "sec/a/b/3", "sec/zarr.json"] {
        store
            .put(&StoreKey::new(k)?, Bytes::from_static(b"12345"))
            .await?;
    }
    let sec = StoreKey::new("sec")?;
    let u = store.usage(Some(&sec)).await?;
    assert_eq!((u.objects, u.bytes, u.inodes), (4, 20, Some(7)));
    for k in ["sec/a/b/1", "sec/a/b/2", "sec/a/b/3"] {
        store.delete(&StoreKey::new(k)?).await?;
    }
    assert!(
        !dir.path().join("sec/a").exists(),
        "empty directories are pruned"
    );
    let u = store.usage(Some(&sec)).await?;
    assert_eq!((u.objects, u.bytes, u.inodes), (1, 5, Some(2)));
    Ok(())
}

#[tokio::test]
async fn open_reports_missing_root() {
    let err = PosixStore::open("/nonexistent/strata/root")
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(
            |e| e.contains("/nonexistent/strata/root") && e.contains("PosixStore::create")
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_directory_is_not_overwritten_by_an_object() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = PosixStore::open(dir.path())?;
    store
        .put(&StoreKey::new("a/b")?, Bytes::from_static(b"x"))
        .await?;
    let err = store
        .put(&StoreKey::new("a")?, Bytes::from_static(b"y"))
        .await;
    assert!(matches!(err, Err(Error::Io { .. })), "{err:?}");
    assert_eq!(&store.get(&StoreKey::new("a/b")?).await?[..], b"x");
    assert!(store.list(None).await?.len() == 1);
    Ok(())
}

/// An opened file keeps reading the version it opened when a new version is put over its
/// key (a server never mixes versions within one answer); a file truncated under an open
/// reader is an I/O error naming the key, not short data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opened_file_reads_the_version_it_opened() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = PosixStore::open(dir.path())?;
    let key = StoreKey::new("a/b.bin")?;
    store.put(&key, Bytes::from(vec![1u8; 4096])).await?;
    let old = store.open_blocking(&key).ok_or("POSIX opens files")??;
    store.put(&key, Bytes::from(vec![2u8; 8192])).await?;
    assert_eq!(&old.read_blocking(0..4096)?[..], &[1u8; 4096][..]);
    assert_eq!(old.head().size, 4096);
    let new = store.open_blocking(&key).ok_or("POSIX opens files")??;
    assert_eq!(new.head().size, 8192);
    assert_ne!(new.head().version, old.head().version);
    assert_eq!(&new.read_blocking(4000..4100)?[..], &[2u8; 100][..]);

    std::fs::OpenOptions::new()
        .write(true)
        .open(store.path_of(&key))?
        .set_len(100)?;
    match new.read_blocking(0..8192) {
        Err(e @ Error::Io { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("a/b.bin") && text.contains("truncated"),
                "{text}"
            );
        }
        other => panic!("a truncated file must be an I/O error, got {other:?}"),
    }
    let missing = StoreKey::new("a/none.bin")?;
    assert!(matches!(
        store.open_blocking(&missing),
        Some(Err(Error::NotFound { .. }))
    ));
    Ok(())
}

//! Atomic writes, streamed writes and locked updates on a real file system.

use std::io::Write as _;
use std::path::Path;

use strata_fs::{AtomicFile, Durability, TempPath, is_temp_name, update_locked, write_atomic};

/// Names in `dir` that are temporaries.
fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| is_temp_name(n))
        .map(|n| n.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn write_atomic_replaces_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.json");
    write_atomic(&path, b"one").expect("write");
    write_atomic(&path, b"two").expect("replace");
    assert_eq!(std::fs::read(&path).expect("read"), b"two");
    assert!(temps(dir.path()).is_empty());
}

#[test]
fn write_atomic_errors_name_the_path_and_leave_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing/a.json");
    let e = write_atomic(&path, b"x").expect_err("no folder");
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains("missing"), "{e}");
    let e = write_atomic(Path::new("/"), b"x").expect_err("not a file");
    assert!(matches!(e, strata_fs::Error::NotAFile { .. }), "{e}");

    // Renaming a file over a folder fails: the temporary is removed.
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::write(folder.join("inside"), b"x").expect("write");
    assert!(write_atomic(&folder, b"x").is_err());
    assert!(temps(dir.path()).is_empty(), "{:?}", temps(dir.path()));
    assert!(folder.join("inside").exists());
}

#[test]
fn atomic_file_publishes_on_commit_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.bin");
    std::fs::write(&path, b"old").expect("write");

    let mut f = AtomicFile::create(&path).expect("create");
    f.write_all(b"new ").expect("write");
    f.write_all(b"content").expect("write");
    let temp = f.temp_path().to_owned();
    assert!(temp.exists());
    assert_eq!(f.target(), path);
    // Not published yet.
    assert_eq!(std::fs::read(&path).expect("read"), b"old");
    f.commit().expect("commit");
    assert!(!temp.exists());
    assert_eq!(std::fs::read(&path).expect("read"), b"new content");
    assert!(temps(dir.path()).is_empty());

    // Dropped without commit: the temporary goes, the target stays.
    let mut f = AtomicFile::create_with(&path, Durability::None).expect("create");
    f.write_all(b"abandoned").expect("write");
    let temp = f.temp_path().to_owned();
    drop(f);
    assert!(!temp.exists());
    assert_eq!(std::fs::read(&path).expect("read"), b"new content");
    assert!(temps(dir.path()).is_empty());
}

#[test]
fn temp_path_persists_files_and_folders_or_cleans_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.h5");
    let t = TempPath::new(&file);
    std::fs::write(t.path(), b"written by another library").expect("write");
    t.persist(&file, Durability::FileAndDir).expect("persist");
    assert_eq!(
        std::fs::read(&file).expect("read"),
        b"written by another library"
    );

    let image = dir.path().join("img.ome.zarr");
    let t = TempPath::new(&image);
    std::fs::create_dir_all(t.path().join("0")).expect("mkdir");
    strata_fs::write_synced(&t.path().join("zarr.json"), b"{}").expect("write");
    t.persist(&image, Durability::FileAndDir)
        .expect("persist folder");
    assert!(image.join("zarr.json").is_file());

    // Dropped: a staged folder is removed with its content.
    let t = TempPath::new(&image);
    std::fs::create_dir_all(t.path().join("0/c")).expect("mkdir");
    std::fs::write(t.path().join("0/c/0"), b"x").expect("write");
    drop(t);
    assert!(temps(dir.path()).is_empty());

    // Kept: left in place.
    let t = TempPath::new(&file);
    std::fs::write(t.path(), b"x").expect("write");
    let kept = t.keep();
    assert!(kept.exists());
    assert_eq!(strata_fs::remove_stale_temps(&file).expect("clean"), 1);
    assert!(temps(dir.path()).is_empty());
}

#[test]
fn concurrent_updates_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/counter.txt");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    update_locked(&path, |old: Option<&[u8]>| {
                        let mut text = old.unwrap_or_default().to_vec();
                        text.extend_from_slice(format!("{t}-{i}\n").as_bytes());
                        Ok::<_, strata_fs::Error>(text)
                    })
                    .expect("update");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let text = std::fs::read_to_string(&path).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 200);
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), 200);
    let folder = path.parent().expect("folder");
    assert!(temps(folder).is_empty());
    // Only the table and its lock file remain.
    assert_eq!(std::fs::read_dir(folder).expect("list").count(), 2);
}

#[test]
fn failed_update_leaves_the_file_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.tsv");
    std::fs::write(&path, b"kept").expect("write");
    let r = update_locked(&path, |old: Option<&[u8]>| {
        assert_eq!(old, Some(&b"kept"[..]));
        Err(std::io::Error::other("refused"))
    });
    assert_eq!(r.expect_err("refused").to_string(), "refused");
    assert_eq!(std::fs::read(&path).expect("read"), b"kept");
    update_locked(&dir.path().join("new.tsv"), |old: Option<&[u8]>| {
        assert_eq!(old, None);
        Ok::<_, std::io::Error>(b"fresh".to_vec())
    })
    .expect("create");
    assert_eq!(
        std::fs::read(dir.path().join("new.tsv")).expect("read"),
        b"fresh"
    );
}

#[test]
fn a_locked_update_removes_what_a_killed_writer_left() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("samples.tsv");
    std::fs::write(&path, b"a\n").expect("write");
    // A writer killed between creating its temporary and renaming it.
    let left = strata_fs::temp_name(&path);
    std::fs::write(&left, b"a\nb").expect("temporary");
    // Another file's temporary is not this update's business.
    let other = strata_fs::temp_name(&dir.path().join("participants.tsv"));
    std::fs::write(&other, b"x").expect("temporary");
    update_locked(&path, |old: Option<&[u8]>| {
        let mut v = old.unwrap_or_default().to_vec();
        v.extend_from_slice(b"c\n");
        Ok::<_, strata_fs::Error>(v)
    })
    .expect("update");
    assert!(!left.exists(), "the killed writer's temporary stayed");
    assert!(other.exists());
    assert_eq!(std::fs::read(&path).expect("read"), b"a\nc\n");
}

#[test]
fn the_first_of_racing_creators_writes_and_a_killed_ones_temporary_goes() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("dataset_description.json");
    // The first conversion of a dataset was killed while writing the file.
    let left = strata_fs::temp_name(&path);
    std::fs::write(&left, b"{\"Na").expect("temporary");
    let writers: Vec<_> = (0..8u8)
        .map(|k| {
            let path = path.clone();
            std::thread::spawn(move || {
                strata_fs::create_locked(&path, &[b'0' + k]).expect("create")
            })
        })
        .collect();
    let created = writers
        .into_iter()
        .map(|w| w.join().expect("thread"))
        .filter(|&c| c)
        .count();
    assert_eq!(created, 1, "{created} writers created the file");
    assert!(!left.exists(), "the killed writer's temporary stayed");
    let text = std::fs::read(&path).expect("read");
    assert_eq!(text.len(), 1);
    // An existing file is left as it is.
    assert!(!strata_fs::create_locked(&path, b"other").expect("create"));
    assert_eq!(std::fs::read(&path).expect("read"), text);
}

//! Target `ozx_reader`: the `.ozx` (zip) archive reader of strata-store over a real file.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use strata_access::{Image, ImageOptions};
use strata_store::{
    ByteRange, ListableStore, OzxStore, PosixStore, ReadableStore, StoreKey, block_on,
};

use crate::{scratch, zarr};

/// Entries read per input (an archive may list thousands).
const MAX_ENTRIES: usize = 64;

struct Folder {
    archive: PathBuf,
    store: Arc<dyn ReadableStore>,
    key: StoreKey,
}

fn folder() -> &'static Mutex<Folder> {
    static FOLDER: OnceLock<Mutex<Folder>> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let dir = scratch::folder("ozx_reader");
        let store = PosixStore::open(&dir)
            .unwrap_or_else(|e| panic!("cannot open the scratch store {}: {e}", dir.display()));
        let key = StoreKey::new("input.ozx").unwrap_or_else(|e| panic!("archive key: {e}"));
        Mutex::new(Folder {
            archive: dir.join("input.ozx"),
            store: Arc::new(store),
            key,
        })
    })
}

/// Target `ozx_reader`: writes the input as an archive in a folder, opens it with
/// [`OzxStore::open`] through a [`PosixStore`], lists it and reads (up to 64 of) its entries
/// whole and by ranges, through the async reads, the blocking ranged read and an entry
/// opened for blocking reads; then opens the archive as an OME-Zarr image (as
/// `strata_access` opens an `.ozx`) and reads regions of every level. Errors are expected;
/// a panic, an entry whose bytes differ from its listed size, or two ways of reading the
/// same bytes that disagree, is a failure.
pub fn ozx_reader(data: &[u8]) {
    let f = scratch::lock(folder());
    scratch::write(&f.archive, data);
    let Ok(ozx) = block_on(OzxStore::open(Arc::clone(&f.store), f.key.clone())) else {
        return;
    };
    let _ = (ozx.comment(), ozx.archive_key(), ozx.archive_head());
    let _ = (format!("{ozx:?}"), ozx.location());
    let Ok(list) = block_on(ozx.list(None)) else {
        return;
    };
    let _ = block_on(ozx.list_dir(None));
    let _ = block_on(ozx.usage(None));
    for meta in list.iter().take(MAX_ENTRIES) {
        read_entry(&ozx, &meta.key, meta.size);
    }
    if let Some(first) = list.first()
        && let Some(parent) = first.key.as_str().split_once('/').map(|(p, _)| p)
        && let Ok(prefix) = StoreKey::new(parent)
    {
        let _ = block_on(ozx.list(Some(&prefix)));
        let _ = block_on(ozx.list_dir(Some(&prefix)));
    }
    let ozx: Arc<dyn ReadableStore> = Arc::new(ozx);
    zarr::read_image(|options: ImageOptions| {
        Image::from_store(Arc::clone(&ozx), "input.ozx", None, options)
    });
}

/// Reads one entry every way the store offers and checks they agree.
fn read_entry(ozx: &OzxStore, key: &StoreKey, size: u64) {
    let _ = ozx.crc32(key);
    if let Ok(n) = block_on(ozx.size(key)) {
        assert_eq!(n, size, "{key}: size() differs from the listing");
    }
    if let Ok(head) = block_on(ozx.head(key)) {
        assert_eq!(head.size, size, "{key}: head() differs from the listing");
    }
    let whole = block_on(ozx.get(key)).ok();
    if let Some(whole) = &whole {
        assert_eq!(
            whole.len() as u64,
            size,
            "{key}: get() returns another size"
        );
    }
    let ranges = [
        ByteRange::Bounded(0..size.min(10)),
        ByteRange::Bounded(size / 2..size),
        ByteRange::From(size / 3),
        ByteRange::Suffix(7),
        ByteRange::Bounded(size..size.saturating_add(1)),
    ];
    let reader = ozx.open_blocking(key).and_then(Result::ok);
    for range in ranges {
        let want = whole.as_ref().and_then(|w| {
            let r = range.resolve(key, size).ok()?;
            let (s, e) = (usize::try_from(r.start).ok()?, usize::try_from(r.end).ok()?);
            Some(w.slice(s..e))
        });
        let got = block_on(ozx.get_range(key, range.clone())).ok();
        if let (Some(want), Some(got)) = (&want, &got) {
            assert_eq!(want, got, "{key}: get_range({range}) differs from get()");
        }
        if let Some(Ok(blocking)) = ozx.get_range_blocking(key, range.clone())
            && let Some(want) = &want
        {
            assert_eq!(
                want, &blocking,
                "{key}: get_range_blocking({range}) differs from get()"
            );
        }
        if let (Some(reader), Ok(r)) = (&reader, range.resolve(key, size)) {
            assert_eq!(
                reader.head().size,
                size,
                "{key}: the opened entry's size differs"
            );
            if let (Ok(read), Some(want)) = (reader.read_blocking(r), &want) {
                assert_eq!(
                    want, &read,
                    "{key}: the opened entry's read_blocking({range}) differs from get()"
                );
            }
        }
    }
}

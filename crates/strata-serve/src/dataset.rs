//! The served dataset: its root store, and the virtual view of every `X.ozx` as the folder
//! `X.ome.zarr/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use strata_store::{
    DirListing, ListableStore, ObjectHead, OzxStore, PosixStore, ReadableStore, StoreKey,
};

use crate::error::{Error, Result};
use crate::path::DatasetPath;

/// The archive key and the member (empty for the view's top) of a path in the virtual view
/// `.../X.ome.zarr/rest` of `.../X.ozx`; `None` when no segment ends in `.ome.zarr`.
fn virtual_parts(path: &DatasetPath) -> Option<(StoreKey, String)> {
    let segments = path.segments();
    let i = segments.iter().position(|s| s.ends_with(OME_ZARR))?;
    let stem = &segments[i][..segments[i].len() - OME_ZARR.len()];
    let mut archive_segments = segments[..i].to_vec();
    archive_segments.push(format!("{stem}{OZX}"));
    let archive_key = StoreKey::new(archive_segments.join("/")).ok()?;
    Some((archive_key, segments[i + 1..].join("/")))
}

/// A store the server can read and list.
pub trait DatasetStore: ReadableStore + ListableStore {}
impl<T: ReadableStore + ListableStore + ?Sized> DatasetStore for T {}

/// Open archives kept at most (each holds its central directory in memory).
const MAX_OPEN_ARCHIVES: usize = 512;

/// How long an open archive is trusted before its head is checked again (a replaced
/// `.ozx` is noticed within this time).
const ARCHIVE_RECHECK: Duration = Duration::from_secs(2);

/// The extension of a single-file OME-Zarr archive.
const OZX: &str = ".ozx";
/// The extension of an OME-Zarr folder.
const OME_ZARR: &str = ".ome.zarr";

/// One BIDS dataset, read-only.
pub struct Dataset {
    root: Arc<dyn DatasetStore>,
    archives: Mutex<HashMap<StoreKey, OpenArchive>>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("root", &self.root.location())
            .finish_non_exhaustive()
    }
}

struct OpenArchive {
    store: Arc<OzxStore>,
    checked: Instant,
}

/// What a request path names.
pub enum Target {
    /// An object: a file of the dataset, or a member of an archive.
    Object {
        /// The store holding it.
        store: Arc<dyn ReadableStore>,
        /// Its key in that store.
        key: StoreKey,
        /// Its size, modification time and version.
        head: ObjectHead,
    },
    /// A folder (real, or the virtual folder of an archive), with its visible entries.
    Folder(Listing),
}

/// A folder's entries as served in a JSON listing.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Listing {
    /// The folder's path inside the dataset, ending in `/` (`/` for the root).
    pub path: String,
    /// Its entries, folders first, each sorted by name.
    pub entries: Vec<Entry>,
}

/// One entry of a [`Listing`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name (a folder's ends in `/`).
    pub name: String,
    /// `"folder"` or `"file"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A file's size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// A folder that is the virtual view of an `.ozx` archive.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub archive: bool,
}

impl Dataset {
    /// Serves `root`.
    #[must_use]
    pub fn new(root: Arc<dyn DatasetStore>) -> Self {
        Self {
            root,
            archives: Mutex::new(HashMap::new()),
        }
    }

    /// Opens the dataset at `location`: a folder (`/path` or `file:///path`), an
    /// `s3://bucket/prefix` (endpoint and credentials from the environment, as everywhere in
    /// strata), or one `.ozx` archive (`x.ozx` or `zip:///path/x.ozx`) whose members are the
    /// dataset's files.
    ///
    /// # Errors
    /// [`Error::Open`] naming the location and what is wrong.
    pub fn open(location: &str) -> Result<Self> {
        let open_err = |reason: String| Error::Open {
            location: location.to_owned(),
            reason,
        };
        if let Some(rest) = location.strip_prefix("s3://") {
            let rest = rest.trim_end_matches('/');
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(open_err("the URL names no bucket".into()));
            }
            let options = strata_store::S3Options::from_env(bucket);
            let mut store = strata_store::ObjectStoreBackend::s3(&options)
                .map_err(|e| open_err(e.to_string()))?;
            if !prefix.is_empty() {
                let key = StoreKey::new(prefix).map_err(|e| open_err(e.to_string()))?;
                store = store.with_prefix(&key);
            }
            return Ok(Self::new(Arc::new(store)));
        }
        let (path, zip) = match location.strip_prefix("zip://") {
            Some(p) => (p, true),
            None => (location.strip_prefix("file://").unwrap_or(location), false),
        };
        if path.contains("://") {
            return Err(open_err(
                "unknown scheme (use a path, file://, zip:// or s3://)".into(),
            ));
        }
        let path = std::path::Path::new(path);
        let is_archive = zip || (path.is_file() && path.extension().is_some_and(|e| e == "ozx"));
        if !is_archive {
            let store = PosixStore::open(path).map_err(|e| open_err(e.to_string()))?;
            return Ok(Self::new(Arc::new(store)));
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            return Err(open_err("not a file path".into()));
        };
        let dir = if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        };
        let parent: Arc<dyn ReadableStore> =
            Arc::new(PosixStore::open(dir).map_err(|e| open_err(e.to_string()))?);
        let key = StoreKey::new(name).map_err(|e| open_err(e.to_string()))?;
        let archive = strata_store::block_on(OzxStore::open(parent, key))
            .map_err(|e| open_err(e.to_string()))?;
        Ok(Self::new(Arc::new(archive)))
    }

    /// Where the dataset lives, for messages.
    #[must_use]
    pub fn location(&self) -> String {
        self.root.location()
    }

    /// What `path` names: an object, a folder, or nothing ([`Error::NotFound`]).
    ///
    /// A real file wins over the virtual view; below a segment `X.ome.zarr` that does not
    /// exist, the archive `X.ozx` beside it is looked up and the rest of the path is a
    /// member of it.
    ///
    /// # Errors
    /// [`Error::NotFound`], or [`Error::Store`] when the backend fails.
    pub async fn resolve(&self, path: &DatasetPath) -> Result<Target> {
        let segments = path.segments();
        if segments.is_empty() {
            return self.folder(None, path).await;
        }
        let key = StoreKey::new(path.key()).map_err(|_| Error::NotFound)?;
        if !path.is_folder() {
            match self.root.head(&key).await {
                Ok(head) => {
                    return Ok(Target::Object {
                        store: Arc::clone(&self.root) as Arc<dyn ReadableStore>,
                        key,
                        head,
                    });
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(Error::store(e)),
            }
        }
        if let Some(target) = self.resolve_virtual(path).await? {
            return Ok(target);
        }
        self.folder(Some(&key), path).await
    }

    /// Where the file `path` may be, in the order [`resolve`](Self::resolve) looks, known
    /// without any I/O: the root store and its key; then, when the path lies in the virtual
    /// view of an archive that is open and recently checked, that archive and the member.
    /// For a server's fast path: it opens the first candidate that exists
    /// ([`ReadableStore::open_blocking`]) and falls back to `resolve` when none does.
    #[must_use]
    pub(crate) fn candidates(&self, path: &DatasetPath) -> Vec<(Arc<dyn ReadableStore>, StoreKey)> {
        let Ok(key) = StoreKey::new(path.key()) else {
            return Vec::new();
        };
        if path.is_folder() || path.segments().is_empty() {
            return Vec::new();
        }
        let mut out = vec![(Arc::clone(&self.root) as Arc<dyn ReadableStore>, key)];
        if let Some((archive_key, member)) = virtual_parts(path)
            && let Ok(member) = StoreKey::new(member)
        {
            let map = self.archives.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(a) = map.get(&archive_key)
                && a.checked.elapsed() < ARCHIVE_RECHECK
            {
                out.push((Arc::clone(&a.store) as Arc<dyn ReadableStore>, member));
            }
        }
        out
    }

    /// The virtual view: `.../X.ome.zarr/rest` answered from `.../X.ozx`.
    async fn resolve_virtual(&self, path: &DatasetPath) -> Result<Option<Target>> {
        let Some((archive_key, member)) = virtual_parts(path) else {
            return Ok(None);
        };
        let Some(archive) = self.archive(&archive_key).await? else {
            return Ok(None);
        };
        if member.is_empty() {
            return self.archive_folder(&archive, None, path).await.map(Some);
        }
        let Ok(member_key) = StoreKey::new(member) else {
            return Err(Error::NotFound);
        };
        if !path.is_folder() {
            match archive.head(&member_key).await {
                Ok(head) => {
                    return Ok(Some(Target::Object {
                        store: archive as Arc<dyn ReadableStore>,
                        key: member_key,
                        head,
                    }));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(Error::store(e)),
            }
        }
        self.archive_folder(&archive, Some(&member_key), path)
            .await
            .map(Some)
    }

    /// The open archive under `key`, opened (or reopened when it changed) as needed; `None`
    /// when there is none.
    async fn archive(&self, key: &StoreKey) -> Result<Option<Arc<OzxStore>>> {
        let cached = {
            let map = self.archives.lock().unwrap_or_else(|p| p.into_inner());
            map.get(key)
                .map(|a| (Arc::clone(&a.store), a.checked.elapsed() < ARCHIVE_RECHECK))
        };
        if let Some((store, true)) = &cached {
            return Ok(Some(Arc::clone(store)));
        }
        let head = match self.root.head(key).await {
            Ok(h) => h,
            Err(e) if e.is_not_found() => {
                self.forget(key);
                return Ok(None);
            }
            Err(e) => return Err(Error::store(e)),
        };
        let store = match cached {
            Some((store, _)) if *store.archive_head() == head => store,
            _ => {
                let src = Arc::clone(&self.root) as Arc<dyn ReadableStore>;
                Arc::new(
                    OzxStore::open(src, key.clone())
                        .await
                        .map_err(Error::store)?,
                )
            }
        };
        let mut map = self.archives.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_OPEN_ARCHIVES && !map.contains_key(key) {
            // Forget the archive checked longest ago.
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, a)| a.checked)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            key.clone(),
            OpenArchive {
                store: Arc::clone(&store),
                checked: Instant::now(),
            },
        );
        Ok(Some(store))
    }

    fn forget(&self, key: &StoreKey) {
        self.archives
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// A real folder of the dataset, as a listing.
    async fn folder(&self, key: Option<&StoreKey>, path: &DatasetPath) -> Result<Target> {
        let listing = self.root.list_dir(key).await.map_err(Error::store)?;
        if key.is_some() && listing.objects.is_empty() && listing.folders.is_empty() {
            return Err(Error::NotFound);
        }
        Ok(Target::Folder(present(listing, path, true)))
    }

    /// A folder inside an archive's virtual view.
    async fn archive_folder(
        &self,
        archive: &OzxStore,
        key: Option<&StoreKey>,
        path: &DatasetPath,
    ) -> Result<Target> {
        let listing = archive.list_dir(key).await.map_err(Error::store)?;
        if key.is_some() && listing.objects.is_empty() && listing.folders.is_empty() {
            return Err(Error::NotFound);
        }
        Ok(Target::Folder(present(listing, path, false)))
    }
}

/// A store listing as clients see it: hidden entries left out, and (in the dataset's own
/// folders) each `X.ozx` shown as the folder `X.ome.zarr/` it is served as.
fn present(listing: DirListing, path: &DatasetPath, virtual_view: bool) -> Listing {
    let mut folders: Vec<Entry> = Vec::new();
    let mut files: Vec<Entry> = Vec::new();
    let visible = |name: &str| !name.starts_with('.');
    for name in listing.folders.iter().filter(|n| visible(n)) {
        folders.push(Entry {
            name: format!("{name}/"),
            kind: "folder",
            size: None,
            archive: false,
        });
    }
    for meta in &listing.objects {
        let name = meta.key.name();
        if !visible(name) {
            continue;
        }
        if virtual_view && let Some(stem) = name.strip_suffix(OZX) {
            let folder = format!("{stem}{OME_ZARR}");
            if !listing.folders.contains(&folder) {
                folders.push(Entry {
                    name: format!("{folder}/"),
                    kind: "folder",
                    size: None,
                    archive: true,
                });
            }
            continue;
        }
        files.push(Entry {
            name: name.to_owned(),
            kind: "file",
            size: Some(meta.size),
            archive: false,
        });
    }
    folders.sort_by(|a, b| a.name.cmp(&b.name));
    files.sort_by(|a, b| a.name.cmp(&b.name));
    folders.extend(files);
    let key = path.key();
    Listing {
        path: if key.is_empty() {
            "/".into()
        } else {
            format!("/{key}/")
        },
        entries: folders,
    }
}

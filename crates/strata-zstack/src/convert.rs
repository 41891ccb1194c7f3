//! Converting one section: a z-stack in, a BIDS microscopy image out, written through the
//! store that holds the dataset (a POSIX folder, object storage, or one `.ozx` archive in
//! either).
//!
//! Order of writing, so that an interrupted conversion never looks complete:
//!
//! 1. every array (shards, then each level's `zarr.json`): on a store that renames prefixes
//!    (POSIX), under a hidden prefix `.<name>.partial` next to the final image; on object
//!    storage in place, after the earlier image's group `zarr.json` is removed; in an `.ozx`
//!    archive written under a temporary name (POSIX) or as an unfinished multipart upload;
//! 2. the group `zarr.json` (OME-NGFF 0.5 multiscale, and the provenance record under
//!    `attributes.strata`), last;
//! 3. publication: the hidden prefix renamed into place (replacing an earlier conversion of
//!    the same section only now that the new one is whole), or the archive completed; on
//!    object storage the group `zarr.json` is the publication, and objects of an earlier
//!    conversion that this one did not write are removed after it;
//! 4. the JSON sidecar, then the `samples.tsv` and `participants.tsv` rows (a locked
//!    read-modify-write on POSIX), and `dataset_description.json` if the dataset has none.
//!
//! Rerunning the same command after an interruption discards the partial output and converts
//! the section again; encoding is deterministic, so the arrays are byte-identical.

use crate::error::{Error, Result};
use crate::image::{ArraysSummary, BandHook, ImageOptions, shard_key, write_arrays_to};
use crate::source::{PixelSize, ZStackSource};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};
use strata_bids::description::DatasetDescription;
use strata_bids::name::{Extension, Label, MicrName, Suffix};
use strata_bids::sidecar::{MicroscopySidecar, PixelSizeUnits};
use strata_bids::table::{self, ParticipantRow, SampleRow, SampleType};
use strata_ngff::MultiscaleBuilder;
use strata_store::{
    Bytes, DynStore, OzxOptions, OzxWriter, PosixOptions, PosixStore, StoreExt as _, StoreKey,
    WritableStore, block_on,
};

/// Where a section goes in the BIDS dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Root folder of the BIDS dataset (created if missing).
    pub bids_root: PathBuf,
    /// Subject (brain) label.
    pub subject: Label,
    /// Session label, if the dataset uses sessions.
    pub session: Option<Label>,
    /// Sample (section) label.
    pub sample: Label,
    /// Stain label.
    pub stain: Option<Label>,
    /// Microscopy suffix (`BF` for brightfield).
    pub suffix: Suffix,
}

impl Section {
    /// A section target from label strings, each checked (an error names the label).
    ///
    /// # Errors
    /// [`strata_bids::name::NameError`] for a label or suffix BIDS does not allow.
    pub fn from_labels(
        bids_root: PathBuf,
        subject: &str,
        session: Option<&str>,
        sample: &str,
        stain: Option<&str>,
        suffix: &str,
    ) -> std::result::Result<Self, strata_bids::name::NameError> {
        Ok(Self {
            bids_root,
            subject: Label::new("sub", subject)?,
            session: session.map(|s| Label::new("ses", s)).transpose()?,
            sample: Label::new("sample", sample)?,
            stain: stain.map(|s| Label::new("stain", s)).transpose()?,
            suffix: Suffix::new(suffix)?,
        })
    }

    /// The image's BIDS name.
    #[must_use]
    pub fn name(&self) -> MicrName {
        let mut n = MicrName::new(
            self.subject.clone(),
            self.sample.clone(),
            self.suffix,
            Extension::OME_ZARR,
        );
        n.session.clone_from(&self.session);
        n.stain.clone_from(&self.stain);
        n
    }

    /// The image's path.
    #[must_use]
    pub fn image_path(&self) -> PathBuf {
        self.bids_root.join(self.name().relative_path())
    }
}

/// How a section's image is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// An `.ome.zarr/` folder (prefix): one object per shard and per `zarr.json`.
    #[default]
    Folder,
    /// One `.ozx` archive (OME-Zarr single-file zip) in place of the folder: every level is
    /// streamed into it while converting.
    Ozx,
}

/// How to convert.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Array layout.
    pub image: ImageOptions,
    /// Pixel size; `None` takes x and y from the source's metadata (an error if it has none)
    /// and z = 1 um.
    pub pixel_size: Option<PixelSize>,
    /// Extra sidecar keys (Manufacturer, BodyPart, ...), merged into the written sidecar.
    pub sidecar_extra: serde_json::Map<String, serde_json::Value>,
    /// Record the SHA-256 of every source file in the provenance (read once more, on a
    /// thread of its own while the conversion runs, mostly from the page cache).
    pub checksums: bool,
    /// Folder or `.ozx` archive.
    pub layout: Layout,
    /// The store holding the BIDS dataset (its root is the dataset's root), e.g. an
    /// `ObjectStoreBackend` for `s3://bucket/prefix`; `None` (the default) writes into the
    /// folder [`Section::bids_root`] through a POSIX store with direct I/O.
    pub store: Option<DynStore>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            image: ImageOptions::default(),
            pixel_size: None,
            sidecar_extra: serde_json::Map::new(),
            checksums: true,
            layout: Layout::Folder,
            store: None,
        }
    }
}

/// One source file of a conversion, as the provenance records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceFile {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, lowercase hex (absent when checksums are off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Names, sizes and (with `checksums`) SHA-256 of `files` ([`strata_fs::sha256_file_until`]),
/// read one after the other. Returns `None` if `stop` is set before the end (the conversion failed).
///
/// # Errors
/// An I/O error naming the file.
pub fn source_files(
    files: &[PathBuf],
    checksums: bool,
    stop: &AtomicBool,
) -> Result<Option<Vec<SourceFile>>> {
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let (bytes, sha256) = if checksums {
            match strata_fs::sha256_file_until(path, stop).map_err(|e| Error::io(path, e.into()))? {
                Some((bytes, hex)) => (bytes, Some(hex)),
                None => return Ok(None),
            }
        } else {
            let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
            (meta.len(), None)
        };
        out.push(SourceFile {
            name,
            bytes,
            sha256,
        });
    }
    Ok(Some(out))
}

/// A time as RFC 3339 UTC to the second (`2026-11-30T12:34:56Z`).
#[must_use]
pub fn utc(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// What a conversion did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConvertSummary {
    /// The image written.
    pub output: PathBuf,
    /// Planes read.
    pub planes: u32,
    /// Plane width and height.
    pub width: u32,
    /// Plane height.
    pub height: u32,
    /// The arrays written.
    pub arrays: ArraysSummary,
    /// Files in the image folder plus the sidecar (what the section costs in inodes, with the
    /// folders counted separately in `folders`).
    pub files: u64,
    /// Folders in the image (the image folder and one per level).
    pub folders: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The source files (names and sizes, and checksums unless turned off); empty for
    /// sources that are not files.
    pub sources: Vec<SourceFile>,
}

/// The dataset's store and, for a folder, its path.
fn dataset_store(section: &Section, opts: &ConvertOptions) -> Result<(DynStore, Option<PathBuf>)> {
    if let Some(store) = &opts.store {
        return Ok((Arc::clone(store), None));
    }
    let store = PosixStore::create(&section.bids_root, PosixOptions::default().direct_io(true))?;
    let root = store.root().to_path_buf();
    Ok((Arc::new(store), Some(root)))
}

/// A key from a BIDS-relative path (`/`-separated).
fn key_of(path: &std::path::Path) -> Result<StoreKey> {
    let text: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Ok(StoreKey::new(text.join("/"))?)
}

/// A key beside `image` (same folder) named `name`.
fn sibling(image: &StoreKey, name: &str) -> Result<StoreKey> {
    let folder = image
        .as_str()
        .rsplit_once('/')
        .map_or("", |(parent, _)| parent);
    Ok(if folder.is_empty() {
        StoreKey::new(name)?
    } else {
        StoreKey::new(format!("{folder}/{name}"))?
    })
}

/// Where the arrays are being written.
enum Output {
    /// Under a hidden prefix, renamed into place when published (stores that rename).
    Staged { partial: StoreKey },
    /// In place, the group metadata last (object storage).
    InPlace,
    /// Into one archive, published when finished.
    Archive { writer: OzxWriter, key: StoreKey },
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Staged { partial } => write!(f, "Staged({partial})"),
            Self::InPlace => f.write_str("InPlace"),
            Self::Archive { key, .. } => write!(f, "Archive({key})"),
        }
    }
}

/// Removes everything under `prefix` (nothing there is fine).
fn clear(store: &DynStore, prefix: &StoreKey) -> Result<()> {
    match block_on(store.delete_prefix(Some(prefix))) {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Starts the output of `image` in `store`, removing what interrupted runs left.
fn start_output(
    store: &DynStore,
    local: Option<&std::path::Path>,
    image: &StoreKey,
    name: &MicrName,
    layout: Layout,
) -> Result<Output> {
    match layout {
        Layout::Ozx => {
            let stem = name.to_string();
            let stem = stem.trim_end_matches(".ome.zarr");
            let key = sibling(image, &format!("{stem}.ozx"))?;
            let mut options = OzxOptions::default();
            if let Some(root) = local {
                let posix = PosixStore::open(root)?;
                posix.remove_stale_temps(&key)?;
                // The levels that wait for the archive spool beside it, not in /tmp.
                let folder = posix.path_of(&key);
                if let Some(dir) = folder.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                    options = options.spool_dir(dir);
                }
            }
            let writer = block_on(OzxWriter::create(&**store, &key, options))?;
            Ok(Output::Archive { writer, key })
        }
        Layout::Folder if store.can_rename_prefix() => {
            let partial = sibling(image, &strata_fs::partial_name(&name.to_string()))?;
            clear(store, &partial)?;
            if let Some(root) = local {
                // A killed run also leaves the temporary files of the objects it was writing,
                // which a store's listing (so `clear`) does not show; renamed into place with
                // the partial folder they would end up inside the published image.
                let dir = PosixStore::open(root)?.path_of(&partial);
                match std::fs::remove_dir_all(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io(&dir, e));
                    }
                    _ => {}
                }
            }
            Ok(Output::Staged { partial })
        }
        Layout::Folder => {
            // The earlier image stops looking complete before any of its objects change.
            block_on(store.delete(&image.join("zarr.json")?))?;
            Ok(Output::InPlace)
        }
    }
}

fn spacing(source: &dyn ZStackSource, opts: &ConvertOptions) -> Result<PixelSize> {
    if let Some(s) = opts.pixel_size {
        if [s.x, s.y, s.z].iter().all(|v| v.is_finite() && *v > 0.0) {
            return Ok(s);
        }
        return Err(Error::Config(format!(
            "pixel size {} x {} x {} um: every size must be a positive number",
            s.x, s.y, s.z
        )));
    }
    match source.info().pixel_size {
        Some(p) if p.x > 0.0 && p.y > 0.0 && p.z > 0.0 => Ok(p),
        _ => Err(Error::Config(
            "the TIFF files record no pixel size: pass it, e.g. --pixel-size 0.25,0.25,2 --pixel-units um"
                .into(),
        )),
    }
}

/// Converts one z-stack into the BIDS dataset (see the module docs for the order of writing).
///
/// # Errors
/// Source errors (naming the plane's file), I/O errors (naming the path), invalid options.
/// On error nothing is published: the partial folder is left for the next run to discard.
pub fn convert(
    source: &mut dyn ZStackSource,
    section: &Section,
    opts: &ConvertOptions,
    hook: &mut dyn BandHook,
) -> Result<ConvertSummary> {
    prepare(source, section, opts, hook)?.publish(serde_json::Map::new())
}

/// A conversion whose arrays are written but not yet published (see [`prepare`]).
#[derive(Debug)]
pub struct Prepared {
    start: Instant,
    started: SystemTime,
    sources: Vec<SourceFile>,
    section: Section,
    opts: ConvertOptions,
    name: MicrName,
    store: DynStore,
    local: Option<PathBuf>,
    /// The image's key in the store (`sub-*/micr/<name>.ome.zarr`).
    image: StoreKey,
    output: Output,
    group: serde_json::Value,
    arrays: ArraysSummary,
    info: crate::source::StackInfo,
    spacing: PixelSize,
}

/// Reads the stack once and writes every array, without publishing anything: the caller
/// decides (e.g. on a QC gate) to [`Prepared::publish`] or [`Prepared::discard`].
///
/// # Errors
/// As [`convert`].
pub fn prepare(
    source: &mut dyn ZStackSource,
    section: &Section,
    opts: &ConvertOptions,
    hook: &mut dyn BandHook,
) -> Result<Prepared> {
    let start = Instant::now();
    let started = SystemTime::now();
    let info = source.info().clone();
    let spacing = spacing(source, opts)?;
    let name = section.name();
    let (store, local) = dataset_store(section, opts)?;
    let image = key_of(&name.relative_path())?;
    let output = start_output(&store, local.as_deref(), &image, &name, opts.layout)?;

    // The source files are hashed while the arrays are written: the hash reads each file
    // once more, mostly from the page cache, in the cores' idle time.
    let files = source.files();
    let before = stat_all(&files)?;
    let stop = AtomicBool::new(false);
    let (arrays, sources) = std::thread::scope(|scope| {
        let hasher = scope.spawn(|| source_files(&files, opts.checksums, &stop));
        let arrays = match &output {
            Output::Staged { partial } => {
                write_arrays_to(source, &*store, Some(partial), &opts.image, hook)
            }
            Output::InPlace => write_arrays_to(source, &*store, Some(&image), &opts.image, hook),
            Output::Archive { writer, .. } => {
                write_arrays_to(source, writer, None, &opts.image, hook)
            }
        };
        if arrays.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let sources = hasher
            .join()
            .unwrap_or_else(|_| Err(Error::Codec("the checksum thread panicked".into())));
        (arrays, sources)
    });
    // Nothing of a failed conversion stays behind on POSIX (a full file system gets its
    // space back); elsewhere the next run removes it.
    let arrays = arrays
        .and_then(|a| sources.map(|s| (a, s)))
        .and_then(|(a, s)| unchanged(&files, &before).map(|()| (a, s)));
    let (arrays, sources) = match arrays {
        Ok((a, s)) => (a, s.unwrap_or_default()),
        Err(e) => {
            if let (Output::Staged { partial }, Some(root)) = (&output, local.as_deref()) {
                let _ = std::fs::remove_dir_all(PosixStore::open(root)?.path_of(partial));
            }
            return Err(e);
        }
    };

    let levels = arrays.levels.len();
    let builder = MultiscaleBuilder::czyx(
        arrays.levels[0].shape,
        [spacing.z, spacing.y, spacing.x],
        ["micrometer"; 3],
        [1, 2, 2],
        levels,
    )
    .name(name.to_string().trim_end_matches(".ome.zarr"))
    .downscale_type("mean")
    .metadata(
        serde_json::json!({
            "description": "each level is the 2 x 2 mean (rounded half up) of the level above in y and x",
            "method": "strata_zstack"
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    let shapes = builder.level_shapes()?;
    if shapes
        .iter()
        .zip(&arrays.levels)
        .any(|(s, l)| s.as_slice() != l.shape)
    {
        return Err(Error::Config(
            "the pyramid written and the NGFF metadata disagree on level shapes".into(),
        ));
    }
    let group = builder.group_zarr_json()?;
    Ok(Prepared {
        start,
        started,
        sources,
        section: section.clone(),
        opts: opts.clone(),
        name,
        store,
        local,
        image,
        output,
        group,
        arrays,
        info,
        spacing,
    })
}

impl Prepared {
    /// What the arrays hold.
    #[must_use]
    pub fn arrays(&self) -> &ArraysSummary {
        &self.arrays
    }

    /// The store the dataset is written to.
    #[must_use]
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// Removes the partial output; nothing of this conversion remains (on object storage,
    /// where arrays are written in place, the earlier image of the section goes with it).
    ///
    /// # Errors
    /// A store error naming the key.
    pub fn discard(self) -> Result<()> {
        match self.output {
            Output::Staged { partial } => clear(&self.store, &partial),
            Output::InPlace => clear(&self.store, &self.image),
            // The unfinished archive is removed when its stream is dropped.
            Output::Archive { writer, .. } => {
                drop(writer);
                Ok(())
            }
        }
    }

    /// The provenance record (with `extra` merged in) inside the group metadata.
    fn group_json(&mut self, extra: serde_json::Map<String, serde_json::Value>) -> Result<Vec<u8>> {
        let info = &self.info;
        let sources = if self.sources.is_empty() {
            serde_json::json!(info.plane_names)
        } else {
            serde_json::json!(self.sources)
        };
        let mut record = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "sources": sources,
            "plane_shape": [info.height, info.width],
            "channels": info.channels,
            "data_type": info.sample_type.zarr_name(),
            "chunk": self.opts.image.chunk,
            "compression": format!("{:?}", self.opts.image.compression),
            "planes_per_shard": self.opts.image.planes_per_shard,
            "pixel_size_um": [self.spacing.x, self.spacing.y, self.spacing.z],
            "started": utc(self.started),
            "finished": utc(SystemTime::now()),
        });
        if let Some(r) = record.as_object_mut() {
            r.extend(extra);
        }
        if let Some(attrs) = self
            .group
            .get_mut("attributes")
            .and_then(|a| a.as_object_mut())
        {
            attrs.insert("strata".into(), record);
        }
        serde_json::to_vec_pretty(&self.group).map_err(|e| Error::Codec(e.to_string()))
    }

    /// The keys this conversion wrote under `image` (shards, level and group metadata).
    fn written_keys(&self, image: &StoreKey) -> std::collections::BTreeSet<String> {
        let mut keys = std::collections::BTreeSet::from([format!("{image}/zarr.json")]);
        for (i, level) in self.arrays.levels.iter().enumerate() {
            keys.insert(format!("{image}/{i}/zarr.json"));
            for zs in 0..level.shards {
                keys.insert(format!("{image}/{i}/{}", shard_key(zs)));
            }
        }
        keys
    }

    /// Writes the group metadata (with `extra` merged into the provenance record under
    /// `attributes.strata`), publishes the image (see the module docs), then writes the
    /// sidecar and table rows.
    ///
    /// # Errors
    /// Store errors naming the key; nothing is published before the image is whole.
    pub fn publish(
        mut self,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> Result<ConvertSummary> {
        let text = Bytes::from(self.group_json(extra)?);
        let store = Arc::clone(&self.store);
        let image = self.image.clone();
        let output = std::mem::replace(&mut self.output, Output::InPlace);
        strata_fs::failpoint("convert.arrays-written");
        let single = match output {
            Output::Staged { partial } => {
                block_on(store.put(&partial.join("zarr.json")?, text))?;
                // Replace an earlier conversion only now that this one is whole.
                let replaced = sibling(&image, &strata_fs::replaced_name(&self.name.to_string()))?;
                clear(&store, &replaced)?;
                match block_on(store.rename_prefix(&image, &replaced)) {
                    Err(e) if !e.is_not_found() => return Err(e.into()),
                    _ => {}
                }
                strata_fs::failpoint("convert.earlier-moved-aside");
                block_on(store.rename_prefix(&partial, &image))?;
                clear(&store, &replaced)?;
                None
            }
            Output::InPlace => {
                block_on(store.put(&image.join("zarr.json")?, text))?;
                // Objects of an earlier conversion that this one did not write.
                let written = self.written_keys(&image);
                for meta in block_on(store.list(Some(&image)))? {
                    if !written.contains(meta.key.as_str()) {
                        block_on(store.delete(&meta.key))?;
                    }
                }
                None
            }
            Output::Archive { writer, key } => {
                block_on(writer.put(&StoreKey::new("zarr.json")?, text))?;
                block_on(writer.finish())?;
                Some(key)
            }
        };
        strata_fs::failpoint("convert.published");
        // The sidecar and table rows follow the image at once, so that the section is whole
        // within moments of its image appearing.
        write_bids_metadata(
            &store,
            self.local.as_deref(),
            &self.section,
            &self.name,
            self.spacing,
            &self.opts,
        )?;
        strata_fs::failpoint("convert.metadata-written");
        if single.is_some() {
            // The image is one file now: neither the partial output nor an earlier
            // conversion of the section in the folder layout stays beside it.
            clear(
                &store,
                &sibling(&image, &strata_fs::partial_name(&self.name.to_string()))?,
            )?;
            clear(&store, &image)?;
        }

        let levels = self.arrays.levels.len();
        let image_path = self.section.image_path();
        let (output, files, folders) = match single {
            Some(_) => (image_path.with_extension("").with_extension("ozx"), 2, 0), // the file + the sidecar
            None => {
                let mut files = 1 + 1; // group zarr.json + sidecar
                for l in &self.arrays.levels {
                    files += 1 + u64::from(l.shards);
                }
                (image_path, files, 1 + levels as u64)
            }
        };
        let info = &self.info;
        Ok(ConvertSummary {
            output,
            planes: info.planes,
            width: info.width,
            height: info.height,
            folders,
            files,
            arrays: self.arrays,
            seconds: self.start.elapsed().as_secs_f64(),
            sources: self.sources,
        })
    }
}

/// Size and modification time of each source file.
fn stat_all(files: &[PathBuf]) -> Result<Vec<(u64, Option<SystemTime>)>> {
    files
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
            Ok((m.len(), m.modified().ok()))
        })
        .collect()
}

/// Fails with [`Error::SourceChanged`] if a source file's size or modification time is not
/// what it was when the conversion started (or the file is gone).
fn unchanged(files: &[PathBuf], before: &[(u64, Option<SystemTime>)]) -> Result<()> {
    for (path, &(len, mtime)) in files.iter().zip(before) {
        let changed = |detail: String| Error::SourceChanged {
            path: path.clone(),
            detail,
        };
        let m = std::fs::metadata(path).map_err(|e| changed(format!("now: {e}")))?;
        if m.len() != len {
            return Err(changed(format!(
                "{len} bytes at the start, {} now",
                m.len()
            )));
        }
        if m.modified().ok() != mtime {
            return Err(changed("modified during the conversion".into()));
        }
    }
    Ok(())
}

/// Writes `bytes` under `key` unless an object is there already.
fn put_if_missing(store: &DynStore, key: &StoreKey, bytes: Vec<u8>) -> Result<()> {
    if !block_on(store.exists(key))? {
        block_on(store.put(key, Bytes::from(bytes)))?;
    }
    Ok(())
}

fn write_bids_metadata(
    store: &DynStore,
    local: Option<&std::path::Path>,
    section: &Section,
    name: &MicrName,
    spacing: PixelSize,
    opts: &ConvertOptions,
) -> Result<()> {
    let mut sidecar = MicroscopySidecar::new(
        vec![spacing.x, spacing.y, spacing.z],
        PixelSizeUnits::Micrometre,
    );
    for (k, v) in &opts.sidecar_extra {
        sidecar.extra.insert(k.clone(), v.clone());
    }
    // Typed fields given as extras (e.g. Manufacturer) are re-read through the typed model.
    let sidecar: MicroscopySidecar = serde_json::from_value(
        serde_json::to_value(&sidecar).map_err(|e| Error::Codec(e.to_string()))?,
    )
    .map_err(|e| Error::Config(format!("sidecar fields: {e}")))?;
    let key = key_of(&name.with_extension(Extension::JSON).relative_path())?;
    if let Some(root) = local {
        // A run killed while writing the sidecar left its temporary beside it.
        PosixStore::open(root)?.remove_stale_temps(&key)?;
    }
    block_on(store.put(&key, Bytes::from(sidecar.to_json()?)))?;
    strata_fs::failpoint("convert.sidecar-written");

    let text =
        DatasetDescription::new("Brightfield z-stacks of histological sections").to_json()?;
    match local {
        // Whichever conversion comes first writes it, under the lock (a temporary that a
        // killed first writer left goes then).
        Some(root) => {
            let path = root.join("dataset_description.json");
            strata_fs::create_locked(&path, text.as_bytes()).map_err(|e| {
                let (path, source) = e.into_parts();
                Error::io(path, source)
            })?;
        }
        None => put_if_missing(
            store,
            &StoreKey::new("dataset_description.json")?,
            text.into_bytes(),
        )?,
    }
    let participants = [ParticipantRow {
        subject: section.subject.clone(),
        extra: vec![],
    }];
    let samples = [SampleRow {
        sample: section.sample.clone(),
        subject: section.subject.clone(),
        sample_type: SampleType::TISSUE,
        extra: vec![],
    }];
    match local {
        // Many conversions may add rows at once: a locked read-modify-write.
        Some(root) => {
            table::add_participants(root, &participants)?;
            strata_fs::failpoint("convert.participants-added");
            table::add_samples(root, &samples)?;
        }
        // Object storage has no locks: read, change, write (one writer per dataset at a time).
        None => {
            for rows in [
                table::Rows::Participants(&participants),
                table::Rows::Samples(&samples),
            ] {
                let key = StoreKey::new(rows.file_name())?;
                let old = block_on(store.get_opt(&key))?;
                let text = old.map(|b| String::from_utf8_lossy(&b).into_owned());
                let new = table::apply(text.as_deref(), rows)?;
                block_on(store.put(&key, Bytes::from(new)))?;
                strata_fs::failpoint("convert.table-written");
            }
        }
    }
    Ok(())
}

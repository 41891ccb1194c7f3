//! Converting one section: a z-stack in, a BIDS microscopy image out.
//!
//! Order of writing, so that an interrupted conversion never looks complete:
//!
//! 1. every array (shards, then each level's `zarr.json`) into a hidden folder
//!    `.<name>.ome.zarr.partial` next to the final image;
//! 2. the group `zarr.json` (OME-NGFF 0.5 multiscale, and the provenance record under
//!    `attributes.strata`), last inside the image;
//! 3. the folder renamed into place (replacing an earlier conversion of the same section only
//!    now that the new one is whole);
//! 4. the JSON sidecar, then the `samples.tsv` and `participants.tsv` rows (locked
//!    read-modify-write), and `dataset_description.json` if the dataset has none.
//!
//! Rerunning the same command after an interruption discards the partial folder and converts
//! the section again; encoding is deterministic, so the arrays are byte-identical.

use crate::error::{Error, Result};
use crate::image::{
    ArraysSummary, BandHook, FileShards, ImageOptions, ShardSink, write_arrays_to, write_synced,
};
use crate::source::ZStackSource;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};
use strata_bids::description::DatasetDescription;
use strata_bids::name::{Extension, Label, MicrName, Suffix};
use strata_bids::sidecar::{MicroscopySidecar, PixelSizeUnits};
use strata_bids::table::{self, ParticipantRow, SampleRow, SampleType};
use strata_ngff::MultiscaleBuilder;

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

/// Physical pixel size of level 0, in micrometres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spacing {
    /// Pixel width.
    pub x: f64,
    /// Pixel height.
    pub y: f64,
    /// Distance between focus levels.
    pub z: f64,
}

/// How to convert.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertOptions {
    /// Array layout.
    pub image: ImageOptions,
    /// Pixel size; `None` takes x and y from the source's metadata (an error if it has none)
    /// and z = 1 um.
    pub spacing: Option<Spacing>,
    /// Extra sidecar keys (Manufacturer, BodyPart, ...), merged into the written sidecar.
    pub sidecar_extra: serde_json::Map<String, serde_json::Value>,
    /// Record the SHA-256 of every source file in the provenance (read once more, on a
    /// thread of its own while the conversion runs, mostly from the page cache).
    pub checksums: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            image: ImageOptions::default(),
            spacing: None,
            sidecar_extra: serde_json::Map::new(),
            checksums: true,
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

/// Names, sizes and (with `checksums`) SHA-256 of `files`, read one after the other with a
/// 1 MiB buffer. Returns `None` if `stop` is set before the end (the conversion failed).
///
/// # Errors
/// An I/O error naming the file.
pub fn source_files(
    files: &[PathBuf],
    checksums: bool,
    stop: &AtomicBool,
) -> Result<Option<Vec<SourceFile>>> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut out = Vec::with_capacity(files.len());
    let mut buf = vec![0u8; 1 << 20];
    for path in files {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let io = |e| Error::io(path, e);
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = 0u64;
        let mut hash = Sha256::new();
        if checksums {
            loop {
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                let n = file.read(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                bytes += n as u64;
            }
        } else {
            bytes = file.metadata().map_err(io)?.len();
        }
        out.push(SourceFile {
            name,
            bytes,
            sha256: checksums.then(|| {
                hash.finalize()
                    .iter()
                    .fold(String::with_capacity(64), |mut s, b| {
                        use std::fmt::Write as _;
                        let _ = write!(s, "{b:02x}");
                        s
                    })
            }),
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

fn spacing(source: &dyn ZStackSource, opts: &ConvertOptions) -> Result<Spacing> {
    if let Some(s) = opts.spacing {
        if [s.x, s.y, s.z].iter().all(|v| v.is_finite() && *v > 0.0) {
            return Ok(s);
        }
        return Err(Error::Config(format!(
            "pixel size {} x {} x {} um: every size must be a positive number",
            s.x, s.y, s.z
        )));
    }
    match source.info().pixel_size {
        Some(p) if p.x > 0.0 && p.y > 0.0 => Ok(Spacing { x: p.x, y: p.y, z: 1.0 }),
        _ => Err(Error::Config(
            "the TIFF files record no pixel size: pass it, e.g. --pixel-size 0.25,0.25,2 --pixel-units um"
                .into(),
        )),
    }
}

fn remove_dir_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
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
    image: PathBuf,
    partial: PathBuf,
    group: serde_json::Value,
    arrays: ArraysSummary,
    info: crate::source::StackInfo,
    spacing: Spacing,
}

/// Reads the stack once and writes every array into the hidden partial folder, without
/// publishing anything: the caller decides (e.g. on a QC gate) to [`Prepared::publish`] or
/// [`Prepared::discard`].
///
/// # Errors
/// As [`convert`].
pub fn prepare(
    source: &mut dyn ZStackSource,
    section: &Section,
    opts: &ConvertOptions,
    hook: &mut dyn BandHook,
) -> Result<Prepared> {
    prepare_to(source, section, opts, hook, &mut FileShards)
}

/// [`prepare`] with the shards that `sink` takes written to its streams (see
/// [`write_arrays_to`]); publish such a conversion with [`Prepared::publish_with`].
///
/// # Errors
/// As [`convert`], and the sink's errors.
pub fn prepare_to(
    source: &mut dyn ZStackSource,
    section: &Section,
    opts: &ConvertOptions,
    hook: &mut dyn BandHook,
    sink: &mut dyn ShardSink,
) -> Result<Prepared> {
    let start = Instant::now();
    let started = SystemTime::now();
    let info = source.info().clone();
    let spacing = spacing(source, opts)?;
    let name = section.name();
    let image = section.image_path();
    let parent = image
        .parent()
        .ok_or_else(|| Error::Config("the image path has no parent folder".into()))?;
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let partial = parent.join(format!(".{name}.partial"));
    remove_dir_if_exists(&partial)?;
    std::fs::create_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;

    // The source files are hashed while the arrays are written: the hash reads each file
    // once more, mostly from the page cache, in the cores' idle time.
    let files = source.files();
    let stop = AtomicBool::new(false);
    let (arrays, sources) = std::thread::scope(|scope| {
        let hasher = scope.spawn(|| source_files(&files, opts.checksums, &stop));
        let arrays = write_arrays_to(source, &partial, &opts.image, hook, sink);
        if arrays.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let sources = hasher
            .join()
            .unwrap_or_else(|_| Err(Error::Codec("the checksum thread panicked".into())));
        (arrays, sources)
    });
    let arrays = arrays?;
    let sources = sources?.unwrap_or_default();

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
        image,
        partial,
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

    /// Removes the partial output; nothing of this conversion remains.
    ///
    /// # Errors
    /// An I/O error naming the folder.
    pub fn discard(self) -> Result<()> {
        remove_dir_if_exists(&self.partial)
    }

    /// Writes the group metadata (with `extra` merged into the provenance record under
    /// `attributes.strata`), publishes the image, then writes the sidecar and table rows.
    ///
    /// # Errors
    /// I/O errors naming the path.
    pub fn publish(
        self,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> Result<ConvertSummary> {
        self.publish_with(extra, |partial, image| {
            // Replace an earlier conversion only now that this one is whole.
            let parent = image
                .parent()
                .ok_or_else(|| Error::Config("the image path has no parent folder".into()))?;
            let name = image
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            let replaced = parent.join(format!(".{name}.replaced"));
            remove_dir_if_exists(&replaced)?;
            if image.exists() {
                std::fs::rename(image, &replaced).map_err(|e| Error::io(image, e))?;
            }
            std::fs::rename(partial, image).map_err(|e| Error::io(image, e))?;
            remove_dir_if_exists(&replaced)?;
            Ok(None)
        })
    }

    /// Writes the group metadata into the partial folder (with `extra` merged into the
    /// provenance record), then lets `finalize(partial, image)` publish the image: `Ok(None)`
    /// when it has moved the folder to the image path, `Ok(Some(file))` when it has published
    /// the image as that single file (e.g. an `.ozx` archive made of the folder and of the
    /// shards a [`ShardSink`] took; the folder is then removed). Then writes the sidecar and
    /// the table rows.
    ///
    /// # Errors
    /// I/O errors naming the path, and `finalize`'s errors; nothing is published before
    /// `finalize` succeeds.
    pub fn publish_with<E: From<Error>>(
        mut self,
        extra: serde_json::Map<String, serde_json::Value>,
        finalize: impl FnOnce(&Path, &Path) -> std::result::Result<Option<PathBuf>, E>,
    ) -> std::result::Result<ConvertSummary, E> {
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
        let text =
            serde_json::to_vec_pretty(&self.group).map_err(|e| Error::Codec(e.to_string()))?;
        write_synced(&self.partial.join("zarr.json"), &text)?;

        let parent = self
            .image
            .parent()
            .ok_or_else(|| Error::Config("the image path has no parent folder".into()))?
            .to_owned();
        let single = finalize(&self.partial, &self.image)?;
        sync_dir(&parent)?;
        // The sidecar and table rows follow the image at once, so that the section is whole
        // within moments of its image appearing.
        write_bids_metadata(&self.section, &self.name, self.spacing, &self.opts)?;
        if single.is_some() {
            // The image is one file now: neither the folder it was made from nor an earlier
            // conversion of the section in the folder layout stays beside it (a run killed
            // here leaves only the hidden folder, which the next run removes).
            remove_dir_if_exists(&self.partial)?;
            remove_dir_if_exists(&self.image)?;
        }

        let levels = self.arrays.levels.len();
        let (output, files, folders) = match single {
            Some(file) => (file, 2, 0), // the file + the sidecar
            None => {
                let mut files = 1 + 1; // group zarr.json + sidecar
                for l in &self.arrays.levels {
                    files += 1 + u64::from(l.shards);
                }
                (self.image, files, 1 + levels as u64)
            }
        };
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

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(dir, e))
}

fn write_bids_metadata(
    section: &Section,
    name: &MicrName,
    spacing: Spacing,
    opts: &ConvertOptions,
) -> Result<()> {
    let root = &section.bids_root;
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
    let path = root.join(name.with_extension(Extension::JSON).relative_path());
    let tmp = path.with_file_name(format!(".{}.tmp", name.with_extension(Extension::JSON)));
    write_synced(&tmp, sidecar.to_json()?.as_bytes())?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;

    let description = root.join("dataset_description.json");
    if !description.exists() {
        let text =
            DatasetDescription::new("Brightfield z-stacks of histological sections").to_json()?;
        let tmp = root.join(format!(
            ".dataset_description.json.tmp-{}",
            std::process::id()
        ));
        write_synced(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, &description).map_err(|e| Error::io(&description, e))?;
    }
    table::add_participants(
        root,
        &[ParticipantRow {
            subject: section.subject.clone(),
            extra: vec![],
        }],
    )?;
    table::add_samples(
        root,
        &[SampleRow {
            sample: section.sample.clone(),
            subject: section.subject.clone(),
            sample_type: SampleType::TISSUE,
            extra: vec![],
        }],
    )?;
    Ok(())
}

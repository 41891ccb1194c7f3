//! `strata demo`: builds a small BIDS microscopy dataset from built-in metadata, then
//! validates it. Each section is a tiny OME-Zarr 0.5 image (axes c, z, y, x; three focus
//! levels of a synthetic 64 x 64 pattern, and a 32 x 32 level below) with its sidecar and
//! table rows.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::path::{Path, PathBuf};
use strata_bids::description::DatasetDescription;
use strata_bids::name::{Extension, Label, MicrName, Suffix};
use strata_bids::sidecar::{MicroscopySidecar, OneOrMany, PixelSizeUnits, SampleEnvironment};
use strata_bids::table::{self, ParticipantRow, SampleRow, SampleType};
use strata_ngff::MultiscaleBuilder;

/// What to build.
pub(crate) struct Options {
    pub(crate) out: PathBuf,
    pub(crate) sections: u32,
    pub(crate) first: u32,
    pub(crate) subject: String,
    pub(crate) json: bool,
}

const PLANES: usize = 3;
/// Pyramid levels: 64 x 64 and 32 x 32.
const LEVELS: usize = 2;
const SIDE: usize = 64;
/// Pixel size in micrometres: x, y, then z (distance between focus levels).
const PIXEL_SIZE: [f64; 3] = [0.5, 0.5, 2.0];

type DynResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Builds the dataset and validates it; returns whether the validation found errors.
pub(crate) fn run(o: &Options) -> DynResult<bool> {
    let subject = Label::new("sub", o.subject.clone())?;
    std::fs::create_dir_all(&o.out).map_err(|e| format!("{}: {e}", o.out.display()))?;
    let description = o.out.join("dataset_description.json");
    if !description.exists() {
        let mut d =
            DatasetDescription::new("Strata demo: brightfield z-stacks of histological sections");
        d.license = Some("CC0".into());
        d.authors = vec!["Strata".into()];
        write_atomic(&description, d.to_json()?.as_bytes())?;
        write_atomic(
            &o.out.join("README.md"),
            b"# Strata demo dataset\n\nSynthetic brightfield z-stacks written by `strata demo`.\n",
        )?;
    }

    let bar = ProgressBar::new(u64::from(o.sections));
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} sections ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("writing");
    let mut rows = Vec::new();
    for i in o.first..o.first.saturating_add(o.sections) {
        let sample = Label::new("sample", format!("{i:04}"))?;
        let mut name = MicrName::new(
            subject.clone(),
            sample.clone(),
            Suffix::BF,
            Extension::OME_ZARR,
        );
        name.stain = Some(Label::new("stain", "Nissl")?);
        let image = o.out.join(name.relative_path());
        write_ome_zarr(&image, i)?;
        write_atomic(
            &o.out
                .join(name.with_extension(Extension::JSON).relative_path()),
            sidecar().to_json()?.as_bytes(),
        )?;
        rows.push(SampleRow {
            sample,
            subject: subject.clone(),
            sample_type: SampleType::TISSUE,
            extra: vec![("section_number".into(), i.to_string())],
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let samples_json = o.out.join("samples.json");
    if !samples_json.exists() {
        let doc = json!({"section_number": {
            "Description": "Position of the section in the cutting order of the brain",
            "Format": "integer"
        }});
        write_atomic(
            &samples_json,
            serde_json::to_string_pretty(&doc)?.as_bytes(),
        )?;
    }
    // One locked update per table for the whole batch.
    table::add_samples(&o.out, &rows)?;
    table::add_participants(
        &o.out,
        &[ParticipantRow {
            subject,
            extra: vec![("species".into(), "homo sapiens".into())],
        }],
    )?;

    let report = crate::validator().validate(&o.out)?;
    if o.json {
        let summary = json!({
            "dataset": o.out,
            "sections_written": o.sections,
            "validation": report,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("wrote {} section(s) to {}", o.sections, o.out.display());
        crate::report::print(&report, false, false);
    }
    Ok(report.has_errors())
}

fn sidecar() -> MicroscopySidecar {
    let mut s = MicroscopySidecar::new(PIXEL_SIZE.to_vec(), PixelSizeUnits::Micrometre);
    s.manufacturer = Some("Strata synthetic scanner".into());
    s.manufacturers_model_name = Some("demo".into());
    s.body_part = Some("BRAIN".into());
    s.body_part_details = Some("occipital lobe".into());
    s.sample_environment = Some(SampleEnvironment::ExVivo);
    s.sample_staining = Some(OneOrMany::One("Nissl".into()));
    s.slice_thickness = Some(20.0);
    s
}

/// Writes bytes to a hidden temporary file next to `path`, then renames it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> DynResult<()> {
    let dir = path.parent().ok_or("no parent folder")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = path.file_name().ok_or("no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{file}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// Writes an OME-Zarr 0.5 image (a two-level pyramid, 2 x 2 mean in y and x) into a hidden
/// folder, then renames it into place, so a reader never sees a half-written image.
fn write_ome_zarr(path: &Path, seed: u32) -> DynResult<()> {
    let dir = path.parent().ok_or("no parent folder")?;
    let file = path.file_name().ok_or("no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{file}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    let [px, py, pz] = PIXEL_SIZE;
    let builder = MultiscaleBuilder::czyx(
        [1, PLANES as u64, SIDE as u64, SIDE as u64],
        [pz, py, px],
        ["micrometer"; 3],
        [1, 2, 2],
        LEVELS,
    )
    .name(file.trim_end_matches(".ome.zarr"))
    .downscale_type("mean")
    .metadata(
        json!({"description": "2 x 2 mean of the level above in y and x", "method": "strata demo"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let shapes = builder.level_shapes()?;
    let mut planes: Vec<Vec<u8>> = (0..PLANES).map(|z| plane(seed, z)).collect();
    for (level, shape) in shapes.iter().enumerate() {
        let (h, w) = (shape[2] as usize, shape[3] as usize);
        if level > 0 {
            let (ph, pw) = (shapes[level - 1][2] as usize, shapes[level - 1][3] as usize);
            planes = planes.iter().map(|p| mean_2x2(p, ph, pw)).collect();
        }
        let array = json!({
            "zarr_format": 3,
            "node_type": "array",
            "shape": shape,
            "data_type": "uint8",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, 1, h, w]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0,
            "codecs": [{"name": "bytes"}],
            "dimension_names": ["c", "z", "y", "x"]
        });
        for (z, p) in planes.iter().enumerate() {
            let chunk_dir = tmp.join(format!("{level}/c/0/{z}/0"));
            std::fs::create_dir_all(&chunk_dir)?;
            std::fs::write(chunk_dir.join("0"), p)?;
        }
        std::fs::write(
            tmp.join(format!("{level}/zarr.json")),
            serde_json::to_vec_pretty(&array)?,
        )?;
    }
    // Group metadata last: an image without it is not an image.
    std::fs::write(
        tmp.join("zarr.json"),
        serde_json::to_vec_pretty(&builder.group_zarr_json()?)?,
    )?;
    if path.exists() {
        std::fs::remove_dir_all(path)?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The 2 x 2 mean of a `h` x `w` plane (odd edges averaged over the pixels present), rounded
/// half up.
fn mean_2x2(p: &[u8], h: usize, w: usize) -> Vec<u8> {
    let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
    let mut out = Vec::with_capacity(oh * ow);
    for y in 0..oh {
        for x in 0..ow {
            let (mut sum, mut n) = (0u32, 0u32);
            for yy in 2 * y..(2 * y + 2).min(h) {
                for xx in 2 * x..(2 * x + 2).min(w) {
                    sum += u32::from(p[yy * w + xx]);
                    n += 1;
                }
            }
            out.push(((sum + n / 2) / n) as u8);
        }
    }
    out
}

/// A synthetic brightfield plane: bright background, a darker disc of "tissue" whose texture
/// is sharpest on the middle focus level.
fn plane(seed: u32, z: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIDE * SIDE);
    let c = SIDE as f64 / 2.0;
    let blur = 1.0 + (z as f64 - 1.0).abs() * 2.0;
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (dx, dy) = (x as f64 - c, y as f64 - c);
            let inside = dx.hypot(dy) < c * 0.7;
            let texture = (((x * 7 + y * 13 + seed as usize) % 16) as f64 - 8.0) * 6.0 / blur;
            let v = if inside { 110.0 + texture } else { 235.0 };
            out.push(v.clamp(0.0, 255.0) as u8);
        }
    }
    out
}

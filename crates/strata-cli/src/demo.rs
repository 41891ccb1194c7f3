//! `strata demo`: builds a small BIDS microscopy dataset from built-in metadata, then
//! validates it. Each section is a tiny OME-Zarr 0.5 image (axes c, z, y, x; three focus
//! levels of a synthetic 64 x 64 pattern) with its sidecar and table rows.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::path::{Path, PathBuf};
use strata_bids::description::DatasetDescription;
use strata_bids::name::{Extension, Label, MicrName, Suffix};
use strata_bids::sidecar::{MicroscopySidecar, OneOrMany, PixelSizeUnits, SampleEnvironment};
use strata_bids::table::{self, ParticipantRow, SampleRow, SampleType};

/// What to build.
pub(crate) struct Options {
    pub(crate) out: PathBuf,
    pub(crate) sections: u32,
    pub(crate) first: u32,
    pub(crate) subject: String,
    pub(crate) json: bool,
}

const PLANES: usize = 3;
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

    let report = strata_bids::validate::validate(&o.out)?;
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

/// Writes a one-level OME-Zarr 0.5 image into a hidden folder, then renames it into place, so
/// a reader never sees a half-written image.
fn write_ome_zarr(path: &Path, seed: u32) -> DynResult<()> {
    let dir = path.parent().ok_or("no parent folder")?;
    let file = path.file_name().ok_or("no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{file}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(tmp.join("0"))?;
    let [px, py, pz] = PIXEL_SIZE;
    let group = json!({
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {"ome": {
            "version": "0.5",
            "multiscales": [{
                "name": file.trim_end_matches(".ome.zarr"),
                "axes": [
                    {"name": "c", "type": "channel"},
                    {"name": "z", "type": "space", "unit": "micrometer"},
                    {"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"}
                ],
                "datasets": [{
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": [1.0, pz, py, px]}]
                }]
            }]
        }}
    });
    let array = json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": [1, PLANES, SIDE, SIDE],
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, 1, SIDE, SIDE]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}],
        "dimension_names": ["c", "z", "y", "x"]
    });
    for z in 0..PLANES {
        let chunk_dir = tmp.join(format!("0/c/0/{z}/0"));
        std::fs::create_dir_all(&chunk_dir)?;
        std::fs::write(chunk_dir.join("0"), plane(seed, z))?;
    }
    std::fs::write(tmp.join("0/zarr.json"), serde_json::to_vec_pretty(&array)?)?;
    // Group metadata last: an image without it is not an image.
    std::fs::write(tmp.join("zarr.json"), serde_json::to_vec_pretty(&group)?)?;
    if path.exists() {
        std::fs::remove_dir_all(path)?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
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

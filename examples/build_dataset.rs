//! Builds a one-section BIDS microscopy dataset with the library and validates it.
//!
//! Run: `cargo run --example build_dataset -- /tmp/my-dataset`

use std::path::PathBuf;
use strata::bids::description::DatasetDescription;
use strata::bids::name::{Extension, Label, MicrName, Suffix};
use strata::bids::sidecar::{MicroscopySidecar, PixelSizeUnits};
use strata::bids::table::{self, ParticipantRow, SampleRow, SampleType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args_os().nth(1).map_or_else(
        || std::env::temp_dir().join("strata-example"),
        PathBuf::from,
    );
    let subject = Label::new("sub", "BB01")?;
    let sample = Label::new("sample", "0001")?;
    let image = MicrName::new(subject.clone(), sample.clone(), Suffix::BF, Extension::TIF);

    std::fs::create_dir_all(
        root.join(image.relative_path())
            .parent()
            .ok_or("no parent")?,
    )?;
    std::fs::write(
        root.join("dataset_description.json"),
        DatasetDescription::new("Example").to_json()?,
    )?;
    // A real pipeline writes the image here; the example writes a placeholder TIFF header.
    std::fs::write(root.join(image.relative_path()), b"II*\0\x08\0\0\0")?;
    let sidecar = MicroscopySidecar::new(vec![0.5, 0.5], PixelSizeUnits::Micrometre);
    std::fs::write(
        root.join(image.with_extension(Extension::JSON).relative_path()),
        sidecar.to_json()?,
    )?;
    table::add_participants(
        &root,
        &[ParticipantRow {
            subject: subject.clone(),
            extra: vec![],
        }],
    )?;
    table::add_samples(
        &root,
        &[SampleRow {
            sample,
            subject,
            sample_type: SampleType::TISSUE,
            extra: vec![],
        }],
    )?;

    let report = strata::bids::validate::validate(&root)?;
    println!(
        "{}: {} error(s), {} warning(s)",
        root.display(),
        report.summary.errors,
        report.summary.warnings
    );
    if report.has_errors() {
        return Err("the example dataset is not valid".into());
    }
    Ok(())
}

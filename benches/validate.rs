//! Validation speed on a synthetic dataset of sidecars and `.ome.zarr` directories.
#![allow(missing_docs)] // criterion_group! generates undocumented items.
//!
//! `cargo bench --bench validate`. The whole-program comparison with the official validator
//! on 7,000 sections is `cargo xtask bench-validate`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::Path;
use strata::bids::description::DatasetDescription;
use strata::bids::name::{Extension, Label, MicrName, Suffix};
use strata::bids::sidecar::{MicroscopySidecar, PixelSizeUnits};
use strata::bids::table::{self, ParticipantRow, SampleRow, SampleType};

const SECTIONS: usize = 1000;

fn build(root: &Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::write(
        root.join("dataset_description.json"),
        DatasetDescription::new("bench").to_json()?,
    )?;
    let subject = Label::new("sub", "BB01")?;
    let sidecar =
        MicroscopySidecar::new(vec![0.5, 0.5, 2.0], PixelSizeUnits::Micrometre).to_json()?;
    let mut rows = Vec::new();
    for i in 0..SECTIONS {
        let sample = Label::new("sample", format!("{i:04}"))?;
        let name = MicrName::new(
            subject.clone(),
            sample.clone(),
            Suffix::BF,
            Extension::OME_ZARR,
        );
        let image = root.join(name.relative_path());
        std::fs::create_dir_all(image.join("0"))?;
        std::fs::write(
            image.join("zarr.json"),
            r#"{"zarr_format":3,"node_type":"group"}"#,
        )?;
        std::fs::write(
            image.join("0/zarr.json"),
            r#"{"zarr_format":3,"node_type":"array"}"#,
        )?;
        std::fs::write(image.join("0/c"), [0u8; 64])?;
        std::fs::write(
            root.join(name.with_extension(Extension::JSON).relative_path()),
            &sidecar,
        )?;
        rows.push(SampleRow {
            sample,
            subject: subject.clone(),
            sample_type: SampleType::TISSUE,
            extra: vec![],
        });
    }
    table::add_samples(root, &rows)?;
    table::add_participants(
        root,
        &[ParticipantRow {
            subject,
            extra: vec![],
        }],
    )?;
    Ok(())
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path()).expect("build the synthetic dataset");
    let report = strata::bids::validate::validate(dir.path()).expect("validate");
    assert!(!report.has_errors(), "{:?}", report.issues.first());
    c.bench_function(&format!("validate {SECTIONS} sections"), |b| {
        b.iter(|| strata::bids::validate::validate(dir.path()).expect("validate"));
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);

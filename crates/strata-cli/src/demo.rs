//! `strata demo`: the whole job on built-in data. For each section it writes a synthetic
//! z-stack of tiled TIFFs (one focus level per file, as a slide scanner does) under
//! `sourcedata/`, converts it into the BIDS dataset as sharded OME-Zarr with its pyramid,
//! sidecar and table rows, and finally validates the dataset. The demo fills in what a lab's
//! scanner and protocol would record (instrument, institution, staining, the dataset's
//! licence and README), so that a newcomer sees a clean dataset; real conversions warn about
//! the keys nobody gave them.

use crate::convert::{ConvertArgs, convert, print_convert};
use serde_json::json;
use std::path::PathBuf;
use strata_zstack::{Compression, SampleOptions};

/// What to build (the flags of `strata demo`).
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Where to write the dataset (created if missing; re-running updates it).
    #[arg(long, default_value = "strata-demo")]
    pub(crate) out: PathBuf,
    /// Number of sections (samples) to write.
    #[arg(long, default_value_t = 2)]
    pub(crate) sections: u32,
    /// Number of the first section (to add sections to an existing dataset).
    #[arg(long, default_value_t = 1)]
    pub(crate) first: u32,
    /// Subject label.
    #[arg(long, default_value = "BB01")]
    pub(crate) subject: String,
    /// Plane size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1024x1024", value_parser = crate::common::parse_size)]
    pub(crate) size: (u32, u32),
    /// Focus levels per section.
    #[arg(long, default_value_t = 8)]
    pub(crate) planes: u32,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

type DynResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The sidecar keys a slide scanner and a histology protocol record (synthetic values).
fn scanner_fields() -> serde_json::Map<String, serde_json::Value> {
    let v = json!({
        "Manufacturer": "Strata synthetic scanner",
        "ManufacturersModelName": "strata sample",
        "DeviceSerialNumber": "0000",
        "StationName": "demo",
        "SoftwareVersions": env!("CARGO_PKG_VERSION"),
        "InstitutionName": "Strata demo lab",
        "InstitutionAddress": "n/a",
        "InstitutionalDepartmentName": "n/a",
        "BodyPart": "BRAIN",
        "BodyPartDetails": "whole hemisphere, coronal section",
        "SampleEnvironment": "ex vivo",
        "SampleStaining": "Nissl",
        "SamplePrimaryAntibody": "n/a",
        "SampleSecondaryAntibody": "n/a",
    });
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// The dataset's description (licence, authors, HED version) and README, when missing; the
/// conversions keep them.
fn describe(root: &std::path::Path) -> DynResult<()> {
    std::fs::create_dir_all(root)?;
    let desc = root.join("dataset_description.json");
    if !desc.exists() {
        let mut d = strata_bids::description::DatasetDescription::new(
            "Strata demo: synthetic brightfield z-stacks of histological sections",
        );
        d.license = Some("CC0".into());
        d.authors = vec!["Strata demo author".into(), "Second demo author".into()];
        d.extra.insert("HEDVersion".into(), json!("8.3.0"));
        d.extra.insert(
            "SourceDatasets".into(),
            json!([{"URL": "file:sourcedata/", "Version": env!("CARGO_PKG_VERSION")}]),
        );
        strata_fs::write_atomic(&desc, d.to_json()?.as_bytes())?;
    }
    let readme = root.join("README");
    if !readme.exists() {
        strata_fs::write_atomic(
            &readme,
            b"Synthetic brightfield z-stacks written by `strata demo`: each section's focus levels\n\
              are in sourcedata/, converted into sharded OME-Zarr under sub-*/micr/.\n",
        )?;
    }
    Ok(())
}

/// Builds the dataset and validates it; returns whether the validation found errors.
pub(crate) fn run(o: &Options) -> DynResult<bool> {
    strata_bids::name::Label::new("sub", o.subject.clone())?;
    describe(&o.out)?;
    let mut conversions = Vec::new();
    for i in o.first..o.first.saturating_add(o.sections) {
        let sample = format!("{i:04}");
        let raw = o
            .out
            .join("sourcedata")
            .join(format!("sub-{}", o.subject))
            .join(format!("sample-{sample}"));
        let opts = SampleOptions {
            width: o.size.0,
            height: o.size.1,
            planes: o.planes,
            in_focus_plane: (o.planes / 2 + i % 3).min(o.planes.saturating_sub(1)),
            seed: u64::from(i),
            ..SampleOptions::default()
        };
        strata_zstack::write_sample(&raw, &opts)?;
        let args = ConvertArgs {
            zstack: raw,
            bids_root: o.out.clone(),
            subject: o.subject.clone(),
            session: None,
            sample,
            stain: Some("Nissl".into()),
            suffix: "BF".into(),
            // The TIFFs carry x and y; the focus step is the scanner's setting.
            pixel_size: Some(vec![opts.pixel_size_um, opts.pixel_size_um, 2.0]),
            pixel_units: "um".into(),
            chunk: 512,
            compression: Compression::Zstd(3),
            planes_per_shard: None,
            qc_gate: None,
            ozx: false,
            checksums: true,
            sidecar_extra: scanner_fields(),
        };
        let (summary, peak) = convert(&args, o.json)?;
        if !o.json {
            print_convert(&summary, peak, false)?;
        }
        conversions.push(summary);
    }
    let report = strata_validate::validate_dataset(&o.out)?;
    if o.json {
        let summary = json!({
            "dataset": o.out,
            "sections_written": o.sections,
            "conversions": conversions,
            "validation": report,
        });
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        crate::report::print(&report, false, false);
    }
    Ok(report.has_errors())
}

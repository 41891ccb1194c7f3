//! Many finished sections saved into DataLad at once ([`save`]): one recursive
//! `datalad save` for the whole batch, so one commit per subdataset instead of one per
//! section.

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::task::{BatchPaths, published_fingerprint};
use std::time::Instant;
use strata_plan::Grouping;
use strata_plan::datalad::{AnnexMode, Datalad, SavedMany, Section, place, save_many};

/// What [`save`] did.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct SaveSummary {
    /// Sections saved (every section published with its manifest fingerprint).
    pub sections: usize,
    /// Sections not saved because they are not published yet.
    pub unpublished: usize,
    /// The datasets and their commits.
    pub saved: SavedMany,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Saves every published section of the batch into the DataLad superdataset at the BIDS
/// root, with subdatasets by `grouping` (`None` or `PerSubject`: the images are already in
/// place; a grouping by N sections chooses sessions at conversion time, so it is for
/// `strata convert --datalad`), datasets created in `annex` mode when missing. Running it
/// again after more sections finish saves only what changed. With `per_section`, each
/// section gets a save (and commits) of its own instead, one after the other: finer history,
/// at the cost of one `datalad save` per section.
///
/// # Errors
/// [`Error::Plan`] for a grouping by sections; a bad manifest; [`Error::Datalad`] when DataLad
/// is missing or a save fails.
pub fn save(
    paths: &BatchPaths,
    dl: &Datalad,
    grouping: Grouping,
    annex: AnnexMode,
    per_section: bool,
) -> Result<SaveSummary> {
    if let Grouping::PerSections(_) = grouping {
        return Err(Error::Plan(
            "batch save groups by subject or not at all: a grouping by sections picks each \
             section's session when it is converted (use strata convert --datalad for it)"
                .into(),
        ));
    }
    let start = Instant::now();
    let manifest = Manifest::load(&paths.manifest)?;
    let root = &manifest.bids_root;
    let mut sections = Vec::new();
    let mut lines = Vec::new();
    let mut unpublished = 0;
    for (i, e) in manifest.sections.iter().enumerate() {
        if published_fingerprint(&manifest, i).as_deref() != Some(e.fingerprint.as_str()) {
            unpublished += 1;
            continue;
        }
        let placement = place(
            root,
            grouping,
            &e.subject,
            &e.sample,
            manifest.settings.session.as_deref(),
        )?;
        let image = manifest.image(i)?;
        lines.push(format!(
            "{} -> {} (source fingerprint {})",
            e.folder,
            image.strip_prefix(root).unwrap_or(&image).display(),
            &e.fingerprint[..12.min(e.fingerprint.len())]
        ));
        let section = Section {
            image,
            subject: e.subject.clone(),
            qc_reports: manifest.settings.qc_gate.is_some(),
            extra: Vec::new(),
            title: format!("sub-{} sample-{}", e.subject, e.sample),
            provenance: serde_json::Value::Null,
        };
        sections.push((placement, section));
    }
    let stem = paths
        .manifest
        .file_stem()
        .map_or_else(|| "batch".into(), |s| s.to_string_lossy().into_owned());
    let message = format!(
        "strata batch save: {} sections of {stem}\n\n{}\n",
        sections.len(),
        lines.join("\n")
    );
    let saved = if per_section {
        let mut all: Option<SavedMany> = None;
        for (one, line) in sections.chunks(1).zip(&lines) {
            let message = format!("strata batch save: {line}\n");
            let s = save_many(dl, root, one, annex, &message)?;
            all = Some(match all {
                None => s,
                Some(a) => merge(a, s),
            });
        }
        match all {
            Some(a) => a,
            None => save_many(dl, root, &[], annex, &message)?,
        }
    } else {
        save_many(dl, root, &sections, annex, &message)?
    };
    Ok(SaveSummary {
        sections: sections.len(),
        unpublished,
        saved,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Two saves as one: datasets created by either, each dataset from its first commit before
/// to its last commit after.
fn merge(mut a: SavedMany, b: SavedMany) -> SavedMany {
    a.created.extend(b.created);
    for d in b.datasets {
        match a.datasets.iter_mut().find(|x| x.dataset == d.dataset) {
            Some(x) => {
                x.commit = d.commit;
                x.sections += d.sections;
            }
            None => a.datasets.push(d),
        }
    }
    a.superdataset_commit = b.superdataset_commit;
    a
}

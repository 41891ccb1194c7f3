//! Published sections copied to a second tier ([`Settings::stage_to`]): a folder (GPFS
//! capacity tier) or `s3://bucket/prefix`, at the same paths as in the dataset, every object
//! read back and compared ([`stage_section`]). The sidecar goes last: a section counts as
//! staged ([`staged_fingerprint`]) only once its image is whole at the target.
//!
//! [`Settings::stage_to`]: crate::Settings::stage_to

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use std::sync::Arc;
use strata_store::{
    Bytes, DynStore, ObjectStoreBackend, PosixOptions, PosixStore, ReadableStore as _, S3Options,
    StageOptions, StageSummary, StoreExt as _, StoreKey, StoreUrl, WritableStore as _, block_on,
    stage,
};

/// The store of a stage target: a folder, `file:///path` or `s3://bucket/prefix` (endpoint
/// and credentials from the environment, as for `strata stage`).
///
/// # Errors
/// [`Error::Plan`] for a `zip://` target or an unusable URL; store errors opening it.
pub fn target_store(url: &str) -> Result<DynStore> {
    let parsed: StoreUrl = url
        .parse()
        .map_err(|e: strata_store::Error| Error::Plan(format!("--stage-to {url}: {e}")))?;
    let store_err = |e: strata_store::Error| Error::Plan(format!("--stage-to {url}: {e}"));
    match parsed {
        StoreUrl::File(p) => Ok(Arc::new(
            PosixStore::create(&p, PosixOptions::default()).map_err(store_err)?,
        )),
        StoreUrl::S3 { bucket, prefix } => {
            let mut s = ObjectStoreBackend::s3(&S3Options::from_env(bucket)).map_err(store_err)?;
            if let Some(p) = &prefix {
                s = s.with_prefix(p);
            }
            Ok(Arc::new(s))
        }
        _ => Err(Error::Plan(format!(
            "--stage-to {url}: use a folder, file:///path or s3://bucket/prefix (an .ozx \
             target is for strata stage)"
        ))),
    }
}

/// The keys of section `i`'s image and sidecar, relative to the dataset root.
fn keys(manifest: &Manifest, i: usize) -> Result<(StoreKey, StoreKey)> {
    let section = manifest.section(i)?;
    let name = section.name().relative_path();
    let text = name.to_string_lossy();
    let sidecar = text
        .strip_suffix(".ome.zarr")
        .map(|s| format!("{s}.json"))
        .ok_or_else(|| Error::Plan(format!("{text}: not an .ome.zarr image")))?;
    let key =
        |s: &str| StoreKey::new(s).map_err(|e| Error::Plan(format!("{s}: not a store key: {e}")));
    Ok((key(&text)?, key(&sidecar)?))
}

/// The source fingerprint in the provenance of section `i` at the target, if the section is
/// whole there (its sidecar, written last, exists).
#[must_use]
pub fn staged_fingerprint(manifest: &Manifest, i: usize, target: &DynStore) -> Option<String> {
    let (image, sidecar) = keys(manifest, i).ok()?;
    if !block_on(target.exists(&sidecar)).ok()? {
        return None;
    }
    let bytes = block_on(target.get(&image.join("zarr.json").ok()?)).ok()?;
    let group: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    group
        .pointer(&format!(
            "/attributes/strata/{}/fingerprint",
            crate::task::PROVENANCE_KEY
        ))?
        .as_str()
        .map(str::to_owned)
}

/// Copies section `i`'s published image to `target` (every object verified by reading it
/// back), then its sidecar, read back and compared too. An earlier sidecar at the target goes
/// first, so that a copy cut short never looks staged.
///
/// # Errors
/// [`Error::Plan`] naming the object that could not be copied or did not read back equal.
pub fn stage_section(manifest: &Manifest, i: usize, target: &DynStore) -> Result<StageSummary> {
    let (image, sidecar) = keys(manifest, i)?;
    let fail = |e: strata_store::Error| {
        Error::Plan(format!("staging {image} to {}: {e}", target.location()))
    };
    if block_on(target.exists(&sidecar)).map_err(fail)? {
        block_on(target.delete(&sidecar)).map_err(fail)?;
    }
    let src = PosixStore::open(&manifest.bids_root).map_err(fail)?;
    let mut summary = block_on(stage(
        &src,
        Some(&image),
        &**target,
        Some(&image),
        &StageOptions::default().verify(true),
    ))
    .map_err(fail)?;
    let path = manifest.bids_root.join(sidecar.as_str());
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    block_on(target.put(&sidecar, Bytes::from(bytes.clone()))).map_err(fail)?;
    let back = block_on(target.get(&sidecar)).map_err(fail)?;
    if back.as_ref() != bytes.as_slice() {
        return Err(Error::Plan(format!(
            "staging {sidecar} to {}: it read back different",
            target.location()
        )));
    }
    summary.objects += 1;
    summary.copied += 1;
    summary.verified += 1;
    summary.bytes += bytes.len() as u64;
    summary.copied_bytes += bytes.len() as u64;
    Ok(summary)
}

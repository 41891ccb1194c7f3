//! Strata's HTTP service: one BIDS dataset served read-only, from any strata store, to
//! viewers (Neuroglancer, vizarr, napari) and readers (zarr-python, tensorstore) that read
//! Zarr v3 shards by byte ranges.
//!
//! - **HTTP semantics**: GET and HEAD; single `Range` requests (`a-b`, `a-`, `-n`) answered
//!   206 with `Content-Range`, 416 when unsatisfiable; `ETag` and `Last-Modified` with
//!   `If-None-Match`, `If-Modified-Since` and `If-Range`; `Content-Type` by extension; CORS
//!   for configurable origins (any by default), preflight answered; HTTP/1.1 keep-alive and
//!   HTTP/2 over cleartext (prior knowledge).
//! - **Virtual view**: every `X.ozx` archive of the dataset is also served as the folder
//!   `X.ome.zarr/`, its members answered by ranges from inside the archive (the central
//!   directory is read once and kept); `?list` (or `Accept: application/json`) on a folder
//!   answers a JSON listing in which archives appear as those folders.
//! - **Safety**: request paths are decoded once and checked segment by segment, so nothing
//!   outside the dataset is reachable (`..` in any encoding, backslashes, NUL, empty
//!   segments; symlinks out of a POSIX root are refused by the store); hidden entries
//!   (`.git`, `.datalad`, temporary and lock files) are never served; methods other than
//!   GET, HEAD and OPTIONS get 405; optional bearer-token access; limits on header size,
//!   connections and the time to send a request's headers (which is also the keep-alive
//!   idle time), so slow clients cannot hold the server.
//! - One access-log line per request through `tracing` (target `strata_serve::access`),
//!   `/healthz`, graceful shutdown (in-flight requests finish).
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_serve::Error> {
//! use std::sync::Arc;
//! use strata_serve::{Dataset, ServeOptions};
//! let dataset = Arc::new(Dataset::open("/data/bids")?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.map_err(|e| {
//!     strata_serve::Error::Io { what: "bind".into(), source: e }
//! })?;
//! strata_serve::serve(listener, dataset, ServeOptions::default(), async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

mod conditional;
mod dataset;
mod error;
mod handler;
mod path;
mod server;

pub use conditional::{Answer, RangeSpec, answer, etag, last_modified, parse_range};
pub use dataset::{Dataset, DatasetStore, Entry, Listing, Target};
pub use error::{Error, Result};
pub use path::{DatasetPath, PathError};
pub use server::{Origins, ServeOptions, serve};

//! The z-stack converter: a focus stack of whole-slide planes in, a BIDS microscopy image as
//! sharded OME-Zarr 0.5 out, in one read with bounded memory.
//!
//! - [`source`]: where planes come from ([`ZStackSource`], read band by band).
//! - [`image`]: the single-read writer of every pyramid level ([`write_arrays`]).
//! - [`shard`]: streamed Zarr v3 shards (chunks appended, index written last).
//! - [`band`]: cutting bands into chunks and the 2 x 2 mean of the pyramid.
//! - [`tiff_source`]: a z-stack from TIFF files, one per focus level ([`TiffStack`]).
//! - `hdf5_source` and `hdf5_export` (feature `hdf5`): a z-stack from an HDF5 file
//!   (`Hdf5Stack`), and an OME-Zarr image copied into one HDF5 file for legacy tools
//!   (`export_hdf5`).
//! - [`sample`]: synthetic brightfield z-stacks as tiled TIFFs ([`write_sample`]).
//! - [`tiff_writer`]: a streaming tiled TIFF / BigTIFF encoder ([`TiledTiffWriter`]).
//! - [`mod@convert`]: one section into a BIDS dataset in any store (POSIX folder, object
//!   storage, `.ozx` archive), metadata last ([`prepare`], then [`Prepared::publish`]).
//! - [`qc`]: quality control fed by the same read ([`QcHook`], [`run_qc`]).
//! - [`section`]: one section end to end, the entry point ([`convert_section`]): the source
//!   opened (TIFF or HDF5), converted, the QC gate and its report, publication.

pub mod band;
pub mod convert;
pub mod error;
#[cfg(feature = "hdf5")]
pub mod hdf5_export;
#[cfg(feature = "hdf5")]
pub mod hdf5_source;
pub mod image;
pub mod qc;
pub mod sample;
pub mod section;
pub mod shard;
pub mod source;
pub mod tiff_source;
pub mod tiff_writer;

pub use convert::{
    ConvertOptions, ConvertSummary, Layout, Prepared, Section, SourceFile, convert, prepare,
    source_files, utc,
};
pub use error::{Error, Result};
#[cfg(feature = "hdf5")]
pub use hdf5_export::{Hdf5ExportOptions, Hdf5ExportSummary, Hdf5LevelSummary, export_hdf5};
#[cfg(feature = "hdf5")]
pub use hdf5_source::{Hdf5Layout, Hdf5Stack};
pub use image::{BandHook, ImageOptions, NoHook, write_arrays, write_arrays_to};
pub use qc::{Hooks, QcHook, run_qc};
pub use sample::{
    SampleOptions, SampleSummary, SyntheticStack, TileCompression, TiledTiffSpec, TiledTiffWriter,
    write_sample,
};
pub use section::{
    ProgressFn, QcVerdict, SectionOptions, SectionOutcome, convert_section, convert_section_from,
    is_hdf5, open_source,
};
pub use shard::Compression;
pub use source::{MemorySource, PixelSize, Region, SampleType, StackInfo, ZStackSource};
pub use tiff_source::{TiffOptions, TiffStack, list_tiffs, natural_cmp};

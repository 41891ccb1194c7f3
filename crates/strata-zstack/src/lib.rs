//! The z-stack converter: a focus stack of whole-slide planes in, a BIDS microscopy image as
//! sharded OME-Zarr 0.5 out, in one read with bounded memory.

pub mod error;
pub mod source;

pub use error::{Error, Result};
pub use source::{MemorySource, PixelSize, SampleType, StackInfo, ZStackSource};

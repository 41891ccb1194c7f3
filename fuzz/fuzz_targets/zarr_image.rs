//! Replaces a shard or a `zarr.json` of a valid image with arbitrary bytes, then opens the
//! image and reads every level (see [`strata_fuzz::zarr_image`]).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| strata_fuzz::zarr_image(data));

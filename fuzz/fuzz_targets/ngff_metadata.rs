//! Feeds arbitrary bytes to the OME-NGFF parser, validator, reader, upgrader and
//! cross-check (see [`strata_fuzz::ngff_metadata`]).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| strata_fuzz::ngff_metadata(data));

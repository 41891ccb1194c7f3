//! Feeds arbitrary text to the BIDS name, sidecar, description and table parsers, with
//! round-trip checks (see [`strata_fuzz::bids_text`]).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| strata_fuzz::bids_text(data));

//! Sends arbitrary bytes to a running `strata serve` and checks it still answers (see
//! [`strata_fuzz::http_request`]).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| strata_fuzz::http_request(data));

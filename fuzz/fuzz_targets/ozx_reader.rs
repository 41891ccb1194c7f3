//! Opens arbitrary bytes as an `.ozx` archive, reads its entries and the image in it (see
//! [`strata_fuzz::ozx_reader`]).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| strata_fuzz::ozx_reader(data));

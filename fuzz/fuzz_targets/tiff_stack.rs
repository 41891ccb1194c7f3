//! Opens arbitrary bytes as a one-file TIFF z-stack and reads its planes (see
//! [`strata_fuzz::tiff_stack`]).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| strata_fuzz::tiff_stack(data));

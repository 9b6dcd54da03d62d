//! libFuzzer target `query_string`: see `esignsp_fuzzing::query_string` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| esignsp_fuzzing::query_string(data));

//! libFuzzer target `path_id`: see `esignsp_fuzzing::path_id` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| esignsp_fuzzing::path_id(data));

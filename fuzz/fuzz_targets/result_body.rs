//! libFuzzer target `result_body`: see `esignsp_fuzzing::result_body` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| esignsp_fuzzing::result_body(data));

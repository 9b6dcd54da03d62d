//! libFuzzer target `process_json`: see `esignsp_fuzzing::process_json` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| esignsp_fuzzing::process_json(data));

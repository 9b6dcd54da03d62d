//! libFuzzer target `authorization`: see `esignsp_fuzzing::authorization` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| esignsp_fuzzing::authorization(data));

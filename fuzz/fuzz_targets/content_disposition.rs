//! libFuzzer target `content_disposition`: see `esignsp_fuzzing::content_disposition` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| esignsp_fuzzing::content_disposition(data));

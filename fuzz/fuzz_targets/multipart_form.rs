//! libFuzzer target `multipart_form`: see `esignsp_fuzzing::multipart_form` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| esignsp_fuzzing::multipart_form(data));

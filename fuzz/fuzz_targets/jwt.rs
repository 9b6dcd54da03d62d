//! libFuzzer target `jwt`: see `esignsp_fuzzing::jwt` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| esignsp_fuzzing::jwt(data));

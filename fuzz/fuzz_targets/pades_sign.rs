//! libFuzzer target `pades_sign`: see `esignsp_fuzzing::pades_sign` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| esignsp_fuzzing::pades_sign(data));

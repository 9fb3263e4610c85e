//! Fuzz target `qless`: see `clew_fuzz::qless`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clew_fuzz::qless::run(data));

//! Fuzz target `config`: see `clew_fuzz::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clew_fuzz::config::run(data));

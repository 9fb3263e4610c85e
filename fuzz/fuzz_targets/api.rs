//! Fuzz target `api`: see `clew_fuzz::api`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clew_fuzz::api::run(data));

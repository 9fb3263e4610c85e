//! Fuzz target `cron`: see `clew_fuzz::cron`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clew_fuzz::cron::run(data));

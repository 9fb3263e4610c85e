//! Fuzz target `exec_line`: see `clew_fuzz::exec_line`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clew_fuzz::exec_line::run(data));

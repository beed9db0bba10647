//! Fuzz target `history_file`: the property is [`yuma_fuzz::history_file`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| yuma_fuzz::history_file(data));

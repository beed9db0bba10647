//! Fuzz target `json_input`: the property is [`yuma_fuzz::json_input`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| yuma_fuzz::json_input(data));

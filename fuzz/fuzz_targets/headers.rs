//! Fuzz target `headers`: the property is [`yuma_fuzz::headers`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| yuma_fuzz::headers(data));

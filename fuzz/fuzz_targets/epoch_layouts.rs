//! Fuzz target `epoch_layouts`: the property is [`yuma_fuzz::epoch_layouts`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| yuma_fuzz::epoch_layouts(data));

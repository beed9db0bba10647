//! Fuzz target `proto_request`: the property is [`yuma_fuzz::proto_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| yuma_fuzz::proto_request(data));

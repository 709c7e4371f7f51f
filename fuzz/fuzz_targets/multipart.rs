//! The multipart/form-data parser: whole, byte by byte and split anywhere must match a
//! reference reading of the body, within the limits (the checks: `h1server::__fuzz::multipart`,
//! src/fuzz_harness.rs and src/multipart/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| h1server::__fuzz::multipart(data));

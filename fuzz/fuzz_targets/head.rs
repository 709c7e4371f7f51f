//! The request-head parser on arbitrary bytes
//! (the checks: `h1server::__fuzz::head`, src/fuzz_harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| h1server::__fuzz::head(data));

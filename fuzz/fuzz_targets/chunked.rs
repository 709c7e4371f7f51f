//! The chunked decoder: whole, byte by byte and split anywhere must agree
//! (the checks: `h1server::__fuzz::chunked`, src/fuzz_harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| h1server::__fuzz::chunked(data));

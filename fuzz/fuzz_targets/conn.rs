//! The connection state machine driven by a byte script through the Transport seam
//! (the checks: `h1server::__fuzz::conn`, src/fuzz_harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| h1server::__fuzz::conn(data));

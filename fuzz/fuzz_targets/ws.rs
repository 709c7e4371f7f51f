//! The WebSocket decoder: whole, byte by byte and split anywhere must agree, within the
//! limits (the checks: `h1server::__fuzz::ws`, src/fuzz_harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| h1server::__fuzz::ws(data));

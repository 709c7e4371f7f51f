//! An upstream's response bytes through the client's sans-I/O core, whole and split (the
//! checks: `h1server::__fuzz::client`, src/fuzz_harness.rs and src/client/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| h1server::__fuzz::client(data));

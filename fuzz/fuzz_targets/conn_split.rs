//! The connection answers the same whether the client's bytes arrive in one read or split
//! anywhere (the checks: `h1server::__fuzz::conn_split`, src/fuzz_harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| h1server::__fuzz::conn_split(data));

//! # h1server
//!
//! A small, fast HTTP/1.1 server written from scratch on raw TCP: one [mio] event-loop
//! thread does all socket I/O and parsing, a fixed pool of worker threads runs your
//! handlers, a hashed timer wheel enforces every deadline, and SIGINT/SIGTERM (or
//! [`ServerHandle::shutdown`], or a [`ShutdownHandle`] for a server that `run`s on its
//! caller's thread) drain it gracefully.
//!
//! ```no_run
//! use h1server::{Config, Request, Response, Server};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let hello = |_req: &mut Request| Response::text("Hello, World!");
//!     Server::bind(Config::from_env()?)?.run(hello)?; // until SIGINT/SIGTERM
//!     Ok(())
//! }
//! ```
//!
//! ## The life of a request, file by file
//!
//! Reading the sources in this order follows one request from accept to close
//! (`docs/LIFECYCLE.md` walks a real trace):
//!
//! 1. `listener.rs` — accept, `TCP_NODELAY`, pause on EMFILE / `max_connections`.
//! 2. `event_loop.rs` — the mio loop: events, completions, deadlines, drain.
//! 3. `conn/mod.rs` — one connection's phases; `conn/read.rs` reads, parses a batch and
//!    dispatches it.
//! 4. `http/parse.rs` → `http/decode.rs` — bytes to request heads and bodies (sans-I/O).
//! 5. `pool/mod.rs` — workers run the handler for each request of the batch ([`Handler`]),
//!    catch panics, and serialise responses with `http/encode.rs` and `http/date.rs`.
//! 6. `request.rs` / `response.rs` / `stream.rs` — what a handler sees and returns.
//! 7. The worker writes the batch's answers in one write (`pool/mod.rs`, with the
//!    connection's `WriteRight`); `conn/write.rs` takes the connection back: what a full
//!    socket did not take, streamed bodies, then keep-alive or close; `timer.rs` holds the
//!    deadline of every connection.
//!
//! `server.rs` wires the threads together and `signal.rs` turns signals into a drain.
//! Configuration (`config.rs`) comes from code or from `H1_*` environment variables.
//!
//! ## Cargo features
//!
//! All but `ws` and `proxy` are on by default. `default-features = false` builds the engine alone: [`Server`],
//! [`Request`], [`Response`], [`Handler`], [`status`], [`testing`], [`conditional`] (a
//! handler's evaluation of `If-Match` and the other preconditions), the [`Router`] and
//! [`Middleware`] / [`Stack`] (the router's groups compose with them), on mio, httparse,
//! log and signal-hook.
//!
//! | feature | adds |
//! |---|---|
//! | `middleware` | the built-in middleware: `Recovery`, `RequestId`, `AccessLog`, `Timeout`, `BearerAuth`, `RateLimit`, `ConcurrencyLimit`, `Cors`, `Idempotency` |
//! | `health` | `health::Health`: the `/healthz`, `/readyz` and `/startupz` handlers |
//! | `metrics` | `metrics::render` and `metrics::handler`: the [`Telemetry`] counters in the Prometheus text format, for `/metrics` |
//! | `json` | `Request::json` and `Response::json` (serde, serde_json) |
//! | `inspect` | `inspect::Inspector`: a live waterfall page of each request's stages (needs `json`) |
//! | `multipart` | `multipart`: `multipart/form-data` forms parsed incrementally, files streamed to disk or any writer |
//! | `client` | `client`: the project's own blocking HTTP/1.1 client on the server's protocol core — keep-alive pool, timeouts under a total deadline, opt-in retries, a circuit breaker per upstream, request-id propagation, `fan_out`; its sans-I/O `ClientConn` for event loops (turns on `middleware`; no dependency) |
//! | `proxy` | off by default: `proxy::ReverseProxy`, a reverse proxy handler — upstreams by path prefix, round robin with passive health, director / response hooks, hop-by-hop and `X-Forwarded-*` / `Via` rules, 502/504, bodies streamed both ways (turns on `client`; no dependency) |
//! | `cli` | the demo binary `h1server` (env_logger, toml; turns on the features above, and `sqlite` for its storage) |
//! | `ws` | off by default: `ws`, WebSocket (RFC 6455) connections served on the event loop — `Upgrader`, a `Session` per connection called on the pool, a bounded `Sender` — on a sans-I/O codec: handshake checks and the `101` answer, frame encoding, an incremental message decoder (sha1_smol) |
#![deny(missing_docs, unsafe_code)]

/// Engine internals for the micro-benchmarks in `benches/` (feature `bench-internals`).
/// Not part of the API: anything here may change or go in any release.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod __bench {
    pub use crate::http::Span;
    pub use crate::http::decode::ChunkedDecoder;
    pub use crate::http::parse::{Limits, parse_head};
    pub use crate::timer::{DEFAULT_SLOTS, Tick, Wheel};
}

/// True on an event loop thread, from the moment its loop starts running: for a counting
/// global allocator (tests/alloc.rs) to tell the loop's allocations from the rest. A
/// thread-local flag read without allocating. Not part of the API.
#[doc(hidden)]
pub fn __on_event_loop_thread() -> bool {
    event_loop::ON_LOOP.with(std::cell::Cell::get)
}

/// The fuzz harnesses that the cargo-fuzz targets in `fuzz/` call (feature `fuzzing`).
/// Not part of the API: anything here may change or go in any release.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    #[cfg(feature = "client")]
    pub use crate::fuzz_harness::client;
    #[cfg(feature = "multipart")]
    pub use crate::fuzz_harness::multipart;
    #[cfg(feature = "ws")]
    pub use crate::fuzz_harness::ws;
    pub use crate::fuzz_harness::{chunked, conn, conn_split, head};
}

mod budget;
mod buffers;
#[cfg(feature = "client")]
pub mod client;
pub mod conditional;
pub mod config;
mod conn;
// The protocol errors, the protocol core and the wheel keep small inspection methods
// (`Error::must_close`, `Span::len`, `Wheel::current_tick`…) that only their unit tests
// call: dead code there is caught in the test build (`clippy --all-targets`).
#[cfg_attr(not(test), allow(dead_code))]
mod error;
mod event_loop;
#[cfg(feature = "proxy")]
mod forward;
#[cfg(any(test, feature = "fuzzing"))]
mod fuzz_harness;
mod handler;
#[cfg(feature = "health")]
pub mod health;
#[cfg_attr(not(test), allow(dead_code))]
mod http;
#[cfg(feature = "inspect")]
pub mod inspect;
mod listener;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod middleware;
#[cfg(feature = "multipart")]
pub mod multipart;
mod pool;
#[cfg(feature = "proxy")]
pub mod proxy;
mod request;
mod response;
pub mod router;
mod server;
mod signal;
pub mod status;
mod stream;
pub mod telemetry;
pub mod testing;
#[cfg_attr(not(test), allow(dead_code))]
mod timer;
mod tls;
mod upgrade;
mod upload;
#[cfg(feature = "ws")]
pub mod ws;

pub use config::{Config, ConfigError};
pub use handler::Handler;
pub use http::{Method, Version};
pub use middleware::{Middleware, Next, Stack};
pub use request::{CancelFlag, Extensions, Request};
pub use response::Response;
pub use router::Router;
pub use server::{BindError, Server, ServerHandle, ServerState, ShutdownHandle, ShutdownToken};
pub use stream::{StreamClosed, StreamSender, TrySendError};
pub use telemetry::Telemetry;
pub use upgrade::Upgraded;
pub use upload::BodySink;

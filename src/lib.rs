//! # h1server
//!
//! A small, fast HTTP/1.1 server written from scratch on raw TCP: one [mio] event-loop
//! thread does all socket I/O and parsing, a fixed pool of worker threads runs your
//! handlers, a hashed timer wheel enforces every deadline, and SIGINT/SIGTERM (or
//! [`ServerHandle::shutdown`]) drain it gracefully.
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
//! 3. `conn/mod.rs` — one connection's phases: read, parse a batch, dispatch.
//! 4. `http/parse.rs` → `http/decode.rs` — bytes to request heads and bodies (sans-I/O).
//! 5. `pool.rs` — workers run the handler for each request of the batch ([`Handler`]),
//!    catch panics, and serialise responses with `http/encode.rs` and `http/date.rs`.
//! 6. `request.rs` / `response.rs` / `stream.rs` — what a handler sees and returns.
//! 7. `conn/write.rs` — one write for the whole batch, then keep-alive or close;
//!    `timer.rs` holds the deadline of every connection.
//!
//! `server.rs` wires the threads together and `signal.rs` turns signals into a drain.
//! Configuration (`config.rs`) comes from code or from `H1_*` environment variables.
#![deny(missing_docs, unsafe_code)]

mod buffers;
pub mod config;
mod conn;
pub mod error;
mod event_loop;
mod handler;
pub mod health;
pub mod http;
mod listener;
pub mod middleware;
mod pool;
mod request;
mod response;
pub mod router;
mod server;
mod signal;
mod stream;
pub mod testing;
pub mod timer;
mod upgrade;
mod upload;

pub use config::{Config, ConfigError};
pub use handler::Handler;
pub use http::{Method, Version};
pub use middleware::{Middleware, Next, Stack};
pub use request::{CancelFlag, Extensions, Request};
pub use response::Response;
pub use router::Router;
pub use server::{Server, ServerHandle, ServerState, ShutdownToken};
pub use stream::{StreamClosed, StreamSender, TrySendError};
pub use upgrade::Upgraded;
pub use upload::BodySink;

//! # The HTTP/1.1 client (feature `client`)
//!
//! The project's own client, on the same protocol core as the server (`http/`): requests
//! are encoded by `http::encode_request::write_request_head`, responses parsed by
//! httparse and decoded by the server's chunked decoder, in a sans-I/O state machine
//! ([`ClientConn`]) that a blocking driver or an event loop can run. No other HTTP crate,
//! no dependency beyond the engine's.
//!
//! This module never touches a socket yet: `conn.rs` is the protocol, `url.rs` parses
//! URLs, `error.rs` names every failure.

mod conn;
mod error;
mod url;

pub use self::conn::{BodyLength, ClientConn, Event, Limits, ResponseHead};
pub use self::error::{ClientError, TimeoutKind};
pub use self::url::Url;

//! One connection's life on the event loop: read, parse a batch of pipelined requests,
//! dispatch it, write the answers in order, then keep alive or close.
//!
//! Every method here runs on the loop thread and must never block or run user code:
//! sockets are non-blocking, handlers run on workers (`pool/`), and each method returns
//! either `Ok(())` (the connection lives on) or `Err(Close)` for the loop to tear it down.
//! The socket is reached only through the [`Transport`] seam, so `tests.rs` drives every
//! phase from byte scripts.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use log::debug;

use crate::error::Error;
use crate::event_loop::Ctx;
use crate::http::Version;
use crate::http::decode::ChunkedDecoder;
use crate::http::parse::{self, Head, HeadScan};
use crate::pool::{BatchSignal, StreamFraming};
use crate::request::{Batch, CancelFlag};
use crate::stream::StreamSrc;
use crate::telemetry::{Stamp, Trace};
use crate::timer::Tick;
use crate::upgrade::{OnUpgrade, Takeover};
use crate::upload::Sink;

#[cfg(feature = "proxy")]
mod forward;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod handshake;
mod read;
mod sock;
#[cfg(test)]
mod tests;
mod transport;
mod upload;
mod write;
#[cfg(feature = "ws")]
mod ws;

#[cfg(feature = "proxy")]
pub(crate) use forward::{FORWARD_BASE, Fwd, UpstreamPool};
#[cfg(feature = "ws")]
pub(crate) use ws::{WsConn, orphan_done as ws_orphan_done};

pub(crate) use sock::Sock;
#[cfg(feature = "tls")]
pub(crate) use transport::Handshake;
pub(crate) use transport::{Transport, WriteRight};

/// Where a connection is in its request cycle (see docs/LIFECYCLE.md). Each phase carries
/// the state only it needs.
pub(crate) enum Phase {
    /// Keep-alive between requests: no buffers held, the idle deadline runs.
    Idle,
    /// Waiting for a complete request head; the header deadline runs.
    ReadHead(HeadRead),
    /// The head at the front of the buffer is parsed and its body is arriving; the body
    /// deadline runs.
    ReadBody(Box<BodyRead>),
    /// A batch is at a worker (with the right to write, when the loop had nothing of its
    /// own to write); no read deadline (handler time is not the client's fault).
    Dispatched(InFlight),
    /// Answers are being written; the write deadline runs while the socket is full.
    Write(After),
    /// A streamed body is being relayed.
    Stream(Box<Streaming>),
    /// A request body larger than memory goes to its handler's sink piece by piece; the
    /// body deadline runs (re-armed on progress).
    Upload(Box<Upload>),
    /// A WebSocket connection served on the loop (after its `101`): frames are read and
    /// decoded here, messages go to its session on the pool, the ping deadline runs.
    #[cfg(feature = "ws")]
    Ws(Box<WsConn>),
    /// The answer comes from an upstream the loop is asking (`conn/forward.rs`); its
    /// deadline is the exchange's (connect, head, body progress).
    #[cfg(feature = "proxy")]
    Forward(Box<Fwd>),
    /// Answered and closing: our side is shut, input is discarded until the peer closes
    /// (so an unread request body cannot turn our close into a reset that destroys the
    /// answer in flight, RFC 9112 §9.6).
    Closing,
}

/// A request head on its way: the search for its end resumes where it stopped, and the
/// head is parsed once it is complete — a head dribbled a byte at a time costs one scan of
/// each byte, not one parse per read. Before that, `parse_head` runs only for its early
/// verdicts: on the first bytes of the request line, up to the read that brings its 34th
/// (an overlong method is 501 at its 33rd byte, whatever that read brings besides; empty
/// lines before the line are skipped once each and never parsed alone), once on the
/// completed request line (a bad line is refused without waiting for the rest), when a
/// field line that has ended is malformed or one too many (400, 431), and past the limits
/// (414, 431).
///
/// Field lines are judged one by one as their LF arrives, each once
/// ([`HeadRead::judge_fields`]): a head whose 101st field line, or a bad one, came in one
/// read with the request line is refused at once, and so it is when the same bytes
/// dribble in, not left to wait for the header deadline (`408`). A line whose LF has not
/// come is looked at byte by byte as its bytes arrive ([`HeadRead::lex`]), so a byte that
/// makes it bad is refused at once too, whichever read brought it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeadRead {
    end: HeadScan,
    /// Bytes already looked at for an LF: the request line's, then the field lines'.
    seen: usize,
    /// Where the request line starts: past the empty lines before it, as far as they
    /// have arrived. The search resumes here, so empty lines dribbled in are looked at
    /// once each, not once per read. Once the line has ended: where the first field line
    /// not yet judged starts.
    start: usize,
    /// The request line has ended (empty lines before it, which RFC 9112 §2.2 lets the
    /// server skip, do not count).
    line_done: bool,
    /// Field lines ended and judged so far.
    fields: u32,
    /// Where the bytes of the line still arriving leave it (`lex`).
    lex: Lex,
}

/// Where the bytes looked at so far leave a line whose LF has not arrived
/// ([`HeadRead::lex`]). Only what httparse refuses wherever it stands is judged at once;
/// the rest waits for the line's end, as before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Lex {
    /// The start of a field line.
    #[default]
    LineStart,
    /// In a field name.
    Name,
    /// Whitespace after a field name: a colon next is `400` (RFC 9112 §5.1), and so is
    /// anything else; `parse_head` waits for that next byte.
    NameWs,
    /// In the request line's method or target, after this many spaces (0 or 1): any
    /// visible byte, SP, obs-text (httparse's request line has no HT).
    Line(u8),
    /// In the request line's version, this many bytes of it so far: each read that
    /// brings some, or the CR after them, is parsed (httparse refuses a wrong version
    /// byte, or a byte after `HTTP/1.x`, where it stands; the CR settles another major
    /// version as 505), up to the byte after the version's eight, which settles it.
    Version(u8),
    /// In a field value: any visible byte, SP, HT, obs-text.
    Value,
    /// After a CR: only an LF may follow (RFC 9112 §2.2).
    Cr,
    /// A byte judged it (`parse_head` ran): nothing more until its LF.
    Judged,
}

impl HeadRead {
    /// Whether `buf` (the head so far) is worth a `parse_head` now.
    fn worth_parsing(&mut self, buf: &[u8], limits: &parse::Limits) -> bool {
        // The usual read: a whole head, or several, and nothing after the last. A buffer
        // that starts with the request line (no empty line before it) and ends with an
        // empty line holds the end of a head: an LF followed by an LF or CR LF, which is
        // what the scan looks for, found without reading every byte.
        if buf.first().is_some_and(|&c| c != b'\r' && c != b'\n')
            && (buf.ends_with(b"\n\r\n") || buf.ends_with(b"\n\n"))
        {
            return true;
        }
        if self.end.scan(buf).is_some() {
            // The whole head is here (the usual case, in one read): parse it. What the
            // rest tracks is only for heads still arriving.
            return true;
        }
        if self.line_done {
            return self.judge_fields(buf, limits, true) || buf.len() > limits.max_head_bytes;
        }
        // Where the request line starts: after the empty lines a client may send first
        // (almost always 0, found at the first byte). Resumed where the last read left
        // it: a CR last in the buffer is looked at again, its LF may have come since.
        self.start += parse::request_line_start(&buf[self.start..]);
        let start = self.start;
        // How much of the line the last read had: its first `MAX_METHOD_BYTES` + 1 bytes
        // are judged (an overlong method is 501) on the read that brings the last of them,
        // however many came with it.
        let had = self.seen.saturating_sub(start);
        let from = self.seen.max(start);
        let line_end = buf[from..].iter().position(|&c| c == b'\n');
        self.seen = buf.len();
        if let Some(at) = line_end {
            // The line has ended: `parse_head` judges it now, with the field lines that
            // came with it. From here on, field lines are counted from its end.
            self.line_done = true;
            self.start = from + at + 1;
            self.seen = self.start;
            self.lex = Lex::LineStart;
            self.judge_fields(buf, limits, false);
            return true;
        }
        let line = buf.len() - start;
        // Only empty lines so far (and perhaps the CR of one whose LF is on its way):
        // nothing to judge, and a parse would read them all again — for every read of a
        // client that sends nothing else.
        let nothing_yet = line == 0 || (line == 1 && buf[start] == b'\r');
        if nothing_yet {
            return buf.len() > limits.max_head_bytes;
        }
        if self.lex == Lex::LineStart {
            self.lex = Lex::Line(0);
        }
        self.lex(&buf[from..])
            || buf.len() > limits.max_head_bytes
            || had <= parse::MAX_METHOD_BYTES + 1
            || line > parse::request_line_cap(limits)
    }

    /// Looks at `bytes`, the next of a line whose LF has not arrived, each once: true at
    /// the first that httparse refuses wherever it stands in a line (a control byte, a
    /// name byte that is not a token's, a CR not followed by LF, a field line beginning
    /// with whitespace) — `parse_head` on the head so far then gives the verdict it gives
    /// when the line comes in one read with the end of the line before it. After that the
    /// line is not looked at again until its LF, so a byte that `parse_head` lets pass
    /// costs one parse, not one per read.
    fn lex(&mut self, bytes: &[u8]) -> bool {
        // A version byte came: parse once this read's bytes are looked at.
        let mut version = false;
        for &c in bytes {
            self.lex = match (self.lex, c) {
                (Lex::Judged, _) => return version,
                (Lex::LineStart | Lex::Name, c) if parse::is_tchar(c) => Lex::Name,
                // A CR after version bytes ends the version: `HTTP/2.0` is 505 from here.
                (Lex::Version(_), b'\r') => {
                    version = true;
                    Lex::Cr
                }
                (Lex::LineStart | Lex::Line(_) | Lex::Value, b'\r') => Lex::Cr,
                (Lex::Name, b':') => Lex::Value,
                (Lex::Name | Lex::NameWs, b' ' | b'\t') => Lex::NameWs,
                // The second space ends the target: what follows is the version.
                (Lex::Line(1), b' ') => Lex::Version(0),
                (Lex::Line(0), b' ') => Lex::Line(1),
                (Lex::Line(n), b'!'..=0x7e | 0x80..) => Lex::Line(n),
                (Lex::Version(n), c) if c >= b' ' && c != 0x7f => {
                    version = true;
                    if n >= 8 {
                        // A ninth byte: `HTTP/1.x` is eight, so the parse of this read
                        // gives the verdict (a wrong byte, or the line's end missing).
                        self.lex = Lex::Judged;
                        return true;
                    }
                    Lex::Version(n + 1)
                }
                (Lex::Value, b'\t' | b' '..=0x7e | 0x80..) => Lex::Value,
                _ => {
                    self.lex = Lex::Judged;
                    return true;
                }
            };
        }
        version
    }

    /// Counts the field lines that have ended since the last look (each line is looked at
    /// once, as are the bytes searched for its LF) and, with `check`, judges each with
    /// httparse's field-line grammar, the one `parse_head` applies. True when one of them
    /// is malformed or there are more than `max_headers`: `parse_head` on the head so far
    /// then gives the verdict it gives when these bytes arrive in one read, as httparse
    /// stops at the first bad line whatever follows it. The new bytes of the line still
    /// arriving after them go through [`HeadRead::lex`] (always, so that it knows where
    /// they leave the line; judged only with `check`).
    fn judge_fields(&mut self, buf: &[u8], limits: &parse::Limits, check: bool) -> bool {
        let from = self.seen;
        self.seen = buf.len();
        let Some(last) = buf[from..].iter().rposition(|&c| c == b'\n') else {
            // The line still arriving: its new bytes, one by one (without `check`, only
            // to know where they leave it: `parse_head` judges them now anyway).
            let bad = self.lex(&buf[from..]);
            return check && bad;
        };
        let ended = &buf[self.start..=from + last];
        self.start = from + last + 1;
        self.lex = Lex::LineStart;
        let mut bad = self.lex(&buf[self.start..]) && check;
        for line in ended.split_inclusive(|&c| c == b'\n') {
            self.fields = self.fields.saturating_add(1);
            if check && !bad {
                // One line alone: httparse parses it and then wants the next (Partial),
                // or stops at what is wrong with it.
                let mut slot = [httparse::EMPTY_HEADER; 1];
                bad = !matches!(
                    httparse::parse_headers(line, &mut slot),
                    Ok(httparse::Status::Partial)
                );
            }
        }
        bad || self.fields as usize > limits.max_headers.min(parse::MAX_HEADERS_CAP)
    }
}

/// A request whose head is parsed and whose body is still arriving.
pub(crate) struct BodyRead {
    /// Parsed once; its fields stay at the front of the buffer's field list.
    head: Head,
    body: BodyProgress,
}

/// How far a body has come.
enum BodyProgress {
    /// A `Content-Length` body: complete when the buffer holds `end` bytes.
    Length { end: usize },
    /// A chunked body, decoded as it arrives (so a large body is decoded once) and in
    /// place: the data decoded so far lies right behind the head, at `head.len ..
    /// head.len + decoder.decoded_len()`, where the finished body is a span of the buffer
    /// like a `Content-Length` body — one buffer, charged for about the raw bytes, not a
    /// second one beside it (`conn/read.rs::process`).
    Chunked {
        decoder: ChunkedDecoder,
        /// Offset in the read buffer where the raw bytes not yet decoded begin. Between
        /// reads it is where the decoded data ends (the consumed framing is dropped,
        /// `drop_chunk_framing`), and the buffer ends there too.
        resume_at: usize,
        /// The one byte the buffer took past the memory budget, when the data decoded so
        /// far filled the budget to the byte and the framing behind it (the last chunk's
        /// CRLF, `0`, the empty line) still had to be read (`grow_for_chunks`).
        edge_byte: bool,
    },
}

/// A batch at a worker.
pub(crate) struct InFlight {
    /// Shared with the worker: "the loop waits for this batch", "the connection is gone".
    signal: BatchSignal,
    /// The batch's cancellation flag (set when the client leaves).
    cancel: CancelFlag,
    /// Size of the read buffer the batch took along (still charged to the budget; its
    /// chunked bodies were decoded in it).
    batch_bytes: usize,
    /// A close the loop wanted meanwhile (the client reset): it happens when the batch,
    /// and with it the right to write, comes back.
    close: Option<Close>,
    /// The last request's body is streamed (not in the batch): bytes read meanwhile are
    /// that body, not the first byte of a next request (`fill` stamps only those).
    body_follows: bool,
}

/// What happens once the answers are written.
pub(crate) enum After {
    /// Read the next request (or idle).
    KeepAlive,
    /// Close (an answer said `Connection: close`, an error, the drain).
    Close,
    /// Hand the connection to its new protocol with the bytes read past the request.
    Upgrade(Takeover, Vec<u8>),
}

/// A streamed response body in progress.
pub(crate) struct Streaming {
    /// Where the pieces come from; `None` while a pull job has the producer.
    src: Option<StreamSrc>,
    framing: StreamFraming,
    /// Close once the body has ended.
    close: bool,
    /// The streamed request's stages, finished when the body ends.
    trace: Option<Trace>,
}

/// A request body on its way to a [`BodySink`](crate::BodySink).
pub(crate) struct Upload {
    /// The sink; `None` while a worker feeds it a piece.
    sink: Option<Sink>,
    /// Body bytes not yet handed to the sink.
    remaining: u64,
    method: crate::http::Method,
    version: Version,
    /// Close after the answer.
    close: bool,
    /// The route that matched (a metrics label for the answer).
    route: Option<std::sync::Arc<str>>,
    /// What the sink keeps in memory, as it last said (`BodySink::held_bytes`): charged
    /// to the memory budget while the upload lasts.
    held: usize,
}

/// Which deadline fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    Header,
    Body,
    Write,
    Idle,
    Linger,
    /// A WebSocket connection was silent for its ping interval.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    Ping,
    /// An upstream exchange: no connection, no head, or no body progress in time.
    #[cfg_attr(not(feature = "proxy"), allow(dead_code))]
    Upstream,
    /// The transport's handshake (TLS) is not over within `tls_handshake_timeout`.
    Handshake,
}

impl Deadline {
    /// Its place in [`DEADLINES`](crate::telemetry::DEADLINES).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A connection's deadlines: reading and writing are timed apart (a body may be read
/// while a `100 Continue` waits to be written), and the wheel holds one entry for the
/// earlier of them, re-filed lazily.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    /// The read-side deadline (header, body, idle or linger) and when it falls due.
    read: Option<(Tick, Deadline)>,
    /// When the pending output must have been written.
    write: Option<Tick>,
    /// The tick of this connection's newest wheel entry; entries with another tick are
    /// stale.
    pub filed: Option<Tick>,
}

impl Deadlines {
    /// The earliest tick either deadline falls due.
    pub fn next_due(&self) -> Option<Tick> {
        match (self.read.map(|r| r.0), self.write) {
            (Some(r), Some(w)) => Some(r.min(w)),
            (r, w) => r.or(w),
        }
    }

    /// Takes the deadline that is due at `now` (the write one first), if any.
    pub fn take_due(&mut self, now: Tick) -> Option<Deadline> {
        if self.write.is_some_and(|w| w <= now) {
            self.write = None;
            return Some(Deadline::Write);
        }
        match self.read {
            Some((due, kind)) if due <= now => {
                self.read = None;
                Some(kind)
            }
            _ => None,
        }
    }
}

/// Why a connection ends (logged at debug).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Close {
    /// The client closed its side with nothing pending.
    PeerClosed,
    /// The client closed in the middle of a request.
    PeerClosedMidRequest,
    /// A read or write failed (reset, broken pipe).
    IoError(io::ErrorKind),
    /// We answered and the connection was not to be kept (close requested, HTTP/1.0,
    /// an error status, draining, max requests).
    Done,
    /// Keep-alive connection idle past `idle_timeout`.
    IdleTimeout,
    /// No complete head within `header_read_timeout`.
    HeaderTimeout,
    /// The response could not be written within `write_timeout`.
    WriteTimeout,
    /// The lingering close ran out of time.
    LingerTimeout,
    /// The server is draining and the connection had nothing in flight.
    Draining,
    /// The shutdown deadline passed.
    ShutdownDeadline,
    /// A second signal stopped the server at once.
    ForcedStop,
    /// A streamed body's producer failed: closed without the final chunk.
    StreamAborted,
    /// The answer switched protocols: the connection was handed to its upgrade callback.
    Upgraded,
    /// A WebSocket's close handshake ended (or the client closed it with a close frame).
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    WsClosed,
    /// A WebSocket client broke the protocol (the close frame said why).
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    WsProtocolError,
    /// A WebSocket client answered no ping for two intervals.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    WsTimeout,
    /// A WebSocket's send queue filled up: the client does not read.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    WsOverflow,
    /// An upstream failed or stalled while its answer was being relayed: the answer
    /// cannot be finished.
    #[cfg_attr(not(feature = "proxy"), allow(dead_code))]
    UpstreamFailed,
    /// No TLS handshake within `tls_handshake_timeout` (a TLS slowloris).
    TlsHandshakeTimeout,
    /// The TLS handshake failed (not TLS, no common parameters, a bad message).
    TlsHandshakeFailed,
}

impl Close {
    /// Its place in [`CLOSE_REASONS`](crate::telemetry::CLOSE_REASONS).
    pub fn index(self) -> usize {
        match self {
            Close::PeerClosed => 0,
            Close::PeerClosedMidRequest => 1,
            Close::IoError(_) => 2,
            Close::Done => 3,
            Close::IdleTimeout => 4,
            Close::HeaderTimeout => 5,
            Close::WriteTimeout => 6,
            Close::LingerTimeout => 7,
            Close::Draining => 8,
            Close::ShutdownDeadline => 9,
            Close::ForcedStop => 10,
            Close::StreamAborted => 11,
            Close::Upgraded => 12,
            Close::WsClosed => 13,
            Close::WsProtocolError => 14,
            Close::WsTimeout => 15,
            Close::WsOverflow => 16,
            Close::UpstreamFailed => 17,
            Close::TlsHandshakeTimeout => 18,
            Close::TlsHandshakeFailed => 19,
        }
    }

    /// Closes that cannot wait for a batch to come back (the server is stopping).
    pub fn is_forced(self) -> bool {
        matches!(self, Close::ShutdownDeadline | Close::ForcedStop)
    }

    /// Whether the connection ends in order: everything we started to send is complete
    /// (or nothing was started), so the transport may say so — TLS's `close_notify`,
    /// which tells the client the data ended where we meant it to (RFC 8446 §6.1).
    /// Otherwise an answer may be cut off (a producer or an upstream failed, the client
    /// stopped reading, the server stopped), and saying "complete" would make a cut
    /// close-delimited body look whole (RFC 9112 §9.8: the incomplete close is how a
    /// client tells truncation).
    pub fn is_orderly(self) -> bool {
        match self {
            Close::PeerClosed
            | Close::PeerClosedMidRequest
            | Close::Done
            | Close::IdleTimeout
            | Close::HeaderTimeout
            | Close::LingerTimeout
            | Close::Draining
            | Close::WsClosed
            | Close::WsProtocolError => true,
            Close::IoError(_)
            | Close::WriteTimeout
            | Close::ShutdownDeadline
            | Close::ForcedStop
            | Close::StreamAborted
            | Close::Upgraded
            | Close::WsTimeout
            | Close::WsOverflow
            | Close::UpstreamFailed
            | Close::TlsHandshakeTimeout
            | Close::TlsHandshakeFailed => false,
        }
    }
}

/// A connection owned by the loop.
pub(crate) struct Conn<T: Transport = Sock> {
    /// The loop's half of the socket: reading, shutting down, and (in `event_loop.rs`)
    /// registering and closing it.
    io: Arc<T>,
    /// The right to write the socket; `None` while a dispatched batch carries it.
    right: Option<WriteRight>,
    /// Slot index; the mio token is derived from it.
    pub token: usize,
    /// Bumped each time the slot is reused, so a late completion for the previous
    /// occupant is recognised and dropped.
    pub gen_: u32,
    /// Connection id for logs (unique per server run).
    pub id: u64,
    pub peer: SocketAddr,
    phase: Phase,
    /// Read buffer; `None` while idle so idle connections hold no memory. It is an
    /// `Arc<Batch>` so dispatching moves it to the worker without copying.
    rbuf: Option<Arc<Batch>>,
    /// Answers waiting to be written, from `wpos`.
    wbuf: Vec<u8>,
    wpos: usize,
    /// The read and write deadlines.
    pub deadlines: Deadlines,
    /// Requests taken from this connection so far (for `max_requests_per_connection`).
    /// (4 bytes: a connection would need 4 billion requests to saturate it.)
    served: u32,
    /// The client half-closed (read returned 0).
    peer_eof: bool,
    /// Reading stopped before the socket was drained (buffer cap, memory budget, a
    /// batch out); resume later. Edge-triggered: no new event will say so.
    read_paused: bool,
    /// A readiness event reported the peer's FIN (read it even after a short read).
    hup_seen: bool,
    /// The last read stopped because the memory budget did not allow a larger buffer.
    over_budget: bool,
    /// Input was left unread (an error answered mid-request): linger before closing.
    unread_input: bool,
    /// What a lingering close reports when the client ends it (its EOF): `Done` after an
    /// HTTP answer, a WebSocket's own reason (`WsClosed`, `WsProtocolError`) after its
    /// close frame.
    linger_as: Close,
    /// Bytes of request data this connection is charged for in `Ctx::budget` (its read
    /// buffer — a chunked body being decoded included: it is decoded in place — the
    /// batch at a worker).
    charged: usize,
    /// Requests whose answers the loop is still writing (the worker wrote none or part
    /// of them): their `written` stage is stamped when the output is out
    /// (`Ctx::finish_unwritten`). Boxed: 8 bytes in every connection for what only a
    /// slow reader's needs (`an_idle_connection_stays_small`).
    #[allow(clippy::box_collection)] // the point: 8 bytes here, not a Vec's 24
    unwritten: Option<Box<Vec<crate::pool::ReqMeta>>>,
    /// Bytes the loop wrote to this connection, wrapping: the write deadline asks only
    /// whether it moved during one `on_writable` (which writes far less than 4 GiB).
    sent: u32,
    /// When the first byte of the request being read arrived (until then: when the
    /// connection was accepted).
    pub req_start: Stamp,
    /// Microseconds from the accept to the first request's first byte (`u32::MAX` until
    /// it came): the first request's `accepted` stage, kept in 4 bytes.
    accept_lead_us: u32,
}

pub(crate) type Step = Result<(), Close>;

impl<T: Transport> Conn<T> {
    pub fn new(io: Arc<T>, token: usize, gen_: u32, id: u64, peer: SocketAddr) -> Self {
        let right = WriteRight::new(io.clone());
        Conn {
            io,
            right: Some(right),
            token,
            gen_,
            id,
            peer,
            phase: Phase::ReadHead(HeadRead::default()),
            rbuf: None,
            wbuf: Vec::new(),
            wpos: 0,
            deadlines: Deadlines::default(),
            served: 0,
            peer_eof: false,
            read_paused: false,
            hup_seen: false,
            over_budget: false,
            unread_input: false,
            linger_as: Close::Done,
            charged: 0,
            unwritten: None,
            sent: 0,
            req_start: 0,
            accept_lead_us: u32::MAX,
        }
    }

    /// Requests taken from this connection so far.
    pub fn served(&self) -> usize {
        self.served as usize
    }

    /// The phase, for the loop's drain accounting and logs.
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Idle => "idle",
            Phase::ReadHead(_) => "read-head",
            Phase::ReadBody(_) => "read-body",
            Phase::Dispatched(_) => "dispatched",
            Phase::Write(_) => "write",
            Phase::Stream(_) => "stream",
            Phase::Upload(_) => "upload",
            #[cfg(feature = "ws")]
            Phase::Ws(_) => "websocket",
            #[cfg(feature = "proxy")]
            Phase::Forward(_) => "forward",
            Phase::Closing => "closing",
        }
    }

    /// Arms a deadline `after` from now; the wheel is only touched when it falls due
    /// earlier than the entry already filed.
    pub fn arm(&mut self, ctx: &mut Ctx, kind: Deadline, after: Duration) {
        let due = ctx.due_after(after);
        match kind {
            Deadline::Write => self.deadlines.write = Some(due),
            _ => self.deadlines.read = Some((due, kind)),
        }
        if self.deadlines.filed.is_none_or(|f| due < f) {
            ctx.wheel.insert(due, (self.token, self.gen_));
            self.deadlines.filed = Some(due);
        }
    }

    fn buffered(&self) -> usize {
        self.rbuf.as_ref().map_or(0, |b| b.len)
    }

    /// Drops the first `n` buffered bytes (a sink or an upstream took them); an emptied
    /// read buffer goes back to the pool.
    fn consume_read(&mut self, ctx: &mut Ctx, n: usize) {
        let rbuf = self.rbuf.as_mut().expect("bytes are buffered");
        let b = Arc::get_mut(rbuf).expect("the read buffer is owned by its connection");
        b.bytes.copy_within(n..b.len, 0);
        b.len -= n;
        if b.len == 0 {
            let b = self.rbuf.take().expect("just used");
            ctx.bufs.put_read(b);
        }
    }

    /// True when the connection holds nothing in flight (drain may close it at once):
    /// no request has begun — no byte of one read, none held by the transport (part of
    /// a TLS record).
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::ReadHead(_))
            && self.buffered() == 0
            && !self.io.input_pending()
    }

    /// True once the connection only waits for the client to close (drain accounting).
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing)
    }

    /// The requests whose answers were still being written (the connection closes).
    pub fn take_unwritten(&mut self) -> Option<Vec<crate::pool::ReqMeta>> {
        self.unwritten.take().map(|reqs| *reqs)
    }

    /// Brings this connection's part of the memory budget (every loop's) up to date.
    ///
    /// What a connection holds beyond its first read buffer counts: that first buffer
    /// (`READ_BUF`, 16 KiB) is what any request needs to be read at all, so it is bounded
    /// by `max_connections` instead — were it charged, idle slowloris connections could
    /// spend the budget and have every upload refused.
    pub fn recharge(&mut self, ctx: &mut Ctx) {
        let beyond_first = |len: usize| len.saturating_sub(crate::buffers::READ_BUF);
        let mut now = self
            .rbuf
            .as_ref()
            .map_or(0, |b| beyond_first(b.bytes.len()));
        match &self.phase {
            Phase::Dispatched(f) => now += beyond_first(f.batch_bytes),
            Phase::Upload(u) => now += u.held,
            #[cfg(feature = "ws")]
            Phase::Ws(w) => now += w.buffered(),
            _ => {}
        }
        // The budget is shared by every loop: touched only when the charge changes.
        if now < self.charged {
            ctx.give_back(self.charged - now);
        } else if now > self.charged {
            ctx.budget.take(now - self.charged);
        }
        self.charged = now;
    }

    /// Reading was paused (for the memory budget, or a lingering close used its share of
    /// the turn): go on.
    pub fn resume_reading(&mut self, ctx: &mut Ctx) -> Step {
        if !self.read_paused {
            return Ok(());
        }
        match self.phase {
            Phase::ReadHead(_) | Phase::ReadBody(_) => {
                self.read_paused = false;
                self.on_readable(ctx, false)
            }
            Phase::Closing => {
                self.read_paused = false;
                self.discard_input(ctx)
            }
            #[cfg(feature = "ws")]
            Phase::Ws(_) => self.ws_resume(ctx),
            _ => Ok(()),
        }
    }

    /// The loop wants this connection closed. While a batch is out the close waits for
    /// it (the worker holds the right to write, and its answer is owed to nobody now):
    /// the batch is marked so a worker that has not started it skips it, and its
    /// handlers see the cancellation. True when the close must wait.
    pub fn defer_close(&mut self, reason: Close) -> bool {
        let Phase::Dispatched(f) = &mut self.phase else {
            return false;
        };
        if f.close.is_none() {
            debug!(
                "conn={} closing once its batch is back: {reason:?}",
                self.id
            );
            f.signal.mark_conn_closed();
            f.cancel.cancel();
            f.close = Some(reason);
        }
        true
    }

    // ------------------------------------------------------------------ deadlines

    /// A deadline passed.
    pub fn on_deadline(&mut self, ctx: &mut Ctx, kind: Deadline) -> Step {
        match kind {
            Deadline::Idle => Err(Close::IdleTimeout),
            Deadline::Write => {
                // The kernel reports writability only once a good share of its buffer is
                // free, so a client that reads slowly makes progress without an event:
                // look before closing. No byte taken since the deadline was armed: closed.
                let before = self.sent;
                self.on_writable(ctx)?;
                // Output is left when `flush` armed the deadline again (it does so whenever
                // bytes remain, in the write buffer or in the transport's own records).
                if self.sent == before
                    && (self.wpos < self.wbuf.len() || self.deadlines.write.is_some())
                {
                    return Err(Close::WriteTimeout);
                }
                Ok(())
            }
            #[cfg(feature = "ws")]
            Deadline::Linger if matches!(self.phase, Phase::Ws(_)) => self.ws_linger(ctx),
            Deadline::Linger => Err(Close::LingerTimeout),
            #[cfg(feature = "ws")]
            Deadline::Ping => self.ws_ping(ctx),
            #[cfg(not(feature = "ws"))]
            Deadline::Ping => Ok(()),
            #[cfg(feature = "proxy")]
            Deadline::Upstream => match self.phase {
                Phase::Forward(_) => self.fwd_deadline(ctx),
                _ => Ok(()),
            },
            #[cfg(not(feature = "proxy"))]
            Deadline::Upstream => Ok(()),
            Deadline::Handshake => Err(Close::TlsHandshakeTimeout),
            // Nothing of a request begun (no byte buffered, none held by the transport in
            // a half-received TLS record): closed without a word, as an unused connection.
            Deadline::Header if self.buffered() == 0 && !self.io.input_pending() => {
                Err(Close::HeaderTimeout)
            }
            Deadline::Header => self.answer_error(ctx, Error::HeaderTimeout),
            Deadline::Body => self.answer_error(ctx, Error::BodyTimeout),
        }
    }

    /// The connection is about to close without ending in order ([`Close::is_orderly`]):
    /// its transport must not tell the client it did.
    pub fn mark_aborted(&self) {
        self.io.mark_aborted();
    }

    /// The connection is about to close in the middle of a body: a reset, so that not
    /// even a close-delimited body can be taken for complete (`Transport::reset_on_close`).
    pub fn reset_on_close(&self) {
        self.io.reset_on_close();
    }

    /// The upgrade callback and read-ahead, once the switching answer is written.
    pub fn take_upgrade(&mut self) -> Option<(OnUpgrade, Vec<u8>)> {
        match std::mem::replace(&mut self.phase, Phase::Closing) {
            Phase::Write(After::Upgrade(Takeover::Callback(f), ahead)) => Some((f, ahead)),
            other => {
                self.phase = other;
                None
            }
        }
    }

    /// Tears the connection's state down and gives back its halves: the loop's socket
    /// handle and the right to write (`None` when a batch still has it — only a forced
    /// close gets here then).
    pub fn release(mut self, ctx: &mut Ctx) -> (Arc<T>, Option<WriteRight>) {
        match std::mem::replace(&mut self.phase, Phase::Closing) {
            Phase::Dispatched(f) => {
                // Only a forced close gets here with a batch out: its handlers are told.
                f.signal.mark_conn_closed();
                f.cancel.cancel();
            }
            Phase::Stream(s) => {
                if let Some(src) = s.src {
                    src.close(&ctx.jobs);
                }
                if let Some(t) = s.trace {
                    t.finish(&ctx.tel, &ctx.tel.loops[ctx.loop_id], self.id, None);
                }
                let stats = ctx.stats();
                stats.bump(&stats.streams_ended, 1);
            }
            Phase::Upload(u) => {
                if let Some(sink) = u.sink {
                    ctx.jobs.abort_upload(sink);
                }
            }
            #[cfg(feature = "ws")]
            Phase::Ws(w) => self.release_ws(ctx, w),
            #[cfg(feature = "proxy")]
            Phase::Forward(f) => self.release_forward(ctx, f),
            _ => {}
        }
        if let Some(b) = self.rbuf.take() {
            ctx.bufs.put_read(b);
        }
        ctx.bufs.put_write(std::mem::take(&mut self.wbuf));
        self.recharge(ctx);
        (self.io, self.right)
    }
}

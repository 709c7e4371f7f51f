//! Streamed request bodies on the worker side: feed one piece to the handler's
//! [`BodySink`](crate::BodySink), and encode its answer when the body is complete or the
//! sink refused it. Never touches a socket.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;

use log::error;

use super::{
    Completion, Connect, Done, Encoded, PoolShared, ReqMeta, StreamFraming, encode_response,
};
use crate::http::{Method, Version};
use crate::response::Response;
use crate::upload::Sink;

/// The length of a streamed body (the request's `BodyRef` was taken for the handler).
pub(super) fn req_body_len(meta: &ReqMeta) -> u64 {
    match meta.head.framing {
        crate::http::parse::Framing::Length(n) => n,
        _ => 0,
    }
}

/// A handler asked for its request's streamed body.
pub(crate) struct UploadStart {
    pub sink: Sink,
    /// Body bytes still to come.
    pub remaining: u64,
    pub method: Method,
    pub version: Version,
    /// Close after the answer.
    pub close: bool,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
    /// The route that matched (a metrics label for the answer).
    pub route: Option<std::sync::Arc<str>>,
}

/// A piece of a streamed request body for its sink, or the last piece and the answer.
pub(crate) struct UploadJob {
    /// The event loop that owns the connection (and hears back).
    pub loop_id: usize,
    pub token: usize,
    pub gen_: u32,
    pub conn_id: u64,
    pub sink: Sink,
    pub piece: Vec<u8>,
    /// This piece ends the body: after it, the sink's `finish` gives the answer.
    pub last: bool,
    pub method: Method,
    pub version: Version,
    pub close: bool,
    pub route: Option<std::sync::Arc<str>>,
}

/// Feeds one piece to the sink: a `Piece` when it waits for the next, a `Done` with the
/// answer when it finished or refused the piece.
pub(super) fn feed_sink(
    mut job: UploadJob,
    shared: &PoolShared,
    date: &[u8; 29],
    stats: &crate::telemetry::Stats,
) -> Completion {
    let fed = catch_unwind(AssertUnwindSafe(|| {
        job.sink.data(&job.piece).map(|()| job.sink.held_bytes())
    }));
    let (resp, close) = match fed {
        Ok(Ok(held)) if !job.last => {
            return Completion::Piece(Piece {
                token: job.token,
                gen_: job.gen_,
                sink: job.sink,
                buf: job.piece,
                held,
            });
        }
        Ok(Ok(_)) => {
            let sink = job.sink;
            match catch_unwind(AssertUnwindSafe(move || sink.finish())) {
                Ok(r) => (r, job.close),
                Err(_) => {
                    error!(
                        "conn={} a body sink panicked in finish; answering 500",
                        job.conn_id
                    );
                    (Response::error(500, ""), true)
                }
            }
        }
        // Refused: the rest of the body is not read, so the connection closes.
        Ok(Err(r)) => (r, true),
        Err(_) => {
            error!("conn={} a body sink panicked; answering 500", job.conn_id);
            // The upload ends here: the sink hears it as any upload that ends early, to
            // undo what it stored (a `DiskFiles` form's files), instead of being dropped.
            let sink = job.sink;
            if catch_unwind(AssertUnwindSafe(move || sink.abort())).is_err() {
                error!("conn={} a body sink panicked in abort", job.conn_id);
            }
            (Response::error(500, ""), true)
        }
    };
    stats.count_request(job.method, resp.status(), job.route.as_ref());
    let mut out = job.piece;
    out.clear();
    let mut close = close || resp.wants_close();
    if shared.draining.load(Ordering::Acquire) {
        close = true;
    }
    let connect = if close {
        Connect::Close
    } else {
        Connect::KeepAlive
    };
    let mut stream = None;
    if let Encoded::Stream(s, framing) =
        encode_response(&mut out, resp, job.method, job.version, connect, date)
    {
        // Counted as `run_job` counts a stream: its end is counted by the loop.
        stats.bump(&stats.streams_started, 1);
        if framing == StreamFraming::UntilClose {
            close = true;
        }
        stream = Some((s, framing));
    }
    let mut done = Done::answer(job.token, job.gen_, job.conn_id, out, close);
    done.stream = stream;
    Completion::Done(done)
}

/// A piece was taken by the sink: the sink waits for the next one.
pub(crate) struct Piece {
    pub token: usize,
    pub gen_: u32,
    pub sink: Sink,
    /// The piece's buffer, back for reuse.
    pub buf: Vec<u8>,
    /// What the sink keeps in memory now (`BodySink::held_bytes`), for the budget.
    pub held: usize,
}

//! Pulled streams on the worker side: one pull asks the producer for pieces until the
//! connection's buffer has what it has room for, or 1 ms passed — a short job whatever the
//! producer's pace. Never touches a socket.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use log::error;

use super::StreamFraming;
use crate::http::encode;
use crate::response::Pull;

/// Asks a worker for the next pieces of a pulled stream, at most `want` bytes of them.
pub(crate) struct PullJob {
    /// The event loop that owns the connection (and hears back).
    pub loop_id: usize,
    pub token: usize,
    pub gen_: u32,
    pub pull: Pull,
    pub framing: StreamFraming,
    pub want: usize,
    /// A buffer from the loop's pool to encode the pieces into.
    pub out: Vec<u8>,
}

/// What a pull produced.
pub(crate) struct Pulled {
    pub token: usize,
    pub gen_: u32,
    /// The producer, back for the next pull; `None` when it ended or failed (it was
    /// dropped on the worker: its `Drop` is user code too).
    pub pull: Option<Pull>,
    /// The pieces, framed (chunked or raw); never the last chunk.
    pub out: Vec<u8>,
    pub end: PullEnd,
}

/// Where a pulled stream stands after a pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PullEnd {
    /// More may follow.
    More,
    /// The producer is exhausted: the body ends after `out`.
    Ended,
    /// The producer failed or panicked: the body must be cut off, not ended.
    Failed,
}

/// How long one pull may keep calling the producer (at least one piece is asked for):
/// a pull is a short job, whatever the producer's pace.
const PULL_SLICE: Duration = Duration::from_millis(1);

/// Calls `pull` until `want` bytes are framed into `out`, the producer ends or fails, or
/// `PULL_SLICE` passes. Runs on a worker.
pub(crate) fn pull_pieces(
    pull: &mut Pull,
    framing: StreamFraming,
    want: usize,
    out: &mut Vec<u8>,
) -> PullEnd {
    let start = out.len();
    let t0 = Instant::now();
    loop {
        match catch_unwind(AssertUnwindSafe(&mut *pull)) {
            Ok(Some(Ok(piece))) => match framing {
                StreamFraming::Chunked => encode::write_chunk(out, &piece),
                StreamFraming::UntilClose | StreamFraming::Length => out.extend_from_slice(&piece),
            },
            Ok(None) => return PullEnd::Ended,
            Ok(Some(Err(e))) => {
                error!("stream producer failed: {e}; cutting the body off");
                return PullEnd::Failed;
            }
            Err(_) => {
                error!("stream producer panicked; cutting the body off");
                return PullEnd::Failed;
            }
        }
        if out.len() - start >= want || t0.elapsed() >= PULL_SLICE {
            return PullEnd::More;
        }
    }
}

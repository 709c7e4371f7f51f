//! The worker pool: runs handlers for whole batches of requests, serialises their
//! responses into one buffer, writes it to the connection's socket, and reports back to
//! the event loop.
//!
//! Workers never touch connection state and run only bounded work: a batch of handlers
//! (with the connection's `WriteRight` when the loop has nothing of its own pending on the
//! socket, see docs/ARCHITECTURE.md), one pull of a stream producer (`pull.rs`), one piece
//! of an upload (`upload.rs`), one WebSocket session's events, the client's head of an
//! upstream's answer (`Job::Forward`), an upgrade callback, the drop of an application
//! value the loop let go (`Job::Drop`). They answer with a `Completion`,
//! waking the loop through its `mio::Waker` only when it may be asleep and must act
//! (`wake.rs`); one worker per core takes jobs, the rest wait in `reserve.rs`.

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use log::{debug, error, trace};

use crate::conn::WriteRight;
use crate::handler::Handler;
use crate::http::date::DateCache;
use crate::http::encode::{self, BodyFraming, ConnectionField};
use crate::http::parse::Head;
use crate::http::{Method, Version};
use crate::request::{Batch, BodyRef, CancelFlag, Request};
use crate::response::{Body, Response, StreamBody};
use crate::stream::StreamSrc;
use crate::telemetry::{self, Stats, Trace};
use crate::upgrade::{OnUpgrade, Takeover, Upgraded};
use crate::upload::Sink;
use chan::{Receiver, Sender};

pub(crate) mod chan;
mod pull;
mod reserve;
mod upload;
mod wake;

pub(crate) use pull::{PullEnd, PullJob, Pulled, pull_pieces};
pub(crate) use reserve::{Reserve, STALL, Spawner};
pub(crate) use upload::{Piece, UploadJob, UploadStart};
use upload::{feed_sink, req_body_len};
pub(crate) use wake::{Completions, LoopWake, Notifier};

/// One request of a batch, as the loop parsed it.
#[derive(Debug)]
pub(crate) struct ReqMeta {
    pub head: Head,
    pub body: BodyRef,
    /// The loop's keep-alive verdict for this request (client asked to close, HTTP/1.0
    /// without keep-alive, request limit reached): the response says `Connection: close`.
    pub close: bool,
    /// Where its bytes end in the batch's buffer, its body's framing included: what
    /// follows is the next request (empty lines before it included), or after an
    /// upgrade, the new protocol's first byte.
    pub end: u32,
    /// Its stages so far, and what the metrics need once its answer is written.
    pub trace: Trace,
}

/// What the loop and a worker tell each other about one batch, beside the request's
/// public [`CancelFlag`]: engine state, never shown to handlers.
#[derive(Clone, Debug, Default)]
pub(crate) struct BatchSignal(Arc<AtomicU8>);

/// The loop has work for this connection as soon as the batch is answered (more
/// requests buffered, the client left): the worker wakes it.
const LOOP_WAITING: u8 = 1;
/// The loop gave up on the connection: nobody can receive the answers.
const CONN_CLOSED: u8 = 2;

impl BatchSignal {
    pub fn mark_loop_waiting(&self) {
        self.0.fetch_or(LOOP_WAITING, Ordering::SeqCst);
    }
    pub fn is_loop_waiting(&self) -> bool {
        self.0.load(Ordering::SeqCst) & LOOP_WAITING != 0
    }
    /// Also asks to be woken: the loop waits to close the connection.
    pub fn mark_conn_closed(&self) {
        self.0
            .fetch_or(CONN_CLOSED | LOOP_WAITING, Ordering::SeqCst);
    }
    pub fn is_conn_closed(&self) -> bool {
        self.0.load(Ordering::Acquire) & CONN_CLOSED != 0
    }
    /// Clears it for reuse when nobody else holds it; `false` when it is still shared.
    pub fn try_reset(&mut self) -> bool {
        match Arc::get_mut(&mut self.0) {
            Some(bits) => {
                *bits.get_mut() = 0;
                true
            }
            None => false,
        }
    }
}

/// Work for the pool: always bounded (the length of nothing here is up to a client).
pub(crate) enum Job {
    /// Run the handlers of one connection's batch.
    Batch(BatchJob),
    /// Produce the next pieces of a pulled stream.
    Pull(PullJob),
    /// Give an upgraded connection to its callback.
    Upgrade(OnUpgrade, Upgraded),
    /// Feed a piece of a streamed request body to its sink.
    Upload(UploadJob),
    /// An upload ended early: tell its sink.
    UploadAbort(Sink),
    /// Turn an upstream's head (or failure) into the client's answer.
    #[cfg(feature = "proxy")]
    Forward(ForwardJob),
    /// Call a WebSocket session with the events of its connection.
    #[cfg(feature = "ws")]
    Ws(WsJob),
    /// Drop an application value the loop no longer needs (a stream producer whose
    /// client left): its `Drop` is user code, which the loop never runs.
    Drop(Box<dyn Send>),
}

/// The loop's end of the job queue, holding at most `depth` jobs (`queue_depth`).
///
/// The channel itself is unbounded and the loops, its only senders, enforce the bound:
/// a bounded channel allocates and initialises all its slots up front (`queue_depth` ×
/// the size of a `Job`, 184 KB of resident memory for the default 1024), while this one
/// holds memory only for the jobs waiting. With one loop the length can only shrink
/// between the check and the send (workers take jobs, nobody else adds), so the bound is
/// exact; each loop has a clone, and with several the queue may pass `depth` by at most
/// `loops` − 1 jobs (each checked before its own send).
#[derive(Clone)]
pub(crate) struct JobQueue {
    tx: Sender<Job>,
    depth: usize,
}

impl JobQueue {
    /// A queue of at most `depth` jobs, and the workers' end of it.
    pub fn new(depth: usize) -> (JobQueue, Receiver<Job>) {
        let (tx, rx) = chan::channel();
        (JobQueue { tx, depth }, rx)
    }
    /// Queues `job`, or gives it back: at `depth` jobs, or when no worker is left.
    pub fn try_send(&self, job: Job) -> Result<(), Refused> {
        if self.is_full() {
            return Err(Refused(Box::new(job)));
        }
        self.tx.send(job).map_err(|job| Refused(Box::new(job)))
    }
    /// Jobs waiting for a worker.
    pub fn len(&self) -> usize {
        self.tx.len()
    }
    /// The queue, for the telemetry's snapshots (`len` when one is taken).
    pub fn probe(&self) -> crate::telemetry::QueueProbe {
        self.tx.probe()
    }
    pub fn is_empty(&self) -> bool {
        self.tx.is_empty()
    }
    pub fn is_full(&self) -> bool {
        self.tx.len() >= self.depth
    }
    /// Queues `job` past `depth`: for the few jobs that must not be lost (a WebSocket
    /// session's `on_close`, an upload sink's `abort`, an application value to drop: at
    /// most a few per connection, so bounded by `max_connections`). Gives it back only
    /// when no worker is left.
    pub fn send_always(&self, job: Job) -> Result<(), Refused> {
        self.tx.send(job).map_err(|job| Refused(Box::new(job)))
    }
    /// Tells an upload's sink that its client left (`BodySink::abort`, on a worker), even
    /// when the queue is full: a dropped abort leaves what the sink stored behind (a
    /// `DiskFiles` `.part` file), and any client can fill the queue.
    pub fn abort_upload(&self, sink: Sink) {
        if self.send_always(Job::UploadAbort(sink)).is_err() {
            debug!("no worker left: an upload's sink is dropped without its abort");
        }
    }
}

/// A job the queue did not take (full, or no worker left), given back. Boxed: it is rare
/// (overload, shutdown) and a `Job` is large.
pub(crate) struct Refused(Box<Job>);

impl Refused {
    pub fn into_inner(self) -> Job {
        *self.0
    }
}

/// Hands `value` to a worker to drop (its `Drop` is application code, which the loop
/// never runs), past the queue's depth if need be. Only with no worker left does it drop
/// here.
pub(crate) fn drop_off_loop(jobs: &JobQueue, value: Box<dyn Send>) {
    if let Err(e) = jobs.send_always(Job::Drop(value)) {
        debug!("no worker left: dropping an application value on the loop");
        drop(e.into_inner());
    }
}

/// Work for one connection: every complete request that was in its read buffer.
pub(crate) struct BatchJob {
    /// The right to write the connection, when the loop had nothing of its own pending:
    /// the worker writes the answers itself, and gives the right back in `Done`.
    pub right: Option<WriteRight>,
    /// The event loop that owns the connection (and hears back).
    pub loop_id: usize,
    pub token: usize,
    pub gen_: u32,
    pub conn_id: u64,
    pub peer: SocketAddr,
    /// The read buffer the requests are in; `None` once the worker has moved it into
    /// its `Done` (the job is worked on in place, not moved: 176 bytes copied each time).
    pub batch: Option<Arc<Batch>>,
    pub reqs: Vec<ReqMeta>,
    /// `None` once the batch is answered: the worker lets go of it before its `Done`
    /// goes back, so the loop finds it unshared and reuses it (`Buffers::put_cancel`).
    pub cancel: Option<CancelFlag>,
    /// What the loop and the worker tell each other about this batch.
    pub signal: BatchSignal,
    /// An empty buffer from the loop's pool to encode the responses into.
    pub out: Vec<u8>,
    /// When the loop queued the job (for the trace line).
    pub queued_at: Instant,
}

/// A finished batch.
pub(crate) struct Done {
    pub token: usize,
    pub gen_: u32,
    pub conn_id: u64,
    /// The right to write the connection, back from the worker that carried it.
    pub right: Option<WriteRight>,
    /// Every response of the batch up to (and including) the head of a streamed one.
    pub out: Vec<u8>,
    /// How much of `out` the worker already wrote to the socket.
    pub written: usize,
    /// The worker's write failed (the client is gone).
    pub write_failed: bool,
    /// Close the connection after writing (a response said `Connection: close`).
    pub close: bool,
    /// A streamed body whose head (and first pieces) end `out`.
    pub stream: Option<(StreamSrc, StreamFraming)>,
    /// Where the first request the worker did not run starts in the batch buffer: the
    /// loop parses it (and the rest) again once this batch's answers are out.
    pub resume_at: Option<u32>,
    /// How many requests were handed back that way.
    pub handed_back: usize,
    /// The first handed-back request's first-byte stamp: it came with the batch, not
    /// with whatever the loop read since.
    pub resume_first_byte: crate::telemetry::Stamp,
    /// The batch's read buffer, back for reuse.
    pub batch: Option<Arc<Batch>>,
    /// The (emptied) request list, back for reuse.
    pub reqs: Vec<ReqMeta>,
    /// The pulled stream's producer failed while the worker produced its first pieces:
    /// the loop writes what is in `out` and closes without ending the body.
    pub stream_failed: bool,
    /// The last answer switches protocols: once `out` is written, the connection goes to
    /// this callback, with the batch's bytes from the offset on as read-ahead.
    pub upgrade: Option<(Takeover, u32)>,
    /// The last request's body is to be streamed to this sink (the answer comes later).
    pub upload: Option<UploadStart>,
    /// The last request's answer comes from an upstream the loop asks.
    #[cfg(feature = "proxy")]
    pub forward: Option<ForwardStart>,
}

/// An upstream exchange to run for the last request of a batch, and what its answer needs.
#[cfg(feature = "proxy")]
pub(crate) struct ForwardStart {
    pub ex: Box<crate::forward::Exchange>,
    pub method: Method,
    pub version: Version,
    /// Close after the answer.
    pub close: bool,
    /// The client sent `Expect: 100-continue` for the streamed body the exchange relays:
    /// it is told `100 Continue` when the body is wanted.
    pub client_expects: bool,
}

/// True when `resp` hands the request's streamed body to an upstream exchange.
fn forwards_body(resp: &Response) -> bool {
    #[cfg(feature = "proxy")]
    {
        resp.forward.as_ref().is_some_and(|f| f.upload.is_some())
    }
    #[cfg(not(feature = "proxy"))]
    {
        let _ = resp;
        false
    }
}

/// The upstream answered (or failed): turn it into the client's answer.
#[cfg(feature = "proxy")]
pub(crate) struct ForwardJob {
    pub loop_id: usize,
    pub token: usize,
    pub gen_: u32,
    pub respond: Box<dyn crate::forward::Respond>,
    pub what: Result<crate::client::ResponseHead, crate::forward::ExchangeError>,
    /// Which of the exchange's attempts answered (or failed last).
    pub attempt: usize,
    /// See `Exchange::extra_headers` and `Exchange::on_status`.
    pub extra_headers: Vec<(
        std::borrow::Cow<'static, str>,
        std::borrow::Cow<'static, str>,
    )>,
    pub on_status: Vec<Box<dyn FnOnce(u16) + Send>>,
    pub method: Method,
    pub version: Version,
    pub close: bool,
}

/// The client's answer to an exchange: `out` holds its head (and, without `relay`, the
/// whole answer).
#[cfg(feature = "proxy")]
pub(crate) struct Forwarded {
    pub token: usize,
    pub gen_: u32,
    pub out: Vec<u8>,
    /// How the upstream's body follows; `None`: it does not (the answer is complete).
    pub relay: Option<crate::forward::Relay>,
    /// Close after the answer.
    pub close: bool,
}

impl Done {
    /// A completion whose only news is `out`, the answers to write (then close or not);
    /// the other fields say "nothing else" and are set where there is more.
    fn answer(token: usize, gen_: u32, conn_id: u64, out: Vec<u8>, close: bool) -> Done {
        Done {
            token,
            gen_,
            conn_id,
            right: None,
            out,
            written: 0,
            write_failed: false,
            close,
            stream: None,
            resume_at: None,
            handed_back: 0,
            resume_first_byte: 0,
            stream_failed: false,
            upgrade: None,
            upload: None,
            #[cfg(feature = "proxy")]
            forward: None,
            batch: None,
            reqs: Vec::new(),
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        // A stream nobody took (the loop stopped, or the connection is gone): close it so
        // its producer's next send fails and the worker it holds is released.
        if let Some((StreamSrc::Channel(s), _)) = self.stream.take() {
            s.close();
        }
    }
}

/// How a streamed body's chunks are framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamFraming {
    /// HTTP/1.1: chunked transfer-encoding.
    Chunked,
    /// HTTP/1.0: raw bytes, the end of the body is the end of the connection.
    UntilClose,
    /// Raw bytes whose `Content-Length` the head states: a fixed body over
    /// `LARGE_BODY`, sent piece by piece as the client takes it (`pieces_of`).
    Length,
}

impl StreamFraming {
    /// The most a stream of this framing keeps unwritten: a large fixed body is held to
    /// `LARGE_BODY_WINDOW` (its bytes are all there: no producer's pace to smooth).
    pub fn window(self, stream_buffer_bytes: usize) -> usize {
        match self {
            StreamFraming::Length => stream_buffer_bytes.min(LARGE_BODY_WINDOW),
            _ => stream_buffer_bytes,
        }
    }
}

/// A fixed body (`Static`, `Bytes`) larger than this is not copied whole into the write
/// buffer: it is pulled piece by piece as the client takes it, like a stream, with its
/// `Content-Length` stated. A client that asks for a large answer and never reads holds
/// the window below, not a copy of the whole answer (`tests/exhaustion_loops_review.rs`).
/// The same as the cap on one batch's answers.
const LARGE_BODY: usize = BATCH_OUT_CAP;

/// What a large fixed body keeps unwritten at most, and what one pull takes of it.
const LARGE_BODY_WINDOW: usize = 64 * 1024;
const LARGE_BODY_PIECE: usize = 16 * 1024;

/// A large fixed body as a pulled stream: `LARGE_BODY_PIECE` bytes a piece, copied from
/// the handler's bytes, which the producer keeps (a `&'static` body is not copied at all
/// until a piece of it is asked for).
fn pieces_of(body: std::borrow::Cow<'static, [u8]>) -> crate::response::Pull {
    let mut at = 0;
    Box::new(move || {
        let end = (at + LARGE_BODY_PIECE).min(body.len());
        let piece = body.get(at..end).filter(|p| !p.is_empty())?.to_vec();
        at = end;
        Some(Ok(piece))
    })
}

/// What workers (and stream senders) tell the loop.
pub(crate) enum Completion {
    /// A batch is answered.
    Done(Done),
    /// A stream has new chunks or finished.
    StreamReady { token: usize, gen_: u32 },
    /// A pull job is back.
    Pulled(Pulled),
    /// A body sink took its piece and waits for the next.
    Piece(Piece),
    /// A WebSocket session is back from its events.
    #[cfg(feature = "ws")]
    WsDone(WsDone),
    /// A WebSocket connection's send queue has frames.
    #[cfg(feature = "ws")]
    WsOutput { token: usize, gen_: u32 },
    /// An upstream exchange's answer is ready to relay.
    #[cfg(feature = "proxy")]
    Forwarded(Forwarded),
    /// A connection another loop accepted from the socket they share, handed to this one
    /// (`Notifier::hand`); its place in `max_connections` is taken.
    Accepted(mio::net::TcpStream, std::net::SocketAddr),
}

/// A WebSocket session and what to tell it, on its way to a worker.
#[cfg(feature = "ws")]
pub(crate) struct WsJob {
    pub loop_id: usize,
    pub token: usize,
    pub gen_: u32,
    pub session: Box<dyn crate::ws::Session>,
    pub sender: crate::ws::Sender,
    pub events: Vec<crate::ws::session::Event>,
}

/// A WebSocket session back from a worker: `None` once its `on_close` ran (the worker
/// dropped it).
#[cfg(feature = "ws")]
pub(crate) struct WsDone {
    pub token: usize,
    pub gen_: u32,
    pub session: Option<Box<dyn crate::ws::Session>>,
}

/// State every worker shares.
pub(crate) struct PoolShared {
    /// One per event loop: a job's answer goes to the loop that owns its connection.
    pub notifiers: Arc<[Notifier]>,
    /// Set when drain starts: the last response of each batch says `Connection: close`.
    pub draining: Arc<AtomicBool>,
    /// Batches not run because their connection was already closed when a worker took
    /// them (the client reset, or the drain force-closed it).
    pub skipped: std::sync::atomic::AtomicU64,
    /// `stream_buffer_bytes`: how much of a pulled stream a worker produces right after
    /// its handler returns.
    pub stream_buffer_bytes: usize,
    /// The workers held in reserve for blocking handlers.
    pub reserve: Arc<Reserve>,
    /// Stage timings and counters; each worker writes only its own shard.
    pub tel: Arc<telemetry::Shared>,
    /// The server's connections speak TLS (`Request::is_tls`).
    pub tls: bool,
}

/// Starts one worker per core (at most `n`) reading jobs from `rx`; the others, up to `n`,
/// are started by the [`Reserve`] when handlers block.
pub(crate) fn spawn_workers(
    threads: &Arc<Mutex<crate::server::ThreadGroup>>,
    n: usize,
    rx: Receiver<Job>,
    shared: Arc<PoolShared>,
    app: Arc<dyn Handler>,
) -> std::io::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let hot = n.min(cores);
    let start = {
        let (threads, rx, shared, app) = (threads.clone(), rx, shared.clone(), app);
        move |i: usize| {
            let (rx, shared, app) = (rx.clone(), shared.clone(), app.clone());
            let in_reserve = i >= hot;
            let mut group = threads.lock().unwrap_or_else(|e| e.into_inner());
            group.spawn(format!("h1-worker-{i}"), move || {
                worker(rx, shared, app, in_reserve, i)
            })
        }
    };
    let mut spawner = Spawner {
        start: Box::new(start),
        next: 0,
        max: n,
    };
    while spawner.next < hot {
        (spawner.start)(spawner.next)?;
        spawner.next += 1;
    }
    shared.reserve.set_spawner(spawner);
    Ok(())
}

fn worker(
    rx: Receiver<Job>,
    shared: Arc<PoolShared>,
    app: Arc<dyn Handler>,
    in_reserve: bool,
    i: usize,
) {
    let mut date = DateCache::new();
    let stats = shared.tel.worker(i);
    let run_counted = |job, date: &mut DateCache| {
        stats.set(&stats.busy, 1);
        run(job, date, &shared, &*app, stats);
        stats.set(&stats.busy, 0);
        shared.reserve.finished.fetch_add(1, Ordering::Relaxed);
    };
    if !in_reserve {
        while let Some(job) = rx.recv() {
            run_counted(job, &mut date);
        }
        return;
    }
    while shared.reserve.wait() {
        trace!("a reserve worker was released");
        while let Some(job) = rx.try_recv() {
            run_counted(job, &mut date);
        }
    }
}

/// Does one job and reports to the loop; `stats` is this worker's shard.
pub(crate) fn run(
    mut job: Job,
    date: &mut DateCache,
    shared: &PoolShared,
    app: &dyn Handler,
    stats: &Stats,
) {
    match job {
        // In place: binding the batch by value copied it out of the `Job` (a `memcpy`
        // of 176 bytes a request). What the worker did not move out drops with `job`.
        Job::Batch(ref mut b) => run_batch(b, date, shared, app, stats),
        Job::Pull(mut p) => {
            let end = pull_pieces(&mut p.pull, p.framing, p.want, &mut p.out);
            shared.notifiers[p.loop_id].send(Completion::Pulled(Pulled {
                token: p.token,
                gen_: p.gen_,
                pull: (end == PullEnd::More).then_some(p.pull),
                out: p.out,
                end,
            }));
        }
        Job::Upgrade(f, up) => {
            if catch_unwind(AssertUnwindSafe(|| f(up))).is_err() {
                error!("an upgrade callback panicked");
            }
        }
        Job::Upload(u) => {
            let d = *date.get(unix_secs());
            let notifier = &shared.notifiers[u.loop_id];
            notifier.send(feed_sink(u, shared, &d, stats));
        }
        #[cfg(feature = "ws")]
        Job::Ws(mut j) => {
            // `None`: its on_close ran and it was dropped here (user code, on a worker).
            let session = crate::ws::session::run_job(j.session, &j.sender, &mut j.events);
            shared.notifiers[j.loop_id].send(Completion::WsDone(WsDone {
                token: j.token,
                gen_: j.gen_,
                session,
            }));
        }
        #[cfg(feature = "proxy")]
        Job::Forward(j) => {
            let d = *date.get(unix_secs());
            let notifier = &shared.notifiers[j.loop_id];
            // While the server drains, every answer says `Connection: close`.
            let draining = shared.draining.load(Ordering::Acquire);
            notifier.send(Completion::Forwarded(answer_forward(
                j, &d, stats, draining,
            )));
        }
        Job::Drop(value) => {
            if catch_unwind(AssertUnwindSafe(move || drop(value))).is_err() {
                error!("dropping an application value panicked");
            }
        }
        Job::UploadAbort(sink) => {
            if catch_unwind(AssertUnwindSafe(|| sink.abort())).is_err() {
                error!("a body sink panicked in abort");
            }
        }
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs one batch, writes its answers when it holds the socket, and reports to the loop.
fn run_batch(
    job: &mut BatchJob,
    date: &mut DateCache,
    shared: &PoolShared,
    app: &dyn Handler,
    stats: &Stats,
) {
    let date = *date.get(unix_secs());
    let (right, signal) = (job.right.take(), job.signal.clone());
    let notifier = &shared.notifiers[job.loop_id];
    if signal.is_conn_closed() {
        // The loop already closed this connection (client reset, forced drain): no
        // one can receive these answers, and running handlers would only delay the
        // shutdown. The completion still goes back to keep the loop's count.
        let n = shared.skipped.fetch_add(1, Ordering::Relaxed) + 1;
        debug!(
            "conn={} closed before its batch ran: {} request(s) not run ({n} batch(es) skipped so far)",
            job.conn_id,
            job.reqs.len()
        );
        job.reqs.clear();
        let out = std::mem::take(&mut job.out);
        let mut done = Done::answer(job.token, job.gen_, job.conn_id, out, true);
        done.right = right;
        done.batch = job.batch.take();
        done.reqs = std::mem::take(&mut job.reqs);
        job.cancel = None;
        notifier.push(Completion::Done(done));
        notifier.wake();
        return;
    }
    let mut done = run_job(job, app, &date, shared, stats);
    if let Some((StreamSrc::Pull(pull), framing)) = &mut done.stream {
        // The first pieces go out with the head: a short stream is answered whole,
        // with no round trip to the loop.
        let want = framing.window(shared.stream_buffer_bytes);
        match pull_pieces(pull, *framing, want, &mut done.out) {
            PullEnd::More => {}
            PullEnd::Ended => {
                if *framing == StreamFraming::Chunked {
                    encode::write_last_chunk(&mut done.out);
                }
                done.stream = None;
                stats.bump(&stats.streams_ended, 1);
            }
            PullEnd::Failed => {
                done.stream_failed = true;
                stats.bump(&stats.streams_ended, 1);
            }
        }
    }
    let mut urgent = true;
    if let Some(right) = right
        .as_ref()
        .filter(|_| done.stream.is_none() && !done.stream_failed)
    {
        match right.write_now(&done.out) {
            Ok(n) => {
                trace!(
                    "conn={} response written by the worker: {n} bytes",
                    done.conn_id
                );
                stats.bump(&stats.bytes_out, n as u64);
                done.written = n;
                if n == done.out.len() && done.upload.is_none() {
                    // Every answer is out: their requests are finished here.
                    let written = Some(if shared.tel.stages() {
                        shared.tel.now()
                    } else {
                        0
                    });
                    finish_traces(&mut done, shared, stats, written);
                }
                // The loop must act now for a partial write, a close, an upload to read,
                // an upgrade to hand over, an exchange to start with an upstream, or
                // requests handed back to parse.
                urgent = n < done.out.len()
                    || done.close
                    || done.upload.is_some()
                    || done.upgrade.is_some()
                    || forwards(&done)
                    || done.resume_at.is_some();
            }
            Err(e) => {
                debug!("conn={} write failed: {e}", done.conn_id);
                done.write_failed = true;
                finish_traces(&mut done, shared, stats, None);
            }
        }
    }
    done.right = right;
    // Its requests are done with the flag: the loop may reuse it as soon as it has `done`.
    job.cancel = None;
    // A fully written keep-alive batch needs nothing from the loop until the client
    // sends again, which wakes the loop by itself: don't wake it (no eventfd write,
    // no context switch). Unless the loop said it is waiting for this connection.
    notifier.push(Completion::Done(done));
    std::sync::atomic::fence(Ordering::SeqCst);
    if urgent || signal.is_loop_waiting() {
        notifier.wake();
    }
}

/// The batch ends in an exchange the loop starts with an upstream: nothing else would
/// wake a sleeping loop for it (no client byte is due), so it waited a timer tick.
#[cfg(feature = "proxy")]
fn forwards(done: &Done) -> bool {
    done.forward.is_some()
}
#[cfg(not(feature = "proxy"))]
fn forwards(_: &Done) -> bool {
    false
}

/// Records the requests of a batch whose answers are written (`written` `None`: never
/// will be).
fn finish_traces(done: &mut Done, shared: &PoolShared, stats: &Stats, written: Option<u64>) {
    for m in done.reqs.drain(..) {
        if m.trace.ran() {
            m.trace.finish(&shared.tel, stats, done.conn_id, written);
        }
    }
}

/// Encoded answers after which a worker stops running the batch's handlers and hands the
/// remaining requests back to the loop: a client that pipelines many requests for large
/// answers and never reads must not make one batch buffer them all.
const BATCH_OUT_CAP: usize = 256 * 1024;

/// Runs the requests of the job in order and encodes the responses. Stops early — the
/// rest go back to the loop (`Done::resume_at`) — after a streamed response (the requests
/// behind it must not run before its body is produced, RFC 9112 §9.3.2) or once
/// `BATCH_OUT_CAP` bytes are encoded; stops for good after a `Connection: close`.
fn run_job(
    job: &mut BatchJob,
    app: &dyn Handler,
    date: &[u8; 29],
    shared: &PoolShared,
    stats: &Stats,
) -> Done {
    let tel = &*shared.tel;
    let n = job.reqs.len();
    let mut out = std::mem::take(&mut job.out);
    let mut stream: Option<(StreamSrc, StreamFraming)> = None;
    let mut upgrade = None;
    let mut upload = None;
    #[cfg(feature = "proxy")]
    let mut forward: Option<ForwardStart> = None;
    let mut close = false;
    let mut next = 0;
    trace!(
        "conn={} batch of {n} picked up by a worker after {:?}",
        job.conn_id,
        job.queued_at.elapsed()
    );
    while next < n && stream.is_none() && !close {
        if out.len() >= BATCH_OUT_CAP {
            break;
        }
        let i = next;
        next += 1;
        let meta = &mut job.reqs[i];
        let mut c = meta.close;
        let (method, version) = (meta.head.method, meta.head.version);
        let streamed = matches!(meta.body, BodyRef::Streamed(_));
        let expect_continue = meta.head.expect_continue;
        // The request ends with this block, dropped where it lies (its batch's bytes go
        // back with it): `drop(req)` moved its 288 bytes first, two `memcpy`s a request.
        let (mut resp, mut upload_route, upgrade_asked) = {
            let mut req = Request::new(
                job.batch
                    .clone()
                    .expect("a batch's buffer stays with its job until it is answered"),
                meta.head.clone(),
                std::mem::replace(&mut meta.body, BodyRef::Empty),
                job.cancel
                    .clone()
                    .expect("a batch keeps its cancel flag until answered"),
                job.peer,
                job.conn_id,
            );
            req.set_tls(shared.tls);
            if tel.stages() {
                meta.trace.tl.handler_start = tel.now();
            }
            trace!(
                "conn={} req={} stage=handler_start",
                job.conn_id, meta.trace.seq
            );
            let resp = match catch_unwind(AssertUnwindSafe(|| app.call(&mut req))) {
                Ok(r) => r,
                Err(p) => {
                    let msg = p
                        .downcast_ref::<&str>()
                        .copied()
                        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
                        .unwrap_or("?");
                    error!(
                        "conn={} handler panicked on {} {}: {msg}; answering 500",
                        job.conn_id,
                        req.method_str(),
                        req.path()
                    );
                    Response::error(500, "")
                }
            };
            let mut resp = resp;
            let meta = &mut job.reqs[i];
            trace_handler_end(meta, &req, &mut resp, tel, stats, streamed);
            let upload_route = (streamed && resp.sink.is_some())
                .then(|| req.route_arc().cloned())
                .flatten();
            let upgrade_asked = resp.upgrade.is_some() && req.header("upgrade").is_some();
            (resp, upload_route, upgrade_asked)
        };
        c |= resp.wants_close();
        if i + 1 == n && shared.draining.load(Ordering::Acquire) {
            c = true;
        }
        match (resp.sink.take(), streamed) {
            (Some(sink), true) => {
                // The body is read by the loop and fed to the sink; the answer comes when
                // it is complete. The request is the batch's last (nothing is parsed
                // behind an unread body).
                let remaining = req_body_len(&job.reqs[i]);
                // Its answer comes from the sink: counted then (feed_sink), not recorded
                // as a finished request now.
                job.reqs[i].trace = Trace::default();
                upload = Some(UploadStart {
                    sink,
                    remaining,
                    method,
                    version,
                    close: c,
                    expect_continue,
                    route: upload_route.take(),
                });
                break;
            }
            (Some(_), false) => {
                error!(
                    "conn={} Response::read_body for a request whose body was already read; answering 500",
                    job.conn_id
                );
                resp = Response::error(500, "");
            }
            // Answered without reading the streamed body: close after the answer (unless
            // the answer is an upstream's, which the loop relays the body to).
            (None, true) => c |= !forwards_body(&resp),
            (None, false) => {}
        }
        #[cfg(feature = "proxy")]
        if let Some(mut ex) = resp.forward.take() {
            ex.extra_headers = resp.take_headers();
            // The answer comes from the upstream, relayed by the loop: the requests behind
            // this one wait for it (handed back, like after a stream).
            forward = Some(ForwardStart {
                client_expects: streamed && expect_continue,
                ex,
                method,
                version,
                close: c,
            });
            break;
        }
        if let Some(f) = resp.upgrade.take() {
            if resp.status() == 101 && version == Version::Http10 {
                // RFC 9110 §15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0
                // client", and §7.8: a server MUST ignore Upgrade in an HTTP/1.0 request.
                // 400, as the WebSocket handshake answers an HTTP/1.0 request.
                debug!(
                    "conn={} not switching protocols for an HTTP/1.0 request: 400",
                    job.conn_id
                );
                resp = Response::error(400, "switching protocols needs HTTP/1.1\n");
            } else if resp.status() == 101 && !upgrade_asked {
                // RFC 9110 §7.8: "A server MUST NOT switch to a protocol that was not
                // indicated by the client in the corresponding request's Upgrade header
                // field."
                error!(
                    "conn={} a handler answered 101 to a request without Upgrade; sending 500",
                    job.conn_id
                );
                resp = Response::error(500, "");
            } else if c {
                // The connection closes after this answer (the server drains, the client
                // asked, the request limit): it cannot switch protocols. 503, as for any
                // request the server will not take on now.
                debug!(
                    "conn={} not switching protocols on a closing connection: 503",
                    job.conn_id
                );
                resp = Response::error(503, "not switching protocols: the connection is closing\n");
            } else if matches!(resp.body, Body::Stream(_)) {
                error!(
                    "conn={} an upgrade on a streamed response is ignored",
                    job.conn_id
                );
            } else {
                // The connection leaves HTTP after this answer: the requests behind it are
                // the new protocol's bytes, not requests (RFC 9110 §7.8).
                // From the end of this request, not from the next one's method: the empty
                // lines a pipelined request may start with are the new protocol's too.
                let rest_at = job.reqs[i].end;
                // The socket is handed over once this answer is written: its body goes
                // with its head, whole (no stream follows an upgrade).
                encode_whole(&mut out, resp, method, version, Connect::Upgrade, date);
                upgrade = Some((f, rest_at));
                break;
            }
        }
        if method == Method::Connect && (200..300).contains(&resp.status()) {
            // RFC 9112 §6.3 item 2: after a 2xx to CONNECT the connection is a tunnel, so
            // what the client sends next is never a request. Without a takeover
            // (`Response::upgrade`) the engine carries no tunnel: the answer ends the
            // connection.
            c = true;
        }
        let connect = if c {
            Connect::Close
        } else {
            Connect::KeepAlive
        };
        if let Encoded::Stream(s, framing) =
            encode_response(&mut out, resp, method, version, connect, date)
        {
            stats.bump(&stats.streams_started, 1);
            if framing == StreamFraming::UntilClose {
                c = true;
            }
            // A large fixed body goes out as a stream too: the record says so, beside
            // the writes it shows (the handler's own `is_stream` said no).
            if let Some(rec) = &mut job.reqs[i].trace.record {
                rec.streamed = true;
            }
            stream = Some((s, framing));
        }
        // RFC 9112 §9.6: after a response with "close", no further request on this
        // connection is answered.
        close = c;
    }
    #[cfg(feature = "proxy")]
    let forward_closes = forward.as_ref().is_some_and(|f| f.close);
    #[cfg(not(feature = "proxy"))]
    let forward_closes = false;
    let resume_at =
        (!close && upgrade.is_none() && upload.is_none() && !forward_closes && next < n)
            .then(|| job.reqs[next].head.method_span.start);
    if resume_at.is_some() {
        trace!(
            "conn={} {} request(s) handed back to the loop",
            job.conn_id,
            n - next
        );
    }
    let resume_first_byte = job.reqs.get(next).map_or(0, |m| m.trace.tl.first_byte);
    // The requests that ran keep their traces until their answers are written.
    job.reqs.truncate(next);
    let mut done = Done::answer(job.token, job.gen_, job.conn_id, out, close);
    done.stream = stream;
    done.resume_at = resume_at;
    if resume_at.is_some() {
        done.handed_back = n - next;
        done.resume_first_byte = resume_first_byte;
    }
    done.upgrade = upgrade;
    done.upload = upload;
    #[cfg(feature = "proxy")]
    {
        done.forward = forward;
    }
    // Moved out of its `Option` (not `mem::take`n from a bare `Arc`, which would put a
    // fresh `Arc::default()` in the job, an allocation and a free per batch): the worker
    // holds no reference once `done` is pushed, so the loop gets it back unshared.
    done.batch = job.batch.take();
    // The emptied list keeps its capacity for the loop's next batch.
    done.reqs = std::mem::take(&mut job.reqs);
    done
}

/// The handler returned: stamps the end, counts the request, builds its record for the
/// ring (when recording) and adds `Server-Timing` (when asked).
fn trace_handler_end(
    meta: &mut ReqMeta,
    req: &Request,
    resp: &mut Response,
    tel: &telemetry::Shared,
    stats: &Stats,
    upload: bool,
) {
    let t = &mut meta.trace;
    if tel.stages() {
        t.tl.handler_end = tel.now();
    }
    t.status = resp.status();
    let route = req.route_arc();
    trace!(
        "conn={} req={} stage=handler_end status={}",
        req.conn_id(),
        t.seq,
        t.status
    );
    // An upload's answer comes when its sink is done: it is not counted here.
    #[cfg(feature = "proxy")]
    let forwarded = resp.forward.is_some();
    #[cfg(not(feature = "proxy"))]
    let forwarded = false;
    // A forwarded answer is counted when the upstream's head is turned into it.
    if !(forwarded || upload && resp.sink.is_some()) {
        stats.count_request(meta.head.method, t.status, route);
    }
    stats.observe_handler(&t.tl);
    if tel.recording() {
        let mut rec = telemetry::record_of(req, t.seq);
        rec.route = route.cloned();
        rec.streamed = resp.is_stream();
        t.record = Some(rec);
    }
    if tel.server_timing {
        let (p, q, h) = (t.tl.parse(), t.tl.queue_wait(), t.tl.handler());
        let (p, q, h) = (Millis(p), Millis(q), Millis(h));
        resp.set_header(
            "Server-Timing",
            format!("parse;dur={p}, queue;dur={q}, handler;dur={h}"),
        );
    }
}

/// A duration as milliseconds with three decimals (`1.250`; 0 when unknown), printed with
/// integers: `{:.3}` of an `f64` would link the float formatter (21 KB of the
/// stripped engine) for this one header.
struct Millis(Option<std::time::Duration>);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Rounded to the microsecond, as `{:.3}` would (an exact half rounds up here; the
        // float's binary value may round it either way).
        let micros = self.0.map_or(0, |d| {
            let sub = u64::from(d.subsec_nanos() + 500) / 1000;
            d.as_secs().saturating_mul(1_000_000).saturating_add(sub)
        });
        write!(f, "{}.{:03}", micros / 1000, micros % 1000)
    }
}

#[cfg(test)]
mod millis_tests {
    use super::Millis;
    use std::time::Duration;

    #[test]
    fn prints_like_the_float_formatter() {
        let cases = [
            0,
            1,
            499,
            501,
            999_499,
            999_501,
            1_234_567,
            1_999_999_999,
            61_000_000_001,
        ];
        for nanos in cases {
            let d = Duration::from_nanos(nanos);
            let float = format!("{:.3}", d.as_secs_f64() * 1e3);
            assert_eq!(Millis(Some(d)).to_string(), float, "{nanos} ns");
        }
        assert_eq!(
            Millis(Some(Duration::from_nanos(1_500))).to_string(),
            "0.002"
        );
        assert_eq!(Millis(None).to_string(), "0.000");
    }
}

/// What the Connection field of an answer says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Connect {
    KeepAlive,
    Close,
    Upgrade,
}

enum Encoded {
    Complete,
    Stream(StreamSrc, StreamFraming),
}

/// `encode_response` for an answer that cannot be followed by a stream (an upgrade's, a
/// reverse proxy's own): a large fixed body is copied whole after its head, as a small
/// one is. A streamed body (`Body::Stream`) is still the caller's to refuse.
fn encode_whole(
    out: &mut Vec<u8>,
    resp: Response,
    method: Method,
    version: Version,
    connect: Connect,
    date: &[u8; 29],
) -> Encoded {
    match encode_response(out, resp, method, version, connect, date) {
        Encoded::Stream(StreamSrc::Pull(mut pull), StreamFraming::Length) => {
            // `pieces_of`: bytes already in memory, it neither fails nor panics.
            while let Some(Ok(piece)) = pull() {
                out.extend_from_slice(&piece);
            }
            Encoded::Complete
        }
        e => e,
    }
}

/// Serialises one response (RFC 9112 §6: framing; RFC 9110 §9.3.2: HEAD gets the headers of
/// GET and no content; §15: 1xx, 204 and 304 carry no content).
fn encode_response(
    out: &mut Vec<u8>,
    resp: Response,
    method: Method,
    version: Version,
    connect: Connect,
    date: &[u8; 29],
) -> Encoded {
    let mut status = resp.status();
    let close = connect == Connect::Close;
    if status > 599 {
        // RFC 9110 §15: status codes are three digits, 100 to 599.
        error!("a handler answered status {status}; sending 500");
        status = 500;
    }
    if status < 200 && !(status == 101 && connect == Connect::Upgrade) {
        // A 1xx is an interim answer: as the final one it would leave the client waiting
        // for another (RFC 9110 §15.2). Only the engine sends interim answers.
        error!("a handler answered {status} as its final status; sending 500");
        status = 500;
    }
    // RFC 9110 §8.6 and RFC 9112 §6.1: no Content-Length or Transfer-Encoding in a 2xx
    // to CONNECT (§6.3 item 2: the tunnel starts after the head), and no `Connection:
    // Upgrade` either: a tunnel is not a protocol switch.
    let tunnel = method == Method::Connect && (200..300).contains(&status);
    let connection = if connect == Connect::Upgrade {
        if tunnel {
            ConnectionField::Omit
        } else {
            ConnectionField::Upgrade
        }
    } else if close {
        ConnectionField::Close
    } else if version == Version::Http10 {
        ConnectionField::KeepAlive
    } else {
        ConnectionField::Omit
    };
    let has_body = encode::status_has_body(status);
    // RFC 9110 §15.3.6: "a server MUST NOT generate content in a 205 response"; it says
    // so with `Content-Length: 0` (a 205 without framing would be read until the close).
    let reset_content = status == 205;
    let send_body = has_body && method != Method::Head && !reset_content;
    let headers = resp.headers().map(|(n, v)| (n, v.as_bytes()));
    match &resp.body {
        Body::Stream(_) => {
            let framing = match (has_body, version) {
                (false, _) => BodyFraming::None,
                _ if tunnel => BodyFraming::None,
                _ if reset_content => BodyFraming::Length(0),
                (true, Version::Http11) => BodyFraming::Chunked,
                (true, Version::Http10) => BodyFraming::None,
            };
            let connection = if version == Version::Http10 && send_body {
                ConnectionField::Close
            } else {
                connection
            };
            encode::write_head(out, status, date, headers, framing, connection);
        }
        body => {
            let bytes: &[u8] = match body {
                Body::Empty | Body::Stream(_) => &[],
                Body::Static(b) => b,
                Body::Bytes(v) => v,
            };
            let framing = if !has_body || tunnel {
                BodyFraming::None
            } else if reset_content {
                BodyFraming::Length(0)
            } else if method == Method::Head && bytes.is_empty() {
                // A HEAD handler of its own (not a GET route answering HEAD, whose body
                // is measured and dropped) has no body to measure. RFC 9110 §8.6: a
                // Content-Length in an answer to HEAD must equal what GET would send, so
                // the engine keeps the handler's own figure when it states one (digits
                // only) and sends none otherwise; it never invents 0.
                match resp
                    .headers()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| crate::http::parse::parse_content_length(v.as_bytes()))
                {
                    Some(n) => BodyFraming::Length(n),
                    None => BodyFraming::None,
                }
            } else {
                BodyFraming::Length(bytes.len() as u64)
            };
            encode::write_head(out, status, date, headers, framing, connection);
            if !send_body
                || bytes.len() <= LARGE_BODY
                || framing != BodyFraming::Length(bytes.len() as u64)
            {
                if send_body {
                    out.extend_from_slice(bytes);
                }
                return Encoded::Complete;
            }
        }
    }
    let sb = match resp.body {
        Body::Stream(sb) => sb,
        // A large fixed body, its head written: the rest as the client takes it.
        Body::Static(b) => {
            return Encoded::Stream(StreamSrc::Pull(pieces_of(b.into())), StreamFraming::Length);
        }
        Body::Bytes(v) => {
            return Encoded::Stream(StreamSrc::Pull(pieces_of(v.into())), StreamFraming::Length);
        }
        Body::Empty => unreachable!("an empty body is never large"),
    };
    let src = match sb {
        StreamBody::Pull(p) => StreamSrc::Pull(p),
        StreamBody::Channel(s) => StreamSrc::Channel(s),
    };
    if !send_body {
        // HEAD or a status without content: the head is all there is.
        if let StreamSrc::Channel(s) = src {
            s.close();
        }
        debug!("streamed body not sent (HEAD or status {status})");
        return Encoded::Complete;
    }
    let framing = if version == Version::Http10 || tunnel {
        StreamFraming::UntilClose
    } else {
        StreamFraming::Chunked
    };
    Encoded::Stream(src, framing)
}

/// Turns an upstream's head (or failure) into the client's answer: its head, and how the
/// upstream's body follows it (or the whole answer, when it does not).
#[cfg(feature = "proxy")]
fn answer_forward(j: ForwardJob, date: &[u8; 29], stats: &Stats, draining: bool) -> Forwarded {
    let ForwardJob {
        token,
        gen_,
        respond,
        what,
        attempt,
        method,
        version,
        mut close,
        extra_headers,
        on_status,
        ..
    } = j;
    close |= draining;
    let mut out = Vec::new();
    let decided = catch_unwind(AssertUnwindSafe(move || match what {
        Ok(head) => {
            let length = relayed_length(&head, method);
            respond.head(attempt, &head).map(|r| (r, length))
        }
        Err(e) => Err(respond.error(attempt, e)),
    }));
    let mut decided = decided.unwrap_or_else(|_| {
        error!("a reverse proxy hook panicked; answering 500");
        Err(Response::error(500, ""))
    });
    if let Ok((resp, _)) = &decided
        && resp.status() < 200
    {
        // A switching (or interim) answer cannot be relayed as the final one: upgrades
        // are not passed through. 502.
        error!(
            "an upstream answered {} as its final status; answering 502",
            resp.status()
        );
        decided = Err(Response::error(502, ""));
    }
    {
        let (Ok((resp, _)) | Err(resp)) = &mut decided;
        for (n, v) in extra_headers {
            resp.set_header(n, v);
        }
        let status = resp.status();
        stats.count_request(method, status, None);
        for f in on_status {
            if catch_unwind(AssertUnwindSafe(move || f(status))).is_err() {
                error!("a hook waiting for a forwarded answer's status panicked");
            }
        }
    }
    let relay = match decided {
        Err(resp) => {
            let connect = if close {
                Connect::Close
            } else {
                Connect::KeepAlive
            };
            if let Encoded::Stream(s, _) =
                encode_whole(&mut out, resp, method, version, connect, date)
            {
                // A streamed error page is not supported here: end it.
                if let StreamSrc::Channel(s) = s {
                    s.close();
                }
                close = true;
            }
            None
        }
        Ok((resp, length)) => {
            let (relay, c) =
                encode_forward_head(&mut out, &resp, length, method, version, close, date);
            close = c;
            Some(relay)
        }
    };
    Forwarded {
        token,
        gen_,
        out,
        relay,
        close,
    }
}

/// How the upstream's body is delimited, as the client's answer frames it: a HEAD's answer
/// keeps the length GET would have (RFC 9110 §9.3.2), when it is a valid `1*DIGIT` (RFC 9110
/// §8.6; `+5` or `5 5` is none).
#[cfg(feature = "proxy")]
pub(crate) fn relayed_length(
    head: &crate::client::ResponseHead,
    method: Method,
) -> crate::client::BodyLength {
    use crate::client::BodyLength;
    match head.body {
        BodyLength::None if method == Method::Head => head
            .header("content-length")
            .and_then(|v| {
                crate::http::parse::parse_content_length(v.trim_matches([' ', '\t']).as_bytes())
            })
            .map_or(BodyLength::None, BodyLength::Length),
        b => b,
    }
}

/// Encodes the client's head for a relayed upstream answer: `resp`'s status and headers,
/// framed for the upstream's body `length` and the client's `version`. Returns how the body
/// follows and whether the connection closes after it. Engine code only (the event loop's
/// fast path runs it too).
#[cfg(feature = "proxy")]
pub(crate) fn encode_forward_head(
    out: &mut Vec<u8>,
    resp: &Response,
    length: crate::client::BodyLength,
    method: Method,
    version: Version,
    close: bool,
    date: &[u8; 29],
) -> (crate::forward::Relay, bool) {
    let headers = resp.headers().map(|(n, v)| (n, v.as_bytes()));
    encode_forward_fields(
        out,
        resp.status(),
        headers,
        length,
        method,
        version,
        close,
        date,
    )
}

/// [`encode_forward_head`] from a status and fields (the loop's own head, borrowed).
#[cfg(feature = "proxy")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_forward_fields<'h>(
    out: &mut Vec<u8>,
    status: u16,
    headers: impl Iterator<Item = (&'h str, &'h [u8])>,
    length: crate::client::BodyLength,
    method: Method,
    version: Version,
    mut close: bool,
    date: &[u8; 29],
) -> (crate::forward::Relay, bool) {
    use crate::client::BodyLength;
    use crate::forward::Relay;
    let has_body = encode::status_has_body(status) && method != Method::Head;
    let (framing, relay) = match length {
        _ if !has_body => (
            match length {
                BodyLength::Length(n) if method == Method::Head => BodyFraming::Length(n),
                _ => BodyFraming::None,
            },
            Relay::None,
        ),
        BodyLength::None => (BodyFraming::Length(0), Relay::None),
        BodyLength::Length(n) => (BodyFraming::Length(n), Relay::Raw),
        BodyLength::Chunked | BodyLength::CloseDelimited => match version {
            Version::Http11 => (BodyFraming::Chunked, Relay::Chunked),
            Version::Http10 => {
                close = true;
                (BodyFraming::None, Relay::Raw)
            }
        },
    };
    let connection = if close {
        ConnectionField::Close
    } else if version == Version::Http10 {
        ConnectionField::KeepAlive
    } else {
        ConnectionField::Omit
    };
    encode::write_head(out, status, date, headers, framing, connection);
    (relay, close)
}

#[cfg(all(test, feature = "proxy"))]
mod relayed_length_tests {
    use super::*;
    use crate::client::{BodyLength, ResponseHead};

    #[test]
    fn a_heads_length_is_kept_only_when_it_is_1_digit() {
        let head = |cl: &str| ResponseHead {
            status: 200,
            version: Version::Http11,
            reason: "OK".into(),
            headers: vec![("Content-Length".into(), cl.as_bytes().to_vec())],
            body: BodyLength::None,
        };
        assert_eq!(
            relayed_length(&head("5"), Method::Head),
            BodyLength::Length(5)
        );
        for bad in ["+5", "-5", "5 5", "0x5", ""] {
            assert_eq!(
                relayed_length(&head(bad), Method::Head),
                BodyLength::None,
                "{bad:?}"
            );
        }
        assert_eq!(relayed_length(&head("5"), Method::Get), BodyLength::None);
    }
}

//! Adversarial review for resource exhaustion: for each feature, what N sockets doing
//! the worst thing can take from the server. Each test here failed when it was written;
//! its comment names the bound it breaks.
mod support;
use support::*;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// Non-blocking clients, each with the bytes its socket has not taken yet.
struct Senders(Vec<(TcpStream, Vec<u8>)>);

impl Senders {
    fn open(addr: std::net::SocketAddr, n: usize, head: &[u8]) -> Self {
        Senders(
            (0..n)
                .map(|_| {
                    let s = connect(addr);
                    s.set_nonblocking(true).unwrap();
                    (s, head.to_vec())
                })
                .collect(),
        )
    }

    /// Queues `bytes` on every client and writes what each socket takes now.
    fn push(&mut self, bytes: &[u8]) {
        for (s, pending) in self.0.iter_mut() {
            pending.extend_from_slice(bytes);
            let n = write_some(s, pending);
            pending.drain(..n);
        }
    }

    /// Bytes no socket has taken yet.
    fn pending(&self) -> usize {
        self.0.iter().map(|(_, p)| p.len()).sum()
    }
}

/// One chunk of `size` bytes of chunk data, framed.
fn chunk(size: usize) -> Vec<u8> {
    let mut c = format!("{size:x}\r\n").into_bytes();
    c.extend(std::iter::repeat_n(b'c', size));
    c.extend_from_slice(b"\r\n");
    c
}

const CHUNKED_HEAD: &[u8] =
    b"POST /sleep?ms=0 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Bound broken: `max_buffered_bytes` — DESIGN.md ("bytes held for all connections reach
/// `max_buffered_bytes` → stop reading bodies") and docs/ARCHITECTURE.md ("bounds what the
/// loop holds for all connections together … chunked bodies being decoded").
///
/// The budget is consulted only when a connection's *read buffer* must grow
/// (`conn/read.rs::fill`). A chunked body's framing is dropped from the read buffer as it
/// is decoded (`drop_chunk_framing`), so a client that sends its chunks a few KiB at a time
/// never makes the read buffer grow: the decoded body (`BodyProgress::Chunked { body }`)
/// grows to `max_body_bytes` without ever being checked against the budget, and is only
/// *counted* afterwards (`recharge`). 64 such stalled uploads hold ~64 MiB against an
/// 8 MiB budget, where the same uploads with `Content-Length` are refused `503` or wait.
#[test]
fn paced_chunked_uploads_are_held_within_the_memory_budget() {
    const CLIENTS: usize = 64;
    const PIECE: usize = 8192;
    const ROUNDS: usize = 120; // 960 KiB each, under the 1 MiB max_body_bytes
    let (child, addr) = spawn_hello(&[
        ("H1_MAX_BUFFERED_BYTES", "8MiB"),
        ("H1_READ_TIMEOUT", "60s"),
        ("H1_HEADER_READ_TIMEOUT", "60s"),
        ("RUST_LOG", "error"),
    ]);
    let pid = child.0.id();
    let before = rss_kib(pid);
    let mut clients = Senders::open(addr, CLIENTS, CHUNKED_HEAD);
    // A few KiB per connection per round: each read the server makes finds less than its
    // 16 KiB first buffer. The last chunk never comes: every upload stays in progress.
    let piece = chunk(PIECE);
    for _ in 0..ROUNDS {
        clients.push(&piece);
        std::thread::sleep(Duration::from_millis(4));
    }
    std::thread::sleep(Duration::from_millis(500));
    let held = rss_kib(pid).saturating_sub(before);
    // Within the budget: 8 MiB, plus the uncharged first buffers (64 × 16 KiB) and
    // slack. Unbounded: ~1 MiB of decoded body per connection, ~64 MiB.
    assert!(
        held < 32 * 1024,
        "{CLIENTS} stalled chunked uploads sent {PIECE} bytes at a time grew the server by \
         {held} KiB against an 8 MiB max_buffered_bytes"
    );
    drop(clients);
}

/// Bound broken: `max_buffered_bytes` — docs/ARCHITECTURE.md ("bounds what the loop holds
/// for all connections together beyond each connection's first 16 KiB read buffer (…
/// batches at workers …)"), DESIGN.md ("a new request needing more gets `503`").
///
/// A request's bytes stay charged while its batch waits for a worker
/// (`conn/mod.rs::recharge`, `Phase::Dispatched` → `f.batch_bytes`), but that is the size
/// of the *read buffer* handed over. A chunked body is decoded into a separate `Vec`
/// (`BodyRef::Owned`) that travels with the job and is not counted at all once dispatched:
/// with the workers busy, 64 complete 960 KiB chunked POSTs sit in the job queue holding
/// ~64 MiB against an 8 MiB budget. The same bodies sent with `Content-Length` are charged
/// at their head and refused `503` past the budget.
#[test]
fn chunked_bodies_queued_for_busy_workers_count_against_the_memory_budget() {
    const CLIENTS: usize = 64;
    let (child, addr) = spawn_hello(&[
        ("H1_WORKERS", "1"),
        ("H1_MAX_BUFFERED_BYTES", "8MiB"),
        ("H1_READ_TIMEOUT", "60s"),
        ("RUST_LOG", "error"),
    ]);
    let pid = child.0.id();
    // The only worker sleeps: every request after this one waits in the queue.
    let mut hold = connect(addr);
    hold.write_all(b"GET /sleep?ms=4000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib(pid);
    // Sent a few KiB at a time (as `paced_chunked_uploads_…` above), then the last chunk:
    // every request completes and goes to the queue.
    let mut clients = Senders::open(addr, CLIENTS, CHUNKED_HEAD);
    let piece = chunk(8192);
    for _ in 0..120 {
        clients.push(&piece); // 960 KiB in all, under max_body_bytes
        std::thread::sleep(Duration::from_millis(4));
    }
    clients.push(b"0\r\n\r\n");
    for _ in 0..20 {
        if clients.pending() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        clients.push(b"");
    }
    std::thread::sleep(Duration::from_millis(500));
    let held = rss_kib(pid).saturating_sub(before);
    assert!(
        held < 32 * 1024,
        "{CLIENTS} complete 960 KiB chunked POSTs queued behind a busy worker grew the server \
         by {held} KiB against an 8 MiB max_buffered_bytes"
    );
    // Every client gets an answer: 200 for the bodies the budget held (queued for the
    // worker), 503 for those it had no room for — never a hang.
    let mut statuses = std::collections::BTreeMap::new();
    for (s, _) in clients.0 {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        *statuses
            .entry(Reader::new(s).read_response().status)
            .or_insert(0) += 1;
    }
    assert!(
        statuses.keys().all(|s| [200, 503].contains(s)) && statuses.get(&200) > Some(&0),
        "{statuses:?}"
    );
}

/// Bound broken: docs/UPLOADS.md ("Exactly one of `finish`/`abort` ends it; `abort` runs
/// when the form is refused or the client leaves, to undo what was stored") and
/// docs/ARCHITECTURE.md ("its sink is told (`abort`, on a worker) when it leaves").
///
/// When an uploader leaves, the loop hands its sink to a worker with
/// `ctx.jobs.try_send(Job::UploadAbort(sink))` and ignores a refusal
/// (`conn/upload.rs::abort_upload`, and `conn/write.rs::on_done` for a deferred close).
/// With the queue full — which any client can arrange by sending `queue_depth` requests
/// to a slow route — the job is dropped on the loop: the sink is dropped (user code on
/// the loop) and `abort` never runs. `DiskFiles` leaves its `.part` file behind, so
/// uploaders who leave while the pool is busy leak disk space without bound.
#[test]
#[cfg(feature = "multipart")]
fn an_upload_left_while_the_queue_is_full_is_still_aborted() {
    use h1server::multipart::{self, DiskFiles, Limits};
    use h1server::{Config, Request, Response};
    use std::sync::mpsc;

    let dir = std::env::temp_dir().join(format!("h1-exhrev-abort-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let files_left = |dir: &std::path::Path| std::fs::read_dir(dir).unwrap().count();

    let gate = Gate::default();
    let (entered_tx, entered) = mpsc::channel::<()>();
    let entered_tx = std::sync::Mutex::new(entered_tx);
    let cfg = Config {
        workers: 1,
        queue_depth: 2,
        max_body_bytes: 1024,
        max_upload_bytes: 1 << 20,
        read_timeout: Duration::from_secs(10),
        ..test_config()
    };
    let (updir, g) = (dir.clone(), gate.clone());
    let server = TestServer::with_config(cfg, move |req: &mut Request| match req.path() {
        "/upload" => multipart::receive(
            req,
            Limits::default(),
            DiskFiles::new(updir.clone(), |_| Response::text("stored\n")),
        ),
        _ => {
            let _ = entered_tx.lock().unwrap().send(());
            g.wait(Duration::from_secs(10));
            Response::text("done\n")
        }
    });
    let _open = OpenOnDrop(gate.clone());

    // An upload in progress: its first part is stored in `<id>.part`.
    let data = vec![b'd'; 8000];
    let mut body =
        b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n\r\n".to_vec();
    let first = body.len() + 4000;
    body.extend_from_slice(&data);
    body.extend_from_slice(b"\r\n--B--\r\n");
    let mut up = server.connect();
    up.write_all(
        format!(
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    up.write_all(&body[..first]).unwrap();
    assert!(
        wait_until(IO_TIMEOUT, || files_left(&dir) == 1),
        "the upload's part file was never created"
    );

    // The pool is busy and the queue full: one request runs (and waits), two wait.
    let mut busy = Vec::new();
    for i in 0..3 {
        let mut s = Reader::new(server.connect());
        s.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
        busy.push(s);
        if i == 0 {
            entered
                .recv_timeout(IO_TIMEOUT)
                .expect("the slow handler runs");
        }
    }
    std::thread::sleep(Duration::from_millis(300));

    // The uploader leaves mid-body.
    drop(up);
    std::thread::sleep(Duration::from_millis(300));
    gate.open();
    for s in busy.iter_mut() {
        assert_eq!(s.read_response().status, 200);
    }
    // The sink's `abort` (on a worker) removes the partial file.
    let gone = wait_until(Duration::from_secs(3), || files_left(&dir) == 0);
    let left = files_left(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        gone,
        "{left} file(s) of an upload whose client left are still on disk: its sink was never \
         aborted (the abort job was dropped while the queue was full)"
    );
    drop(server);
}

/// Threads of process `pid` (from /proc).
fn threads(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Threads in /proc/<pid>/status")
}

/// Bound broken: DESIGN.md ("Streams … are state on the loop, not threads. N clients doing
/// the worst thing cost the server bounded memory and no worker") and the principle of
/// docs/ARCHITECTURE.md, in the server the docs offer for experiments (examples/hello).
///
/// `examples/hello.rs`'s `/stream` starts an OS thread per request (`std::thread::spawn`
/// in `app`), which lives `n` × 100 ms (up to 1000 s) whatever the client does: its ~90 KB
/// of chunks never fill the stream's 256 KiB queue nor the socket, so neither the
/// producer's `send` nor `write_timeout` ever stops a client that does not read. 200 such
/// requests hold 200 threads; a few thousand reach the thread limit.
#[test]
fn hello_streams_to_clients_that_do_not_read_hold_no_thread_each() {
    const CLIENTS: usize = 200;
    let (child, addr) = spawn_hello(&[("RUST_LOG", "error")]);
    let pid = child.0.id();
    let before = threads(pid);
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(b"GET /stream?n=10000 HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let grew = threads(pid).saturating_sub(before);
    drop(clients);
    // The pool's reserve may add up to `workers` (16 here); not one thread per stream.
    assert!(
        grew < 64,
        "{CLIENTS} /stream requests whose clients never read grew hello by {grew} threads"
    );
}

/// From the final review: a chunked body reserves memory for its own chunks, not for the
/// bytes pipelined behind it. Each of 64 small chunked POSTs sent in one write reserved
/// the rest of the read buffer (up to `max_body_bytes`) from the budget; with a 128 KiB
/// budget they were refused 503 although they hold five bytes each.
#[test]
fn small_pipelined_chunked_requests_reserve_only_what_they_decode() {
    let cfg = h1server::Config {
        max_buffered_bytes: 128 * 1024,
        max_body_bytes: 1024 * 1024,
        ..test_config()
    };
    let srv = TestServer::with_config(cfg, |req: &mut h1server::Request| {
        h1server::Response::text(format!("{}", req.body().len()))
    });
    let one = format!(
        "POST /c HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n0\r\n\r\n",
        "p".repeat(1000)
    );
    let mut c = Reader::new(srv.connect());
    c.send(one.repeat(64).as_bytes());
    for i in 0..64 {
        let r = c.read_response();
        assert_eq!((r.status, r.text()), (200, "5".to_string()), "request {i}");
    }
}

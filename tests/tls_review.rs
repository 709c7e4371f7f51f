//! Adversarial review of HTTPS (feature `tls`): each test names a defect, speaks to a real
//! server over real sockets with a TLS client of its own (rustls, driven record by record
//! so the test decides what goes out in which TCP write), and fails because of it. The
//! comment above each test states the correct behaviour and the promise it rests on.
#![cfg(feature = "tls")]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;

use std::sync::Arc;
use std::time::{Duration, Instant};

use h1server::{Config, Request, Response};
use support::*;

#[path = "support/live_heap.rs"]
mod live_heap;
use live_heap::{live_bytes, serial};

/// A self-signed certificate for `localhost` (ECDSA P-256, valid until 2126): the one
/// `src/tls.rs`'s unit tests use; a test key, protecting nothing. No `openssl` needed.
const CERT: &str = include_str!("data/localhost-cert.pem");
const KEY: &str = include_str!("data/localhost-key.pem");

/// The certificate and key in a temp dir (removed on drop).
struct Certs(PathBuf);

impl Certs {
    fn new(name: &str) -> Certs {
        let dir = std::env::temp_dir().join(format!("h1-tlsrev-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), CERT).unwrap();
        std::fs::write(dir.join("key.pem"), KEY).unwrap();
        Certs(dir)
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tls_config(certs: &Certs) -> Config {
    let mut cfg = test_config().with_tls(certs.0.join("cert.pem"), certs.0.join("key.pem"));
    cfg.tls_handshake_timeout = Duration::from_secs(2);
    cfg
}

fn app(req: &mut Request) -> Response {
    match req.path() {
        "/echo" => Response::new(200).with_body(req.body().to_vec()),
        "/cut" => Response::try_stream((0..3).map(|i| match i {
            0 => Ok(vec![b'a'; 1000]),
            1 => Ok(vec![b'b'; 1000]),
            _ => Err("the producer failed"),
        })),
        "/sleep" => {
            std::thread::sleep(Duration::from_millis(800));
            Response::text("slept\n")
        }
        p => Response::text(format!("hello over TLS: {p}\n")),
    }
}

fn client_config() -> Arc<rustls::ClientConfig> {
    client_config_alpn(&[b"http/1.1"])
}

fn client_config_alpn(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    tls_client_config(alpn)
}

/// How a read to the end stopped.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The server's `close_notify` (then, or with it, its FIN).
    CloseNotify,
    /// A FIN or a reset without `close_notify`.
    Eof,
    /// Nothing for the whole wait: the server kept the connection open.
    Open,
}

/// A TLS client whose records the test sends when and how it wants (the rustls state
/// machine, with the socket driven by hand).
struct Tls {
    conn: rustls::ClientConnection,
    sock: TcpStream,
}

impl Tls {
    /// Connects and completes the handshake.
    fn connect(addr: SocketAddr) -> Tls {
        let mut t = Tls::start(addr);
        while t.conn.is_handshaking() {
            t.conn.complete_io(&mut t.sock).expect("handshake");
        }
        t
    }

    /// Connects; no handshake byte sent yet.
    fn start(addr: SocketAddr) -> Tls {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(client_config(), name).unwrap();
        Tls {
            conn,
            sock: connect(addr),
        }
    }

    /// The records queued so far (encrypted plaintext, alerts), as bytes for the wire.
    fn records(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            self.conn.write_tls(&mut out).unwrap();
        }
        out
    }

    /// Encrypts `plain` and returns its records, unsent.
    fn seal(&mut self, plain: &[u8]) -> Vec<u8> {
        self.conn.writer().write_all(plain).unwrap();
        self.records()
    }

    /// Sends `plain` as records, in one TCP write.
    fn send(&mut self, plain: &[u8]) {
        let wire = self.seal(plain);
        self.sock.write_all(&wire).unwrap();
    }

    /// Reads plaintext until the server's close_notify, its FIN, or `wait` without a
    /// byte; returns the plaintext, how it ended, and when.
    fn read_to_end(&mut self, wait: Duration) -> (Vec<u8>, End, Duration) {
        let t0 = Instant::now();
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut got = Vec::new();
        loop {
            let mut buf = [0u8; 16384];
            match self.conn.reader().read(&mut buf) {
                Ok(0) => return (got, End::CloseNotify, t0.elapsed()),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return (got, End::Eof, t0.elapsed()),
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return (got, End::Eof, t0.elapsed()),
                Ok(_) => {
                    if self.conn.process_new_packets().is_err() {
                        return (got, End::Eof, t0.elapsed());
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return (got, End::Open, t0.elapsed());
                }
                Err(_) => return (got, End::Eof, t0.elapsed()),
            }
        }
    }

    /// Reads plaintext until `want` responses' worth of `\r\n\r\n`-ended heads and their
    /// `Content-Length` bodies are in, or the connection ends.
    fn read_responses(&mut self, want: usize) -> Vec<String> {
        let mut got = Vec::new();
        let deadline = Instant::now() + IO_TIMEOUT;
        self.sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        loop {
            let texts = split_responses(&got);
            if texts.len() >= want || Instant::now() > deadline {
                return texts;
            }
            let mut buf = [0u8; 16384];
            match self.conn.reader().read(&mut buf) {
                Ok(0) => return split_responses(&got),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return split_responses(&got),
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return split_responses(&got),
                Ok(_) => {
                    if self.conn.process_new_packets().is_err() {
                        return split_responses(&got);
                    }
                }
                Err(_) => return split_responses(&got),
            }
        }
    }
}

/// Complete responses (head + Content-Length body) at the front of `bytes`.
fn split_responses(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(end) = bytes[at..].windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[at..at + end + 4]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let body_end = at + end + 4 + len;
        if body_end > bytes.len() {
            break;
        }
        out.push(String::from_utf8_lossy(&bytes[at..body_end]).into_owned());
        at = body_end;
    }
    out
}

/// A GET for `path` that keeps the connection alive.
fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

// ---------------------------------------------------------------------------------------
// close_notify that arrives with the last request's records is never seen.

/// A client that sends its last request and `close_notify` together (RFC 8446 §6.1: it
/// "will not send any more messages on this connection") and waits for the answer without
/// closing TCP — Python's `ssl` `unwrap()`, OpenSSL's `SSL_shutdown` before reading —
/// has ended its input as surely as with a FIN. The server should answer, then close
/// (its own close_notify and FIN), as it closes a plain connection whose client
/// half-closed after its request (RFC 9112 §9.6), and as Go does (`tls.Conn.Read`
/// returns `io.EOF` at close_notify, so the next request read ends the connection).
///
/// Observed: the answer comes, and then the connection stays open until `idle_timeout`
/// (5 s here). `TlsStream::read` (src/tls.rs) returns the request's plaintext and stops
/// at the close_notify with a short count; `Conn::fill` (src/conn/read.rs) takes a short
/// read for "socket drained, the next byte brings a new edge", and no edge ever comes
/// (the client sends nothing more), so `peer_eof` is never set.
#[test]
fn close_notify_sent_with_the_last_request_closes_after_the_answer() {
    let _s = serial();
    let certs = Certs::new("notify");
    let server = TestServer::with_config(tls_config(&certs), app);
    let mut c = Tls::connect(server.addr);
    // Request and close_notify in one TCP write; TCP stays open both ways.
    let mut wire = c.seal(&get("/last"));
    c.conn.send_close_notify();
    wire.extend(c.records());
    c.sock.write_all(&wire).unwrap();
    let (got, end, after) = c.read_to_end(Duration::from_secs(3));
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains("hello over TLS: /last"),
        "{text:?}"
    );
    assert_ne!(
        end,
        End::Open,
        "the answer came, then the connection stayed open {after:?} (idle_timeout is 5 s) \
         after the client's close_notify"
    );
}

// ---------------------------------------------------------------------------------------
// The drain closes a keep-alive connection whose next request is half received.

/// The drain closes idle keep-alive connections at once, but "a request already in a
/// socket buffer is answered, not reset" (../shared/DESIGN.md, "Graceful drain";
/// `begin_drain` in src/event_loop.rs reads each idle connection before closing it, and
/// keeps one whose request has begun). Over plain TCP a request whose first bytes have
/// arrived is in the read buffer, so the connection is not idle: it is answered with
/// `Connection: close`. Over TLS the same request, half received, sits in rustls's
/// record buffer as an incomplete record: nothing is decrypted yet, `Conn::is_idle`
/// (src/conn/mod.rs) sees an empty read buffer, and the drain closes the connection under
/// the request the client is sending — a request sent before the client could know of
/// the drain (a POST a proxy will not retry), lost.
///
/// Correct: the same as plain TCP — a connection whose transport holds bytes of a request
/// (a partial TLS record) is not idle; its request is read to the end and answered with
/// `Connection: close`.
#[test]
fn drain_answers_a_request_whose_first_record_is_half_received() {
    let _s = serial();
    let certs = Certs::new("drain-half");
    let mut cfg = tls_config(&certs);
    cfg.shutdown_timeout = Duration::from_secs(5);
    let mut server = Some(TestServer::with_config(cfg, app));
    let srv = server.as_ref().unwrap();
    let mut c = Tls::connect(srv.addr);
    // One request answered: a keep-alive connection, idle.
    c.send(&get("/first"));
    let first = c.read_responses(1);
    assert!(
        first.len() == 1 && first[0].starts_with("HTTP/1.1 200"),
        "{first:?}"
    );
    // The next request: the first half of its record now, the rest after the drain began.
    let wire = c.seal(&get("/second"));
    let half = wire.len() / 2;
    c.sock.write_all(&wire[..half]).unwrap();
    std::thread::sleep(Duration::from_millis(200)); // read by the server
    srv.handle().shutdown(); // starts the drain; the server thread runs it
    std::thread::sleep(Duration::from_millis(200)); // the drain has begun
    let _ = c.sock.write_all(&wire[half..]);
    let answers = c.read_responses(1);
    drop(server.take());
    assert!(
        answers.len() == 1
            && answers[0].starts_with("HTTP/1.1 200")
            && answers[0].contains("hello over TLS: /second")
            && answers[0]
                .to_ascii_lowercase()
                .contains("connection: close"),
        "the request whose first record was half received when the drain began got \
         {answers:?} (closed under it)"
    );
}

// ---------------------------------------------------------------------------------------
// A half-sent ClientHello holds 64 KiB per connection, outside the memory budget.

/// N clients doing the worst thing cost the server bounded memory, and the bytes a
/// connection holds beyond its first 16 KiB read buffer count against
/// `max_buffered_bytes` (../shared/DESIGN.md; `Conn::recharge`, src/conn/mod.rs). docs/TLS.md
/// puts a TLS connection's own state at about 8 KB. A plain-HTTP slowloris therefore
/// holds at most one 16 KiB read buffer outside the budget.
///
/// A TLS client that sends most of a large ClientHello (a handshake message announcing
/// 65 000 bytes — rustls joins handshake messages of up to 64 KiB, `MAX_HANDSHAKE_SIZE` in
/// its deframer) and stops makes rustls hold the fragment, about 64 KiB, for
/// `tls_handshake_timeout`; nothing charges it to the budget, and docs/TLS.md does not
/// mention it. At the default `max_connections` (10 000) that is ~650 MB the budget
/// (64 MiB) never sees, four times what the same connections cost as plain slowloris.
///
/// Correct: a connection mid-handshake costs no more than a plain one mid-head (16 KiB
/// plus TLS's own state) — e.g. by refusing, from the record and handshake headers
/// peeked before rustls reads (`TlsStream::handshake`, src/tls.rs), a ClientHello longer
/// than a real one needs (browsers send < 2 KiB; 16 KiB is generous) — or what it holds
/// is charged to `max_buffered_bytes` and documented.
#[test]
fn a_half_sent_large_client_hello_holds_no_more_than_a_plain_slowloris() {
    let _s = serial();
    let certs = Certs::new("hello-mem");
    let mut cfg = tls_config(&certs);
    cfg.tls_handshake_timeout = Duration::from_secs(10);
    let srv = TestServer::with_config(cfg, app);
    // One full handshake first: whatever the server sets up once is not counted below.
    let mut warm = Tls::connect(srv.addr);
    warm.send(&get("/warm"));
    assert_eq!(warm.read_responses(1).len(), 1);
    drop(warm);
    // A ClientHello announcing 65 000 bytes, 61 440 of them sent in four records.
    let mut hello = vec![0x01, 0x00, 0xfd, 0xe8];
    hello.resize(61440, 0x41);
    let mut wire = Vec::new();
    for chunk in hello.chunks(16384) {
        wire.extend_from_slice(&[0x16, 0x03, 0x01]);
        wire.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        wire.extend_from_slice(chunk);
    }
    std::thread::sleep(Duration::from_millis(300));
    let n = 100;
    let mut socks = Vec::with_capacity(n);
    let before = live_bytes();
    for _ in 0..n {
        let mut s = srv.connect();
        s.write_all(&wire).unwrap();
        socks.push(s);
    }
    std::thread::sleep(Duration::from_secs(1)); // all of it read by the server
    let per_conn = (live_bytes() - before) / n as i64;
    assert!(
        per_conn <= 24 * 1024,
        "each connection stalled in a half-sent ClientHello holds {per_conn} bytes of heap \
         (a plain slowloris: at most 16 KiB outside the budget; TLS state: ~8 KB)"
    );
}

// ---------------------------------------------------------------------------------------
// A silent connection to the TLS port holds the drain for the whole handshake deadline.

/// A connection that has not sent its first request when the drain begins "keeps its
/// header deadline (`header_read_timeout`), as Go's `Shutdown` keeps a new connection for
/// 5 s" (`begin_drain`, src/event_loop.rs): a silent plain-HTTP connection holds the drain
/// for `header_read_timeout` at most. Go's `Shutdown` closes a `StateNew` connection —
/// which includes one still in its TLS handshake — once it is 5 s old.
///
/// Over TLS a silent connection is in its handshake, under `Deadline::Handshake`
/// (`tls_handshake_timeout`, 10 s by default), which the drain leaves as it is; a client
/// that then completes the handshake gets a fresh `header_read_timeout` on top. So one
/// idle TCP connect (a health checker's, a pre-connecting proxy's) holds a TLS server's
/// shutdown for `tls_handshake_timeout` (+ `header_read_timeout`) instead of
/// `header_read_timeout`.
///
/// Correct: when the drain begins, a connection still in its handshake gets no more time
/// than a plain one that has not sent its request: its deadline becomes the earlier of
/// the handshake's and `header_read_timeout` from then (and the header deadline armed at
/// the handshake's end, during a drain, not a fresh one).
#[test]
fn a_silent_connection_holds_the_drain_no_longer_than_header_read_timeout() {
    let _s = serial();
    let certs = Certs::new("drain-silent");
    let mut cfg = tls_config(&certs);
    cfg.tls_handshake_timeout = Duration::from_secs(6);
    cfg.header_read_timeout = Duration::from_secs(1);
    cfg.shutdown_timeout = Duration::from_secs(20);
    let srv = TestServer::with_config(cfg, app);
    let silent = srv.connect(); // never sends a byte
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    srv.stop().unwrap();
    let took = t0.elapsed();
    drop(silent);
    assert!(
        took < Duration::from_secs(3),
        "one silent connection held the drain for {took:?} (header_read_timeout 1 s, \
         tls_handshake_timeout 6 s)"
    );
}

/// The second half of the same promise: a client that completes its handshake during the
/// drain gets what is left of `header_read_timeout` from the drain's start for its
/// request, not a fresh `header_read_timeout` from the handshake's end.
#[test]
fn a_handshake_finished_during_the_drain_gets_no_fresh_header_deadline() {
    let _s = serial();
    let certs = Certs::new("drain-late-hs");
    let mut cfg = tls_config(&certs);
    cfg.tls_handshake_timeout = Duration::from_secs(6);
    cfg.header_read_timeout = Duration::from_secs(1);
    cfg.shutdown_timeout = Duration::from_secs(20);
    let srv = TestServer::with_config(cfg, app);
    let mut c = Tls::start(srv.addr); // connected, silent
    std::thread::sleep(Duration::from_millis(200));
    srv.handle().shutdown(); // the drain begins: the connection has until then + 1 s
    std::thread::sleep(Duration::from_millis(600));
    while c.conn.is_handshaking() {
        c.conn.complete_io(&mut c.sock).expect("handshake");
    }
    // No request: the connection is closed at the drain's start + 1 s, ~0.4 s from here.
    let (_, end, after) = c.read_to_end(Duration::from_secs(3));
    drop(srv);
    assert!(
        end != End::Open && after < Duration::from_millis(800),
        "a handshake finished 0.6 s into the drain, then silence: {end:?} after {after:?} \
         (header_read_timeout 1 s from the drain's start)"
    );
}

/// The same blind spot at the idle deadline. Over plain TCP the header deadline "counts
/// from the first byte of a request" (`read_step`, src/conn/read.rs): once a request's
/// first bytes arrive on an idle keep-alive connection, `idle_timeout` no longer applies
/// and the request has `header_read_timeout` to finish. Over TLS the first bytes sit in
/// rustls as an incomplete record, `fill` reads 0 plaintext bytes, the connection stays
/// `Idle`, and `idle_timeout` closes it under the request being sent.
///
/// Correct: as over plain TCP — ciphertext of a request arriving ends the idle period
/// (e.g. `TlsStream::read` reports that it consumed bytes, or the phase moves to
/// `ReadHead` on any bytes read from the socket).
#[test]
fn a_request_record_arriving_at_the_idle_deadline_is_answered() {
    let _s = serial();
    let certs = Certs::new("idle-half");
    let mut cfg = tls_config(&certs);
    cfg.idle_timeout = Duration::from_secs(1);
    cfg.header_read_timeout = Duration::from_secs(5);
    let srv = TestServer::with_config(cfg, app);
    let mut c = Tls::connect(srv.addr);
    c.send(&get("/first"));
    assert_eq!(c.read_responses(1).len(), 1);
    // Idle from here; half the next request's record before the idle deadline, the rest
    // after it.
    let wire = c.seal(&get("/second"));
    let half = wire.len() / 2;
    std::thread::sleep(Duration::from_millis(400));
    c.sock.write_all(&wire[..half]).unwrap();
    std::thread::sleep(Duration::from_millis(1400));
    let _ = c.sock.write_all(&wire[half..]);
    let answers = c.read_responses(1);
    assert!(
        answers.len() == 1 && answers[0].contains("hello over TLS: /second"),
        "a request whose first bytes came 0.4 s into a 1 s idle period got {answers:?} \
         (closed at idle_timeout)"
    );
}

// ---------------------------------------------------------------------------------------
// A body cut off by the server ends with close_notify, which says it is complete.

/// `Response::try_stream` promises that at the first `Err` "the body is cut off without
/// its last chunk (and the connection closed), so the client cannot mistake a truncated
/// body for a complete one" (src/response.rs). To an HTTP/1.0 client the body is
/// delimited by the close (`StreamFraming::UntilClose`): over TLS, what tells a complete
/// close-delimited body from a cut one is `close_notify` — RFC 9112 §9.8: a close without
/// it is an "incomplete close"; RFC 8446 §6.1: close_notify is the orderly end of the
/// data (errors end with an error alert, §6.2). h1server sends close_notify on every
/// close path (`impl Drop for TlsStream`, src/tls.rs), the cut-off ones too
/// (`Close::StreamAborted`, and likewise `WriteTimeout`, `ShutdownDeadline`,
/// `ForcedStop`, `UpstreamFailed`): the client sees an orderly end and takes the first
/// 2000 bytes for the whole body (`curl --no-alpn --http1.0` exits 0 with 2000 bytes).
///
/// Correct: close_notify only when the connection ends in order (its answers complete:
/// `Done`, `PeerClosed`, idle, draining); a connection whose answer is cut off is closed
/// without it (or with a fatal alert, e.g. `internal_error`), so the client sees the
/// truncation.
#[test]
fn a_body_cut_off_by_a_failed_producer_does_not_end_with_close_notify() {
    let _s = serial();
    let certs = Certs::new("cut");
    let srv = TestServer::with_config(tls_config(&certs), app);
    let mut c = Tls::connect(srv.addr);
    c.send(b"GET /cut HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let (got, end, _) = c.read_to_end(Duration::from_secs(5));
    let text = String::from_utf8_lossy(&got);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // HTTP/1.0: no chunked framing, the body ends with the connection.
    assert!(
        head.starts_with("HTTP/1.1 200") && !head.contains("chunked") && body.len() == 2000,
        "{head:?} and {} body bytes",
        body.len()
    );
    assert_ne!(
        end,
        End::CloseNotify,
        "the body was cut off after 2000 bytes (the producer failed), and the server \
         closed with close_notify: to the client a complete HTTP/1.0 body"
    );
}

// ---------------------------------------------------------------------------------------
// A client offering ALPN `http/1.0` is refused.

/// h1server speaks HTTP/1.0 (keep-alive with `Connection: keep-alive`, for `ab -k`;
/// ../shared/DESIGN.md), and `http/1.0` is the ALPN id of HTTP/1.0 (RFC 7301 §6, the IANA
/// registry). But the server offers only `http/1.1` (`server_config`, src/tls.rs), so a
/// client that offers only `http/1.0` — `curl --http1.0 https://…` does — gets a
/// `no_application_protocol` alert and no answer (RFC 7301 §3.2 requires the alert only
/// when the server supports none of the client's protocols). nginx offers `http/1.1`,
/// `http/1.0` and `http/0.9` for this reason (`NGX_HTTP_ALPN_PROTOS`).
///
/// Correct: `alpn_protocols = ["http/1.1", "http/1.0"]`: a client offering `http/1.0`
/// completes the handshake and is answered.
#[test]
fn a_client_offering_alpn_http10_is_served() {
    let _s = serial();
    let certs = Certs::new("alpn10");
    let srv = TestServer::with_config(tls_config(&certs), app);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(client_config_alpn(&[b"http/1.0"]), name).unwrap();
    let mut c = Tls {
        conn,
        sock: srv.connect(),
    };
    let mut handshake = Ok(());
    while c.conn.is_handshaking() && handshake.is_ok() {
        handshake = c.conn.complete_io(&mut c.sock).map(|_| ());
    }
    assert!(
        handshake.is_ok(),
        "a client offering ALPN http/1.0 (curl --http1.0): {handshake:?}"
    );
    c.send(b"GET /ten HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let (got, _, _) = c.read_to_end(Duration::from_secs(5));
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("hello over TLS: /ten"), "{text:?}");
}

// ---------------------------------------------------------------------------------------
// A request whose record is half received at the header deadline is closed without 408.

/// A plain client that sends part of a request head and stalls gets `408 Request Timeout`
/// at `header_read_timeout`, then a close (RFC 9110 §15.5.9: the server "would like to
/// shut down this unused connection" — and says so, so the client knows not to retry on
/// the same connection blindly). Over TLS the same stall can leave the request's bytes in
/// a record rustls holds half received: no plaintext is buffered, so the deadline took the
/// "nothing begun" path and closed silently, though the request had begun (it is what
/// the drain and `idle_timeout` already count as begun, `Transport::input_pending`).
///
/// Correct: as over plain TCP — 408, sealed in a record of its own, then the close.
#[test]
fn a_request_whose_record_is_half_received_at_the_header_deadline_gets_408() {
    let _s = serial();
    let certs = Certs::new("header-half");
    let mut cfg = tls_config(&certs);
    cfg.header_read_timeout = Duration::from_secs(1);
    cfg.idle_timeout = Duration::from_secs(10);
    let srv = TestServer::with_config(cfg, app);
    let mut c = Tls::connect(srv.addr);
    let wire = c.seal(&get("/never-finished"));
    c.sock.write_all(&wire[..wire.len() / 2]).unwrap();
    let (got, end, took) = c.read_to_end(Duration::from_secs(5));
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 408 "),
        "a request half received in its TLS record at header_read_timeout (1 s) got {text:?} \
         and the connection ended {end:?} after {took:?}; a plain one gets 408"
    );
    assert!(end != End::Open, "the connection stayed open after the 408");
}

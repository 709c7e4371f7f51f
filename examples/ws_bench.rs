//! WebSocket broadcast benchmark against `examples/chat`: opens `--clients` members, has
//! one of them send `--messages` texts, and measures how long until every member has
//! received every one (a broadcast is one frame per member). Prints deliveries per second
//! and, with `--pid`, the server's RSS and threads before and after the members joined.
//!
//! Clients are non-blocking sockets on one mio poll (this process holds no thread per
//! connection either), decoding with the crate's own WebSocket codec.
//!
//!     cargo run --release --features ws --example chat &
//!     cargo run --release --features ws --example ws_bench -- \
//!         --addr 127.0.0.1:8080 --clients 1000 --messages 200 --pid $!
//!
//! `make bench-ws` runs both (bench/ws.sh).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use h1server::ws::frame::{self, OpCode};
use h1server::ws::{Decoder, Message, Role};
use mio::{Events, Interest, Poll, Token};

struct Member {
    sock: mio::net::TcpStream,
    dec: Decoder,
    got: usize,
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| {
            w[1].parse()
                .unwrap_or_else(|_| die(&format!("{name} {:?}: not valid", w[1])))
        })
        .unwrap_or(default)
}

fn die(msg: &str) -> ! {
    eprintln!("ws_bench: {msg}");
    std::process::exit(2);
}

/// `Threads:` and `VmRSS:` (KiB) of a process.
fn proc_status(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some((field("Threads:")?, field("VmRSS:")?))
}

/// Opens one member: handshake on a blocking socket, then non-blocking.
fn join(addr: SocketAddr, name: &str) -> (mio::net::TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| die(&format!("connect: {e}")));
    s.set_nodelay(true).unwrap();
    let req = format!(
        "GET /ws?name={name} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut b = [0u8; 1024];
    let rest = loop {
        let n = s
            .read(&mut b)
            .unwrap_or_else(|e| die(&format!("handshake: {e}")));
        if n == 0 {
            die("closed during the handshake");
        }
        raw.extend_from_slice(&b[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            if !raw.starts_with(b"HTTP/1.1 101") {
                die(&format!(
                    "not switched: {}",
                    String::from_utf8_lossy(&raw[..i])
                ));
            }
            break raw[i + 4..].to_vec();
        }
    };
    s.set_nonblocking(true).unwrap();
    (mio::net::TcpStream::from_std(s), rest)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: SocketAddr = arg(&args, "--addr", "127.0.0.1:8080".parse().unwrap());
    let clients: usize = arg(&args, "--clients", 1000);
    let messages: usize = arg(&args, "--messages", 200);
    let pid: u32 = arg(&args, "--pid", 0);
    let limit = Duration::from_secs(arg(&args, "--timeout", 60));

    let before = (pid > 0).then(|| proc_status(pid)).flatten();
    let mut poll = Poll::new().unwrap();
    let mut members = Vec::with_capacity(clients);
    for i in 0..clients {
        let (mut sock, rest) = join(addr, &format!("m{i}"));
        poll.registry()
            .register(&mut sock, Token(i), Interest::READABLE)
            .unwrap();
        let mut m = Member {
            sock,
            dec: Decoder::new(Role::Client, 1 << 20),
            got: 0,
        };
        let _ = feed(&mut m, &rest, "pub");
        members.push(m);
    }
    // Let the join announcements settle before measuring.
    drain_for(&mut poll, &mut members, Duration::from_millis(500));
    let after = (pid > 0).then(|| proc_status(pid)).flatten();
    for m in &mut members {
        m.got = 0;
    }

    // Member 0 publishes every message in one go (masked, as a client must).
    let mut out = Vec::new();
    for i in 0..messages {
        frame::encode(
            &mut out,
            true,
            OpCode::Text,
            format!("msg {i:06}").as_bytes(),
            Some([1, 2, 3, 4]),
        );
    }
    let t0 = Instant::now();
    let mut written = 0;
    let mut events = Events::with_capacity(1024);
    let want = clients * messages;
    let mut total = 0;
    while total < want {
        if written < out.len() {
            match members[0].sock.write(&out[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => die(&format!("publish: {e}")),
            }
        }
        if t0.elapsed() > limit {
            die(&format!(
                "timed out: {total} of {want} deliveries in {limit:?}"
            ));
        }
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
        for ev in events.iter() {
            total += read_member(&mut members[ev.token().0], "m0: msg");
        }
    }
    let took = t0.elapsed();
    println!(
        "{clients} clients x {messages} messages: {want} deliveries in {:.3} s = {:.0} deliveries/s ({:.0} broadcasts/s)",
        took.as_secs_f64(),
        want as f64 / took.as_secs_f64(),
        messages as f64 / took.as_secs_f64()
    );
    if let (Some((t0s, r0)), Some((t1, r1))) = (before, after) {
        println!(
            "server: threads {t0s} -> {t1}, RSS {r0} KiB -> {r1} KiB ({:.0} bytes per connection)",
            (r1.saturating_sub(r0) * 1024) as f64 / clients as f64
        );
    }
}

/// Reads what member `m` has; returns how many broadcast messages it completed.
fn read_member(m: &mut Member, prefix: &str) -> usize {
    let mut n = 0;
    let mut buf = [0u8; 64 * 1024];
    loop {
        match m.sock.read(&mut buf) {
            Ok(0) => die("the server closed a member"),
            Ok(k) => n += feed(m, &buf[..k], prefix),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return n,
            Err(e) => die(&format!("read: {e}")),
        }
    }
}

fn feed(m: &mut Member, mut data: &[u8], prefix: &str) -> usize {
    let mut n = 0;
    while !data.is_empty() {
        let (used, msg) = m.dec.decode(data);
        data = &data[used..];
        match msg {
            Some(Ok(Message::Text(t))) if t.starts_with(prefix) => {
                m.got += 1;
                n += 1;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => die(&format!("the server broke the protocol: {e}")),
            None => break,
        }
    }
    n
}

fn drain_for(poll: &mut Poll, members: &mut [Member], d: Duration) {
    let t0 = Instant::now();
    let mut events = Events::with_capacity(1024);
    while t0.elapsed() < d {
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
        for ev in events.iter() {
            read_member(&mut members[ev.token().0], "\u{0}");
        }
    }
}

//! Micro-benchmarks of the protocol core: this file owns timing `parse_head` and the
//! chunked decoder on fixed inputs and printing `name: N ns/iter`.
//! It never asserts on speed, touches a socket or spawns a thread.

use std::hint::black_box;
use std::time::Instant;

use h1server::__bench::{ChunkedDecoder, Limits, Span, parse_head};

const WRK: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8090\r\n\r\n";

const BROWSER: &[u8] = b"GET /static/app.js?v=1.2.3 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/index.html\r\n\
Connection: keep-alive\r\n\
Cookie: session=0123456789abcdef; theme=dark; _ga=GA1.2.123456789.1234567890\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
If-None-Match: \"33a64df551425fcc55e4d42a148795d9f25f89d4\"\r\n\
\r\n";

const LIMITS: Limits = Limits {
    max_head_bytes: 16 * 1024,
    max_headers: 100,
    max_uri_bytes: 8 * 1024,
    max_body_bytes: 1 << 20,
};

/// Runs `f` `iters` times (after a warm-up) and prints the mean time per call.
fn bench(name: &str, iters: u32, mut f: impl FnMut()) {
    for _ in 0..iters / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(iters);
    println!("{name}: {ns:.1} ns/iter");
}

fn main() {
    let mut fields: Vec<(Span, Span)> = Vec::with_capacity(64);

    bench("parse_head wrk", 1_000_000, || {
        fields.clear();
        let head = parse_head(black_box(WRK), 0, &LIMITS, &mut fields);
        black_box(head.ok());
    });

    let pipelined = WRK.repeat(16);
    bench("parse_head 16 pipelined (per 16)", 200_000, || {
        fields.clear();
        let buf = black_box(&pipelined[..]);
        let mut at = 0;
        while at < buf.len() {
            match parse_head(buf, at, &LIMITS, &mut fields) {
                Ok(Some(h)) => at += h.len as usize,
                _ => unreachable!("bench input is valid"),
            }
        }
        black_box(at);
    });

    bench("parse_head browser (13 fields)", 500_000, || {
        fields.clear();
        let head = parse_head(black_box(BROWSER), 0, &LIMITS, &mut fields);
        black_box(head.ok());
    });

    let data: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut body = Vec::new();
    for c in data.chunks(1024) {
        body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        body.extend_from_slice(c);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut out = Vec::with_capacity(data.len());
    bench("chunked decode 64 KiB in 1 KiB chunks", 20_000, || {
        out.clear();
        let mut d = ChunkedDecoder::new();
        let (n, done) = d
            .decode(black_box(&body), &mut out, 1 << 20)
            .unwrap_or_default();
        black_box((n, done, out.len()));
    });
}

//! The engine survives garbage: hundreds of connections send mangled requests (bytes
//! flipped, cut, repeated, pipelined) at odd split points, and afterwards the server
//! still answers a plain request — no panic on the loop, no stuck connection slot.

mod support;

use std::io::Write;
use std::time::Duration;

use h1server::{Config, Request, Response};
use support::*;

#[test]
fn mangled_requests_never_take_the_server_down() {
    let cfg = Config {
        max_head_bytes: 1024,
        max_uri_bytes: 256,
        max_body_bytes: 256,
        header_read_timeout: Duration::from_millis(300),
        read_timeout: Duration::from_millis(300),
        ..test_config()
    };
    let srv = TestServer::with_config(cfg, |req: &mut Request| {
        Response::text(format!("{} {}", req.method_str(), req.body().len()))
    });
    let seeds: &[&[u8]] = &[
        b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rand = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let alphabet = b" \r\n\t:;,=/?%0aAfF-+\x00\x7f\xff";
    let mut conns = Vec::new();
    for round in 0..300 {
        let mut buf = Vec::new();
        for _ in 0..1 + rand(3) {
            buf.extend_from_slice(seeds[rand(seeds.len())]);
        }
        for _ in 0..1 + rand(4) {
            if buf.is_empty() {
                break;
            }
            let at = rand(buf.len());
            match rand(3) {
                0 => buf[at] = alphabet[rand(alphabet.len())],
                1 => buf.truncate(at),
                _ => buf.insert(at, alphabet[rand(alphabet.len())]),
            }
        }
        let mut s = srv.connect();
        let cut = rand(buf.len() + 1);
        let _ = s.write_all(&buf[..cut]);
        let _ = s.write_all(&buf[cut..]);
        if round % 3 == 0 {
            drop(s); // close at once, whatever was answered
        } else {
            conns.push(s); // leave open: deadlines must clean these up
        }
    }
    drop(conns);
    let resp = roundtrip(srv.addr, b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((resp.status, resp.text()), (200, "GET 0".to_string()));
    srv.stop().expect("the server drains and stops cleanly");
}

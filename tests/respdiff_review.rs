//! Response framing through the reverse proxy, from the differential run against nginx's
//! `proxy_pass` (`tests/data/respdiff/`: a scripted upstream, crafted answers, two clients
//! behind each proxy). Each test is a defect shown over real sockets on 127.0.0.1 and
//! fails on the code it was written against. Every upstream here is a raw, scripted
//! listener; every socket has a read timeout and every loop is bounded.
#![cfg(feature = "proxy")]
mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use h1server::Config;
use h1server::proxy::ReverseProxy;
use support::*;

fn gateway(up: SocketAddr) -> TestServer {
    let proxy = ReverseProxy::builder()
        .route("/", [format!("http://{up}")])
        .build()
        .unwrap();
    TestServer::with_config(
        Config {
            workers: 2,
            ..test_config()
        },
        proxy,
    )
}

/// A raw upstream on 127.0.0.1 that reads one request head on each connection and runs
/// `answer` on the socket, then closes it. Bounded: reads time out after `IO_TIMEOUT`.
fn scripted(answer: impl Fn(&mut TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for s in l.incoming().take(16) {
            let Ok(mut s) = s else { return };
            let answer = answer.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut buf = Vec::new();
                if read_request_head(&mut s, &mut buf).is_some() {
                    answer(&mut s);
                }
            });
        }
    });
    addr
}

/// Reads `s` until `want` has arrived (bounded by the read timeout and 1 MiB).
fn read_until(s: &mut TcpStream, got: &mut Vec<u8>, want: &[u8]) {
    let mut buf = [0u8; 4096];
    while !got.windows(want.len()).any(|w| w == want) {
        assert!(got.len() < 1 << 20, "{want:?} never came");
        match s.read(&mut buf) {
            Ok(0) => panic!("closed before {want:?}: {:?}", String::from_utf8_lossy(got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("{e} before {want:?}: {:?}", String::from_utf8_lossy(got)),
        }
    }
}

/// How the connection ended after `got`: `Ok(())` for an orderly end (EOF), or the
/// error that ended it. Bounded by the read timeout and 1 MiB.
fn read_to_end(s: &mut TcpStream, got: &mut Vec<u8>) -> Result<(), ErrorKind> {
    let mut buf = [0u8; 4096];
    while got.len() < 1 << 20 {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.kind()),
        }
    }
    panic!("more than 1 MiB")
}

// ---------------------------------------------------------------------------------------
// Defect: a relay cut short looked complete to an HTTP/1.0 client.
//
// The upstream's chunked body stops in the middle (it closes before the last chunk).
// The gateway relays a chunked or close-delimited body to an HTTP/1.0 client as raw bytes
// ended by the close of the connection (it cannot chunk for HTTP/1.0), and once the head
// is out it can only cut the connection. It closed with a FIN, which is exactly how a
// close-delimited body says it is complete: the client (and any cache in front of it)
// took the truncated body for the whole answer. RFC 9112 §8: "A response that has neither
// chunked transfer coding nor Content-Length is terminated by closure of the connection
// and, if the header section was received intact, is considered complete unless an error
// was indicated by the underlying connection". nginx does the same (a FIN); the gateway
// now resets the connection (SO_LINGER 0), the error the client can see.

/// The upstream sends the head and part of a chunk, then waits for the test to say the
/// client has them (so the gateway's head is out and the answer can no longer become a
/// 502), then closes.
#[test]
fn an_upstream_body_cut_short_reaches_an_http10_client_as_a_reset_not_an_end() {
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    let up = scripted(move |s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\npart");
        let _ = rx.lock().unwrap().recv_timeout(IO_TIMEOUT);
        // Dropped: the upstream closes before the chunk (and the last chunk) ends.
    });
    let gw = gateway(up);
    let mut c = connect(gw.addr);
    c.write_all(b"GET /file HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"part");
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    assert!(
        !text.to_ascii_lowercase().contains("content-length"),
        "the body is close-delimited: {text:?}"
    );
    tx.send(()).unwrap();
    let end = read_to_end(&mut c, &mut got);
    assert_eq!(
        end,
        Err(ErrorKind::ConnectionReset),
        "a truncated close-delimited body must end in a connection error, not an orderly \
         close; got {:?}",
        String::from_utf8_lossy(&got)
    );
}

/// Pins the other side of the fix: a relayed body that the upstream ends properly still
/// reaches an HTTP/1.0 client with an orderly close, which is what marks it complete.
#[test]
fn a_whole_close_delimited_body_still_ends_in_order_for_an_http10_client() {
    let up = scripted(|s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let _ = s.write_all(b"4\r\nwhol\r\n1\r\ne\r\n0\r\n\r\n");
    });
    let gw = gateway(up);
    let mut c = connect(gw.addr);
    c.write_all(b"GET /file HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    assert_eq!(read_to_end(&mut c, &mut got), Ok(()));
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    assert!(text.ends_with("\r\n\r\nwhole"), "{text:?}");
}

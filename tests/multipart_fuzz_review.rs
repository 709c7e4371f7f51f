//! What the `multipart` fuzz target (docs/FUZZING.md) found in the `multipart/form-data`
//! parser, checked over real sockets: a form's verdict must not depend on how its bytes
//! were cut into pieces — buffered (fed whole), streamed in one write or a byte per write.
#![cfg(feature = "multipart")]

mod support;
use support::*;

use std::io::Write;

use h1server::multipart::{self, Limits, MultipartHandler, Part};
use h1server::{Config, Request, Response};

/// Keeps nothing: answers `200 fields=N` when the form is whole.
struct Count(usize);

impl MultipartHandler for Count {
    type Writer = std::io::Sink;

    fn on_field(&mut self, _: &str, _: &str) -> Result<(), Response> {
        self.0 += 1;
        Ok(())
    }

    fn on_file_start(&mut self, _: &Part) -> Result<Self::Writer, Response> {
        Ok(std::io::sink())
    }

    fn on_file_end(&mut self, _: Part, _: Self::Writer, _: u64) -> Result<(), Response> {
        Ok(())
    }

    fn finish(self) -> Response {
        Response::text(format!("fields={}\n", self.0))
    }
}

/// A server whose every request is a form read with `limits`; bodies over
/// `max_body_bytes` are streamed to the parser as they arrive.
fn form_server(max_body_bytes: u64, limits: Limits) -> TestServer {
    let cfg = Config {
        max_body_bytes,
        max_upload_bytes: 1 << 20,
        ..test_config()
    };
    TestServer::with_config(cfg, move |req: &mut Request| {
        multipart::receive(req, limits, Count(0))
    })
}

/// Field `a` of 20 bytes, then field `b` of 21: `b`'s 11th byte passes a 30-byte
/// `max_fields_bytes`, its 21st would pass a 20-byte `max_field_bytes`.
fn two_fields() -> Vec<u8> {
    format!(
        "--B\r\nContent-Disposition: form-data; name=a\r\n\r\n{}\r\n\
         --B\r\nContent-Disposition: form-data; name=b\r\n\r\n{}\r\n--B--\r\n",
        "x".repeat(20),
        "y".repeat(21)
    )
    .into_bytes()
}

fn head(len: usize) -> String {
    format!(
        "POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n\
         Content-Length: {len}\r\n\r\n"
    )
}

// Before the fix a piece that passed both limits was refused naming the field's own
// (the limit its last byte passed): a buffered form, or a streamed one read in one piece,
// was answered "max_field_bytes (20)", the same form dribbled "max_fields_bytes (30)".
#[test]
fn a_form_over_two_limits_names_the_one_passed_first_however_it_arrives() {
    let limits = Limits {
        max_field_bytes: 20,
        max_fields_bytes: 30,
        ..Limits::default()
    };
    let body = two_fields();
    let buffered = form_server(64 * 1024, limits);
    let streamed = form_server(16, limits);
    let mut answers = Vec::new();
    for (how, server, bytewise) in [
        ("buffered", &buffered, false),
        ("streamed in one write", &streamed, false),
        ("streamed a byte per write", &streamed, true),
    ] {
        let mut s = server.connect();
        s.set_nodelay(true).unwrap();
        s.write_all(head(body.len()).as_bytes()).unwrap();
        if bytewise {
            // The server may answer and close before taking all of it.
            for b in body.chunks(1) {
                if s.write_all(b).is_err() {
                    break;
                }
            }
        } else {
            let _ = s.write_all(&body);
        }
        let resp = Reader::new(s).read_response();
        answers.push((how, resp.status, resp.text()));
    }
    for (how, status, text) in &answers {
        assert_eq!(*status, 413, "{how}: {text}");
        assert!(text.contains("max_fields_bytes (30)"), "{how}: {text}");
    }
    // Within both limits the same form is taken.
    let ok = Limits {
        max_field_bytes: 21,
        max_fields_bytes: 41,
        ..Limits::default()
    };
    let server = form_server(16, ok);
    let resp = roundtrip(server.addr, &[head(body.len()).as_bytes(), &body].concat());
    assert_eq!((resp.status, resp.text()), (200, "fields=2\n".to_string()));
}

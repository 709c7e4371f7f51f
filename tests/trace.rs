//! The trace is part of the product (docs/LIFECYCLE.md walks it): at `RUST_LOG=trace`,
//! one request must leave one line per stage, in order, each naming its connection.
//!
//! One test in this file: it installs the process-wide logger.

mod support;

use std::time::Duration;

use h1server::{Request, Response};
use support::*;

#[path = "support/log_capture.rs"]
mod log_capture;
use log_capture::LINES;

/// The stages of one request, in the order they happen.
const STAGES: [&str; 8] = [
    "stage=accepted",
    "stage=first_byte",
    "stage=head_parsed",
    "stage=queued",
    "stage=handler_start",
    "stage=handler_end",
    "stage=written",
    "stage=closed",
];

fn lines_of(conn: &str) -> Vec<String> {
    let prefix = format!("conn={conn} ");
    LINES
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with(&prefix))
        .cloned()
        .collect()
}

/// Where each stage's line is among `lines`; fails unless every stage appears exactly once.
fn positions(lines: &[String]) -> Vec<usize> {
    STAGES
        .iter()
        .map(|stage| {
            let hits: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].split(' ').any(|w| w == *stage))
                .collect();
            assert_eq!(hits.len(), 1, "{stage} in {lines:#?}");
            hits[0]
        })
        .collect()
}

#[test]
fn one_request_leaves_every_stage_once_in_order_with_its_connection_id() {
    log::set_logger(&LINES).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let srv = TestServer::start(|_: &mut Request| Response::text("traced\n"));

    // Two connections, one request each: the lines of one must not bleed into the other.
    for _ in 0..2 {
        let mut c = Reader::new(srv.connect());
        c.send(b"GET /traced HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(c.read_response().status, 200);
        assert!(c.is_closed());
    }
    // The close is logged by the loop once it has seen the end of the connection.
    let closed = |conn: &str| {
        lines_of(conn)
            .iter()
            .any(|l| l.contains("stage=closed reason=done"))
    };
    assert!(
        wait_until(Duration::from_secs(5), || closed("1") && closed("2")),
        "{:#?}",
        LINES.0.lock().unwrap()
    );

    for conn in ["1", "2"] {
        let lines = lines_of(conn);
        let at = positions(&lines);
        assert!(
            at.windows(2).all(|w| w[0] < w[1]),
            "conn {conn}: stages out of order: {lines:#?}"
        );
        // The request's own stages name it, as request 1 of its connection.
        for i in &at[1..7] {
            assert!(lines[*i].contains(" req=1"), "{}", lines[*i]);
        }
        assert!(lines[at[2]].contains("GET /traced"), "{}", lines[at[2]]);
        assert!(lines[at[5]].contains("status=200"), "{}", lines[at[5]]);
    }
}

//! Stage timings and counters, seen from outside: requests over real sockets, then the
//! server's `Telemetry` (its snapshot and its event ring) must tell what happened.

mod support;

use std::time::Duration;

use h1server::telemetry::{Event, RequestRecord};
use h1server::{Config, Request, Response, Router, Server};
use support::*;

fn app() -> Router {
    let mut r = Router::new();
    r.get("/items/{id}", |_: &mut Request| {
        std::thread::sleep(Duration::from_millis(20));
        Response::text("item\n")
    });
    r.get("/stream", |_: &mut Request| {
        Response::stream((0..3).map(|i| format!("piece {i}\n").into_bytes()))
    });
    r
}

fn records(tel: &h1server::Telemetry) -> Vec<RequestRecord> {
    tel.take_events(1000)
        .into_iter()
        .filter_map(|e| match e {
            Event::Request(r) => Some(*r),
            _ => None,
        })
        .collect()
}

#[test]
fn each_request_records_its_stages_in_order_and_the_counters_add_up() {
    let server = Server::bind(Config {
        record_stages: true,
        ..test_config()
    })
    .unwrap();
    let tel = server.telemetry();
    tel.record_requests(64);
    let srv = TestServer::with_server(server, app());

    let mut c = Reader::new(srv.connect());
    // Two pipelined requests on one connection, then a 404, then a stream.
    c.send(b"GET /items/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\nGET /items/2 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
    assert_eq!(c.read_response().status, 200);
    c.send(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().status, 404);
    c.send(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let s = c.read_response();
    assert_eq!(s.status, 200);
    assert!(c.is_closed());

    let mut recs = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            recs.extend(records(&tel));
            recs.len() >= 4
        }),
        "records: {recs:?}"
    );
    recs.sort_by_key(|r| r.seq);
    let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let routes: Vec<Option<&str>> = recs.iter().map(|r| r.route.as_deref()).collect();
    assert_eq!(
        routes,
        [
            Some("/items/{id}"),
            Some("/items/{id}"),
            None,
            Some("/stream")
        ]
    );
    let statuses: Vec<u16> = recs.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 404, 200]);
    for r in &recs {
        let t = r.timeline;
        let mut stamps: Vec<u64> = t.stamps().to_vec();
        if r.seq != 1 {
            assert_eq!(t.accepted, 0, "{r:?}");
            stamps.remove(0);
        }
        assert!(stamps.iter().all(|&s| s > 0), "a stage is missing: {r:?}");
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "out of order: {r:?}"
        );
    }
    // The handler slept 20 ms: its stage says so.
    let h = recs[0].timeline.handler().unwrap();
    assert!(h >= Duration::from_millis(20), "{h:?}");
    // Secrets are not kept.
    let auth = recs[0]
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .unwrap();
    assert_eq!(auth.1, "[redacted]");
    assert!(
        recs[3].streamed && recs[3].flush_count >= 1,
        "{:?}",
        recs[3]
    );

    let snap = tel.snapshot();
    assert_eq!(snap.accepted, 1);
    let total: u64 = snap.requests.iter().map(|r| r.count).sum();
    assert_eq!(total, 4, "{:?}", snap.requests);
    let item = snap
        .requests
        .iter()
        .find(|r| r.route.as_deref() == Some("/items/{id}"))
        .unwrap();
    assert_eq!((item.method, item.class, item.count), ("GET", 2, 2));
    let handler = &snap.stages.iter().find(|s| s.0 == "handler").unwrap().1;
    assert_eq!(handler.count(), 4);
    assert!(handler.sum >= Duration::from_millis(40));
    let write = &snap.stages.iter().find(|s| s.0 == "write").unwrap().1;
    assert_eq!(write.count(), 4);
    assert!(snap.bytes_in > 100 && snap.bytes_out > 100, "{snap:?}");
    assert_eq!((snap.streams_started, snap.streams_ended), (1, 1));
    // The close is seen once the loop has processed it.
    assert!(wait_until(Duration::from_secs(5), || {
        tel.snapshot()
            .closed
            .iter()
            .any(|(r, n)| *r == "done" && *n == 1)
    }));
    assert_eq!(tel.snapshot().open, 0);
}

#[test]
fn server_timing_reports_parse_queue_and_handler() {
    let cfg = Config {
        server_timing: true,
        ..test_config()
    };
    let srv = TestServer::with_config(cfg, app());
    let r = roundtrip(srv.addr, b"GET /items/7 HTTP/1.1\r\nHost: x\r\n\r\n");
    let st = r.header("Server-Timing").expect("Server-Timing");
    let durs: Vec<(&str, f64)> = st
        .split(',')
        .map(|m| {
            let (name, dur) = m.trim().split_once(";dur=").unwrap();
            (name, dur.parse().unwrap())
        })
        .collect();
    let names: Vec<&str> = durs.iter().map(|d| d.0).collect();
    assert_eq!(names, ["parse", "queue", "handler"]);
    assert!(durs[2].1 >= 20.0, "{st}");

    // Off by default.
    let srv = TestServer::start(app());
    let r = roundtrip(srv.addr, b"GET /items/7 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.header("Server-Timing"), None);
}

/// Counts the bytes of an upload and answers 201.
struct Count(u64);

impl h1server::BodySink for Count {
    fn data(&mut self, piece: &[u8]) -> Result<(), Response> {
        self.0 += piece.len() as u64;
        Ok(())
    }
    fn finish(self: Box<Self>) -> Response {
        Response::text(format!("{} bytes\n", self.0)).with_status(201)
    }
}

#[test]
fn an_upload_is_counted_once_with_its_sinks_answer_and_route() {
    let cfg = Config {
        max_body_bytes: 1024,
        max_upload_bytes: 1 << 20,
        ..test_config()
    };
    let server = Server::bind(cfg).unwrap();
    let tel = server.telemetry();
    let mut r = Router::new();
    r.post("/up/{name}", |_: &mut Request| {
        Response::read_body(Count(0))
    });
    let srv = TestServer::with_server(server, r);
    let body = vec![b'x'; 100_000];
    let mut req = b"POST /up/a HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".to_vec();
    req.extend_from_slice(&body);
    let resp = roundtrip(srv.addr, &req);
    assert_eq!((resp.status, resp.text().as_str()), (201, "100000 bytes\n"));
    let snap = tel.snapshot();
    let counted: Vec<_> = snap
        .requests
        .iter()
        .map(|r| (r.method, r.class, r.route.as_deref(), r.count))
        .collect();
    assert_eq!(counted, [("POST", 2, Some("/up/{name}"), 1)]);
}

#[test]
fn without_record_stages_the_worker_reads_no_clock_but_the_loop_stages_remain() {
    let server = Server::bind(test_config()).unwrap(); // record_stages: false, the default
    let tel = server.telemetry();
    tel.record_requests(8);
    let srv = TestServer::with_server(server, app());
    assert_eq!(
        roundtrip(srv.addr, b"GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n").status,
        200
    );
    let mut recs = Vec::new();
    assert!(wait_until(Duration::from_secs(5), || {
        recs.extend(records(&tel));
        !recs.is_empty()
    }));
    let t = recs[0].timeline;
    assert!(
        t.first_byte > 0 && t.head_parsed > 0 && t.queued > 0,
        "{t:?}"
    );
    assert_eq!(
        (t.handler_start, t.handler_end, t.written),
        (0, 0, 0),
        "{t:?}"
    );
    assert_eq!(recs[0].status, 200);
}

/// A pipelined batch's requests are counted per method, status class and route exactly,
/// however the worker adds them up (runs of the same key are added under one lock): two
/// routes, a 404 the router made and a 405 between them, in one write.
#[test]
fn a_pipelined_batch_of_mixed_routes_and_statuses_is_counted_exactly() {
    let server = Server::bind(test_config()).unwrap();
    let tel = server.telemetry();
    let mut r = Router::new();
    r.get("/a", |_: &mut Request| Response::text("a"));
    r.get("/b/{x}", |_: &mut Request| Response::text("b"));
    let srv = TestServer::with_server(server, r);
    let mut c = Reader::new(srv.connect());
    let order = [
        "GET /a",
        "GET /a",
        "GET /b/1",
        "GET /nope",
        "GET /a",
        "POST /a",
        "GET /b/2",
        "GET /b/3",
    ];
    let mut batch = String::new();
    for line in order {
        batch.push_str(&format!(
            "{line} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        ));
    }
    c.send(batch.as_bytes());
    let statuses: Vec<u16> = order.iter().map(|_| c.read_response().status).collect();
    assert_eq!(statuses, [200, 200, 200, 404, 200, 405, 200, 200]);
    let count = |method: &str, class: u8, route: Option<&str>| {
        tel.snapshot()
            .requests
            .iter()
            .filter(|r| r.method == method && r.class == class && r.route.as_deref() == route)
            .map(|r| r.count)
            .sum::<u64>()
    };
    assert_eq!(count("GET", 2, Some("/a")), 3);
    assert_eq!(count("GET", 2, Some("/b/{x}")), 3);
    assert_eq!(count("GET", 4, None), 1);
    assert_eq!(count("POST", 4, None) + count("POST", 4, Some("/a")), 1);
    let total: u64 = tel.snapshot().requests.iter().map(|r| r.count).sum();
    assert_eq!(total, 8, "{:?}", tel.snapshot().requests);
}

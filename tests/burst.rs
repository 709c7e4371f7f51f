//! Bursts that are not overload must not be shed: the loop can read hundreds of requests
//! in one turn while a single worker is busy, and each must still get its answer.

mod support;

use std::io::Write;
use std::time::Duration;

use h1server::{Config, Request, Response};
use support::*;

#[test]
fn burst_of_512_connections_on_one_worker_is_served_without_503() {
    let cfg = Config {
        workers: 1,
        queue_depth: h1server::config::default_queue_depth(1),
        ..test_config()
    };
    let srv = TestServer::with_config(cfg, |_: &mut Request| {
        // Slow enough that the loop reads every request before the worker catches up.
        std::thread::sleep(Duration::from_micros(200));
        Response::text("ok")
    });
    let mut conns: Vec<_> = (0..512).map(|_| Reader::new(srv.connect())).collect();
    for c in &mut conns {
        c.stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    let mut statuses = std::collections::BTreeMap::new();
    for c in &mut conns {
        *statuses.entry(c.read_response().status).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&200), Some(&512), "statuses: {statuses:?}");
}

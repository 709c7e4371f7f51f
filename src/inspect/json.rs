//! The inspector's wire format: one JSON object per request or connection end, as the
//! page's first render (`/json`) and its live stream (`/events`) carry them. Never touches
//! a socket; the inspector calls it under its history lock.
//!
//! Stamps are nanoseconds since the server's epoch (0 = stage not reached); JavaScript
//! reads them exactly for the first 104 days of uptime (2^53 ns) and to the microsecond
//! long after. `wall_ms` is the Unix time in milliseconds of the first byte (requests) or
//! of the close.

use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use serde::Serialize;

use super::{Closed, History};
use crate::telemetry::{RequestRecord, Stamp, Telemetry};

#[derive(Serialize)]
struct RequestJson<'a> {
    kind: &'static str,
    ev: u64,
    conn: u64,
    seq: u64,
    peer: String,
    method: &'a str,
    path: &'a str,
    route: Option<&'a str>,
    status: u16,
    streamed: bool,
    /// `[name, value]` pairs in the order sent, sensitive values already redacted.
    headers: &'a [(String, String)],
    stamps: Stamps,
    wall_ms: f64,
    /// Stamps of a streamed answer's first writes (at most `telemetry::MAX_FLUSHES`).
    flushes: &'a [Stamp],
    flush_count: u64,
    /// Nanoseconds per stage; `null` when a stage was not reached.
    durations: Durations,
}

#[derive(Serialize)]
struct Stamps {
    accepted: Stamp,
    first_byte: Stamp,
    head_parsed: Stamp,
    queued: Stamp,
    handler_start: Stamp,
    handler_end: Stamp,
    written: Stamp,
}

#[derive(Serialize)]
struct Durations {
    parse: Option<u64>,
    queue: Option<u64>,
    handler: Option<u64>,
    write: Option<u64>,
    /// From the first byte to the last byte written.
    total: Option<u64>,
}

#[derive(Serialize)]
struct CloseJson {
    kind: &'static str,
    ev: u64,
    conn: u64,
    at: Stamp,
    wall_ms: f64,
    reason: &'static str,
    requests: u64,
}

#[derive(Serialize)]
struct HistoryJson<'a> {
    /// Requests the history keeps.
    capacity: usize,
    /// The number of the last event in this answer: the page applies live events after it.
    last_ev: u64,
    /// The server's clock now.
    now: Stamp,
    /// Events the telemetry ring dropped because they were not read in time.
    dropped: u64,
    /// Oldest first.
    requests: Vec<RequestJson<'a>>,
    /// Oldest first.
    closes: Vec<CloseJson>,
}

fn ns(d: Option<std::time::Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn wall_ms(tel: &Telemetry, at: Stamp) -> f64 {
    tel.wall_time(at)
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn request<'a>(tel: &Telemetry, ev: u64, r: &'a RequestRecord) -> RequestJson<'a> {
    let t = r.timeline;
    RequestJson {
        kind: "request",
        ev,
        conn: r.conn_id,
        seq: r.seq,
        peer: r.peer.to_string(),
        method: &r.method,
        path: &r.path,
        route: r.route.as_deref(),
        status: r.status,
        streamed: r.streamed,
        headers: &r.headers,
        stamps: Stamps {
            accepted: t.accepted,
            first_byte: t.first_byte,
            head_parsed: t.head_parsed,
            queued: t.queued,
            handler_start: t.handler_start,
            handler_end: t.handler_end,
            written: t.written,
        },
        wall_ms: wall_ms(tel, t.first_byte),
        flushes: &r.flushes,
        flush_count: r.flush_count,
        durations: Durations {
            parse: ns(t.parse()),
            queue: ns(t.queue_wait()),
            handler: ns(t.handler()),
            write: ns(t.write()),
            total: (t.first_byte != 0 && t.written >= t.first_byte)
                .then(|| t.written - t.first_byte),
        },
    }
}

fn close(tel: &Telemetry, c: &Closed) -> CloseJson {
    CloseJson {
        kind: "close",
        ev: c.ev,
        conn: c.conn_id,
        at: c.at,
        wall_ms: wall_ms(tel, c.at),
        reason: c.reason,
        requests: c.requests,
    }
}

/// Appends one SSE message to `out`: `data` is one line (JSON escapes newlines).
fn sse(out: &mut String, ev: u64, name: &str, value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(data) => {
            let _ = write!(out, "id: {ev}\nevent: {name}\ndata: {data}\n\n");
        }
        Err(e) => log::error!("inspector: event {ev} not serialisable: {e}"),
    }
}

/// A request's live event.
pub(super) fn sse_request(out: &mut String, tel: &Telemetry, ev: u64, r: &RequestRecord) {
    sse(out, ev, "request", &request(tel, ev, r));
}

/// A connection end's live event.
pub(super) fn sse_close(out: &mut String, tel: &Telemetry, c: &Closed) {
    sse(out, c.ev, "close", &close(tel, c));
}

/// The whole history, for the page's first render and for tests.
pub(super) fn history(tel: &Telemetry, capacity: usize, h: &History) -> String {
    let doc = HistoryJson {
        capacity,
        last_ev: h.next_ev - 1,
        now: tel.now(),
        dropped: tel.snapshot().events_dropped,
        requests: h
            .requests
            .iter()
            .map(|s| request(tel, s.ev, &s.rec))
            .collect(),
        closes: h.closes.iter().map(|c| close(tel, c)).collect(),
    };
    serde_json::to_string(&doc).unwrap_or_else(|e| {
        log::error!("inspector: history not serialisable: {e}");
        "{}".to_string()
    })
}

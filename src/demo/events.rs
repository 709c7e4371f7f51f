//! `GET /events`: server-sent events from one broadcast hub. Subscribing returns at once
//! (the stream's sender goes to the hub), so a hundred open streams hold no worker.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use h1server::{Response, ShutdownToken, StreamSender, TrySendError, status};

/// Subscribers and the ticker that feeds them.
#[derive(Default)]
pub struct Hub {
    /// Open streams, and whether the hub has shut down (no new subscribers then).
    subscribers: Mutex<(Vec<StreamSender>, bool)>,
}

impl Hub {
    /// A new SSE stream; the hub sends it a tick every second.
    pub fn subscribe(&self) -> Response {
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        if subs.1 {
            // Draining: a stream opened now would hold the drain until its deadline.
            return Response::error(status::SERVICE_UNAVAILABLE, "shutting down\n")
                .with_header("Retry-After", "1");
        }
        let (resp, tx) = Response::sse();
        let _ = tx.try_send("retry: 3000\n: connected\n\n");
        subs.0.push(tx);
        resp
    }

    /// The background task: ticks until the server drains, then ends every stream
    /// (dropping a sender ends its body cleanly) so the drain does not wait on them.
    pub fn run(&self, token: ShutdownToken) {
        let mut n = 0u64;
        while !token.wait_timeout(Duration::from_secs(1)) {
            n += 1;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let msg = format!("id: {n}\nevent: tick\ndata: {{\"n\":{n},\"unix\":{now}}}\n\n");
            let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
            // A slow subscriber misses a tick rather than holding up the others.
            subs.0
                .retain(|s| !matches!(s.try_send(msg.clone()), Err(TrySendError::Closed)));
        }
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        log::info!("events: ending {} stream(s) for shutdown", subs.0.len());
        subs.0.clear();
        subs.1 = true;
    }
}

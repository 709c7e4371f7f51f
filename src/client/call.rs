//! One call: this stage owns the attempts of a request — the breaker's verdict, a pooled
//! or fresh connection, the one retry of a request a stale pooled connection lost, and the
//! retry policy's waits — and logs every attempt that is retried.
//! It never retries what is not safe to repeat (a non-idempotent request without an
//! `Idempotency-Key`), and never waits past the call's total deadline.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use log::{debug, info, warn};

use super::ClientInner;
use super::breaker::{Breaker, Pending};
use super::driver::{self, Connection, Deadline};
use super::error::{ClientError, TimeoutKind};
use super::response::ClientResponse;
use super::retry::{RetryPolicy, is_idempotent_method, is_retryable_status, parse_retry_after};
use super::url::Url;
use crate::http::encode::BodyFraming;
use crate::http::encode_request::write_request_head;
use crate::middleware::request_id::{IDEMPOTENCY_KEY, REQUEST_ID, generate_id};

/// A request ready to go: validated, with its final headers.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) method: String,
    pub(crate) url: Url,
    /// The `Host` value: the URL's authority unless the caller set one.
    pub(crate) host: String,
    /// The caller's headers (Host excluded), in order.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Vec<u8>>,
    /// The length of a body the caller streams after the head (`send_streamed`); `body`
    /// is then None.
    pub(crate) streamed_len: Option<u64>,
    /// The call's total deadline.
    pub(crate) total: Option<Instant>,
    pub(crate) retry: RetryPolicy,
}

impl Prepared {
    /// How the body is framed: its length; 0 for POST, PUT and PATCH without one (RFC
    /// 9110 §8.6: a user agent "SHOULD send Content-Length in a request when the method
    /// defines a meaning for enclosed content"); nothing otherwise.
    pub(crate) fn framing(&self) -> BodyFraming {
        if let Some(n) = self.streamed_len {
            return BodyFraming::Length(n);
        }
        match &self.body {
            Some(b) => BodyFraming::Length(b.len() as u64),
            None if matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") => {
                BodyFraming::Length(0)
            }
            None => BodyFraming::None,
        }
    }

    pub(crate) fn header_pairs(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect()
    }

    /// Refuses, before any connection is made, a request that cannot be encoded.
    pub(crate) fn validate(&self) -> Result<(), ClientError> {
        let mut scratch = Vec::new();
        write_request_head(
            &mut scratch,
            &self.method,
            self.url.target(),
            &self.host,
            self.header_pairs(),
            self.framing(),
        )
        .map_err(|e| ClientError::InvalidRequest(e.as_str()))
    }

    /// True when repeating the request is safe: an idempotent method (RFC 9110 §9.2.2) or
    /// an `Idempotency-Key`.
    fn is_repeatable(&self) -> bool {
        is_idempotent_method(&self.method)
            || self
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(IDEMPOTENCY_KEY))
    }

    /// Seed 002: "X-Request-ID identifies one specific request attempt. A retry may
    /// receive a new request ID" — the correlation id and the idempotency key stay.
    fn renew_request_id(&mut self) {
        if let Some((_, v)) = self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(REQUEST_ID))
        {
            let fresh = generate_id();
            debug!("client: retry of request id {v} goes out as {fresh}");
            *v = fresh;
        }
    }
}

impl ClientInner {
    /// Runs the call: attempts under the breaker and the retry policy.
    pub(crate) fn call(self: &Arc<Self>, mut req: Prepared) -> Result<ClientResponse, ClientError> {
        req.validate()?;
        let repeatable = req.is_repeatable();
        let breaker = self.breaker_for(&req.url);
        let max = req.retry.max_attempts();
        let mut attempt = 1;
        loop {
            if attempt > 1 {
                req.renew_request_id();
            }
            debug!("client: {} {} attempt {attempt}/{max}", req.method, req.url);
            let result = self.guarded(&req, repeatable, breaker.as_ref());
            let reason = match &result {
                Ok(resp) if is_retryable_status(resp.status()) => {
                    format!("{} {}", resp.status(), resp.reason())
                }
                Err(e) if e.is_connect() => e.to_string(),
                _ => return result,
            };
            let target = format!("{} {}", req.method, req.url);
            if !repeatable {
                if max > 1 {
                    info!(
                        "client: {target} failed ({reason}); not retried: neither idempotent nor carrying an Idempotency-Key"
                    );
                }
                return result;
            }
            if attempt >= max {
                if max > 1 {
                    info!(
                        "client: {target} failed ({reason}) on attempt {attempt}/{max}; giving up"
                    );
                }
                return result;
            }
            let retry_after = match &result {
                Ok(resp) => resp
                    .header("retry-after")
                    .and_then(|v| parse_retry_after(v, SystemTime::now())),
                Err(_) => None,
            };
            if let Some(wait) = retry_after.filter(|w| *w > req.retry.retry_after_cap()) {
                info!(
                    "client: {target} failed ({reason}); not retried: Retry-After {} s is past max_retry_after",
                    wait.as_secs()
                );
                return result;
            }
            let wait = retry_after.unwrap_or_else(|| req.retry.backoff(attempt));
            // `checked_add`: a `Retry-After` of 2^64 − 1 seconds under an uncapped
            // `max_retry_after` is past any `Instant` (adding it would panic).
            if req.total.is_some_and(|total| {
                Instant::now()
                    .checked_add(wait)
                    .is_none_or(|at| at >= total)
            }) {
                info!(
                    "client: {target} failed ({reason}) on attempt {attempt}/{max}; not retried: waiting {} ms would pass the deadline",
                    wait.as_millis()
                );
                return result;
            }
            warn!(
                "client: {target} attempt {attempt}/{max} failed ({reason}); retrying in {} ms{}",
                wait.as_millis(),
                if retry_after.is_some() {
                    " (Retry-After)"
                } else {
                    ""
                }
            );
            drop(result);
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    /// One attempt under the upstream's breaker: fails fast while it is open, and reports
    /// the outcome once (a 5xx and any upstream failure count against it) — for an answer
    /// below 500, when its body ends or fails (`ClientResponse::watch`).
    fn guarded(
        self: &Arc<Self>,
        req: &Prepared,
        repeatable: bool,
        breaker: Option<&Arc<Breaker>>,
    ) -> Result<ClientResponse, ClientError> {
        let Some(b) = breaker else {
            return self.attempt(req, repeatable);
        };
        let permit = b
            .try_acquire()
            .map_err(|retry_in| ClientError::BreakerOpen {
                upstream: b.upstream().to_string(),
                retry_in,
            })?;
        let pending = Pending::new(Arc::clone(b), permit);
        match self.attempt(req, repeatable) {
            Ok(resp) if resp.status() < 500 && pending.is_probe() => {
                // The half-open test call settles at its head: a long body (a stream, a
                // download) must not keep every other call to the upstream refused.
                pending.settle(Some(true));
                Ok(resp)
            }
            Ok(mut resp) if resp.status() < 500 => {
                resp.watch(pending);
                Ok(resp)
            }
            Ok(resp) => {
                pending.settle(Some(false));
                Ok(resp)
            }
            Err(e) => {
                pending.settle(e.breaker_outcome());
                Err(e)
            }
        }
    }

    /// One attempt: a pooled connection when there is a live one, else a new one; a
    /// pooled connection the server closed before answering is replaced once by a fresh
    /// one when the request is safe to repeat.
    fn attempt(
        self: &Arc<Self>,
        req: &Prepared,
        repeatable: bool,
    ) -> Result<ClientResponse, ClientError> {
        let s = &self.settings;
        if req.total.is_some_and(|t| Instant::now() >= t) {
            return Err(ClientError::Timeout {
                which: TimeoutKind::Total,
            });
        }
        let key = (req.url.host().to_string(), req.url.port());
        let mut pooled = self.pool.checkout(&key);
        loop {
            let reused = pooled.is_some();
            let mut conn = match pooled.take() {
                Some(c) => c,
                None => driver::connect(&req.url, s.connect_timeout, req.total, s.limits)?,
            };
            match exchange(&mut conn, req, s) {
                Ok(head) => {
                    return Ok(ClientResponse::new(
                        head,
                        conn,
                        Arc::clone(&self.pool),
                        s.read_timeout,
                        req.total,
                    ));
                }
                Err(e) => {
                    let lost = conn.nothing_received()
                        && matches!(e, ClientError::ConnectionClosed | ClientError::Io(_));
                    let id = conn.id;
                    conn.close();
                    if reused && lost && repeatable {
                        debug!(
                            "client conn={id}: a pooled connection failed before any response byte ({e}); {} {} again on a fresh one",
                            req.method, req.url
                        );
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// Writes the request and reads its response head.
fn exchange(
    conn: &mut Connection,
    req: &Prepared,
    s: &super::Settings,
) -> Result<crate::client::ResponseHead, ClientError> {
    let mut bytes = Vec::new();
    conn.core.write_request(
        &req.method,
        req.url.target(),
        &req.host,
        &req.header_pairs(),
        req.framing(),
        &mut bytes,
    )?;
    if let Some(body) = &req.body {
        bytes.extend_from_slice(body);
    }
    let write = Deadline::new(s.write_timeout, TimeoutKind::Write, req.total);
    if let Some(early) = conn.send_watching(&bytes, write)? {
        return Ok(early);
    }
    conn.read_head(Deadline::new(
        s.response_header_timeout,
        TimeoutKind::ResponseHeader,
        req.total,
    ))
}

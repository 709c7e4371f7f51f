//! Requests: this module owns [`RequestBuilder`] — the method, URL, headers, body and
//! per-call settings of one call, and copying an incoming request's metadata onto it
//! ([`RequestBuilder::propagate`], seed 002).
//! It never touches the network: [`RequestBuilder::send`] hands a finished request to
//! `call.rs`. Mistakes (a bad URL, a header that would inject bytes) are kept and
//! reported by `send`, so a chain of builder calls needs no `?` until then.

use std::time::{Duration, Instant};

use super::Client;
use super::call::Prepared;
use super::error::ClientError;
use super::response::ClientResponse;
use super::retry::RetryPolicy;
use super::streamed::StreamedRequest;
use super::url::Url;
use crate::middleware::RequestMeta;
use crate::request::Request;

/// One request being built; [`send`](Self::send) runs it.
///
/// ```no_run
/// use std::time::Duration;
/// use h1server::client::Client;
///
/// # fn main() -> Result<(), h1server::client::ClientError> {
/// let client = Client::new();
/// let resp = client
///     .post("http://127.0.0.1:8080/api/v1/users")
///     .header("Authorization", "Bearer dev-token")
///     .header("Content-Type", "application/json")
///     .header("Idempotency-Key", "create-ada-1")
///     .body(r#"{"name":"Ada","email":"ada@example.com"}"#)
///     .timeout(Duration::from_secs(2))
///     .send()?;
/// println!("{} {}", resp.status(), resp.text()?);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    client: Client,
    method: String,
    url: Result<Url, ClientError>,
    /// A `Host` set by the caller, in place of the URL's authority.
    host: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    retry: Option<RetryPolicy>,
    /// The first mistake made while building, reported by `send`.
    error: Option<ClientError>,
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, method: &str, url: &str) -> Self {
        RequestBuilder {
            client,
            method: method.to_string(),
            url: Url::parse(url),
            host: None,
            headers: Vec::new(),
            body: None,
            timeout: None,
            deadline: None,
            retry: None,
            error: None,
        }
    }

    /// Adds a header (after those already added; a name may repeat). `Host` replaces
    /// the URL's authority in the `Host` field; `Content-Length` and `Transfer-Encoding`
    /// are ignored (the body decides the framing). Names and values are checked by
    /// `send`: a value with CR, LF, NUL or another control character is refused, never
    /// sent.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        if name.eq_ignore_ascii_case("host") {
            self.host = Some(value);
        } else {
            self.headers.push((name, value));
        }
        self
    }

    /// Sets a header, replacing every earlier one of the same name (case-insensitive).
    pub fn set_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.header(name, value)
    }

    /// The request body, sent with its `Content-Length`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A JSON body (`serde_json`), with `Content-Type: application/json`.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => self
                .set_header("Content-Type", "application/json")
                .body(bytes),
            Err(e) => {
                let mut this = self;
                this.error.get_or_insert(ClientError::Json(e));
                this
            }
        }
    }

    /// Copies the incoming request's metadata onto this one, as seed 002's
    /// `copyMetadataToRequest` does: `X-Request-ID`, `X-Correlation-ID` and, when the
    /// client sent one, `Idempotency-Key` (each replacing a header of the same name).
    ///
    /// The values are the ones the [`RequestId`](crate::middleware::RequestId)
    /// middleware stored ([`RequestMeta`]); without it, they are read from the request's
    /// headers with the same checks (an id is kept when it is 1–128 visible ASCII
    /// characters, generated otherwise; the correlation id defaults to the request id).
    /// A retry of this call keeps the correlation id and the idempotency key and goes out
    /// with a new request id: "X-Request-ID identifies one specific request attempt".
    pub fn propagate(mut self, incoming: &Request) -> Self {
        let meta = match RequestMeta::of(incoming) {
            Some(meta) => meta.clone(),
            None => RequestMeta::from_request(incoming, true),
        };
        for (name, value) in meta.outgoing_headers() {
            self = self.set_header(name, value);
        }
        self
    }

    /// This call's total time limit — connect, write, the response head, retries and their
    /// waits, and reading the body — in place of the client's `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// An absolute deadline for the whole call (the earlier of it and `timeout` wins):
    /// what [`fan_out`](super::fan_out) hands each call.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// This call's retry policy, in place of the client's.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Sends the request (retrying as the policy allows) and returns the response once
    /// its head has arrived; the body is read from the [`ClientResponse`].
    ///
    /// Every status is a response, not an error (`404` and `503` included): check
    /// [`ClientResponse::status`]. Errors are the failures [`ClientError`] lists.
    pub fn send(self) -> Result<ClientResponse, ClientError> {
        let client = self.client.clone();
        let prepared = self.prepare(None)?;
        client.inner.call(prepared)
    }

    /// Sends the head now, announcing a body of `content_length` bytes that the caller
    /// then writes piece by piece ([`StreamedRequest::write`]) before reading the answer
    /// ([`StreamedRequest::finish`]): an upload of any size in constant memory. A body
    /// set with [`body`](Self::body) is ignored.
    ///
    /// Always on a fresh connection (a pooled one may have been closed by the server,
    /// and a streamed body cannot be sent twice); never retried, and the breaker is not
    /// consulted. With `Expect: 100-continue` among the headers,
    /// [`StreamedRequest::await_continue`] waits for the server's go-ahead first.
    pub fn send_streamed(self, content_length: u64) -> Result<StreamedRequest, ClientError> {
        let client = self.client.clone();
        let prepared = self.prepare(Some(content_length))?;
        client.inner.start_streamed(prepared)
    }

    /// The request as `call.rs` takes it: validated URL, final headers, the deadline.
    fn prepare(self, streamed_len: Option<u64>) -> Result<Prepared, ClientError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let url = self.url?;
        let settings = &self.client.inner.settings;
        let now = Instant::now();
        let by_timeout = self
            .timeout
            .or(settings.timeout)
            .and_then(|t| now.checked_add(t));
        let total = match (by_timeout, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut headers = self.headers;
        let has_agent = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"));
        if let (Some(agent), false) = (&settings.user_agent, has_agent) {
            headers.push(("User-Agent".to_string(), agent.clone()));
        }
        let prepared = Prepared {
            method: self.method,
            host: self.host.unwrap_or_else(|| url.authority().to_string()),
            url,
            headers,
            body: if streamed_len.is_some() {
                None
            } else {
                self.body
            },
            streamed_len,
            total,
            retry: self.retry.unwrap_or(settings.retry),
        };
        Ok(prepared)
    }
}

//! Recovery: runs the rest of the chain under `catch_unwind` and turns a panic into a
//! logged `500 Internal Server Error` (the Go seeds' `Recovery`/`Recoverer` middleware).
//!
//! It never hides a panic: every one is logged with `error!`, naming the request id, the
//! method, the path and the panic message. The worker's own guard (`pool/mod.rs`) stays as
//! the last resort for panics outside the stack; `Recovery` belongs outermost so it can
//! name the request id that an inner [`RequestId`](crate::middleware::RequestId) set.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use log::error;

use crate::middleware::request_id::{REQUEST_ID, RequestMeta};
use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::Response;
use crate::status;

/// The body of the `500` a panic becomes.
const BODY_500: &str = "Internal Server Error\n";

/// Middleware that answers `500` (plain text `Internal Server Error`) when the rest of the
/// chain panics, after logging the panic with the request id, method and path.
///
/// When a [`RequestId`](crate::middleware::RequestId) layer ran inside it, the `500` also
/// carries `X-Request-ID`, so the client can quote the id that is in the log.
///
/// A streamed body's producer runs after the chain has returned, so a panic in it is not
/// seen here; the worker catches it and ends the body.
///
/// ```
/// use h1server::middleware::{Recovery, Stack};
/// use h1server::{testing::TestRequest, Request, Response};
///
/// let app = Stack::new(|_: &mut Request| -> Response { panic!("bug") }).with(Recovery);
/// assert_eq!(TestRequest::get("/").run(&app).status(), 500);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Recovery;

impl Middleware for Recovery {
    fn handle(&self, req: &mut Request, next: Next<'_>) -> Response {
        // AssertUnwindSafe: after a panic the request is only read (ids, method, path),
        // and a half-updated extension map cannot break those reads.
        let payload = match catch_unwind(AssertUnwindSafe(|| next.run(req))) {
            Ok(resp) => return resp,
            Err(payload) => payload,
        };
        // Inner layers set the metadata on this same request, so it is visible now.
        let request_id = RequestMeta::of(req).map(|m| m.request_id.clone());
        error!(
            "conn={} request_id={} handler panicked on {} {}: {}; answering 500",
            req.conn_id(),
            request_id.as_deref().unwrap_or("-"),
            req.method_str(),
            req.path(),
            panic_message(&*payload)
        );
        // Dropping a payload can itself panic (a Drop impl that panics); do not let that
        // escape the middleware that exists to contain panics.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
        let mut resp = Response::error(status::INTERNAL_SERVER_ERROR, BODY_500);
        if let Some(id) = request_id {
            resp.set_header(REQUEST_ID, id);
        }
        resp
    }
}

/// The message of a panic payload (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::{RequestId, Stack};
    use crate::testing::TestRequest;

    fn panicking() -> impl Fn(&mut Request) -> Response + Send + Sync + 'static {
        |req: &mut Request| {
            if req.path() == "/boom" {
                panic!("boom at {}", req.path());
            }
            Response::text("fine")
        }
    }

    #[test]
    fn panic_becomes_plain_text_500() {
        let app = Stack::new(panicking()).with(Recovery);
        let resp = TestRequest::get("/boom").run(&app);
        assert_eq!(resp.status(), 500);
        assert_eq!(resp.body_bytes(), BODY_500.as_bytes());
        assert!(
            resp.header("content-type")
                .unwrap()
                .starts_with("text/plain")
        );
        assert_eq!(resp.header("x-request-id"), None, "no RequestId layer ran");
    }

    #[test]
    fn responses_without_panic_pass_through() {
        let app = Stack::new(panicking()).with(Recovery);
        let resp = TestRequest::get("/ok").run(&app);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body_bytes(), b"fine");
    }

    #[test]
    fn the_500_names_the_request_id_set_by_an_inner_layer() {
        let app = Stack::new(panicking())
            .with(Recovery)
            .with(RequestId::default());
        let resp = TestRequest::get("/boom")
            .header("X-Request-ID", "req-77")
            .run(&app);
        assert_eq!(resp.status(), 500);
        assert_eq!(resp.header("x-request-id"), Some("req-77"));
    }

    #[test]
    fn panic_message_reads_str_and_string_payloads() {
        let s: Box<dyn Any + Send> = Box::new("static");
        assert_eq!(panic_message(&*s), "static");
        let s: Box<dyn Any + Send> = Box::new(String::from("owned"));
        assert_eq!(panic_message(&*s), "owned");
        let s: Box<dyn Any + Send> = Box::new(42u8);
        assert_eq!(panic_message(&*s), "(non-string panic payload)");
    }
}

//! The handler contract: what a worker calls for every request.
//!
//! A handler runs on a worker thread, never on the event loop, so it may block; it must
//! not assume anything about which worker runs it.

use crate::request::Request;
use crate::response::Response;

/// Something that turns a request into a response: a closure, a router, or a middleware
/// stack. Runs on a worker thread; may block (that is what the pool is for).
///
/// Every `Fn(&mut Request) -> Response + Send + Sync + 'static` is a handler.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, req: &mut Request) -> Response;
}

impl<F> Handler for F
where
    F: Fn(&mut Request) -> Response + Send + Sync + 'static,
{
    fn call(&self, req: &mut Request) -> Response {
        self(req)
    }
}

impl Handler for Box<dyn Handler> {
    fn call(&self, req: &mut Request) -> Response {
        (**self).call(req)
    }
}

impl<H: Handler> Handler for std::sync::Arc<H> {
    fn call(&self, req: &mut Request) -> Response {
        (**self).call(req)
    }
}

//! Middleware: code that wraps the rest of the handler chain — to read or change the
//! request before it, the response after it, or to answer instead of it.
//!
//! A [`Stack`] composes middleware in the order given: the first added is the outermost
//! (it runs first and sees the final response last), as in the Go seeds' `Stack(h, mw...)`.
//! Middleware runs on worker threads and never touches a socket.

use std::sync::Arc;

use crate::handler::Handler;
use crate::request::Request;
use crate::response::Response;

/// Wraps the rest of the chain. Call `next.run(req)` to continue, or return a response
/// without calling it to answer instead (401, 429, 503…).
///
/// Every `Fn(&mut Request, Next<'_>) -> Response + Send + Sync + 'static` is a middleware.
pub trait Middleware: Send + Sync + 'static {
    /// Handles one request.
    fn handle(&self, req: &mut Request, next: Next<'_>) -> Response;
}

impl<F> Middleware for F
where
    F: Fn(&mut Request, Next<'_>) -> Response + Send + Sync + 'static,
{
    fn handle(&self, req: &mut Request, next: Next<'_>) -> Response {
        self(req, next)
    }
}

/// The layers of a stack and the handler at its centre.
struct Chain {
    layers: Vec<Arc<dyn Middleware>>,
    app: Arc<dyn Handler>,
}

/// The rest of the chain after the current middleware.
#[derive(Clone, Copy)]
pub struct Next<'a> {
    chain: &'a Arc<Chain>,
    index: usize,
}

impl Next<'_> {
    /// Runs the rest of the chain.
    pub fn run(self, req: &mut Request) -> Response {
        match self.chain.layers.get(self.index) {
            Some(layer) => layer.handle(
                req,
                Next {
                    chain: self.chain,
                    index: self.index + 1,
                },
            ),
            None => self.chain.app.call(req),
        }
    }

    /// The rest of the chain as an owned handler that can be moved to another thread
    /// (what the timeout middleware runs while it waits).
    pub fn to_owned(self) -> OwnedNext {
        OwnedNext {
            chain: self.chain.clone(),
            index: self.index,
        }
    }
}

/// An owned, `'static` rest-of-chain (see [`Next::to_owned`]).
#[derive(Clone)]
pub struct OwnedNext {
    chain: Arc<Chain>,
    index: usize,
}

impl Handler for OwnedNext {
    fn call(&self, req: &mut Request) -> Response {
        Next {
            chain: &self.chain,
            index: self.index,
        }
        .run(req)
    }
}

/// A handler wrapped in middleware, outermost first.
///
/// ```
/// use h1server::{middleware::{Next, Stack}, Request, Response};
/// let app = Stack::new(|_: &mut Request| Response::text("hi"))
///     .with(|req: &mut Request, next: Next<'_>| {
///         let mut resp = next.run(req);
///         resp.set_header("X-Wrapped", "yes");
///         resp
///     });
/// ```
#[derive(Clone)]
pub struct Stack {
    chain: Arc<Chain>,
}

impl Stack {
    /// A stack with no middleware around `app`.
    pub fn new(app: impl Handler) -> Self {
        Stack {
            chain: Arc::new(Chain {
                layers: Vec::new(),
                app: Arc::new(app),
            }),
        }
    }

    /// Adds `mw` inside the layers added so far (the first added stays outermost).
    pub fn with(self, mw: impl Middleware) -> Self {
        self.with_arc(Arc::new(mw))
    }

    /// Same as [`with`](Stack::with) for a middleware shared with other stacks.
    pub fn with_arc(self, mw: Arc<dyn Middleware>) -> Self {
        let mut chain = Arc::try_unwrap(self.chain).unwrap_or_else(|shared| Chain {
            layers: shared.layers.clone(),
            app: shared.app.clone(),
        });
        chain.layers.push(mw);
        Stack {
            chain: Arc::new(chain),
        }
    }

    /// How many middleware layers wrap the handler.
    pub fn len(&self) -> usize {
        self.chain.layers.len()
    }

    /// True when no middleware wraps the handler.
    pub fn is_empty(&self) -> bool {
        self.chain.layers.is_empty()
    }
}

impl Handler for Stack {
    fn call(&self, req: &mut Request) -> Response {
        Next {
            chain: &self.chain,
            index: 0,
        }
        .run(req)
    }
}

mod access_log;
mod auth;
mod concurrency;
mod cors;
mod idempotency;
mod rate_limit;
mod recovery;
mod request_id;
mod timeout;

pub use access_log::AccessLog;
pub use auth::{BearerAuth, Principal};
pub use concurrency::ConcurrencyLimit;
pub use cors::Cors;
pub use idempotency::Idempotency;
pub use rate_limit::RateLimit;
pub use recovery::Recovery;
pub use request_id::{RequestId, RequestMeta, propagate};
pub use timeout::Timeout;

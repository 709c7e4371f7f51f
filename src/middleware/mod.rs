//! Middleware: code that wraps the rest of the handler chain — to read or change the
//! request before it, the response after it, or to answer instead of it.
//!
//! A [`Stack`] composes middleware in the order given: the first added is the outermost
//! (it runs first and sees the final response last), as in the Go seeds' `Stack(h, mw...)`.
//! Middleware runs on worker threads and never touches a socket.
//!
//! The trait, [`Next`] and [`Stack`] are in every build (the router's groups use them);
//! the middleware themselves (`Recovery`, `RequestId`, …) need the `middleware`
//! feature, on by default.

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

// The built-in middleware (feature `middleware`). The trait, `Next` and `Stack` above are
// in every build: the router's groups compose with them.
#[cfg(feature = "middleware")]
mod access_log;
#[cfg(feature = "middleware")]
mod auth;
#[cfg(feature = "middleware")]
mod concurrency;
#[cfg(feature = "middleware")]
mod cors;
#[cfg(feature = "middleware")]
mod idempotency;
#[cfg(feature = "middleware")]
mod rate_limit;
#[cfg(feature = "middleware")]
mod recovery;
// pub(crate): the client (`client/`) reuses its ids and header names.
#[cfg(feature = "middleware")]
pub(crate) mod request_id;
#[cfg(feature = "middleware")]
mod timeout;

#[cfg(feature = "middleware")]
pub use self::{
    access_log::AccessLog,
    auth::{BearerAuth, Principal},
    concurrency::ConcurrencyLimit,
    cors::Cors,
    idempotency::{
        Claim, Idempotency, IdempotencyKey, IdempotencyStore, StoreError, StoredResponse,
    },
    rate_limit::RateLimit,
    recovery::Recovery,
    request_id::{RequestId, RequestMeta, propagate},
    timeout::Timeout,
};

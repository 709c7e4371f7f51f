//! Request bodies larger than memory: with `max_upload_bytes` set, a `Content-Length`
//! body above `max_body_bytes` is not buffered; the handler is called with the head
//! alone and answers [`Response::read_body`](crate::Response::read_body) with a
//! [`BodySink`] that receives the body piece by piece.
//!
//! The event loop reads the body and hands each piece to the sink as a short job on the
//! pool, one piece at a time, reading on only when the previous piece is taken; so a
//! slow uploader costs a small buffer and no thread. Nothing here touches a socket.

use crate::response::Response;

/// Receives a streamed request body, in order, one piece at a time, on a worker.
///
/// ```
/// use h1server::{BodySink, Request, Response};
///
/// /// Counts the bytes of an upload (a real one would write them to a file).
/// struct Count(u64);
///
/// impl BodySink for Count {
///     fn data(&mut self, piece: &[u8]) -> Result<(), Response> {
///         self.0 += piece.len() as u64;
///         Ok(())
///     }
///     fn finish(self: Box<Self>) -> Response {
///         Response::text(format!("received {} bytes\n", self.0))
///     }
/// }
///
/// fn upload(req: &mut Request) -> Response {
///     match req.streamed_body_len() {
///         Some(_) => Response::read_body(Count(0)),
///         None => Response::text(format!("received {} bytes\n", req.body().len())),
///     }
/// }
/// # let _ = upload;
/// ```
pub trait BodySink: Send + 'static {
    /// The next piece of the body. `Err(response)` stops the upload: that response is
    /// the answer, and the connection closes (the rest of the body is not read).
    fn data(&mut self, piece: &[u8]) -> Result<(), Response>;
    /// The body is complete: the answer.
    fn finish(self: Box<Self>) -> Response;
    /// The upload ended early (the client left, the body deadline passed, the server
    /// stopped): clean up. The default does nothing.
    fn abort(self: Box<Self>) {}
    /// The bytes this sink keeps in memory from one piece to the next (the fields of a
    /// form it collects; not what it has written out). The loop charges them to
    /// `max_buffered_bytes` after each piece, as it charges a buffered body, so N stalled
    /// uploads cannot hold more memory than the budget: a sink whose growth the budget
    /// has no room for is stopped (`abort`) and its request answered `503`, and the
    /// connection closed. The default, 0, suits a sink that writes each piece out.
    fn held_bytes(&self) -> usize {
        0
    }
}

/// A sink for the body of one request, on its way between the loop and the pool.
pub(crate) type Sink = Box<dyn BodySink>;

//! Forms on the worker side: [`Multipart`] adapts a [`MultipartHandler`] (fields, and a
//! writer per file) into the [`BodySink`] a streamed body is fed to; [`receive`] picks the
//! streamed or the buffered way; [`parse`] reads a buffered body into a [`Form`].
//!
//! Each call handles one window of the body and returns: never waits for the client,
//! never touches a socket.

use std::io::Write;

use super::{Error, Event, Limit, Limits, Parser, Part, boundary};
use crate::request::Request;
use crate::response::Response;
use crate::upload::BodySink;

/// What to do with each part of a form: keep the fields, put each file's bytes somewhere.
///
/// Called on workers, in body order, one body window at a time: `on_file_start`, then
/// `on_file_data` for each piece of the file, then `on_file_end`; `on_field` once per
/// field with its whole value. Each may refuse with a `Response`, which becomes the
/// answer (after `abort`). Exactly one of `finish` and `abort` ends it.
pub trait MultipartHandler: Send + Sized + 'static {
    /// Where a file's bytes go: a `File`, a `BufWriter<File>`, a socket to a store,
    /// `io::sink()`…
    type Writer: Write + Send + 'static;

    /// A field (a part without a filename) and its whole value, at most
    /// [`Limits::max_field_bytes`].
    fn on_field(&mut self, name: &str, value: &str) -> Result<(), Response>;

    /// A file begins: where should its bytes go? `part.filename` is the client's; never
    /// use it as a path.
    fn on_file_start(&mut self, part: &Part) -> Result<Self::Writer, Response>;

    /// The next bytes of the current file. The default writes them to `writer`, and a
    /// write error is a `500` (logged).
    fn on_file_data(&mut self, writer: &mut Self::Writer, data: &[u8]) -> Result<(), Response> {
        writer.write_all(data).map_err(write_failed)
    }

    /// The current file is complete: `size` bytes went to `writer` (flush it).
    fn on_file_end(&mut self, part: Part, writer: Self::Writer, size: u64) -> Result<(), Response>;

    /// The body ended well-formed: the answer.
    fn finish(self) -> Response;

    /// The form was refused (malformed, over a limit, refused by this handler) or the
    /// upload ended early (the client left, the body deadline passed): undo what was
    /// stored. The writer of a file in progress was dropped just before. The default
    /// does nothing.
    fn abort(self) {}
}

/// The answer to a failed write: `507` when there is no room for it (the disk is full, a
/// quota or the file size limit is reached), else `500`; logged.
pub(super) fn write_failed(e: std::io::Error) -> Response {
    use std::io::ErrorKind::{FileTooLarge, QuotaExceeded, StorageFull};
    log::error!("multipart: storing an uploaded file failed: {e}");
    if matches!(e.kind(), StorageFull | QuotaExceeded | FileTooLarge) {
        Response::error(507, "multipart: no space left to store the upload\n")
    } else {
        Response::error(
            crate::status::INTERNAL_SERVER_ERROR,
            "multipart: could not store the upload\n",
        )
    }
}

/// The part being read, between its `Part` and `PartEnd` events.
enum Current<W> {
    None,
    /// A field: its value so far (bounded by `max_field_bytes`).
    Field(Part, Vec<u8>),
    /// A file: its writer and the bytes written.
    File(Part, W, u64),
}

/// A [`BodySink`] that parses a `multipart/form-data` body and hands its parts to a
/// [`MultipartHandler`]. [`receive`] builds one; use it directly to answer
/// [`Response::read_body`] yourself.
pub struct Multipart<H: MultipartHandler> {
    parser: Parser,
    /// `None` once `finish` or `abort` consumed it.
    handler: Option<H>,
    current: Current<H::Writer>,
}

impl<H: MultipartHandler> Multipart<H> {
    /// A sink for `req`'s form: `415`/`400` when its Content-Type is not
    /// `multipart/form-data` with a valid boundary, `413` when its announced length is
    /// over `limits.max_total_bytes` (then `handler.abort()` ran).
    pub fn new(req: &Request, limits: Limits, handler: H) -> Result<Self, Response> {
        let checked = content_type(req).and_then(boundary).and_then(|b| {
            let len = req.streamed_body_len().unwrap_or(req.body().len() as u64);
            if len > limits.max_total_bytes {
                return Err(Error::TooLarge {
                    limit: Limit::TotalBytes,
                    max: limits.max_total_bytes,
                });
            }
            Parser::new(&b, limits)
        });
        match checked {
            Ok(parser) => Ok(Multipart {
                parser,
                handler: Some(handler),
                current: Current::None,
            }),
            Err(e) => {
                handler.abort();
                Err(e.into())
            }
        }
    }

    fn feed(&mut self, piece: &[u8]) -> Result<(), Response> {
        let Multipart {
            parser,
            handler,
            current,
        } = self;
        let Some(h) = handler.as_mut() else {
            return Err(Response::error(500, ""));
        };
        parser.feed(piece, &mut |ev| on_event(h, current, ev))
    }

    /// Drops a file in progress, then tells the handler.
    fn abort_handler(&mut self) {
        self.current = Current::None;
        if let Some(h) = self.handler.take() {
            h.abort();
        }
    }
}

fn on_event<H: MultipartHandler>(
    h: &mut H,
    current: &mut Current<H::Writer>,
    ev: Event<'_>,
) -> Result<(), Response> {
    match ev {
        Event::Part(part) if part.is_file() => {
            let w = h.on_file_start(&part)?;
            *current = Current::File(part, w, 0);
        }
        Event::Part(part) => *current = Current::Field(part, Vec::new()),
        Event::Data(d) => match current {
            Current::Field(_, value) => value.extend_from_slice(d),
            Current::File(_, w, size) => {
                h.on_file_data(w, d)?;
                *size += d.len() as u64;
            }
            Current::None => {}
        },
        Event::PartEnd => match std::mem::replace(current, Current::None) {
            Current::Field(part, value) => {
                let value = String::from_utf8(value).map_err(|_| Error::FieldNotUtf8)?;
                h.on_field(&part.name, &value)?;
            }
            Current::File(part, w, size) => h.on_file_end(part, w, size)?,
            Current::None => {}
        },
    }
    Ok(())
}

impl<H: MultipartHandler> BodySink for Multipart<H> {
    fn data(&mut self, piece: &[u8]) -> Result<(), Response> {
        self.feed(piece).inspect_err(|_| self.abort_handler())
    }

    fn finish(mut self: Box<Self>) -> Response {
        if let Err(e) = self.parser.finish() {
            self.abort_handler();
            return e.into();
        }
        match self.handler.take() {
            Some(h) => h.finish(),
            None => Response::error(500, ""),
        }
    }

    fn abort(mut self: Box<Self>) {
        self.abort_handler();
    }

    /// The fields' values so far (kept by the handler once each is whole, at most
    /// `max_fields_bytes` in all) and the part header being read.
    fn held_bytes(&self) -> usize {
        self.parser.held_bytes()
    }
}

/// Reads `req`'s `multipart/form-data` body into `handler` and answers what its `finish`
/// returns (or the refusal).
///
/// A body over `max_body_bytes` (with `max_upload_bytes` set) is streamed: this returns
/// [`Response::read_body`] and the loop feeds the body to the handler window by window
/// as the client sends it, each window a short job — a slow uploader holds no worker. A
/// buffered body is fed at once, on this worker.
pub fn receive<H: MultipartHandler>(req: &Request, limits: Limits, handler: H) -> Response {
    let mut m = match Multipart::new(req, limits, handler) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if req.streamed_body_len().is_some() {
        return Response::read_body(m);
    }
    // A panic in the handler is the pool's (a 500), but what the form stored is undone
    // first, as for a streamed body (`BodySink::abort`).
    let fed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.data(req.body())));
    match fed {
        Ok(Ok(())) => Box::new(m).finish(),
        Ok(Err(r)) => r,
        Err(panic) => {
            m.abort_handler();
            std::panic::resume_unwind(panic)
        }
    }
}

/// A field of a form: its name and (UTF-8) value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A file of a form read into memory by [`parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePart {
    /// The form field's name.
    pub name: String,
    /// The client's name for the file (never a path to use).
    pub filename: String,
    /// The part's `Content-Type`, when given.
    pub content_type: Option<String>,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// A whole form in memory, parts in body order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form {
    /// The fields (parts without a filename).
    pub fields: Vec<Field>,
    /// The files.
    pub files: Vec<FilePart>,
}

impl Form {
    /// The first field named `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }

    /// The first file of the field named `name`.
    pub fn file(&self, name: &str) -> Option<&FilePart> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// The form in `req`'s buffered body (at most `max_body_bytes`), within the default
/// [`Limits`] (Go's `r.ParseMultipartForm`). A body larger than memory is refused with
/// `413` ([`Error::NotBuffered`]): stream it with [`receive`] instead.
///
/// ```
/// use h1server::multipart;
/// use h1server::{Request, Response};
///
/// fn signup(req: &mut Request) -> Response {
///     match multipart::parse(req) {
///         Ok(form) => Response::text(format!("hello {}\n", form.field("name").unwrap_or("?"))),
///         Err(refusal) => refusal,
///     }
/// }
/// # let _ = signup;
/// ```
pub fn parse(req: &Request) -> Result<Form, Response> {
    parse_with(req, Limits::default())
}

/// [`parse`] within `limits`.
pub fn parse_with(req: &Request, limits: Limits) -> Result<Form, Response> {
    if req.streamed_body_len().is_some() {
        return Err(Error::NotBuffered.into());
    }
    Ok(parse_bytes(content_type(req)?, req.body(), limits)?)
}

/// The request's Content-Type (`""` without one); [`Error::RepeatedContentType`] when it
/// has more than one: a filter in front that reads another one than this would see
/// another form than the one stored.
fn content_type(req: &Request) -> Result<&str, Error> {
    if req.header_lines("content-type") > 1 {
        return Err(Error::RepeatedContentType);
    }
    Ok(req.header("content-type").unwrap_or(""))
}

/// The form in `body`, whose Content-Type is `content_type` (sans-I/O: no request
/// needed).
pub fn parse_bytes(content_type: &str, body: &[u8], limits: Limits) -> Result<Form, Error> {
    let mut p = Parser::new(&boundary(content_type)?, limits)?;
    let mut form = Form::default();
    let mut current: Option<(Part, Vec<u8>)> = None;
    p.feed(body, &mut |ev| {
        match ev {
            Event::Part(part) => current = Some((part, Vec::new())),
            Event::Data(d) => {
                if let Some((_, v)) = current.as_mut() {
                    v.extend_from_slice(d);
                }
            }
            Event::PartEnd => {
                let Some((part, data)) = current.take() else {
                    return Ok(());
                };
                if part.is_file() {
                    form.files.push(FilePart {
                        filename: part.filename.unwrap_or_default(),
                        name: part.name,
                        content_type: part.content_type,
                        data,
                    });
                } else {
                    let value = String::from_utf8(data).map_err(|_| Error::FieldNotUtf8)?;
                    form.fields.push(Field {
                        name: part.name,
                        value,
                    });
                }
            }
        }
        Ok::<(), Error>(())
    })?;
    p.finish()?;
    Ok(form)
}

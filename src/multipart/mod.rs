//! `multipart/form-data` request bodies (RFC 7578 on RFC 2046 §5.1): HTML forms with file
//! inputs, `curl -F`. The parser is sans-I/O and incremental: it is fed the body in
//! pieces of any size and never holds more than one part's headers and a boundary's worth
//! of bytes, so a file of any size streams through it to a writer of your choice.
//!
//! The parser ([`Parser`]) never touches a socket, a file or a thread; the adapters around
//! it ([`Multipart`], [`DiskFiles`]) run on workers, one body window per short job.
//!
//! Three ways in, from the most convenient to the most general:
//!
//! * [`parse`] — a body already in memory (at most `max_body_bytes`) into a [`Form`] of
//!   fields and files, like Go's `r.ParseMultipartForm`.
//! * [`receive`] with a [`MultipartHandler`] — any body: a streamed one (over
//!   `max_body_bytes`, with `max_upload_bytes` set) is fed to the handler piece by piece
//!   as the client sends it; a small one is fed at once. [`DiskFiles`] is a handler that
//!   writes each file to a directory under a generated name.
//! * [`Parser`] — the state machine alone: bytes in, [`Event`]s out.
//!
//! ```
//! use h1server::multipart::{self, DiskFiles, Limits};
//! use h1server::{Request, Response};
//!
//! fn upload(req: &mut Request) -> Response {
//!     let limits = Limits { max_file_bytes: 100 << 20, max_total_bytes: 100 << 20, ..Limits::default() };
//!     let files = DiskFiles::new("./data/uploads", |upload| {
//!         let names: Vec<String> = upload.files.iter().map(|f| f.filename.clone()).collect();
//!         Response::text(format!("stored {}\n", names.join(", "))).with_status(201)
//!     });
//!     multipart::receive(req, limits, files)
//! }
//! # let _ = upload;
//! ```
//!
//! Every refusal is an [`Error`]: `415` when the body is not `multipart/form-data`, `413`
//! naming the [`Limits`] field that was passed, `400` naming what is malformed.

mod disk;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod headers;
#[cfg(test)]
mod headers_tests;
mod parser;
mod sink;
#[cfg(test)]
mod sink_tests;
#[cfg(test)]
mod tests;

use std::fmt;

pub use disk::{DiskFiles, StoredFile, Upload};
pub use headers::boundary;
pub use parser::{Event, Parser};
pub use sink::{
    Field, FilePart, Form, Multipart, MultipartHandler, parse, parse_bytes, parse_with, receive,
};

use crate::response::Response;

/// Bounds on one `multipart/form-data` body. Each one passed is a `413` naming the field.
///
/// Memory held per body: one part's headers (`max_part_header_bytes`) in the parser, and
/// the non-file values a handler keeps (`max_fields_bytes` in all). Files are not held:
/// they stream to the handler's writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most parts (fields and files) in one body. Default 100 (Go: 1000).
    pub max_parts: u64,
    /// Largest header block of one part, its blank line included. Default 8 KiB
    /// (Go: 10 KiB for a whole form's headers).
    pub max_part_header_bytes: usize,
    /// Largest value of one field (a part without a filename). Default 64 KiB.
    pub max_field_bytes: u64,
    /// Largest sum of all field values of the body. Default 1 MiB (Go: `maxMemory`).
    pub max_fields_bytes: u64,
    /// Largest file (a part with a filename). Default 64 MiB.
    pub max_file_bytes: u64,
    /// Largest body, preamble and epilogue included. Default 64 MiB.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_parts: 100,
            max_part_header_bytes: 8 * 1024,
            max_field_bytes: 64 * 1024,
            max_fields_bytes: 1024 * 1024,
            max_file_bytes: 64 * 1024 * 1024,
            max_total_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Which of the [`Limits`] a body passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::max_parts`].
    Parts,
    /// [`Limits::max_part_header_bytes`].
    PartHeaderBytes,
    /// [`Limits::max_field_bytes`].
    FieldBytes,
    /// [`Limits::max_fields_bytes`].
    FieldsBytes,
    /// [`Limits::max_file_bytes`].
    FileBytes,
    /// [`Limits::max_total_bytes`].
    TotalBytes,
}

impl Limit {
    /// The [`Limits`] field's name, e.g. `max_file_bytes`.
    pub fn field(self) -> &'static str {
        match self {
            Limit::Parts => "max_parts",
            Limit::PartHeaderBytes => "max_part_header_bytes",
            Limit::FieldBytes => "max_field_bytes",
            Limit::FieldsBytes => "max_fields_bytes",
            Limit::FileBytes => "max_file_bytes",
            Limit::TotalBytes => "max_total_bytes",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Limit::Parts => "the form has more parts than",
            Limit::PartHeaderBytes => "a part's headers are larger than",
            Limit::FieldBytes => "a field's value is larger than",
            Limit::FieldsBytes => "the fields' values together are larger than",
            Limit::FileBytes => "a file is larger than",
            Limit::TotalBytes => "the form is larger than",
        }
    }
}

/// Why a `multipart/form-data` body was refused. [`Error::status`] is the one mapping to
/// a status code; `Response::from(error)` answers it with the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The Content-Type is missing or not `multipart/form-data` (415).
    NotMultipart,
    /// The Content-Type's parameters do not parse (RFC 9110 §5.6.6).
    BadContentType,
    /// The request has more than one Content-Type field line: which boundary frames the
    /// form is ambiguous (RFC 9110 §5.3: Content-Type is not a list).
    RepeatedContentType,
    /// No `boundary` parameter (RFC 7578 §4.1: it is required).
    MissingBoundary,
    /// The boundary is empty, longer than 70 characters, ends with a space or holds a
    /// character outside RFC 2046's `bchars`.
    BadBoundary,
    /// The body holds no `--boundary` line.
    NoBoundaryLine,
    /// A boundary delimiter is followed by something other than `--`, padding and CRLF
    /// (RFC 2046 §5.1.1: the boundary must not appear inside a part).
    TextAfterBoundary,
    /// A part header line is malformed: no colon, a bad name, a bare CR or LF, a control
    /// character.
    BadPartHeader,
    /// A part header line is folded (starts with a space or tab): not accepted.
    FoldedPartHeader,
    /// A part has two `Content-Disposition` or two `Content-Type` headers.
    DuplicatePartHeader,
    /// A part has no `Content-Disposition` header (RFC 7578 §4.2: it is required).
    MissingDisposition,
    /// A part's disposition is not `form-data` (RFC 7578 §4.2).
    NotFormData,
    /// A part's `Content-Disposition` parameters do not parse, or one is repeated.
    BadDisposition,
    /// A part's `Content-Disposition` has no `name` (RFC 7578 §4.2: it is required).
    MissingName,
    /// The body ended before the closing `--boundary--`.
    Truncated,
    /// A field's value is not UTF-8 (RFC 7578 §5.1: UTF-8 is the default charset).
    FieldNotUtf8,
    /// A body larger than memory came to [`parse`], which reads buffered bodies only.
    NotBuffered,
    /// One of the [`Limits`] was passed (413).
    TooLarge {
        /// Which one.
        limit: Limit,
        /// Its value.
        max: u64,
    },
}

impl Error {
    /// The status code to answer: 413 for a limit, 415 for another media type, else 400.
    pub fn status(&self) -> u16 {
        match self {
            Error::TooLarge { .. } | Error::NotBuffered => crate::status::CONTENT_TOO_LARGE,
            Error::NotMultipart => crate::status::UNSUPPORTED_MEDIA_TYPE,
            _ => crate::status::BAD_REQUEST,
        }
    }

    fn message(&self) -> &'static str {
        match self {
            Error::NotMultipart => "expected Content-Type: multipart/form-data",
            Error::BadContentType => "the Content-Type parameters do not parse",
            Error::RepeatedContentType => "the request has more than one Content-Type",
            Error::MissingBoundary => "the Content-Type has no boundary parameter",
            Error::BadBoundary => {
                "the boundary must be 1-70 characters of RFC 2046 bchars, not ending in a space"
            }
            Error::NoBoundaryLine => "the body holds no --boundary line",
            Error::TextAfterBoundary => "a boundary delimiter is followed by other text",
            Error::BadPartHeader => "a part header line is malformed",
            Error::FoldedPartHeader => "a part header line is folded (obs-fold)",
            Error::DuplicatePartHeader => "a part repeats Content-Disposition or Content-Type",
            Error::MissingDisposition => "a part has no Content-Disposition header",
            Error::NotFormData => "a part's Content-Disposition is not form-data",
            Error::BadDisposition => "a part's Content-Disposition parameters do not parse",
            Error::MissingName => "a part's Content-Disposition has no name parameter",
            Error::Truncated => "the body ended before the closing boundary",
            Error::FieldNotUtf8 => "a field's value is not UTF-8",
            Error::NotBuffered => {
                "the form is larger than max_body_bytes; stream it with multipart::receive"
            }
            Error::TooLarge { .. } => "over a limit",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge { limit, max } => {
                write!(f, "multipart: {} {} ({max})", limit.what(), limit.field())
            }
            e => write!(f, "multipart: {}", e.message()),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for Response {
    fn from(e: Error) -> Response {
        Response::error(e.status(), format!("{e}\n"))
    }
}

/// One part's headers: what its `Content-Disposition` and `Content-Type` say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The form field's name (`name=`), as sent (quoted-pair escapes undone).
    pub name: String,
    /// The file's name as the client gave it (`filename=`). Never use it as a path.
    pub filename: Option<String>,
    /// The part's `Content-Type`, when given.
    pub content_type: Option<String>,
}

impl Part {
    /// A file: the part has a non-empty `filename` (a browser's empty file input sends
    /// `filename=""` and no bytes; that part is a field with an empty value, as in Go).
    pub fn is_file(&self) -> bool {
        self.filename.as_deref().is_some_and(|f| !f.is_empty())
    }
}

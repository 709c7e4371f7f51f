//! Protocol errors: this module owns the mapping from every way a request can be
//! rejected to its status code, its response body text and whether the connection
//! must close afterwards.
//! It never builds a response, touches a socket, a clock or a thread: the event loop
//! turns an [`Error`] into bytes with `http::encode`.

use std::fmt;

/// Protocol errors detected while reading a request; each maps to one status in
/// [`Error::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// 400: httparse rejected the head (bad token, bare CR, obs-fold, bad request line,
    /// invalid field value, ...).
    MalformedHead,
    /// 400: whitespace between a field name and its colon (RFC 9112 §5.1).
    WhitespaceBeforeColon,
    /// 400: an HTTP/1.1 request without a Host field (RFC 9112 §3.2).
    MissingHost,
    /// 400: more than one Host field line (RFC 9112 §3.2).
    DuplicateHost,
    /// 400: a Host field whose value is not a valid `uri-host [ ":" port ]`, or is empty
    /// while the target is origin-form or asterisk-form (RFC 9112 §3.2, §3.3).
    InvalidHost,
    /// 400: a request-target byte outside visible ASCII, 0x21..=0x7E: raw UTF-8 or other
    /// bytes above 0x7E (RFC 9112 §3.2, RFC 3986 §2; httparse itself already rejects
    /// controls, SP and DEL as [`Error::MalformedHead`]).
    InvalidTarget,
    /// 400: an asterisk-form request-target (`*`) with a method other than OPTIONS
    /// (RFC 9112 §3.2.4).
    AsteriskFormNotOptions,
    /// 400 and close: both Content-Length and Transfer-Encoding (RFC 9112 §6.1, §6.3 item 3).
    ContentLengthWithTransferEncoding,
    /// 400 and close: Content-Length is not exactly `1*DIGIT`, overflows u64, or is repeated
    /// (RFC 9112 §6.3 item 5).
    InvalidContentLength,
    /// 400 and close: the last transfer coding is not `chunked`, or `chunked` was applied
    /// more than once (RFC 9112 §6.3 item 4, §7.1).
    TransferEncodingNotChunkedLast,
    /// 400 and close: Transfer-Encoding in an HTTP/1.0 request means faulty framing
    /// (RFC 9112 §6.1).
    TransferEncodingInHttp10,
    /// 501: `chunked` is last but an earlier coding is not implemented here (RFC 9112 §6.1:
    /// "A server that receives a request message with a transfer coding it does not
    /// understand SHOULD respond with 501 (Not Implemented)").
    UnknownTransferEncoding,
    /// 400 and close: bad chunk-size, chunk-size overflow, a chunk line not ended by
    /// exactly CRLF (bare LF, bare CR, missing after chunk data), whitespace right before
    /// that CRLF, bad chunk extension or trailer section (RFC 9112 §7.1, §7.1.1).
    InvalidChunk,
    /// 501: a method token longer than [`MAX_METHOD_BYTES`], which no route can match
    /// (RFC 9110 §9.1: "An origin server that receives a request method that is
    /// unrecognized or not implemented SHOULD respond with the 501 (Not Implemented)
    /// status code"). Answered as soon as the token passes the cap, head complete or not.
    ///
    /// [`MAX_METHOD_BYTES`]: crate::http::parse::MAX_METHOD_BYTES
    MethodTooLong,
    /// 414: the request-target is longer than the configured limit (RFC 9112 §3).
    UriTooLong,
    /// 431: the head is longer than the configured limit.
    HeadTooLarge,
    /// 431: more field lines than the configured limit.
    TooManyHeaders,
    /// 413 and close: the body is (or would be) longer than the configured limit.
    BodyTooLarge,
    /// 505: a well-formed `HTTP/x.y` of another major version than 1 (RFC 9110 §15.6.6).
    UnsupportedVersion,
    /// 408: the head did not arrive in time (set by the event loop).
    HeaderTimeout,
    /// 408: the body did not arrive in time (set by the event loop).
    BodyTimeout,
}

impl Error {
    /// The response status code for this error; the one place that maps kinds to codes.
    pub fn status(self) -> u16 {
        match self {
            Error::MalformedHead
            | Error::WhitespaceBeforeColon
            | Error::MissingHost
            | Error::DuplicateHost
            | Error::InvalidHost
            | Error::InvalidTarget
            | Error::AsteriskFormNotOptions
            | Error::ContentLengthWithTransferEncoding
            | Error::InvalidContentLength
            | Error::TransferEncodingNotChunkedLast
            | Error::TransferEncodingInHttp10
            | Error::InvalidChunk => 400,
            Error::UnknownTransferEncoding | Error::MethodTooLong => 501,
            Error::UriTooLong => 414,
            Error::HeadTooLarge | Error::TooManyHeaders => 431,
            Error::BodyTooLarge => 413,
            Error::UnsupportedVersion => 505,
            Error::HeaderTimeout | Error::BodyTimeout => 408,
        }
    }

    /// Short static text used as the error response body (ends with a newline).
    pub fn message(self) -> &'static str {
        match self {
            Error::MalformedHead => "Malformed request head\n",
            Error::WhitespaceBeforeColon => "Whitespace between field name and colon\n",
            Error::MissingHost => "Missing Host field\n",
            Error::DuplicateHost => "More than one Host field\n",
            Error::InvalidHost => "Invalid Host field\n",
            Error::InvalidTarget => "Invalid byte in request-target\n",
            Error::AsteriskFormNotOptions => "Request-target * is only for OPTIONS\n",
            Error::ContentLengthWithTransferEncoding => {
                "Content-Length and Transfer-Encoding both present\n"
            }
            Error::InvalidContentLength => "Invalid Content-Length\n",
            Error::TransferEncodingNotChunkedLast => "Transfer-Encoding must end with chunked\n",
            Error::TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 request\n",
            Error::UnknownTransferEncoding => "Transfer coding not implemented\n",
            Error::InvalidChunk => "Invalid chunked body\n",
            Error::MethodTooLong => "Method not implemented\n",
            Error::UriTooLong => "Request-target too long\n",
            Error::HeadTooLarge => "Request head too large\n",
            Error::TooManyHeaders => "Too many header fields\n",
            Error::BodyTooLarge => "Request body too large\n",
            Error::UnsupportedVersion => "HTTP version not supported\n",
            Error::HeaderTimeout => "Timed out reading the request head\n",
            Error::BodyTimeout => "Timed out reading the request body\n",
        }
    }

    /// True when the connection must close after the error response because the framing
    /// of what follows is unknown; in practice that holds for every variant.
    pub fn must_close(self) -> bool {
        true
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.message().trim_end())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::Error::{self, *};

    const ALL: &[(Error, u16)] = &[
        (MalformedHead, 400),
        (WhitespaceBeforeColon, 400),
        (MissingHost, 400),
        (DuplicateHost, 400),
        (InvalidHost, 400),
        (InvalidTarget, 400),
        (AsteriskFormNotOptions, 400),
        (ContentLengthWithTransferEncoding, 400),
        (InvalidContentLength, 400),
        (TransferEncodingNotChunkedLast, 400),
        (TransferEncodingInHttp10, 400),
        (UnknownTransferEncoding, 501),
        (InvalidChunk, 400),
        (MethodTooLong, 501),
        (UriTooLong, 414),
        (HeadTooLarge, 431),
        (TooManyHeaders, 431),
        (BodyTooLarge, 413),
        (UnsupportedVersion, 505),
        (HeaderTimeout, 408),
        (BodyTimeout, 408),
    ];

    #[test]
    fn statuses_messages_close() {
        for &(e, status) in ALL {
            assert_eq!(e.status(), status, "{e:?}");
            let m = e.message();
            assert!(m.ends_with('\n') && m.len() > 1, "{e:?}");
            assert!(e.must_close(), "{e:?}");
            assert!(e.to_string().starts_with(&status.to_string()), "{e:?}");
        }
    }
}

//! Status codes by name: `u16` constants for the common statuses, named as RFC 9110 §15
//! (and RFC 6585 for 428, 429, 431) names them, so handlers read `status::NOT_FOUND`
//! rather than `404`.
//!
//! This module only names numbers; it never builds a response. A status is a plain `u16`
//! everywhere in the API, so any code in 100–999 works, named here or not.
//!
//! ```
//! use h1server::{status, Response};
//! let r = Response::error(status::NOT_FOUND, "");
//! assert_eq!(r.status(), 404);
//! assert_eq!(status::reason(status::NOT_FOUND), "Not Found");
//! ```

macro_rules! statuses {
    ($($(#[$doc:meta])* $name:ident = $code:literal;)*) => {
        $($(#[$doc])* pub const $name: u16 = $code;)*

        /// Every constant of this module with its name, for the test against `reason`.
        #[cfg(test)]
        const ALL: &[(&str, u16)] = &[$((stringify!($name), $code)),*];
    };
}

statuses! {
    /// 100 Continue (RFC 9110 §15.2.1).
    CONTINUE = 100;
    /// 101 Switching Protocols (RFC 9110 §15.2.2).
    SWITCHING_PROTOCOLS = 101;
    /// 200 OK (RFC 9110 §15.3.1).
    OK = 200;
    /// 201 Created (RFC 9110 §15.3.2).
    CREATED = 201;
    /// 202 Accepted (RFC 9110 §15.3.3).
    ACCEPTED = 202;
    /// 203 Non-Authoritative Information (RFC 9110 §15.3.4).
    NON_AUTHORITATIVE_INFORMATION = 203;
    /// 204 No Content (RFC 9110 §15.3.5): the engine sends no body.
    NO_CONTENT = 204;
    /// 205 Reset Content (RFC 9110 §15.3.6).
    RESET_CONTENT = 205;
    /// 206 Partial Content (RFC 9110 §15.3.7).
    PARTIAL_CONTENT = 206;
    /// 300 Multiple Choices (RFC 9110 §15.4.1).
    MULTIPLE_CHOICES = 300;
    /// 301 Moved Permanently (RFC 9110 §15.4.2).
    MOVED_PERMANENTLY = 301;
    /// 302 Found (RFC 9110 §15.4.3): [`Response::redirect`](crate::Response::redirect).
    FOUND = 302;
    /// 303 See Other (RFC 9110 §15.4.4).
    SEE_OTHER = 303;
    /// 304 Not Modified (RFC 9110 §15.4.5): the engine sends no body.
    NOT_MODIFIED = 304;
    /// 307 Temporary Redirect (RFC 9110 §15.4.8).
    TEMPORARY_REDIRECT = 307;
    /// 308 Permanent Redirect (RFC 9110 §15.4.9).
    PERMANENT_REDIRECT = 308;
    /// 400 Bad Request (RFC 9110 §15.5.1).
    BAD_REQUEST = 400;
    /// 401 Unauthorized (RFC 9110 §15.5.2): send `WWW-Authenticate` with it.
    UNAUTHORIZED = 401;
    /// 402 Payment Required (RFC 9110 §15.5.3).
    PAYMENT_REQUIRED = 402;
    /// 403 Forbidden (RFC 9110 §15.5.4).
    FORBIDDEN = 403;
    /// 404 Not Found (RFC 9110 §15.5.5).
    NOT_FOUND = 404;
    /// 405 Method Not Allowed (RFC 9110 §15.5.6): send `Allow` with it.
    METHOD_NOT_ALLOWED = 405;
    /// 406 Not Acceptable (RFC 9110 §15.5.7).
    NOT_ACCEPTABLE = 406;
    /// 407 Proxy Authentication Required (RFC 9110 §15.5.8).
    PROXY_AUTHENTICATION_REQUIRED = 407;
    /// 408 Request Timeout (RFC 9110 §15.5.9).
    REQUEST_TIMEOUT = 408;
    /// 409 Conflict (RFC 9110 §15.5.10).
    CONFLICT = 409;
    /// 410 Gone (RFC 9110 §15.5.11).
    GONE = 410;
    /// 411 Length Required (RFC 9110 §15.5.12).
    LENGTH_REQUIRED = 411;
    /// 412 Precondition Failed (RFC 9110 §15.5.13).
    PRECONDITION_FAILED = 412;
    /// 413 Content Too Large (RFC 9110 §15.5.14; formerly Payload Too Large).
    CONTENT_TOO_LARGE = 413;
    /// 414 URI Too Long (RFC 9110 §15.5.15).
    URI_TOO_LONG = 414;
    /// 415 Unsupported Media Type (RFC 9110 §15.5.16).
    UNSUPPORTED_MEDIA_TYPE = 415;
    /// 416 Range Not Satisfiable (RFC 9110 §15.5.17).
    RANGE_NOT_SATISFIABLE = 416;
    /// 417 Expectation Failed (RFC 9110 §15.5.18).
    EXPECTATION_FAILED = 417;
    /// 421 Misdirected Request (RFC 9110 §15.5.20).
    MISDIRECTED_REQUEST = 421;
    /// 422 Unprocessable Content (RFC 9110 §15.5.21).
    UNPROCESSABLE_CONTENT = 422;
    /// 426 Upgrade Required (RFC 9110 §15.5.22).
    UPGRADE_REQUIRED = 426;
    /// 428 Precondition Required (RFC 6585 §3).
    PRECONDITION_REQUIRED = 428;
    /// 429 Too Many Requests (RFC 6585 §4): send `Retry-After` with it.
    TOO_MANY_REQUESTS = 429;
    /// 431 Request Header Fields Too Large (RFC 6585 §5).
    REQUEST_HEADER_FIELDS_TOO_LARGE = 431;
    /// 500 Internal Server Error (RFC 9110 §15.6.1).
    INTERNAL_SERVER_ERROR = 500;
    /// 501 Not Implemented (RFC 9110 §15.6.2).
    NOT_IMPLEMENTED = 501;
    /// 502 Bad Gateway (RFC 9110 §15.6.3).
    BAD_GATEWAY = 502;
    /// 503 Service Unavailable (RFC 9110 §15.6.4): send `Retry-After` with it.
    SERVICE_UNAVAILABLE = 503;
    /// 504 Gateway Timeout (RFC 9110 §15.6.5).
    GATEWAY_TIMEOUT = 504;
    /// 505 HTTP Version Not Supported (RFC 9110 §15.6.6).
    HTTP_VERSION_NOT_SUPPORTED = 505;
}

/// The reason phrase the engine writes for `code` ("Not Found"): the IANA registry's,
/// or `"Unknown"` for an unregistered code.
pub fn reason(code: u16) -> &'static str {
    crate::http::encode::reason(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_spells_its_reason_phrase() {
        for &(name, code) in ALL {
            let spelled = reason(code).to_ascii_uppercase().replace([' ', '-'], "_");
            assert_eq!(name, spelled, "{code}");
        }
    }
}

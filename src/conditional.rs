//! Conditional requests (RFC 9110 §13): a handler states its resource's current
//! validators — whether it exists, its entity tag, its last modification time — and
//! [`evaluate`] answers whether to perform the method, answer `304 Not Modified` or
//! `412 Precondition Failed`.
//!
//! Nothing here runs unless a handler calls it: the engine never evaluates preconditions
//! on its own (it does not know a resource's validators).
//!
//! ```
//! use h1server::conditional::{self, Validators, Verdict};
//! use h1server::{Request, Response};
//!
//! fn update(req: &mut Request) -> Response {
//!     let current = "\"v7\""; // the resource's ETag, as its GET sends it
//!     let v = Validators::new(Some(current), None);
//!     match conditional::evaluate(req, &v) {
//!         Verdict::Proceed => Response::text("updated"), // …perform the write
//!         other => other.response(&v).unwrap(),          // 412 (or 304 for GET/HEAD)
//!     }
//! }
//!
//! let r = h1server::testing::TestRequest::put("/doc")
//!     .header("If-Match", "\"v6\"")
//!     .run(&update);
//! assert_eq!(r.status(), 412);
//! ```
//!
//! # The order (RFC 9110 §13.2.2)
//!
//! 1. `If-Match` present: false → `412`.
//! 2. else `If-Unmodified-Since` present (and a valid date, and the resource has a
//!    modification date): false → `412`.
//! 3. `If-None-Match` present: false → `304` for GET and HEAD, `412` otherwise.
//! 4. else, for GET and HEAD, `If-Modified-Since` present (valid date, a modification
//!    date known): false → `304`.
//! 5. Otherwise: perform the method ([`Verdict::Proceed`]).
//!
//! `If-Match` compares strongly (a weak tag never matches, on either side), `If-None-Match`
//! weakly (§8.8.3.2); `*` is true when the resource exists (`If-Match`), false when it
//! exists (`If-None-Match`). Dates compare to the second (`Last-Modified` is sent to the
//! second). The optional exception of §13.1.1/§13.1.4 — a 2xx when the change "appears
//! to have already been applied" — is the handler's to make, not this module's.
//!
//! # Malformed fields
//!
//! * An entity-tag list is read like Go's `net/http` (`checkIfMatch`, `checkIfNoneMatch`):
//!   members in order, several field lines as one list; the first malformed member (no
//!   quotes, a character outside `etagc`, garbage after a tag) ends the list, and the
//!   members before it still count. So a malformed `If-Match` that matched nothing is
//!   false (`412`: the write is never performed on a field the server could not read),
//!   and a malformed `If-None-Match` that matched nothing is true (the full answer).
//!   `*` counts wherever it appears in the list, as in Go. An `If-Match` with an empty
//!   value is an empty list: false (Go treats it as absent; §13.1.1 has no exception).
//! * A date that is not a valid HTTP-date (any of the three formats, names and `GMT`
//!   case-sensitive), or a date field sent on more than one line, is ignored, as
//!   §13.1.3 and §13.1.4 require.
//!
//! A `304` must carry the `ETag`, `Last-Modified`, `Cache-Control`, `Vary`, `Expires` and
//! `Content-Location` that the `200` would have (§15.4.5): [`not_modified_from`] copies
//! them from the full response, and [`respond`] does all of it for a GET handler.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::Method;
use crate::http::date::{format_imf_fixdate, parse_http_date};
use crate::{Request, Response, status};

/// An entity tag (RFC 9110 §8.8.3): `"opaque"` (strong) or `W/"opaque"` (weak).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityTag<'a> {
    weak: bool,
    opaque: &'a str,
}

impl<'a> EntityTag<'a> {
    /// The tag `s` spells — exactly one entity-tag, surrounding spaces and tabs allowed —
    /// or `None` when it is not one (`W/` is case-sensitive; the opaque part is quoted and
    /// made of `%x21 / %x23-7E / obs-text`).
    pub fn parse(s: &'a str) -> Option<Self> {
        let (tag, rest) = scan_tag(s)?;
        rest.trim_matches([' ', '\t']).is_empty().then_some(tag)
    }

    /// Whether the tag is weak (`W/"…"`).
    pub fn is_weak(&self) -> bool {
        self.weak
    }

    /// The opaque part, without its quotes.
    pub fn opaque(&self) -> &'a str {
        self.opaque
    }

    /// Strong comparison (§8.8.3.2): both strong and the same opaque part.
    pub fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (§8.8.3.2): the same opaque part, weak or not.
    pub fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }
}

impl fmt::Display for EntityTag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = if self.weak { "W/" } else { "" };
        write!(f, "{w}\"{}\"", self.opaque)
    }
}

/// One entity-tag at the start of `s` (after optional whitespace) and what follows it.
fn scan_tag(s: &str) -> Option<(EntityTag<'_>, &str)> {
    let s = s.trim_start_matches([' ', '\t']);
    let (weak, quoted) = match s.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let body = quoted.strip_prefix('"')?;
    for (i, b) in body.bytes().enumerate() {
        match b {
            b'"' => {
                let tag = EntityTag {
                    weak,
                    opaque: &body[..i],
                };
                return Some((tag, &body[i + 1..]));
            }
            0x21 | 0x23..=0x7E | 0x80..=0xFF => {}
            _ => return None,
        }
    }
    None
}

/// A strong entity tag for a representation's bytes: `"` + 16 hex digits of their 64-bit
/// FNV-1a hash + `"`. Stable across processes and versions of this crate; not a
/// cryptographic hash (a client that can choose content could make two share a tag).
pub fn strong_etag_of(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// An HTTP-date in the IMF-fixdate format (`Sun, 06 Nov 1994 08:49:37 GMT`), for
/// `Last-Modified`; the time is truncated to the second (clamped to 1970–9999).
pub fn format_http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut out = [0u8; 29];
    format_imf_fixdate(secs, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP-date in any of the three formats a recipient must accept (RFC 9110 §5.6.7:
/// IMF-fixdate, RFC 850 with its two-digit year, asctime), or `None`.
pub fn parse_http_date_str(s: &str) -> Option<SystemTime> {
    let secs = parse_http_date(
        s.trim_matches([' ', '\t']).as_bytes(),
        unix_secs(SystemTime::now()),
    )?;
    let d = std::time::Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

/// Whole seconds since the epoch, rounded down (negative before 1970).
fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => {
            let d = e.duration();
            let whole = d.as_secs() as i64;
            if d.subsec_nanos() > 0 {
                -whole - 1
            } else {
                -whole
            }
        }
    }
}

/// What the handler knows of the target resource now (its selected representation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validators<'a> {
    /// Whether the resource has a current representation (`*` matches it).
    pub exists: bool,
    /// Its entity tag as its `ETag` field carries it, e.g. `"\"v7\""` or `"W/\"x\""`; a
    /// value that is not an entity-tag counts as none.
    pub etag: Option<&'a str>,
    /// When it last changed, if known (compared to the second).
    pub last_modified: Option<SystemTime>,
}

impl<'a> Validators<'a> {
    /// An existing resource with these validators.
    pub fn new(etag: Option<&'a str>, last_modified: Option<SystemTime>) -> Self {
        Validators {
            exists: true,
            etag,
            last_modified,
        }
    }

    /// A resource with no current representation (for a PUT that would create it).
    pub fn missing() -> Validators<'static> {
        Validators {
            exists: false,
            etag: None,
            last_modified: None,
        }
    }

    /// `resp` with this `ETag` and `Last-Modified` (those known) set.
    pub fn apply(&self, mut resp: Response) -> Response {
        if let Some(tag) = self.etag {
            resp.set_header("ETag", tag.to_string());
        }
        if let Some(t) = self.last_modified {
            resp.set_header("Last-Modified", format_http_date(t));
        }
        resp
    }
}

/// What the preconditions say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every precondition present holds (or none was sent): perform the method.
    Proceed,
    /// `304 Not Modified`: GET or HEAD, and the client's copy is current.
    NotModified,
    /// `412 Precondition Failed`: do not perform the method.
    PreconditionFailed,
}

impl Verdict {
    /// The answer for this verdict — [`not_modified`] or [`precondition_failed`] — or
    /// `None` for [`Verdict::Proceed`].
    pub fn response(self, v: &Validators<'_>) -> Option<Response> {
        match self {
            Verdict::Proceed => None,
            Verdict::NotModified => Some(not_modified(v)),
            Verdict::PreconditionFailed => Some(precondition_failed()),
        }
    }
}

/// A condition's outcome; `None` when its field is absent or ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cond {
    None,
    True,
    False,
}

/// Evaluates the request's `If-Match`, `If-Unmodified-Since`, `If-None-Match` and
/// `If-Modified-Since` against `v`, in RFC 9110 §13.2.2's order (see the module).
///
/// Call it once the request is known to be one whose answer without the preconditions
/// would be 2xx or 412 (§13.2.1: e.g. not for a 404 of a PUT that does not create, nor a
/// 401), and before performing the method or reading its content.
pub fn evaluate(req: &Request, v: &Validators<'_>) -> Verdict {
    let get_or_head = matches!(req.method(), Method::Get | Method::Head);
    let mut cond = if_match(req, v);
    if cond == Cond::None {
        cond = if_unmodified_since(req, v);
    }
    if cond == Cond::False {
        return Verdict::PreconditionFailed;
    }
    match if_none_match(req, v) {
        Cond::False if get_or_head => Verdict::NotModified,
        Cond::False => Verdict::PreconditionFailed,
        Cond::True => Verdict::Proceed,
        Cond::None if get_or_head && if_modified_since(req, v) == Cond::False => {
            Verdict::NotModified
        }
        Cond::None => Verdict::Proceed,
    }
}

/// Whether the request carries any of the four precondition fields.
pub fn has_preconditions(req: &Request) -> bool {
    FIELDS.iter().any(|f| req.header_values(f).next().is_some())
}

const FIELDS: [&str; 4] = [
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

/// Walks the entity-tag list of every `name` field line, in order, calling `member`
/// with `None` for `*` and `Some(tag)` for a tag until it returns true (then true). A
/// malformed member ends the walk (false). `None` when the field is absent.
fn walk_list(
    req: &Request,
    name: &str,
    mut member: impl FnMut(Option<EntityTag<'_>>) -> bool,
) -> Option<bool> {
    let mut present = false;
    for line in req.header_values(name) {
        present = true;
        let mut rest = line;
        loop {
            rest = rest.trim_start_matches([' ', '\t']);
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
                continue;
            }
            if let Some(after) = rest.strip_prefix('*') {
                if member(None) {
                    return Some(true);
                }
                rest = after;
                continue;
            }
            let Some((tag, after)) = scan_tag(rest) else {
                return Some(false);
            };
            if member(Some(tag)) {
                return Some(true);
            }
            rest = after;
            // A tag must be followed by a separator or the end.
            let next = rest.trim_start_matches([' ', '\t']);
            if !(next.is_empty() || next.starts_with(',')) {
                return Some(false);
            }
        }
    }
    present.then_some(false)
}

/// §13.1.1: true if `*` and the resource exists, or a listed tag strongly matches.
fn if_match(req: &Request, v: &Validators<'_>) -> Cond {
    let current = v.etag.and_then(EntityTag::parse).filter(|_| v.exists);
    let found = walk_list(req, "if-match", |m| match m {
        None => v.exists,
        Some(tag) => current.is_some_and(|c| c.strong_eq(&tag)),
    });
    match found {
        None => Cond::None,
        Some(true) => Cond::True,
        Some(false) => Cond::False,
    }
}

/// §13.1.2: false if `*` and the resource exists, or a listed tag weakly matches.
fn if_none_match(req: &Request, v: &Validators<'_>) -> Cond {
    let current = v.etag.and_then(EntityTag::parse).filter(|_| v.exists);
    let found = walk_list(req, "if-none-match", |m| match m {
        None => v.exists,
        Some(tag) => current.is_some_and(|c| c.weak_eq(&tag)),
    });
    match found {
        None => Cond::None,
        Some(true) => Cond::False,
        Some(false) => Cond::True,
    }
}

/// The date of a single-line date field, parsed; `None` when absent, on several lines or
/// not a valid HTTP-date (the field is then ignored).
fn date_field(req: &Request, name: &str) -> Option<i64> {
    let mut lines = req.header_values(name);
    let value = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    let now = unix_secs(SystemTime::now());
    parse_http_date(value.trim_matches([' ', '\t']).as_bytes(), now)
}

/// The resource's modification time in whole seconds, when it exists and has one.
fn modified_secs(v: &Validators<'_>) -> Option<i64> {
    v.last_modified.filter(|_| v.exists).map(unix_secs)
}

/// §13.1.4: true if the resource has not changed since the date.
fn if_unmodified_since(req: &Request, v: &Validators<'_>) -> Cond {
    let Some(modified) = modified_secs(v) else {
        return Cond::None;
    };
    match date_field(req, "if-unmodified-since") {
        None => Cond::None,
        Some(date) if modified <= date => Cond::True,
        Some(_) => Cond::False,
    }
}

/// §13.1.3: false (not modified) if the resource has not changed since the date.
fn if_modified_since(req: &Request, v: &Validators<'_>) -> Cond {
    let Some(modified) = modified_secs(v) else {
        return Cond::None;
    };
    match date_field(req, "if-modified-since") {
        None => Cond::None,
        Some(date) if modified <= date => Cond::False,
        Some(_) => Cond::True,
    }
}

/// `304 Not Modified` with `v`'s `ETag` and `Last-Modified`, no body. Add the
/// `Cache-Control`, `Vary`, `Expires` and `Content-Location` the `200` would carry, or
/// use [`not_modified_from`].
pub fn not_modified(v: &Validators<'_>) -> Response {
    v.apply(Response::new(status::NOT_MODIFIED))
}

/// The header fields a `304` must repeat from the `200` (RFC 9110 §15.4.5; `Date` is the
/// engine's).
const KEPT_IN_304: [&str; 6] = [
    "etag",
    "last-modified",
    "cache-control",
    "vary",
    "expires",
    "content-location",
];

/// `304 Not Modified` carrying the `ETag`, `Last-Modified`, `Cache-Control`, `Vary`,
/// `Expires` and `Content-Location` fields of `full` (the `200` the request would have
/// had), and nothing else: no body, no `Content-Type`.
pub fn not_modified_from(full: &Response) -> Response {
    let mut resp = Response::new(status::NOT_MODIFIED);
    for (name, value) in full.headers() {
        if KEPT_IN_304.iter().any(|k| name.eq_ignore_ascii_case(k)) {
            resp = resp.with_header(name.to_string(), value.to_string());
        }
    }
    resp
}

/// `412 Precondition Failed` with a short plain-text body.
pub fn precondition_failed() -> Response {
    Response::error(status::PRECONDITION_FAILED, "")
}

/// For a GET (or HEAD) handler: evaluates the preconditions against `v` and answers
/// `full()` with `v`'s `ETag` and `Last-Modified` set, or the `304` made from it
/// ([`not_modified_from`]), or `412`.
pub fn respond(req: &Request, v: &Validators<'_>, full: impl FnOnce() -> Response) -> Response {
    match evaluate(req, v) {
        Verdict::Proceed => v.apply(full()),
        Verdict::NotModified => not_modified_from(&v.apply(full())),
        Verdict::PreconditionFailed => precondition_failed(),
    }
}

#[cfg(test)]
#[path = "conditional_tests.rs"]
mod tests;

//! Route patterns for the router: parsing `/parcels/{id}`-style patterns into segments,
//! Go 1.22's specificity relation between two patterns (to reject conflicts at
//! registration), and the cleaning of non-canonical request paths.
//!
//! Sans-I/O and request-free: strings in, values out. Nothing here runs per request
//! except [`is_clean`], which never allocates.

use std::fmt;
use std::sync::Arc;

use crate::http::parse::is_tchar;
use crate::http::urlencoded::decode;

/// One segment of a parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A literal segment, percent-decoded. The empty literal appears only as the last
    /// segment and stands for `{$}`: the path ends with that slash.
    Lit(Box<str>),
    /// `{name}`: one whole, non-empty segment.
    Param(Arc<str>),
    /// `{name...}`, or an anonymous one from a trailing `/`: the rest of the path
    /// (possibly empty), always the last segment.
    Multi(Option<Arc<str>>),
}

/// A parsed pattern: the method (`None` = any) and the path segments.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    /// The method as registered (`None` for `any` / `"*"`).
    pub method: Option<Box<str>>,
    /// The path after the leading `/`, split on `/`.
    pub segs: Vec<Seg>,
    /// How the pattern is shown in errors and logs: `GET /a/{id}`, or `/a/{id}` for any.
    pub text: String,
}

impl Pattern {
    /// Parses `path` (which must start with `/`) for `method` (`"*"` = any).
    pub fn parse(method: &str, path: &str) -> Result<Pattern, RouteError> {
        let text = if method == "*" {
            path.to_string()
        } else {
            format!("{method} {path}")
        };
        let invalid = |reason: &str| RouteError::invalid(&text, reason);
        let method = match method {
            "*" => None,
            "" => return Err(invalid("empty method")),
            m if !m.bytes().all(is_tchar) => {
                // RFC 9110 §9.1: "method = token".
                return Err(invalid("the method is not a token (RFC 9110 §9.1)"));
            }
            m if m.len() > crate::http::parse::MAX_METHOD_BYTES => {
                // The engine answers 501 to such a method before routing: the route could
                // never be reached.
                return Err(invalid(
                    "the method is longer than 32 bytes (the server answers 501)",
                ));
            }
            m => Some(m.into()),
        };
        let Some(body) = path.strip_prefix('/') else {
            return Err(invalid("the path must start with '/'"));
        };
        let parts: Vec<&str> = body.split('/').collect();
        let mut segs = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let seg = if part.is_empty() {
                if !last {
                    return Err(invalid("empty segment (\"//\") in the path"));
                }
                Seg::Multi(None)
            } else if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if inner == "$" {
                    if !last {
                        return Err(invalid("{$} must be the last segment"));
                    }
                    Seg::Lit("".into())
                } else if let Some(name) = inner.strip_suffix("...") {
                    if !last {
                        return Err(invalid("a {name...} wildcard must be the last segment"));
                    }
                    Seg::Multi(Some(wildcard_name(name, &segs, &text)?))
                } else {
                    Seg::Param(wildcard_name(inner, &segs, &text)?)
                }
            } else if part.contains(['{', '}']) {
                return Err(invalid("a wildcard must be a whole segment, like /{name}/"));
            } else {
                let lit = decode(part, false);
                if is_dot_segment(&lit) {
                    return Err(invalid("\".\" or \"..\" segment in the path"));
                }
                Seg::Lit(lit.into())
            };
            segs.push(seg);
        }
        Ok(Pattern { method, segs, text })
    }

    /// The path part of the pattern as registered: `/a/{id}` (the text without the method).
    pub fn path(&self) -> &str {
        let method = self.method.as_ref().map_or(0, |m| m.len() + 1);
        &self.text[method..]
    }

    /// True when the last segment is a `{name...}` or trailing-slash wildcard.
    pub fn ends_in_multi(&self) -> bool {
        matches!(self.segs.last(), Some(Seg::Multi(_)))
    }

    /// `Some(reason)` when `self` and `other` conflict (Go 1.22's rule): some request
    /// matches both and neither pattern is more specific than the other.
    pub fn conflict_with(&self, other: &Pattern) -> Option<String> {
        let mrel = compare_methods(self.method.as_deref(), other.method.as_deref());
        if mrel == Rel::Disjoint {
            return None;
        }
        let prel = compare_paths(&self.segs, &other.segs);
        match (combine(mrel, prel), mrel, prel) {
            (Rel::Equivalent, ..) => Some("both match exactly the same requests".into()),
            (Rel::Overlaps, _, Rel::Overlaps) => Some(format!(
                "both match some paths, like \"{}\", but neither is more specific",
                common_path(&self.segs, &other.segs)
            )),
            (Rel::Overlaps, Rel::MoreGeneral, _) => {
                Some("the new pattern matches more methods but has a more specific path".into())
            }
            (Rel::Overlaps, ..) => {
                Some("the new pattern matches fewer methods but has a more general path".into())
            }
            _ => None,
        }
    }
}

fn wildcard_name(name: &str, before: &[Seg], text: &str) -> Result<Arc<str>, RouteError> {
    // Go: a wildcard name is a Go identifier (a letter or `_`, then letters, digits, `_`).
    let valid = !name.is_empty()
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_alphabetic() || c == '_' || (i > 0 && c.is_numeric()));
    if !valid {
        return Err(RouteError::invalid(
            text,
            "a wildcard name must be an identifier, like {id} or {rest...}",
        ));
    }
    let taken = before.iter().any(|s| match s {
        Seg::Param(n) | Seg::Multi(Some(n)) => &**n == name,
        _ => false,
    });
    if taken {
        return Err(RouteError::invalid(text, "duplicate wildcard name"));
    }
    Ok(name.into())
}

/// How the requests matched by one pattern relate to another's (Go's `relationship`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rel {
    Equivalent,
    /// The first matches everything the second does, and more.
    MoreGeneral,
    /// The second matches everything the first does, and more.
    MoreSpecific,
    /// Some request matches both, but neither includes the other.
    Overlaps,
    /// No request matches both.
    Disjoint,
}

impl Rel {
    fn inverse(self) -> Rel {
        match self {
            Rel::MoreGeneral => Rel::MoreSpecific,
            Rel::MoreSpecific => Rel::MoreGeneral,
            r => r,
        }
    }
}

/// The relation of two patterns given the relations of two parts of them.
fn combine(r1: Rel, r2: Rel) -> Rel {
    match r1 {
        Rel::Equivalent => r2,
        Rel::Disjoint => Rel::Disjoint,
        Rel::Overlaps if r2 == Rel::Disjoint => Rel::Disjoint,
        Rel::Overlaps => Rel::Overlaps,
        Rel::MoreGeneral | Rel::MoreSpecific => match r2 {
            Rel::Equivalent => r1,
            r if r == r1.inverse() => Rel::Overlaps,
            r => r,
        },
    }
}

/// Any method is more general than one method; GET is more general than HEAD (a GET
/// route also answers HEAD).
fn compare_methods(m1: Option<&str>, m2: Option<&str>) -> Rel {
    match (m1, m2) {
        _ if m1 == m2 => Rel::Equivalent,
        (None, _) => Rel::MoreGeneral,
        (_, None) => Rel::MoreSpecific,
        (Some("GET"), Some("HEAD")) => Rel::MoreGeneral,
        (Some("HEAD"), Some("GET")) => Rel::MoreSpecific,
        _ => Rel::Disjoint,
    }
}

fn compare_paths(s1: &[Seg], s2: &[Seg]) -> Rel {
    let multi = |s: &[Seg]| matches!(s.last(), Some(Seg::Multi(_)));
    if s1.len() != s2.len() && !multi(s1) && !multi(s2) {
        return Rel::Disjoint;
    }
    let mut rel = Rel::Equivalent;
    for (a, b) in s1.iter().zip(s2) {
        rel = combine(rel, compare_segs(a, b));
        if rel == Rel::Disjoint {
            return rel;
        }
    }
    match s1.len().cmp(&s2.len()) {
        std::cmp::Ordering::Equal => rel,
        // The shorter one can only match the longer one's paths through its final multi.
        std::cmp::Ordering::Less if multi(s1) => combine(rel, Rel::MoreGeneral),
        std::cmp::Ordering::Greater if multi(s2) => combine(rel, Rel::MoreSpecific),
        _ => Rel::Disjoint,
    }
}

fn compare_segs(a: &Seg, b: &Seg) -> Rel {
    match (a, b) {
        (Seg::Multi(_), Seg::Multi(_)) => Rel::Equivalent,
        (Seg::Multi(_), _) => Rel::MoreGeneral,
        (_, Seg::Multi(_)) => Rel::MoreSpecific,
        (Seg::Param(_), Seg::Param(_)) => Rel::Equivalent,
        // `{x}` never matches the empty last segment that `{$}` stands for.
        (Seg::Param(_), Seg::Lit(l)) | (Seg::Lit(l), Seg::Param(_)) if l.is_empty() => {
            Rel::Disjoint
        }
        (Seg::Param(_), Seg::Lit(_)) => Rel::MoreGeneral,
        (Seg::Lit(_), Seg::Param(_)) => Rel::MoreSpecific,
        (Seg::Lit(x), Seg::Lit(y)) if x == y => Rel::Equivalent,
        (Seg::Lit(_), Seg::Lit(_)) => Rel::Disjoint,
    }
}

/// A path both patterns match (for the error message); assumes there is one.
fn common_path(s1: &[Seg], s2: &[Seg]) -> String {
    let mut out = String::new();
    let mut write = |s: &Seg| {
        out.push('/');
        match s {
            Seg::Lit(l) => out.push_str(l),
            Seg::Param(n) => out.push_str(n),
            Seg::Multi(_) => {}
        }
    };
    for (a, b) in s1.iter().zip(s2) {
        write(if matches!(a, Seg::Lit(_)) { a } else { b });
    }
    let longer = if s1.len() > s2.len() { s1 } else { s2 };
    longer[s1.len().min(s2.len())..].iter().for_each(write);
    out
}

/// A pattern that cannot be registered: malformed, or in conflict with one already
/// registered (its message names both patterns, as Go's `ServeMux` panic does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    /// The pattern being registered, as `METHOD /path` (or `/path` for any method).
    pattern: String,
    /// The registered pattern it conflicts with, if that is the problem.
    conflicting: Option<String>,
    /// Why it was refused.
    reason: String,
}

impl RouteError {
    pub(crate) fn invalid(pattern: &str, reason: &str) -> Self {
        RouteError {
            pattern: pattern.to_string(),
            conflicting: None,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn conflict(pattern: &str, existing: &str, reason: String) -> Self {
        RouteError {
            pattern: pattern.to_string(),
            conflicting: Some(existing.to_string()),
            reason,
        }
    }

    /// The refused pattern, as `METHOD /path` (or `/path` for a route on every method).
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The already registered pattern this one conflicts with (`None` when the pattern
    /// itself is malformed).
    pub fn conflicting_pattern(&self) -> Option<&str> {
        self.conflicting.as_deref()
    }

    /// Why the pattern was refused, in words.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.conflicting {
            Some(old) => write!(
                f,
                "route pattern \"{}\" conflicts with \"{old}\": {}",
                self.pattern, self.reason
            ),
            None => write!(
                f,
                "invalid route pattern \"{}\": {}",
                self.pattern, self.reason
            ),
        }
    }
}

impl std::error::Error for RouteError {}

/// True for a dot-segment, plain or percent-encoded (WHATWG URL: "." or "%2e", and
/// "..", ".%2e", "%2e." or "%2e%2e", ASCII case-insensitive; RFC 3986 §5.2.4).
fn is_dot_segment(seg: &str) -> bool {
    is_single_dot(seg) || is_double_dot(seg)
}

fn is_single_dot(seg: &str) -> bool {
    seg == "." || seg.eq_ignore_ascii_case("%2e")
}

fn is_double_dot(seg: &str) -> bool {
    match seg.len() {
        2 => seg == "..",
        4 => seg.eq_ignore_ascii_case(".%2e") || seg.eq_ignore_ascii_case("%2e."),
        6 => seg.eq_ignore_ascii_case("%2e%2e"),
        _ => false,
    }
}

/// True when `path` (starting with `/`) has no empty segment but a trailing one and no
/// dot-segment: what [`clean`] would return unchanged. Never allocates.
pub(crate) fn is_clean(path: &str) -> bool {
    let mut segs = path[1..].split('/').peekable();
    while let Some(seg) = segs.next() {
        let last = segs.peek().is_none();
        if (seg.is_empty() && !last) || is_dot_segment(seg) {
            return false;
        }
    }
    true
}

/// The canonical form of `path` (starting with `/`), as Go's `cleanPath`: empty and `.`
/// segments removed, `..` removes the segment before it (never above the root), and a
/// trailing slash is kept when the original had one.
pub(crate) fn clean(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for seg in path[1..].split('/') {
        if is_double_dot(seg) {
            kept.pop();
        } else if !seg.is_empty() && !is_single_dot(seg) {
            kept.push(seg);
        }
    }
    let mut out = String::with_capacity(path.len());
    for seg in &kept {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() || path.ends_with('/') {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(method: &str, path: &str) -> Pattern {
        Pattern::parse(method, path).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn patterns_parse_into_segments() {
        let lit = |s: &str| Seg::Lit(s.into());
        let param = |s: &str| Seg::Param(s.into());
        for (path, want) in [
            ("/", vec![Seg::Multi(None)]),
            ("/{$}", vec![lit("")]),
            ("/a/b", vec![lit("a"), lit("b")]),
            ("/a/", vec![lit("a"), Seg::Multi(None)]),
            ("/a/{$}", vec![lit("a"), lit("")]),
            ("/p/{id}/x", vec![lit("p"), param("id"), lit("x")]),
            (
                "/f/{rest...}",
                vec![lit("f"), Seg::Multi(Some("rest".into()))],
            ),
            ("/caf%C3%A9", vec![lit("café")]),
        ] {
            assert_eq!(p("GET", path).segs, want, "{path}");
        }
        assert_eq!(p("*", "/a").method, None);
        assert_eq!(p("*", "/a").text, "/a");
        assert_eq!(p("PUT", "/a").text, "PUT /a");
        assert_eq!(
            (p("*", "/a").path(), p("PUT", "/a/{x}").path()),
            ("/a", "/a/{x}")
        );
    }

    #[test]
    fn a_method_too_long_to_be_routed_is_refused() {
        let long = "M".repeat(crate::http::parse::MAX_METHOD_BYTES + 1);
        let e = Pattern::parse(&long, "/").unwrap_err();
        assert!(e.to_string().contains("longer than 32 bytes"), "{e}");
        assert!(Pattern::parse(&long[1..], "/").is_ok());
    }

    #[test]
    fn malformed_patterns_are_refused_with_a_reason() {
        for (method, path) in [
            ("GET", "a"),
            ("GET", ""),
            ("", "/a"),
            ("GE T", "/a"),
            ("GET", "/a//b"),
            ("GET", "/a/../b"),
            ("GET", "/a/%2e"),
            ("GET", "/{x"),
            ("GET", "/a{x}"),
            ("GET", "/{}"),
            ("GET", "/{1x}"),
            ("GET", "/{x-y}"),
            ("GET", "/{x}/{x}"),
            ("GET", "/{x}/{x...}"),
            ("GET", "/{x...}/a"),
            ("GET", "/{$}/a"),
        ] {
            let err = Pattern::parse(method, path).expect_err(path);
            assert!(err.conflicting_pattern().is_none());
            assert!(
                err.to_string().starts_with("invalid route pattern"),
                "{err}"
            );
        }
    }

    #[test]
    fn conflicts_follow_go_specificity() {
        let conflicts =
            |a: (&str, &str), b: (&str, &str)| p(a.0, a.1).conflict_with(&p(b.0, b.1)).is_some();
        for (a, b, want) in [
            // Same shape, same method, whatever the wildcard names.
            (("GET", "/a/{x}"), ("GET", "/a/{y}"), true),
            (("GET", "/a/"), ("GET", "/a/{rest...}"), true),
            (("*", "/a"), ("*", "/a"), true),
            // Overlap with neither more specific.
            (("GET", "/a/{x}"), ("GET", "/{y}/b"), true),
            (("*", "/a/{x}"), ("*", "/{y}/b"), true),
            (("GET", "/{x}/b/"), ("GET", "/a/{y}/c"), true),
            // More methods but a more specific path.
            (("*", "/a"), ("GET", "/{x}"), true),
            (("GET", "/a/{x}"), ("HEAD", "/{y}/b"), true),
            // One is more specific: fine.
            (("GET", "/a/b"), ("GET", "/a/{x}"), false),
            (("GET", "/a/{x}"), ("GET", "/a/"), false),
            (("GET", "/{x}/"), ("GET", "/a/{y}"), false),
            (("GET", "/a"), ("*", "/a"), false),
            (("GET", "/a"), ("HEAD", "/a"), false),
            (("GET", "/{$}"), ("GET", "/"), false),
            // Disjoint.
            (("GET", "/a/{x}"), ("POST", "/{y}/b"), false),
            (("GET", "/a/{$}"), ("GET", "/a/{x}"), false),
            (("GET", "/static/"), ("GET", "/{x}"), false),
            (("GET", "/a/b"), ("GET", "/a"), false),
        ] {
            assert_eq!(conflicts(a, b), want, "{a:?} vs {b:?}");
            assert_eq!(conflicts(b, a), want, "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn overlap_message_shows_a_path_both_match() {
        let why = p("GET", "/{y}/b")
            .conflict_with(&p("GET", "/a/{x}"))
            .unwrap();
        assert!(why.contains("\"/a/b\""), "{why}");
    }

    #[test]
    fn paths_are_cleaned_like_go() {
        for (path, want) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("//a", "/a"),
            ("//a/../b", "/b"),
            ("/a/./b", "/a/b"),
            ("/a/b/..", "/a"),
            ("/a/b/../", "/a/"),
            ("/..", "/"),
            ("/../../x", "/x"),
            ("/a/%2E%2e/b", "/b"),
            ("/a//", "/a/"),
        ] {
            assert_eq!(clean(path), want, "{path}");
            assert_eq!(is_clean(path), path == want, "{path}");
        }
        assert!(is_clean("/a.b/..c/%2e%2f"));
    }
}

//! The conditional module's tests: entity-tag parsing and comparison, and every row of
//! RFC 9110 §13.2.2's order on requests built by the engine's own parser.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::testing::TestRequest;

/// 1994-11-06 08:49:37 UTC, RFC 9110's example date.
const T: u64 = 784_111_777;
const AT_T: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
const BEFORE_T: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
const AFTER_T: &str = "Sun, 06 Nov 1994 08:49:38 GMT";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// An existing resource with ETag `"v1"`, modified at `T` (plus 0.5 s: compared to the second).
fn current() -> Validators<'static> {
    Validators::new(Some("\"v1\""), Some(at(T) + Duration::from_millis(500)))
}

fn verdict(method: &str, headers: &[(&str, &str)], v: &Validators<'_>) -> Verdict {
    let mut r = TestRequest::new(method, "/r");
    for (n, val) in headers {
        r = r.header(n, val);
    }
    evaluate(&r.build(), v)
}

use Verdict::{NotModified as N304, PreconditionFailed as P412, Proceed as GO};

#[test]
fn entity_tags_parse_and_compare_as_section_8_8_3_2_says() {
    let s = EntityTag::parse("\"xyzzy\"").unwrap();
    assert!(!s.is_weak());
    assert_eq!(s.opaque(), "xyzzy");
    let w = EntityTag::parse(" W/\"xyzzy\"\t").unwrap();
    assert!(w.is_weak());
    assert_eq!(w.to_string(), "W/\"xyzzy\"");
    assert_eq!(s.to_string(), "\"xyzzy\"");
    // §8.8.3.2's table.
    let w1 = EntityTag::parse("W/\"1\"").unwrap();
    let w2 = EntityTag::parse("W/\"2\"").unwrap();
    let s1 = EntityTag::parse("\"1\"").unwrap();
    assert!(!w1.strong_eq(&w1) && w1.weak_eq(&w1));
    assert!(!w1.strong_eq(&w2) && !w1.weak_eq(&w2));
    assert!(!w1.strong_eq(&s1) && w1.weak_eq(&s1));
    assert!(s1.strong_eq(&s1) && s1.weak_eq(&s1));
    // Empty opaque-tag, obs-text and every etagc edge.
    assert_eq!(EntityTag::parse("\"\"").unwrap().opaque(), "");
    assert!(EntityTag::parse("\"caf\u{e9}\"").is_some());
    assert!(EntityTag::parse("\"!#~\"").is_some());
    for bad in [
        "",
        "xyzzy",
        "\"xyzzy",
        "xyzzy\"",
        "w/\"x\"",
        "W/x",
        "W/ \"x\"",
        "\"a b\"",
        "\"a\"b",
        "\"a\" \"b\"",
        "\"a\",\"b\"",
        "\"a\tb\"",
        "*",
    ] {
        assert_eq!(EntityTag::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn no_precondition_proceeds() {
    for m in ["GET", "HEAD", "PUT", "DELETE", "POST"] {
        assert_eq!(verdict(m, &[], &current()), GO);
        assert_eq!(verdict(m, &[], &Validators::missing()), GO);
    }
    assert!(!has_preconditions(&TestRequest::get("/").build()));
    assert!(has_preconditions(
        &TestRequest::get("/").header("If-None-Match", "*").build()
    ));
}

#[test]
fn step_1_if_match_is_strong_and_false_is_412() {
    let v = current();
    for m in ["PUT", "DELETE", "GET"] {
        assert_eq!(verdict(m, &[("If-Match", "\"v1\"")], &v), GO, "{m}");
        assert_eq!(verdict(m, &[("If-Match", "\"v2\"")], &v), P412, "{m}");
        assert_eq!(verdict(m, &[("If-Match", "\"nope\"")], &v), P412, "{m}");
        // A weak tag never matches strongly, on either side.
        assert_eq!(verdict(m, &[("If-Match", "W/\"v1\"")], &v), P412, "{m}");
    }
    let weak = Validators::new(Some("W/\"v1\""), None);
    assert_eq!(verdict("PUT", &[("If-Match", "\"v1\"")], &weak), P412);
    assert_eq!(verdict("PUT", &[("If-Match", "W/\"v1\"")], &weak), P412);
    // A resource without an ETag matches no tag.
    let untagged = Validators::new(None, Some(at(T)));
    assert_eq!(verdict("PUT", &[("If-Match", "\"v1\"")], &untagged), P412);
}

#[test]
fn if_match_lists_and_lines_combine() {
    let v = current();
    let h = |val| verdict("PUT", &[("If-Match", val)], &v);
    assert_eq!(h("\"a\", \"v1\""), GO);
    assert_eq!(h("\"a\",\"b\" ,\t\"v1\""), GO);
    assert_eq!(h(" , ,\"v1\","), GO, "empty list elements are skipped");
    assert_eq!(h("\"a\", \"b\""), P412);
    assert_eq!(h("\"a\", W/\"v1\""), P412);
    // Two field lines are one list.
    let two = [("If-Match", "\"a\""), ("If-Match", "\"v1\"")];
    assert_eq!(verdict("PUT", &two, &v), GO);
    let two = [("If-Match", "\"a\""), ("If-Match", "\"b\"")];
    assert_eq!(verdict("PUT", &two, &v), P412);
}

#[test]
fn if_match_star_is_true_only_when_the_resource_exists() {
    assert_eq!(verdict("PUT", &[("If-Match", "*")], &current()), GO);
    let untagged = Validators::new(None, None);
    assert_eq!(verdict("PUT", &[("If-Match", "*")], &untagged), GO);
    let missing = Validators::missing();
    assert_eq!(verdict("PUT", &[("If-Match", "*")], &missing), P412);
    assert_eq!(verdict("PUT", &[("If-Match", "\"v1\"")], &missing), P412);
    // A missing resource's stale validators are not used.
    let gone = Validators {
        exists: false,
        ..current()
    };
    assert_eq!(verdict("PUT", &[("If-Match", "\"v1\"")], &gone), P412);
    // `*` counts inside a list too (as Go reads it).
    assert_eq!(verdict("PUT", &[("If-Match", "\"a\", *")], &current()), GO);
}

#[test]
fn a_malformed_if_match_fails_unless_a_member_before_the_fault_matched() {
    let v = current();
    let h = |val| verdict("PUT", &[("If-Match", val)], &v);
    for bad in [
        "v1",
        "\"v1",
        "'v1'",
        "w/\"v1\"",
        "\"a\" junk, \"v1\"",
        "\"a\", v1, \"v1\"",
        "\"v 1\"",
        "",
    ] {
        assert_eq!(h(bad), P412, "{bad:?}");
    }
    assert_eq!(h("\"v1\", junk"), GO, "matched before the fault");
    assert_eq!(h("\"v1\"junk"), GO, "matched before the fault");
}

#[test]
fn step_2_if_unmodified_since_only_without_if_match() {
    let v = current();
    let ius = |d| verdict("PUT", &[("If-Unmodified-Since", d)], &v);
    assert_eq!(ius(AT_T), GO, "not modified since: the same second");
    assert_eq!(ius(AFTER_T), GO);
    assert_eq!(ius(BEFORE_T), P412);
    // The three formats.
    assert_eq!(ius("Sunday, 06-Nov-94 08:49:36 GMT"), P412);
    assert_eq!(ius("Sun Nov  6 08:49:36 1994"), P412);
    assert_eq!(ius("Sun Nov  6 08:49:37 1994"), GO);
    // An invalid date, or two lines, is ignored.
    assert_eq!(ius("yesterday"), GO);
    assert_eq!(ius("Sun, 06 Nov 1994 08:49:36 UTC"), GO);
    let two = [
        ("If-Unmodified-Since", BEFORE_T),
        ("If-Unmodified-Since", BEFORE_T),
    ];
    assert_eq!(verdict("PUT", &two, &v), GO);
    // Ignored without a modification date.
    let untagged = Validators::new(Some("\"v1\""), None);
    assert_eq!(
        verdict("PUT", &[("If-Unmodified-Since", BEFORE_T)], &untagged),
        GO
    );
    // If-Match present: If-Unmodified-Since is not evaluated, whichever way it goes.
    let both = [("If-Match", "\"v1\""), ("If-Unmodified-Since", BEFORE_T)];
    assert_eq!(verdict("PUT", &both, &v), GO);
    let both = [("If-Match", "\"v2\""), ("If-Unmodified-Since", AFTER_T)];
    assert_eq!(verdict("PUT", &both, &v), P412);
}

#[test]
fn step_3_if_none_match_is_weak_304_for_get_and_head_412_otherwise() {
    let v = current();
    for (m, fail) in [
        ("GET", N304),
        ("HEAD", N304),
        ("PUT", P412),
        ("DELETE", P412),
    ] {
        let inm = |val| verdict(m, &[("If-None-Match", val)], &v);
        assert_eq!(inm("\"v1\""), fail, "{m}");
        assert_eq!(inm("W/\"v1\""), fail, "{m}: weak comparison");
        assert_eq!(inm("\"a\", W/\"v1\""), fail, "{m}: list");
        assert_eq!(inm("*"), fail, "{m}: * and it exists");
        assert_eq!(inm("\"v2\""), GO, "{m}");
        assert_eq!(inm("\"a\", \"b\""), GO, "{m}");
        // Malformed: members before the fault count, the rest is dropped.
        assert_eq!(inm("v1"), GO, "{m}");
        assert_eq!(inm("\"a\", v1, \"v1\""), GO, "{m}");
        assert_eq!(inm("\"v1\", junk"), fail, "{m}");
        assert_eq!(inm(""), GO, "{m}: an empty list matches nothing");
    }
    let weak = Validators::new(Some("W/\"v1\""), None);
    assert_eq!(verdict("GET", &[("If-None-Match", "\"v1\"")], &weak), N304);
    // `*` on a missing resource: true (a PUT that must not overwrite may create).
    let missing = Validators::missing();
    assert_eq!(verdict("PUT", &[("If-None-Match", "*")], &missing), GO);
    assert_eq!(verdict("PUT", &[("If-None-Match", "\"v1\"")], &missing), GO);
    // Lines combine.
    let two = [("If-None-Match", "\"a\""), ("If-None-Match", "\"v1\"")];
    assert_eq!(verdict("GET", &two, &v), N304);
}

#[test]
fn step_3_runs_after_steps_1_and_2_pass() {
    let v = current();
    // If-Match true, If-None-Match false: 304 on GET, 412 on PUT.
    let h = [("If-Match", "\"v1\""), ("If-None-Match", "\"v1\"")];
    assert_eq!(verdict("GET", &h, &v), N304);
    assert_eq!(verdict("PUT", &h, &v), P412);
    // If-Match false wins over an If-None-Match that would be 304.
    let h = [("If-Match", "\"v2\""), ("If-None-Match", "\"v1\"")];
    assert_eq!(verdict("GET", &h, &v), P412);
    // If-Unmodified-Since true, If-None-Match false.
    let h = [("If-Unmodified-Since", AT_T), ("If-None-Match", "*")];
    assert_eq!(verdict("GET", &h, &v), N304);
    let h = [("If-Unmodified-Since", BEFORE_T), ("If-None-Match", "*")];
    assert_eq!(verdict("GET", &h, &v), P412);
}

#[test]
fn step_4_if_modified_since_for_get_and_head_only_without_if_none_match() {
    let v = current();
    for m in ["GET", "HEAD"] {
        let ims = |d| verdict(m, &[("If-Modified-Since", d)], &v);
        assert_eq!(ims(AT_T), N304, "{m}: the same second");
        assert_eq!(ims(AFTER_T), N304, "{m}");
        assert_eq!(ims(BEFORE_T), GO, "{m}: modified since");
        assert_eq!(ims("Sunday, 06-Nov-94 08:49:37 GMT"), N304, "{m}: RFC 850");
        assert_eq!(ims("Sun Nov  6 08:49:37 1994"), N304, "{m}: asctime");
        assert_eq!(
            ims("Sun, 06 Nov 1994 08:49:37"),
            GO,
            "{m}: invalid: ignored"
        );
        assert_eq!(ims("0"), GO, "{m}: invalid: ignored");
        let two = [("If-Modified-Since", AT_T), ("If-Modified-Since", AT_T)];
        assert_eq!(verdict(m, &two, &v), GO, "{m}: two lines: ignored");
    }
    // Not for other methods.
    for m in ["PUT", "POST", "DELETE"] {
        assert_eq!(verdict(m, &[("If-Modified-Since", AFTER_T)], &v), GO, "{m}");
    }
    // If-None-Match present (true): If-Modified-Since is not evaluated.
    let h = [("If-None-Match", "\"v2\""), ("If-Modified-Since", AFTER_T)];
    assert_eq!(verdict("GET", &h, &v), GO);
    // No modification date, or no resource: ignored.
    let untagged = Validators::new(Some("\"v1\""), None);
    assert_eq!(
        verdict("GET", &[("If-Modified-Since", AFTER_T)], &untagged),
        GO
    );
    let gone = Validators {
        exists: false,
        ..current()
    };
    assert_eq!(verdict("GET", &[("If-Modified-Since", AFTER_T)], &gone), GO);
}

#[test]
fn dates_before_1970_compare() {
    let v = Validators::new(None, Some(UNIX_EPOCH - Duration::from_millis(1500)));
    // Modified at 1969-12-31 23:59:58.5, i.e. second …:58.
    let ims = |d| verdict("GET", &[("If-Modified-Since", d)], &v);
    assert_eq!(ims("Wed, 31 Dec 1969 23:59:58 GMT"), N304);
    assert_eq!(ims("Wed, 31 Dec 1969 23:59:57 GMT"), GO);
}

#[test]
fn responses_carry_what_the_200_would_and_no_body() {
    let v = current();
    let r = not_modified(&v);
    assert_eq!(r.status(), 304);
    assert_eq!(r.header("ETag"), Some("\"v1\""));
    assert_eq!(r.header("Last-Modified"), Some(AT_T));
    assert!(r.body_bytes().is_empty());

    let full = || {
        Response::json_text("{}")
            .with_header("Cache-Control", "no-cache")
            .with_header("Vary", "Accept")
            .with_header("X-Other", "1")
    };
    let req = TestRequest::get("/r")
        .header("If-None-Match", "\"v1\"")
        .build();
    let r = respond(&req, &v, full);
    assert_eq!(r.status(), 304);
    assert_eq!(r.header("ETag"), Some("\"v1\""));
    assert_eq!(r.header("Last-Modified"), Some(AT_T));
    assert_eq!(r.header("Cache-Control"), Some("no-cache"));
    assert_eq!(r.header("Vary"), Some("Accept"));
    assert_eq!(r.header("X-Other"), None);
    assert_eq!(r.header("Content-Type"), None);
    assert!(r.body_bytes().is_empty());

    let r = respond(&TestRequest::get("/r").build(), &v, full);
    assert_eq!((r.status(), r.header("ETag")), (200, Some("\"v1\"")));
    assert_eq!(r.body_bytes(), b"{}");
    let req = TestRequest::get("/r").header("If-Match", "\"x\"").build();
    assert_eq!(respond(&req, &v, full).status(), 412);
    assert_eq!(P412.response(&v).unwrap().status(), 412);
    assert!(GO.response(&v).is_none());
}

#[test]
fn helpers_format_tags_and_dates() {
    let tag = strong_etag_of(b"hello");
    assert_eq!(tag, "\"a430d84680aabd0b\"");
    assert!(!EntityTag::parse(&tag).unwrap().is_weak());
    assert_ne!(strong_etag_of(b"hello"), strong_etag_of(b"hellp"));
    assert_eq!(format_http_date(at(T) + Duration::from_millis(999)), AT_T);
    assert_eq!(parse_http_date_str(AT_T), Some(at(T)));
    assert_eq!(
        parse_http_date_str(" Sun Nov  6 08:49:37 1994 "),
        Some(at(T))
    );
    assert_eq!(parse_http_date_str("nope"), None);
    assert_eq!(
        parse_http_date_str("Wed, 31 Dec 1969 23:59:59 GMT"),
        Some(UNIX_EPOCH - Duration::from_secs(1))
    );
}

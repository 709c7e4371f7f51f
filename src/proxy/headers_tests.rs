use super::*;

fn fwd() -> Forwarding<'static> {
    Forwarding {
        client_ip: "10.0.0.7".parse().unwrap(),
        host: Some("gw.example"),
        proto: "http",
        version: Version::Http11,
        via: Some("h1server"),
    }
}

fn names(h: &[(String, String)]) -> Vec<String> {
    h.iter().map(|(n, _)| n.to_ascii_lowercase()).collect()
}

fn get<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn hop_by_hop_fields_are_never_forwarded_upstream() {
    // (incoming field, forwarded?)
    let table: &[(&str, &str, bool)] = &[
        ("Connection", "keep-alive", false),
        ("Keep-Alive", "timeout=5", false),
        ("Proxy-Connection", "keep-alive", false),
        ("TE", "trailers", false),
        ("Trailer", "X-Sum", false),
        ("Transfer-Encoding", "chunked", false),
        ("Upgrade", "websocket", false),
        ("Proxy-Authorization", "Basic eDp5", false),
        ("Proxy-Authenticate", "Basic", false),
        ("proxy-authorization", "Basic eDp5", false),
        ("Host", "gw.example", false),
        ("Content-Length", "3", false),
        ("Expect", "100-continue", false),
        ("Authorization", "Bearer t", true),
        ("Accept", "*/*", true),
        ("Cookie", "a=1", true),
        ("X-Request-ID", "r-1", true),
    ];
    for &(name, value, kept) in table {
        let out = request_headers(&[(name, value)], &fwd());
        assert_eq!(
            out.iter().any(|(n, _)| n == name),
            kept,
            "{name}: {value} forwarded={}",
            !kept
        );
    }
}

#[test]
fn fields_named_by_connection_are_removed_whatever_their_case() {
    let incoming = [
        ("Connection", "Foo, bar ,close"),
        ("Connection", "X-Secret"),
        ("foo", "1"),
        ("BAR", "2"),
        ("x-secret", "3"),
        ("Baz", "4"),
    ];
    let out = request_headers(&incoming, &fwd());
    let n = names(&out);
    for gone in ["connection", "foo", "bar", "x-secret", "close"] {
        assert!(!n.contains(&gone.to_string()), "{gone} forwarded: {n:?}");
    }
    assert_eq!(get(&out, "Baz"), Some("4"));
}

#[test]
fn x_forwarded_for_appends_the_client_to_earlier_proxies() {
    // (earlier X-Forwarded-For lines, expected value)
    let table: &[(&[&str], &str)] = &[
        (&[], "10.0.0.7"),
        (&["1.2.3.4"], "1.2.3.4, 10.0.0.7"),
        (&["1.2.3.4, 5.6.7.8"], "1.2.3.4, 5.6.7.8, 10.0.0.7"),
        (&["1.2.3.4", "5.6.7.8"], "1.2.3.4, 5.6.7.8, 10.0.0.7"),
        (&["  "], "10.0.0.7"),
    ];
    for &(prior, want) in table {
        let incoming: Vec<(&str, &str)> = prior.iter().map(|v| ("X-Forwarded-For", *v)).collect();
        let out = request_headers(&incoming, &fwd());
        assert_eq!(get(&out, "x-forwarded-for"), Some(want), "prior {prior:?}");
        assert_eq!(
            out.iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
                .count(),
            1
        );
    }
}

#[test]
fn x_forwarded_for_named_by_connection_starts_afresh() {
    let out = request_headers(
        &[
            ("Connection", "X-Forwarded-For"),
            ("X-Forwarded-For", "6.6.6.6"),
        ],
        &fwd(),
    );
    assert_eq!(get(&out, "x-forwarded-for"), Some("10.0.0.7"));
}

#[test]
fn an_ipv6_client_is_written_bare() {
    let mut f = fwd();
    f.client_ip = "::1".parse().unwrap();
    let out = request_headers(&[], &f);
    assert_eq!(get(&out, "x-forwarded-for"), Some("::1"));
}

#[test]
fn forwarded_host_and_proto_are_this_hops() {
    let out = request_headers(
        &[
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "https"),
        ],
        &fwd(),
    );
    assert_eq!(get(&out, "x-forwarded-host"), Some("gw.example"));
    assert_eq!(get(&out, "x-forwarded-proto"), Some("http"));
    let mut f = fwd();
    f.host = None;
    let out = request_headers(&[("X-Forwarded-Host", "evil.example")], &f);
    assert_eq!(get(&out, "x-forwarded-host"), None);
}

#[test]
fn via_gets_this_hops_entry_with_the_clients_version() {
    // (version, earlier Via lines, pseudonym, expected)
    type Case<'a> = (Version, &'a [&'a str], Option<&'a str>, Option<&'a str>);
    let table: &[Case] = &[
        (Version::Http11, &[], Some("h1server"), Some("1.1 h1server")),
        (Version::Http10, &[], Some("gw"), Some("1.0 gw")),
        (
            Version::Http11,
            &["1.1 edge", "1.0 cache"],
            Some("h1server"),
            Some("1.1 edge, 1.0 cache, 1.1 h1server"),
        ),
        (Version::Http11, &[], None, None),
        (Version::Http11, &["1.1 edge"], None, Some("1.1 edge")),
    ];
    for &(version, prior, via, want) in table {
        let mut f = fwd();
        f.version = version;
        f.via = via;
        let incoming: Vec<(&str, &str)> = prior.iter().map(|v| ("Via", *v)).collect();
        let out = request_headers(&incoming, &f);
        assert_eq!(get(&out, "via"), want, "{version:?} {prior:?} {via:?}");
    }
}

#[test]
fn order_and_repeats_of_end_to_end_fields_are_kept() {
    let out = request_headers(
        &[("Accept", "a"), ("Cookie", "x=1"), ("Accept", "b")],
        &fwd(),
    );
    assert_eq!(
        &out[..3],
        &[
            ("Accept".to_string(), "a".to_string()),
            ("Cookie".to_string(), "x=1".to_string()),
            ("Accept".to_string(), "b".to_string())
        ]
    );
}

#[test]
fn response_hop_by_hop_framing_and_named_fields_are_removed() {
    let upstream: &[(&str, &[u8])] = &[
        ("Connection", b"close, X-Internal"),
        ("Keep-Alive", b"timeout=5"),
        ("Transfer-Encoding", b"chunked"),
        ("Content-Length", b"10"),
        ("Trailer", b"X-Sum"),
        ("Upgrade", b"h2c"),
        ("Proxy-Authenticate", b"Basic"),
        ("X-Internal", b"secret"),
        ("Content-Type", b"text/plain"),
        ("Set-Cookie", b"a=1"),
        ("Set-Cookie", b"b=2"),
        ("X-Latin1", b"caf\xe9"),
    ];
    let out = response_headers(upstream, Version::Http11, Some("gw"));
    assert_eq!(
        out,
        vec![
            ("Content-Type".to_string(), "text/plain".to_string()),
            ("Set-Cookie".to_string(), "a=1".to_string()),
            ("Set-Cookie".to_string(), "b=2".to_string()),
            ("Via".to_string(), "1.1 gw".to_string()),
        ]
    );
}

/// An upstream's framing or hop-by-hop field spelt with `_` is not relayed: a client or
/// cache that folds `_` onto `-` would frame the answer by it, beside the engine's own
/// `Content-Length`.
#[test]
fn response_names_that_fold_onto_framing_or_hop_by_hop_fields_are_removed() {
    let upstream: &[(&str, &[u8])] = &[
        ("Transfer_Encoding", b"chunked"),
        ("content_length", b"3"),
        ("Keep_Alive", b"timeout=5"),
        ("Proxy_Authenticate", b"Basic"),
        ("X_Custom", b"kept"),
        ("Content_Type", b"kept too"),
    ];
    let out = response_headers(upstream, Version::Http11, None);
    assert_eq!(
        out,
        vec![
            ("X_Custom".to_string(), "kept".to_string()),
            ("Content_Type".to_string(), "kept too".to_string()),
        ]
    );
}

#[test]
fn response_via_appends_with_the_upstreams_version() {
    let upstream: &[(&str, &[u8])] = &[("Via", b"1.1 inner")];
    let out = response_headers(upstream, Version::Http10, Some("gw"));
    assert_eq!(get(&out, "via"), Some("1.1 inner, 1.0 gw"));
    let out = response_headers(upstream, Version::Http10, None);
    assert_eq!(get(&out, "via"), Some("1.1 inner"));
}

#[test]
fn the_host_sent_upstream() {
    // (client's Host, upstream authority, preserve_host, sent)
    let table: &[(Option<&str>, &str, bool, &str)] = &[
        (
            Some("gw.example"),
            "127.0.0.1:9001",
            false,
            "127.0.0.1:9001",
        ),
        (Some("gw.example"), "127.0.0.1:9001", true, "gw.example"),
        (None, "127.0.0.1:9001", true, "127.0.0.1:9001"),
        (Some(""), "users", true, "users"),
    ];
    for &(incoming, authority, preserve, want) in table {
        assert_eq!(outgoing_host(incoming, authority, preserve), want);
    }
}

#[test]
fn connection_options_are_lower_cased_and_trimmed() {
    let h: &[(&str, &[u8])] = &[("Connection", b" Foo ,, BAR"), ("connection", b"baz")];
    assert_eq!(connection_options(h.iter().copied()), ["foo", "bar", "baz"]);
}

#[test]
fn names_that_fold_onto_owned_fields_are_not_forwarded() {
    // (incoming name, forwarded?)
    let table: &[(&str, bool)] = &[
        ("Transfer_Encoding", false),
        ("content_length", false),
        ("CONTENT_LENGTH", false),
        ("Content-Length", false),
        ("Proxy_Connection", false),
        ("Keep_Alive", false),
        ("X_Forwarded_For", false),
        ("x_forwarded_host", false),
        ("X_Forwarded_Proto", false),
        ("Expect", false),
        ("Host_", true),
        ("Content_Length_X", true),
        ("X_Custom", true),
        ("Transfer-Encodingx", true),
    ];
    for &(name, forwarded) in table {
        let out = request_headers(&[(name, "v")], &fwd());
        assert_eq!(
            out.iter().any(|(n, _)| n == name),
            forwarded,
            "{name}: {out:?}"
        );
    }
}

use super::*;

fn route(prefix: &str, urls: &[&str]) -> Route {
    Route::new(
        prefix,
        urls.iter().map(|u| Upstream::new(u).unwrap()).collect(),
    )
    .unwrap()
}

#[test]
fn the_longest_matching_prefix_wins_at_segment_boundaries() {
    let t = Table::new(vec![
        route("/", &["http://root"]),
        route("/api", &["http://api"]),
        route("/api/users/", &["http://users"]),
        route("/api/orders", &["http://orders"]),
    ])
    .unwrap();
    // (path, prefix of the route chosen)
    let table: &[(&str, Option<&str>)] = &[
        ("/", Some("/")),
        ("/index.html", Some("/")),
        ("/api", Some("/api")),
        ("/api/", Some("/api")),
        ("/api/users", Some("/api/users")),
        ("/api/users/7", Some("/api/users")),
        ("/api/usersx", Some("/api")),
        ("/api/orders/1/items", Some("/api/orders")),
        ("/apix", Some("/")),
        ("*", None),
    ];
    for &(path, want) in table {
        assert_eq!(t.route(path).map(Route::prefix), want, "{path}");
    }
}

#[test]
fn without_a_root_route_unmatched_paths_have_none() {
    let t = Table::new(vec![route("/api/users", &["http://u"])]).unwrap();
    assert!(t.route("/api/orders").is_none());
    assert!(t.route("/").is_none());
}

#[test]
fn bad_tables_are_refused_with_the_reason() {
    // (spec, part of the error)
    let table: &[(&str, &str)] = &[
        ("", "no route"),
        ("/api", "not prefix=url"),
        ("api=http://x", "must start with '/'"),
        ("/api=", "no upstream"),
        ("/api=https://x", "TLS"),
        ("/api=ftp://x", "upstream \"ftp://x\""),
        ("/api=http://x?q=1", "query"),
        ("/a=http://x,/a/=http://y", "configured twice"),
    ];
    for &(spec, want) in table {
        let err = parse_routes(spec).unwrap_err();
        assert!(err.contains(want), "{spec:?}: {err}");
    }
}

#[test]
fn routes_parse_with_several_upstreams_per_prefix() {
    let t = parse_routes(
        " /api/users=http://127.0.0.1:9001 , /api/orders=http://127.0.0.1:9002|http://127.0.0.1:9003/v2 ",
    )
    .unwrap();
    let orders = t.route("/api/orders/5").unwrap();
    assert_eq!(orders.upstreams().len(), 2);
    assert_eq!(
        t.to_string(),
        "/api/orders -> http://127.0.0.1:9002/ | http://127.0.0.1:9003/v2, /api/users -> http://127.0.0.1:9001/"
    );
}

#[test]
fn targets_join_the_base_path_with_one_slash() {
    // (upstream URL, incoming target, target sent)
    let table: &[(&str, &str, &str)] = &[
        ("http://u:1", "/api/x?y=1", "/api/x?y=1"),
        ("http://u:1/", "/api/x", "/api/x"),
        ("http://u:1/v2", "/api/x", "/v2/api/x"),
        ("http://u:1/v2/", "/api/x", "/v2/api/x"),
        ("http://u:1/v2", "/", "/v2/"),
    ];
    for &(url, target, want) in table {
        let u = Upstream::new(url).unwrap();
        assert_eq!(u.target_for(target), want, "{url} + {target}");
    }
}

fn names(c: &[Arc<Upstream>]) -> Vec<String> {
    c.iter().map(|u| u.authority().to_string()).collect()
}

#[test]
fn round_robin_starts_one_further_each_request() {
    let r = route("/", &["http://a", "http://b", "http://c"]);
    let now = Instant::now();
    let firsts: Vec<String> = (0..6)
        .map(|_| names(&r.candidates(now))[0].clone())
        .collect();
    assert_eq!(firsts, ["a", "b", "c", "a", "b", "c"]);
    assert_eq!(names(&r.candidates(now)), ["a", "b", "c"]);
    assert_eq!(names(&r.candidates(now)), ["b", "c", "a"]);
}

#[test]
fn a_refused_upstream_is_passed_over_until_its_cooldown_ends() {
    let r = route("/", &["http://a", "http://b", "http://c"]);
    let t0 = Instant::now();
    let cooldown = Duration::from_secs(10);
    r.upstreams()[1].mark_refused(t0, cooldown);
    // (time after the refusal, expected order for cursor 0, 1, 2)
    let table: &[(u64, [[&str; 3]; 3])] = &[
        (0, [["a", "c", "b"], ["c", "a", "b"], ["c", "a", "b"]]),
        (9_999, [["a", "c", "b"], ["c", "a", "b"], ["c", "a", "b"]]),
        (10_001, [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]),
    ];
    for &(ms, orders) in table {
        let r = route("/", &["http://a", "http://b", "http://c"]);
        r.upstreams()[1].mark_refused(t0, cooldown);
        for want in orders {
            let got = names(&r.candidates(t0 + Duration::from_millis(ms)));
            assert_eq!(got, want, "{ms} ms after");
        }
    }
    r.upstreams()[1].mark_ok();
    assert!(!r.upstreams()[1].is_down(t0));
}

#[test]
fn when_every_upstream_is_down_they_are_still_tried_in_turn() {
    let r = route("/", &["http://a", "http://b"]);
    let t0 = Instant::now();
    for u in r.upstreams() {
        u.mark_refused(t0, Duration::from_secs(5));
    }
    assert_eq!(names(&r.candidates(t0)), ["a", "b"]);
    assert_eq!(names(&r.candidates(t0)), ["b", "a"]);
}

#[test]
fn status_counts_attempts_and_refusals() {
    let u = Upstream::new("http://127.0.0.1:9").unwrap();
    let t0 = Instant::now();
    u.count_attempt();
    u.count_attempt();
    u.mark_refused(t0, Duration::from_secs(1));
    let s = u.status(t0);
    assert_eq!(
        s,
        UpstreamStatus {
            url: "http://127.0.0.1:9/".to_string(),
            healthy: false,
            attempts: 2,
            refusals: 1
        }
    );
    assert!(u.status(t0 + Duration::from_secs(2)).healthy);
}

#[test]
fn round_robin_is_shared_between_threads_without_losing_turns() {
    let r = Arc::new(route("/", &["http://a", "http://b"]));
    let now = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let r = Arc::clone(&r);
            std::thread::spawn(move || {
                (0..1000)
                    .filter(|_| r.candidates(now)[0].authority() == "a")
                    .count()
            })
        })
        .collect();
    let a: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(a, 2000);
}

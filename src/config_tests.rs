//! Unit tests of `config.rs`: every field from the environment, value syntax, errors.

use super::*;

/// A lookup that answers only `pairs`, standing in for the process environment.
fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// Rows of a `|`-separated table, cells trimmed: test tables that stay one line per case.
fn rows(table: &str) -> impl Iterator<Item = Vec<&str>> {
    table
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('|').map(str::trim).collect())
}

#[test]
fn defaults_are_valid_and_match_the_fields_table() {
    let default = Config::default();
    default.validate().unwrap();
    assert_eq!(Config::from_lookup(|_| None), Ok(default.clone()));
    assert_eq!(default.queue_depth, (default.workers * 64).max(1024));
    assert!((1..=10_000).contains(&default.max_connections));
    for f in FIELDS {
        let mut c = default.clone();
        match c.set(f.name, f.default, f.env) {
            Ok(()) if f.kind != "path" => assert_eq!(c, default, "{}: {}", f.name, f.default),
            // A count's or a path's default is described, not typed ("max(16, …)", "(none)").
            Err(e) => assert!(f.kind == "count", "{}: {e}", f.name),
            Ok(()) => assert_eq!(f.kind, "path", "{}", f.name),
        }
    }
}

#[test]
fn max_connections_stays_below_the_open_file_limit() {
    let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                  Max open files            1024                 524288               files\n";
    assert_eq!(open_files_soft_limit(limits), Some(1024));
    assert_eq!(
        open_files_soft_limit("Max open files  unlimited  unlimited  files"),
        None
    );
    assert_eq!(max_connections_for(Some(1024)), 960);
    assert_eq!(max_connections_for(Some(1_048_576)), 10_000);
    assert_eq!(max_connections_for(Some(10)), 1);
    assert_eq!(max_connections_for(None), 10_000);
}

#[test]
fn every_field_is_settable_from_the_environment() {
    // variable | value | how `{:?}` of the resulting Config shows the field
    let samples: Vec<_> = rows(
        "H1_ADDR                        | 0.0.0.0:80 | addr: 0.0.0.0:80,
         H1_LOOPS                       | 2          | loops: 2,
         H1_WORKERS                     | 3          | workers: 3,
         H1_QUEUE_DEPTH                 | 7          | queue_depth: 7,
         H1_MAX_CONNECTIONS             | 11         | max_connections: 11,
         H1_HEADER_READ_TIMEOUT         | 1500ms     | header_read_timeout: 1.5s,
         H1_READ_TIMEOUT                | 2m         | read_timeout: 120s,
         H1_WRITE_TIMEOUT               | 1.5s       | write_timeout: 1.5s,
         H1_IDLE_TIMEOUT                | 1h         | idle_timeout: 3600s,
         H1_SHUTDOWN_TIMEOUT            | 0          | shutdown_timeout: 0ns,
         H1_DRAIN_DELAY                 | 5s         | drain_delay: 5s,
         H1_MAX_HEAD_BYTES              | 16KiB      | max_head_bytes: 16384,
         H1_MAX_HEADERS                 | 256        | max_headers: 256,
         H1_MAX_URI_BYTES               | 1KB        | max_uri_bytes: 1000,
         H1_MAX_BODY_BYTES              | 512MiB     | max_body_bytes: 536870912,
         H1_MAX_BUFFERED_BYTES          | 8MiB       | max_buffered_bytes: 8388608,
         H1_MAX_UPLOAD_BYTES            | 4GiB       | max_upload_bytes: 4294967296,
         H1_MAX_REQUESTS_PER_CONNECTION | 100        | max_requests_per_connection: 100,
         H1_MAX_BATCH                   | 1024       | max_batch: 1024,
         H1_STREAM_BUFFER_BYTES         | 1M         | stream_buffer_bytes: 1048576,
         H1_TIMER_TICK                  | 1500us     | timer_tick: 1.5ms,
         H1_RECORD_STAGES               | off        | record_stages: false,
         H1_SERVER_TIMING               | yes        | server_timing: true,
         H1_TLS_CERT                    |            | tls_cert: None,
         H1_TLS_KEY                     |            | tls_key: None,
         H1_TLS_HANDSHAKE_TIMEOUT       | 3s         | tls_handshake_timeout: 3s }",
    )
    .collect();
    let vars: Vec<&str> = samples.iter().map(|row| row[0]).collect();
    assert_eq!(vars, FIELDS.iter().map(|f| f.env).collect::<Vec<_>>());
    let pairs: Vec<_> = samples.iter().map(|row| (row[0], row[1])).collect();
    let all = format!("{:?}", Config::from_lookup(env(&pairs)).unwrap());
    assert_eq!(
        all.matches(": ").count(),
        FIELDS.len(),
        "FIELDS lists every field"
    );
    for row in &samples {
        assert!(all.contains(row[2]), "{row:?} in {all}");
        let alone = Config::from_lookup(env(&[(row[0], row[1])])).unwrap();
        assert!(format!("{alone:?}").contains(row[2]), "{row:?} alone");
    }
    let config = Config::from_lookup(env(&[("H1_WORKERS", "20")])).unwrap();
    assert_eq!(
        config.queue_depth, 1280,
        "queue_depth follows workers unless given"
    );
}

#[test]
fn bad_values_name_the_variable_and_the_value() {
    let table = "
        H1_IDLE_TIMEOUT   | 5x                      | not a duration (use e.g. 250ms, 5s, 2m)
        H1_IDLE_TIMEOUT   | 5                       | a duration needs a unit (use e.g. 250ms, 5s, 2m)
        H1_READ_TIMEOUT   | -1s                     | must not be negative
        H1_WRITE_TIMEOUT  |                         | empty value
        H1_TIMER_TICK     | 99999999999999999999h   | too large
        H1_MAX_BODY_BYTES | 12 parsecs              | not a size (use e.g. 4096, 64KiB, 1MiB)
        H1_MAX_HEAD_BYTES | -1                      | must not be negative
        H1_MAX_BODY_BYTES | 99999999999GiB          | too large
        H1_WORKERS        | -1                      | must not be negative
        H1_WORKERS        | abc                     | not a whole number
        H1_MAX_BATCH      | 1.5                     | not a whole number
        H1_QUEUE_DEPTH    | 99999999999999999999999 | too large
        H1_ADDR           | 127.0.0.1               | not an address (use e.g. 127.0.0.1:8080, [::1]:8080, localhost:8080)
        H1_ADDR           | localhost:99999         | not an address (use e.g. 127.0.0.1:8080, [::1]:8080, localhost:8080)";
    for row in rows(table) {
        let (var, value, reason) = (row[0], row[1], row[2]);
        let err = Config::from_lookup(env(&[(var, value)])).unwrap_err();
        assert_eq!(err, ConfigError::new(var, value, reason));
        assert!(
            err.to_string().contains(&format!("{var}={value:?}: ")),
            "{err}"
        );
    }
    let err = ConfigError::new("H1_IDLE_TIMEOUT", "5x", NOT_A_DURATION).to_string();
    let want =
        r#"invalid configuration: H1_IDLE_TIMEOUT="5x": not a duration (use e.g. 250ms, 5s, 2m)"#;
    assert_eq!(err, want);
    let err = Config::default().set("idle_timeot", "5s", "--idle-timeot");
    assert_eq!(
        err,
        Err(ConfigError::new("--idle-timeot", "5s", "unknown setting"))
    );
}

#[test]
fn validate_names_the_field() {
    // field set | to | field named | reason
    let table = "
        workers             | 0      | workers             | must be 1 to 4096
        workers             | 4097   | workers             | must be 1 to 4096
        queue_depth         | 0      | queue_depth         | must be at least 1
        max_connections     | 0      | max_connections     | must be at least 1
        header_read_timeout | 0      | header_read_timeout | must be greater than 0
        read_timeout        | 0s     | read_timeout        | must be greater than 0
        write_timeout       | 0ms    | write_timeout       | must be greater than 0
        idle_timeout        | 0      | idle_timeout        | must be greater than 0
        shutdown_timeout    | 9000h  | shutdown_timeout    | must be at most 8760h
        max_headers         | 0      | max_headers         | must be 1 to 256
        max_headers         | 257    | max_headers         | must be 1 to 256
        max_head_bytes      | 255    | max_head_bytes      | must be 256 to 16777216
        max_head_bytes      | 4KiB   | max_uri_bytes       | must not exceed max_head_bytes (4096)
        max_uri_bytes       | 0      | max_uri_bytes       | must be 1 to 65536
        max_batch           | 0      | max_batch           | must be 1 to 1024
        loops               | 0      | loops               | must be 1 to 64
        loops               | 65     | loops               | must be 1 to 64
        max_batch           | 1025   | max_batch           | must be 1 to 1024
        stream_buffer_bytes | 0      | stream_buffer_bytes | must be at least 1
        timer_tick          | 999us  | timer_tick          | must be 1ms to 1s
        timer_tick          | 1001ms | timer_tick          | must be 1ms to 1s";
    for row in rows(table) {
        let (field, value, named, reason) = (row[0], row[1], row[2], row[3]);
        let mut c = Config::default();
        c.set(field, value, field).unwrap();
        let err = c.validate().unwrap_err();
        assert_eq!((err.source.as_str(), err.reason.as_str()), (named, reason));
        // Through the environment, a field the user set is named by its variable and the
        // text they typed; another field by its name and current value.
        let var = FieldInfo::lookup(field).unwrap().env;
        let err = Config::from_lookup(env(&[(var, value)])).unwrap_err();
        let want = if named == field {
            (var, value)
        } else {
            (named, "8192")
        };
        assert_eq!((err.source.as_str(), err.value.as_str()), want, "{err}");
    }
    let c = Config {
        shutdown_timeout: Duration::ZERO,
        ..Config::default()
    };
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn durations_parse() {
    let ok = "0=0 0.0=0 42ns=42 1500us=1500000 7µs=7000 250ms=250000000 5s=5000000000 \
              1.5s=1500000000 .5s=500000000 1h=3600000000000 1m30s=90000000000 \
              0.000000001s=1";
    for pair in ok.split_whitespace() {
        let (text, nanos) = pair.split_once('=').unwrap();
        let want = Duration::from_nanos(nanos.parse().unwrap());
        assert_eq!(parse_duration(text), Ok(want), "{text}");
    }
    assert_eq!(parse_duration(" 2m "), Ok(Duration::from_secs(120)));
    let bad = [
        "", " ", "-5s", "5", "5x", "s", "5S", "1.5.5s", "0.0.5s", "5 s", "+5s", "1h-1",
    ];
    for text in bad {
        assert!(parse_duration(text).is_err(), "{text:?} was accepted");
    }
    let max = format!("{}s", u64::MAX);
    assert_eq!(parse_duration(&max), Ok(Duration::from_secs(u64::MAX)));
    let over = format!("{}s", u128::from(u64::MAX) + 1);
    assert_eq!(parse_duration(&over), Err("too large"));
}

#[test]
fn sizes_counts_and_addresses_parse() {
    let ok = "1024=1024 0=0 64KiB=65536 64kib=65536 1MiB=1048576 1GiB=1073741824 \
              2TiB=2199023255552 1KB=1000 1mb=1000000 1K=1024 1m=1048576 10B=10";
    for pair in ok.split_whitespace() {
        let (text, bytes) = pair.split_once('=').unwrap();
        assert_eq!(parse_size(text), Ok(bytes.parse().unwrap()), "{text}");
    }
    assert_eq!(parse_size(" 8k "), Ok(8192));
    for text in [
        "", "-1", "KiB", "1 KiB", "1XB", "1.5KiB", "abc", "16EiB", "+1",
    ] {
        assert!(parse_size(text).is_err(), "{text:?} was accepted");
    }
    assert_eq!(parse_size(&u64::MAX.to_string()), Ok(u64::MAX));
    assert_eq!(parse_size("18446744073709551616"), Err("too large"));
    assert_eq!(parse_size("16777216TiB"), Err("too large"));
    assert_eq!(parse_count("64"), Ok(64));
    for text in ["-1", "abc", "1.5", "", "1e3", "+1"] {
        assert!(parse_count(text).is_err(), "{text:?} was accepted");
    }
    for text in ["127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80"] {
        assert_eq!(parse_addr(text), Ok(text.parse().unwrap()));
    }
    let local = parse_addr("localhost:8080").unwrap();
    assert!(local.ip().is_loopback() && local.port() == 8080, "{local}");
    for text in ["", "localhost", "127.0.0.1", "[::1]", ":::"] {
        assert!(parse_addr(text).is_err(), "{text:?} was accepted");
    }
}

#[test]
fn fields_table_is_consistent_and_documented() {
    let docs = include_str!("../docs/CONFIG.md");
    for f in FIELDS {
        assert_eq!(f.env, format!("H1_{}", f.name.to_uppercase()));
        assert_eq!(f.flag, format!("--{}", f.name.replace('_', "-")));
        assert!(["duration", "size", "count", "address", "bool", "path"].contains(&f.kind));
        assert_eq!(FieldInfo::lookup(f.flag), Some(f));
        // Any text is a path; every other kind refuses "x".
        if f.kind != "path" {
            let err = Config::default().set(f.name, "x", f.flag).unwrap_err();
            assert_ne!(err.reason, "unknown setting", "set() must know {}", f.name);
        }
        let (name, default, env, flag) = (f.name, f.default, f.env, f.flag);
        let row = format!(
            "| `{name}` | {default} | `{env}` | `{flag}` | {} | {} |",
            f.go, f.help
        );
        assert!(docs.contains(&row), "docs/CONFIG.md lacks the row\n{row}");
    }
}

#[test]
fn tls_needs_a_certificate_and_its_key_and_errors_name_the_variable() {
    let only_cert = Config::from_lookup(env(&[("H1_TLS_CERT", "/c.pem")])).unwrap_err();
    assert_eq!(only_cert.source, "H1_TLS_CERT", "{only_cert}");
    assert!(only_cert.reason.contains("H1_TLS_KEY"), "{only_cert}");
    let only_key = Config::from_lookup(env(&[("H1_TLS_KEY", "/k.pem")])).unwrap_err();
    assert_eq!(only_key.source, "H1_TLS_KEY", "{only_key}");
    assert!(only_key.reason.contains("H1_TLS_CERT"), "{only_key}");
    let both = Config::from_lookup(env(&[("H1_TLS_CERT", "/c.pem"), ("H1_TLS_KEY", "/k.pem")]));
    let api = Config::default().with_tls("/c.pem", "/k.pem");
    if cfg!(feature = "tls") {
        assert_eq!(both, Ok(api));
    } else {
        let e = both.unwrap_err();
        assert!(e.reason.contains("feature `tls`"), "{e}");
        assert!(api.validate().is_err());
    }
    let zero = Config::from_lookup(env(&[("H1_TLS_HANDSHAKE_TIMEOUT", "0")])).unwrap_err();
    assert_eq!(zero.source, "H1_TLS_HANDSHAKE_TIMEOUT");
}

/// `Config::from_env` warns of an `H1_…` variable that is no setting, naming the one
/// meant when it is near; settings and the binary's own variables pass.
#[test]
fn unknown_h1_variables_are_named_with_the_setting_meant() {
    let names = [
        "H1_WORKER",
        "h1_workers",
        "H1_IDEL_TIMEOUT",
        "H1_WORKERS",
        "H1_CONFIG",
        "H1_LOG_FORMAT",
        "H1_SOMETHING_ELSE_ENTIRELY",
        "H1_LOG_FORMT",
        "PATH",
        "DEMO_DB",
    ];
    let found: Vec<(&str, Option<&str>)> = names
        .iter()
        .filter_map(|n| Some((*n, unknown_env_name(n.as_bytes())?)))
        .collect();
    assert_eq!(
        found,
        [
            ("H1_WORKER", Some("H1_WORKERS")),
            ("h1_workers", Some("H1_WORKERS")),
            ("H1_IDEL_TIMEOUT", Some("H1_IDLE_TIMEOUT")),
            ("H1_SOMETHING_ELSE_ENTIRELY", None),
            ("H1_LOG_FORMT", Some("H1_LOG_FORMAT")),
        ]
    );
}

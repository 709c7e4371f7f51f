//! The demo's settings as specs: precedence and origins, every kind read from the file as
//! from a variable, and the exact text of each error.

use std::collections::HashMap;
use std::time::Duration;

use h1server::Config;
use h1server::config::FIELDS;

use super::file::{closest, parse as parse_file};
use super::settings::{DEMO_SETTINGS, Key, Origin};
use super::*;
use crate::demo::logging::LogFormat;

/// A config file in the temp directory, removed on drop.
struct TempFile(String);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("h1server-cli-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path.to_string_lossy().into_owned())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `parse` with these variables and arguments; the settings it would run with.
fn run(env: &[(&str, &str)], args: &[&str]) -> Result<Settings, String> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| env.get(name).cloned();
    match parse(args.iter().map(|a| a.to_string()).collect(), &lookup)? {
        Action::Run(s) | Action::PrintConfig(s) => Ok(s),
        other => panic!("not a run: {other:?}"),
    }
}

/// The settings from this file text alone (no variables, no flags).
fn from_file(text: &str) -> Result<Settings, String> {
    Settings::resolve([parse_file("h1.toml", text)?, vec![], vec![]])
}

fn origin_of(s: &Settings, name: &str) -> String {
    let key = Key::find("server", name)
        .or_else(|| Key::find("demo", name))
        .unwrap();
    s.origin(key).to_string()
}

#[test]
fn flags_beat_environment_beats_file_beats_defaults() {
    let file = TempFile::new(
        "precedence",
        "[server]\nworkers = 8\nidle_timeout = \"60s\"\nmax_body_bytes = \"2MiB\"\n\
         server_timing = true\n[demo]\nlog_format = \"json\"\n",
    );
    let env = [
        ("H1_CONFIG", file.0.as_str()),
        ("H1_WORKERS", "6"),
        ("H1_IDLE_TIMEOUT", "5s"),
    ];
    let s = run(&env, &["--workers", "4"]).unwrap();
    assert_eq!(s.config.workers, 4);
    assert_eq!(s.config.idle_timeout, Duration::from_secs(5));
    assert_eq!(s.config.max_body_bytes, 2 << 20);
    assert!(s.config.server_timing);
    assert_eq!(s.demo.log_format, LogFormat::Json);
    assert_eq!(s.config.read_timeout, Config::default().read_timeout);
    assert_eq!(origin_of(&s, "workers"), "flag --workers");
    assert_eq!(origin_of(&s, "idle_timeout"), "env H1_IDLE_TIMEOUT");
    assert_eq!(
        origin_of(&s, "max_body_bytes"),
        format!("file {}:4", file.0)
    );
    assert_eq!(origin_of(&s, "log_format"), format!("file {}:7", file.0));
    assert_eq!(origin_of(&s, "read_timeout"), "default");
    assert_eq!(s.file, Some((file.0.clone(), Origin::Env("H1_CONFIG"))));

    // --config beats H1_CONFIG.
    let other = TempFile::new("precedence-flag", "[server]\nworkers = 3\n");
    let s = run(&env[..1], &["--config", &other.0]).unwrap();
    assert_eq!(s.config.workers, 3);
    assert_eq!(s.file.unwrap().1, Origin::Flag("--config".into()));
}

#[test]
fn every_kind_reads_from_the_file_as_from_a_variable() {
    let s = from_file(
        "[server]\naddr = \"127.0.0.1:9090\"\nworkers = \"5\"\nmax_batch = 0x10\n\
         max_head_bytes = 4096\nmax_uri_bytes = \"2KiB\"\nshutdown_timeout = 0\n\
         timer_tick = \"1.5ms\"\nrecord_stages = false\nserver_timing = \"yes\"\n",
    )
    .unwrap();
    let c = &s.config;
    assert_eq!(c.addr, "127.0.0.1:9090".parse().unwrap());
    assert_eq!((c.workers, c.max_batch), (5, 16));
    assert_eq!((c.max_head_bytes, c.max_uri_bytes), (4096, 2048));
    assert_eq!(c.shutdown_timeout, Duration::ZERO);
    assert_eq!(c.timer_tick, Duration::from_micros(1500));
    assert!(!c.record_stages && c.server_timing);
    // The queue follows a worker count from the file, as from a variable.
    assert_eq!(c.queue_depth, h1server::config::default_queue_depth(5));
    // Dotted keys and inline tables are the same tables.
    let s = from_file("server.workers = 7\ndemo = { api_token = \"t\" }\n").unwrap();
    assert_eq!(s.config.workers, 7);
    assert_eq!(s.demo.api_token.as_deref(), Some("t"));
}

#[test]
fn a_value_that_loses_is_never_parsed() {
    let file = TempFile::new("loses", "[server]\nidle_timeout = \"5 parsecs\"\n");
    let s = run(&[("H1_IDLE_TIMEOUT", "7s")], &["--config", &file.0]).unwrap();
    assert_eq!(s.config.idle_timeout, Duration::from_secs(7));
    // A blank token counts as unset, from the file as from the variable.
    let s = run(&[("DEMO_API_TOKEN", " ")], &[]).unwrap();
    assert_eq!(s.demo.api_token, None);
}

#[test]
fn file_errors_name_the_file_line_column_and_field() {
    let cases = [
        (
            "[server]\nwrokers = 8\n",
            "h1.toml:2:1: server.wrokers: unknown setting (did you mean workers?)",
        ),
        (
            "[server]\nidle_timeout = \"5 parsecs\"\n",
            "h1.toml:2:16: server.idle_timeout = \"5 parsecs\": not a duration (use e.g. 250ms, 5s, 2m)",
        ),
        (
            "[server]\nidle_timeout = 60\n",
            "h1.toml:2:16: server.idle_timeout = 60: a duration needs a unit (use e.g. 250ms, 5s, 2m)",
        ),
        (
            "[server]\nworkers = true\n",
            "h1.toml:2:11: server.workers = true: wrong type: expected an integer such as 8, found a boolean",
        ),
        (
            "[server]\nserver_timing = 1\n",
            "h1.toml:2:17: server.server_timing = 1: wrong type: expected true or false, found an integer",
        ),
        (
            "[server]\naddr = [\"a\",\n  \"b\"]\n",
            "h1.toml:2:8: server.addr = [\"a\",...: wrong type: expected a string such as \"127.0.0.1:8080\", found an array",
        ),
        (
            "[server]\nworkers = -1\n",
            "h1.toml:2:11: server.workers = -1: must not be negative",
        ),
        (
            "[server]\nmax_headers = 1000\n",
            "h1.toml:2:15: server.max_headers = 1000: must be 1 to 256",
        ),
        (
            "[demo]\nlog_format = \"yaml\"\n",
            "h1.toml:2:14: demo.log_format = \"yaml\": not a log format (use text or json)",
        ),
        (
            "[demo]\napi_token = 12345\n",
            "h1.toml:2:13: demo.api_token = (hidden): wrong type: expected a string, found an integer",
        ),
        (
            "[server]\nworkers = [1\n",
            "h1.toml:2:13: not valid TOML: unclosed array, expected `]`",
        ),
        (
            "[server]\nworkers = 1\nworkers = 2\n",
            "h1.toml:3:1: not valid TOML: duplicate key",
        ),
        (
            "[sever]\nworkers = 8\n",
            "h1.toml:1:2: sever: unknown table (did you mean [server]?)",
        ),
        (
            "[logging]\n",
            "h1.toml:1:2: logging: unknown table (the tables are [server] and [demo])",
        ),
        (
            "# no table\nworkers = 8\n",
            "h1.toml:2:1: workers: a setting outside its table (put it under [server])",
        ),
        (
            "server = 8\n",
            "h1.toml:1:10: server: expected a table ([server]), found an integer",
        ),
        (
            "[server]\napi_token = \"t\"\n",
            "h1.toml:2:1: server.api_token: not a [server] setting (put it under [demo])",
        ),
        (
            "[server]\nH1_IDLE_TIMEOUT = \"5s\"\n",
            "h1.toml:2:1: server.H1_IDLE_TIMEOUT: unknown setting (did you mean idle_timeout?)",
        ),
        (
            "[server]\ncolour = \"blue\"\n",
            "h1.toml:2:1: server.colour: unknown setting (`h1server --help` lists them; docs/CONFIG.md)",
        ),
    ];
    for (text, want) in cases {
        let err = from_file(text).unwrap_err();
        assert_eq!(
            err,
            format!("invalid configuration: {want}"),
            "for {text:?}"
        );
    }
    // The first error in the file is the one reported, whatever the keys sort as.
    let err = from_file("[server]\nzz = 1\naa = 2\n").unwrap_err();
    assert!(err.contains("h1.toml:2:1: server.zz"), "{err}");
}

#[test]
fn variable_and_flag_errors_keep_their_form() {
    let err = run(&[("H1_WORKERS", "many")], &[]).unwrap_err();
    assert_eq!(
        err,
        "invalid configuration: H1_WORKERS=\"many\": not a whole number"
    );
    let err = run(&[("H1_LOG_FORMAT", "yaml")], &[]).unwrap_err();
    assert_eq!(
        err,
        "invalid configuration: H1_LOG_FORMAT=\"yaml\": not a log format (use text or json)"
    );
    let err = run(&[], &["--max-headers=1000"]).unwrap_err();
    assert_eq!(
        err,
        "invalid configuration: --max-headers=\"1000\": must be 1 to 256"
    );
    // A cross-field check on a default names the field, as before.
    let err = run(&[("H1_MAX_HEAD_BYTES", "1KiB")], &[]).unwrap_err();
    assert_eq!(
        err,
        "invalid configuration: max_uri_bytes=\"8192\": must not exceed max_head_bytes (1024)"
    );
    let err = run(&[], &["--wrokers", "4"]).unwrap_err();
    assert_eq!(
        err,
        "unknown argument \"--wrokers\" (did you mean --workers?)"
    );
    let err = run(&[], &["--config"]).unwrap_err();
    assert_eq!(err, "--config needs a value (a file)");
}

#[test]
fn a_missing_file_names_its_path_and_the_os_error() {
    let path = std::env::temp_dir().join("h1server-cli-no-such-file.toml");
    let path = path.to_string_lossy().into_owned();
    let err = run(&[("H1_CONFIG", &path)], &[]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "invalid configuration: cannot read config file {path} (env H1_CONFIG): \
             No such file or directory (os error 2)"
        )
    );
    let err = run(&[], &["--config="]).unwrap_err();
    assert_eq!(err, "invalid configuration: flag --config: empty file name");
}

#[test]
fn help_version_and_routes_read_no_setting() {
    let env = |_: &str| Some("bad".to_string());
    for (arg, want) in [
        ("--help", "Help"),
        ("-V", "Version"),
        ("--routes", "Routes"),
    ] {
        let action = parse(vec!["--workers=x".into(), arg.into()], &env).unwrap();
        assert_eq!(format!("{action:?}"), want);
    }
    let text = help();
    for needle in ["--config FILE", "--print-config", CONFIG_ENV, "RUST_LOG"] {
        assert!(text.contains(needle), "--help mentions {needle}");
    }
    for d in DEMO_SETTINGS {
        assert!(text.contains(d.env) && text.contains(d.key), "{}", d.env);
    }
}

#[test]
fn print_config_is_a_config_file_that_gives_the_same_settings() {
    let file = TempFile::new("print", "[server]\n\nmax_body_bytes = 1000\n");
    let env = [("H1_IDLE_TIMEOUT", "1m30s"), ("DEMO_API_TOKEN", "secret")];
    let args = [
        "--print-config",
        "--config",
        &file.0,
        "--timer-tick",
        "1500us",
    ];
    let s = run(&env, &args).unwrap();
    for f in FIELDS {
        let value = super::settings::field_toml(&s.config, f.name);
        assert!(!value.is_empty(), "field_toml lacks {}", f.name);
    }
    let text = s.render();
    assert_eq!(
        text.lines().filter(|l| l.contains(" = ")).count(),
        // and log_format, inspect, rate_limit, trust_forwarded_for, cors_origins
        // (metrics_addr unset, api_token secret)
        FIELDS.len() + 5
    );
    let row = |name: &str| {
        let found = text.lines().find(|l| l.starts_with(&format!("{name} ")));
        found.unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert!(row("idle_timeout").ends_with("# env H1_IDLE_TIMEOUT"));
    assert!(row("idle_timeout").starts_with("idle_timeout = \"90s\""));
    let in_file = format!("# file {}:3", file.0);
    assert!(row("max_body_bytes").starts_with("max_body_bytes = 1000 "));
    assert!(row("max_body_bytes").ends_with(&in_file));
    assert!(row("timer_tick").starts_with("timer_tick = \"1.5ms\""));
    assert!(row("timer_tick").ends_with("# flag --timer-tick"));
    assert!(row("max_head_bytes").starts_with("max_head_bytes = \"64KiB\""));
    assert!(row("max_head_bytes").ends_with("# default"));
    assert!(
        !text.contains("secret"),
        "the token is never printed:\n{text}"
    );
    assert!(text.contains("# api_token is set (hidden)"), "{text}");
    assert!(text.contains(&format!("# config file: {} (flag --config)", file.0)));

    let again = from_file(&text).unwrap();
    assert_eq!(again.config, s.config);
    assert_eq!(again.demo.log_format, s.demo.log_format);
    // Everything but the secret, which is never printed.
    let without_token = |d: &super::settings::Demo| super::settings::Demo {
        api_token: None,
        ..d.clone()
    };
    assert_eq!(without_token(&again.demo), without_token(&s.demo));
}

#[test]
fn cors_origins_are_a_list_star_or_off_and_a_bad_one_names_its_variable() {
    let s = run(&[], &[]).unwrap();
    assert_eq!(s.demo.cors_origins, ["https://example.com"]);
    let env = [(
        "DEMO_CORS_ORIGINS",
        " https://a.example/ , http://b.example:8080",
    )];
    let s = run(&env, &[]).unwrap();
    assert_eq!(
        s.demo.cors_origins,
        ["https://a.example", "http://b.example:8080"]
    );
    let s = from_file("[demo]\ncors_origins = \"OFF\"\n").unwrap();
    assert!(s.demo.cors_origins.is_empty());
    let s = run(&[("DEMO_CORS_ORIGINS", "*")], &[]).unwrap();
    assert_eq!(s.demo.cors_origins, ["*"]);
    for bad in ["", "example.com", "https://a.example/path"] {
        let e = run(&[("DEMO_CORS_ORIGINS", bad)], &[]).unwrap_err();
        assert!(e.contains("DEMO_CORS_ORIGINS"), "{bad:?}: {e}");
    }
}

#[test]
fn the_rate_limit_is_rate_slash_burst_or_off_and_a_bad_one_names_its_variable() {
    let s = run(&[], &[]).unwrap();
    assert_eq!(
        s.demo.rate_limit.map(|r| (r.rate, r.burst)),
        Some((20.0, 40))
    );
    let s = run(&[("DEMO_RATE_LIMIT", "0.5/3")], &[]).unwrap();
    assert_eq!(s.demo.rate_limit.map(|r| (r.rate, r.burst)), Some((0.5, 3)));
    let s = from_file("[demo]\nrate_limit = \"OFF\"\ntrust_forwarded_for = \"true\"\n").unwrap();
    assert_eq!(s.demo.rate_limit, None);
    assert!(s.demo.trust_forwarded_for);
    for bad in ["20", "0/5", "5/0", "-1/4", "x/4", "inf/4", "5/4/3", ""] {
        let e = run(&[("DEMO_RATE_LIMIT", bad)], &[]).unwrap_err();
        assert!(e.contains("DEMO_RATE_LIMIT"), "{bad:?}: {e}");
        assert!(e.contains("RATE/BURST"), "{bad:?}: {e}");
    }
}

#[test]
fn unknown_variables_with_the_prefix_are_named_with_the_one_meant() {
    let names = [
        "H1_WORKER",
        "PATH",
        "H1_IDLE_TIMEOUT",
        "DEMO_API_TOKN",
        "H1_CONFIG",
        "H1_LOG_FORMAT",
        "H1_PORT_8080_TCP",
        "DEMO_DB",
        "h1_workers",
    ];
    let warned = unknown_variables(names.iter().map(|n| n.to_string()));
    assert_eq!(
        warned,
        [
            "DEMO_API_TOKN is not a setting (did you mean DEMO_API_TOKEN?): ignored",
            "H1_PORT_8080_TCP is not a setting (`h1server --help` lists them): ignored",
            "H1_WORKER is not a setting (did you mean H1_WORKERS?): ignored",
            "h1_workers is not a setting (did you mean H1_WORKERS?): ignored",
        ]
    );
}

#[test]
fn closest_suggests_near_misses_and_spellings_of_other_sources() {
    let names = || FIELDS.iter().map(|f| f.name);
    assert_eq!(closest("wrokers", names()), Some("workers"));
    assert_eq!(closest("idle_timout", names()), Some("idle_timeout"));
    assert_eq!(closest("--idle-timeout", names()), Some("idle_timeout"));
    assert_eq!(
        closest("H1_MAX_BODY_BYTES", names()),
        Some("max_body_bytes")
    );
    assert_eq!(closest("colour", names()), None);
    let demo = || DEMO_SETTINGS.iter().map(|d| d.key);
    assert_eq!(closest("DEMO_API_TOKEN", demo()), Some("api_token"));
}

#[test]
fn the_docs_example_file_is_valid_names_every_setting_and_holds_the_defaults() {
    let docs = include_str!("../../docs/CONFIG.md");
    let start = docs.find("```toml\n").expect("an example file") + "```toml\n".len();
    let example = &docs[start..][..docs[start..].find("```").unwrap()];
    let s = from_file(example).unwrap();
    // The demo's defaults: the library's, with the stages recorded.
    let demo_defaults = Config {
        record_stages: true,
        ..Config::default()
    };
    assert_eq!(s.config, demo_defaults);
    assert_eq!(s.demo, super::settings::Demo::default());
    for f in FIELDS {
        assert!(example.contains(&format!("{} = ", f.name)), "{}", f.name);
    }
    for d in DEMO_SETTINGS {
        assert!(example.contains(&format!("{} = ", d.key)), "{}", d.key);
        let row = format!("| `{}` | `{}` |", d.key, d.env);
        assert!(docs.contains(&row), "docs/CONFIG.md lacks the row {row}");
    }
}

#[test]
fn the_storage_and_upload_settings_come_from_the_file_too() {
    let s = from_file(
        "[demo]\ndb = \":memory:\"\ndb_pool = \"3\"\nupload_dir = \"/tmp/up\"\ndatabase_url = \"postgres://u:pw@h/db\"\n",
    )
    .unwrap();
    assert_eq!(s.demo.db.as_deref(), Some(":memory:"));
    assert_eq!(s.demo.db_pool, Some(3));
    assert_eq!(s.demo.upload_dir.as_deref(), Some("/tmp/up"));
    assert_eq!(s.demo.database_url.as_deref(), Some("postgres://u:pw@h/db"));
    assert!(!s.render().contains("pw@"), "the database URL is a secret");
    let err = from_file("[demo]\ndb_pool = \"0\"\n").unwrap_err();
    assert!(err.contains("demo.db_pool") && err.contains("≥ 1"), "{err}");
}

//! The demo service `make run` starts: the Go seeds' parcel/users service on h1server.
//!
//! Configuration: every `Config` field from `H1_*` variables, overridden by flags
//! (`--addr`, `--workers`, … — see `--help` and docs/CONFIG.md); the API token from
//! `DEMO_API_TOKEN`. SIGINT/SIGTERM drain it and it exits 0. `--routes` prints the route
//! table and exits without binding. Prometheus metrics are at `GET /metrics`, or, with
//! `H1_METRICS_ADDR`, on a listener of their own (a second, one-worker `Server` that
//! reads the main server's telemetry and stops after it). Thin on purpose: the routes
//! live in `demo/`, the engine in the library.

mod demo;

use std::net::SocketAddr;
use std::time::Duration;

use h1server::config::{FIELDS, FieldInfo};
use h1server::{Config, ConfigError, Router, Server, ServerHandle, Telemetry};

/// The variable naming the metrics listener.
const METRICS_ADDR_VAR: &str = "H1_METRICS_ADDR";

/// What the command line and the environment ask for.
struct Settings {
    cfg: Config,
    /// `H1_METRICS_ADDR`: serve `/metrics` there instead of on the main listener.
    metrics_addr: Option<SocketAddr>,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let settings = match settings_from_env_and_args(std::env::args().skip(1).collect()) {
        Ok(Some(s)) => s,
        Ok(None) => return, // --help / --version / --routes printed
        Err(msg) => {
            eprintln!("h1server: {msg}");
            eprintln!("(run `h1server --help` for the settings)");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(settings) {
        eprintln!("h1server: {e}");
        // The library never exits the process: a forced stop (a second signal during the
        // drain) comes back as `Interrupted`, and the shell convention for it is 128 + 2.
        let code = if e.kind() == std::io::ErrorKind::Interrupted {
            130
        } else {
            1
        };
        std::process::exit(code);
    }
}

fn run(settings: Settings) -> std::io::Result<()> {
    let token = match std::env::var("DEMO_API_TOKEN") {
        Ok(t) if !t.trim().is_empty() => t,
        _ => {
            log::warn!(
                "DEMO_API_TOKEN is not set (or empty): the users API accepts the development token \"dev-token\""
            );
            "dev-token".to_string()
        }
    };
    let server = Server::bind(settings.cfg)?;
    let metrics = match settings.metrics_addr {
        Some(addr) => Some(spawn_metrics_server(addr, server.telemetry())?),
        None => None,
    };
    let app = demo::App::new(env!("CARGO_PKG_VERSION"), token)
        .with_metrics(metrics.is_none().then(|| server.telemetry()));
    app.health.watch(server.state());
    let events = app.events.clone();
    let server = server
        .spawn_task("events", move |token| events.run(token))
        .on_shutdown(|| log::info!("shutdown hook: flushing and releasing resources"));
    let handler = app.handler();
    app.health.set_started(true);
    app.health.set_ready(true);
    let result = server.run(handler);
    // The metrics listener outlives the drain (a scrape can watch it) and stops last.
    if let Some(m) = metrics {
        m.shutdown();
        if let Err(e) = m.join() {
            log::error!("metrics listener: {e}");
        }
    }
    result
}

/// The metrics listener: a small server of its own (one worker, few connections) whose
/// only route is `GET /metrics`, answered from the main server's `tel`. Signals are the
/// main server's business; `run` stops this one when the main one has stopped.
fn spawn_metrics_server(addr: SocketAddr, tel: Telemetry) -> std::io::Result<ServerHandle> {
    let cfg = Config {
        addr,
        workers: 1,
        queue_depth: 16,
        max_connections: 64,
        shutdown_timeout: Duration::from_secs(1),
        record_stages: false,
        ..Config::default()
    };
    let server = Server::bind(cfg).map_err(|e| {
        let e = std::io::Error::from(e);
        std::io::Error::new(e.kind(), format!("{METRICS_ADDR_VAR}={addr}: {e}"))
    })?;
    log::info!("metrics on http://{}/metrics", server.local_addr());
    let mut app = Router::new();
    app.get("/metrics", h1server::metrics::handler(tel));
    server.spawn(app)
}

/// `H1_METRICS_ADDR`: unset is `None`; set, it must be an address (as `H1_ADDR`: an empty
/// value is an error, not "unset").
fn metrics_addr_from_env() -> Result<Option<SocketAddr>, ConfigError> {
    let value = match std::env::var(METRICS_ADDR_VAR) {
        Ok(v) => v,
        Err(std::env::VarError::NotPresent) => return Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => {
            let v = v.to_string_lossy();
            return Err(ConfigError::new(METRICS_ADDR_VAR, &v, "not valid UTF-8"));
        }
    };
    h1server::config::parse_addr(&value)
        .map(Some)
        .map_err(|reason| ConfigError::new(METRICS_ADDR_VAR, &value, reason))
}

/// Environment first, then flags (flags win): both are gathered first and applied once,
/// so a flag can override a bad variable, and every error names what the user typed
/// (the flag or the variable) with its value. `Ok(None)` when `--help`/`--version`/
/// `--routes` ran.
fn settings_from_env_and_args(args: Vec<String>) -> Result<Option<Settings>, String> {
    // field name -> (what the user typed to name it, value)
    let mut given: Vec<(&'static str, String, String)> = FIELDS
        .iter()
        .filter_map(|f| Some((f.name, f.env.to_string(), std::env::var(f.env).ok()?)))
        .collect();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print_help();
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("h1server {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--routes" => {
                print_routes();
                return Ok(None);
            }
            _ => {}
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let info = FieldInfo::lookup(&flag)
            .filter(|i| i.flag == flag)
            .ok_or_else(|| format!("unknown argument {arg:?}"))?;
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .ok_or_else(|| format!("{flag} needs a value ({})", info.kind))?,
        };
        given.retain(|(name, _, _)| *name != info.name);
        given.push((info.name, flag, value));
    }
    let mut cfg = Config::default();
    for (name, source, value) in &given {
        cfg.set(name, value, source).map_err(|e| e.to_string())?;
    }
    let set = |field: &str| given.iter().any(|(n, _, _)| *n == field);
    if set("workers") && !set("queue_depth") {
        // The queue follows the worker count unless it was given (as from_env does).
        cfg.queue_depth = h1server::config::default_queue_depth(cfg.workers);
    }
    cfg.validate().map_err(|mut e| {
        // A cross-field check names the field; say what the user typed instead.
        if let Some((_, source, value)) = given.iter().find(|(n, _, _)| *n == e.source) {
            e.source = source.clone();
            e.value = value.clone();
        }
        e.to_string()
    })?;
    let metrics_addr = metrics_addr_from_env().map_err(|e| e.to_string())?;
    Ok(Some(Settings { cfg, metrics_addr }))
}

fn print_help() {
    println!(
        "h1server {} — the demo service\n",
        env!("CARGO_PKG_VERSION")
    );
    println!("usage: h1server [--flag value | --flag=value]...");
    println!("       h1server --routes | --help | --version\n");
    println!("  --routes  print the route table (methods, pattern, group) and exit");
    println!("            without binding; GET /debug/routes serves it as JSON\n");
    println!("Every setting is also read from its environment variable; a flag wins.\n");
    let w = FIELDS.iter().map(|f| f.flag.len()).max().unwrap_or(10);
    for f in FIELDS {
        println!(
            "  {:w$}  {:<22} default {:<18} {}",
            f.flag, f.env, f.default, f.help
        );
    }
    println!(
        "\n  DEMO_API_TOKEN          bearer token of the users API (default: dev-token, with a warning)"
    );
    println!(
        "  H1_METRICS_ADDR         serve GET /metrics (Prometheus) on this address instead of the main one,"
    );
    println!(
        "                          e.g. 127.0.0.1:9100 (default: unset, /metrics on the main port)"
    );
    println!("  RUST_LOG                log filter, e.g. info, debug, h1server=trace");
}

/// The demo's route table, one line per pattern: methods, pattern, group (`-` for none),
/// in columns. The token does not matter here: nothing is served.
fn print_routes() {
    let mut app = demo::App::new(env!("CARGO_PKG_VERSION"), String::new());
    if std::env::var_os(METRICS_ADDR_VAR).is_some() {
        app = app.with_metrics(None);
    }
    let rows: Vec<(String, String, String)> = app
        .router()
        .routes()
        .into_iter()
        .map(|r| {
            let group = r.group.unwrap_or_else(|| "-".to_string());
            (r.methods.join(","), r.pattern, group)
        })
        .collect();
    let wm = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let wp = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (methods, pattern, group) in rows {
        println!("{methods:wm$}  {pattern:wp$}  {group}");
    }
}

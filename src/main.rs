//! The demo service `make run` starts: the Go seeds' parcel/users service on h1server.
//!
//! Configuration: every `Config` field from `H1_*` variables, overridden by flags
//! (`--addr`, `--workers`, … — see `--help` and docs/CONFIG.md); the API token from
//! `DEMO_API_TOKEN`; the log format (text or one JSON object per line) from
//! `H1_LOG_FORMAT`. SIGINT/SIGTERM drain it and it exits 0. `--routes` prints the route
//! table and exits without binding. Thin on purpose: the routes live in `demo/`, the
//! engine in the library.

mod demo;

use demo::logging::{self, LOG_FORMAT_ENV, LogFormat};
use h1server::config::{FIELDS, FieldInfo};
use h1server::{Config, Server};

fn main() {
    let settings = config_from_env_and_args(std::env::args().skip(1).collect()).and_then(|cfg| {
        // Read after the flags, so that `--help` works whatever the variable says.
        cfg.map(|cfg| Ok((cfg, LogFormat::from_env()?))).transpose()
    });
    let (cfg, log_format) = match settings {
        Ok(Some(settings)) => settings,
        Ok(None) => return, // --help / --version / --routes printed
        Err(msg) => {
            eprintln!("h1server: {msg}");
            eprintln!("(run `h1server --help` for the settings)");
            std::process::exit(2);
        }
    };
    logging::init(log_format);
    if let Err(e) = run(cfg) {
        match log_format {
            // Log collectors expect every line of a JSON log to be JSON.
            LogFormat::Json => log::error!("{e}"),
            LogFormat::Text => eprintln!("h1server: {e}"),
        }
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

fn run(cfg: Config) -> std::io::Result<()> {
    let token = match std::env::var("DEMO_API_TOKEN") {
        Ok(t) if !t.trim().is_empty() => t,
        _ => {
            log::warn!(
                "DEMO_API_TOKEN is not set (or empty): the users API accepts the development token \"dev-token\""
            );
            "dev-token".to_string()
        }
    };
    let server = Server::bind(cfg)?;
    let app = demo::App::new(env!("CARGO_PKG_VERSION"), token);
    app.health.watch(server.state());
    let events = app.events.clone();
    let server = server
        .spawn_task("events", move |token| events.run(token))
        .on_shutdown(|| log::info!("shutdown hook: flushing and releasing resources"));
    let handler = app.handler();
    app.health.set_started(true);
    app.health.set_ready(true);
    server.run(handler)
}

/// Environment first, then flags (flags win): both are gathered first and applied once,
/// so a flag can override a bad variable, and every error names what the user typed
/// (the flag or the variable) with its value. `Ok(None)` when `--help`/`--version`/
/// `--routes` ran.
fn config_from_env_and_args(args: Vec<String>) -> Result<Option<Config>, String> {
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
    if !set("max_upload_bytes") && cfg.max_body_bytes < demo::uploads::MAX_UPLOAD_BYTES {
        // POST /api/v1/uploads streams files to disk: bodies over max_body_bytes go to it
        // piece by piece (every other route still answers them 413).
        cfg.max_upload_bytes = demo::uploads::MAX_UPLOAD_BYTES;
    }
    cfg.validate().map_err(|mut e| {
        // A cross-field check names the field; say what the user typed instead.
        if let Some((_, source, value)) = given.iter().find(|(n, _, _)| *n == e.source) {
            e.source = source.clone();
            e.value = value.clone();
        }
        e.to_string()
    })?;
    Ok(Some(cfg))
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
        "  {:<22}  where POST /api/v1/uploads stores files (default {})",
        demo::uploads::DIR_ENV,
        demo::uploads::DEFAULT_DIR
    );
    println!(
        "                          (max_upload_bytes defaults to 1GiB here; only that route reads such bodies)"
    );
    println!("  RUST_LOG                log filter, e.g. info, debug, h1server=trace");
    println!(
        "  {LOG_FORMAT_ENV:<22}  log line format: text (default) or json (one object per line)"
    );
}

/// The demo's route table, one line per pattern: methods, pattern, group (`-` for none),
/// in columns. The token does not matter here: nothing is served.
fn print_routes() {
    let app = demo::App::new(env!("CARGO_PKG_VERSION"), String::new());
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

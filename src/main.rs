//! The demo service `make run` starts: the Go seeds' parcel/users service on h1server.
//!
//! Configuration: every `Config` field from `H1_*` variables, overridden by flags
//! (`--addr`, `--workers`, … — see `--help` and docs/CONFIG.md); the API token from
//! `DEMO_API_TOKEN`; `DEMO_INSPECT=1` serves the lifecycle inspector at `/debug/requests`.
//! SIGINT/SIGTERM drain it and it exits 0. `--routes` prints the route
//! table and exits without binding. Thin on purpose: the routes live in `demo/`, the
//! engine in the library.

mod demo;

use h1server::config::{FIELDS, FieldInfo};
use h1server::inspect::Inspector;
use h1server::{Config, Server};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cfg = match config_from_env_and_args(std::env::args().skip(1).collect()) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => return, // --help / --version / --routes printed
        Err(msg) => {
            eprintln!("h1server: {msg}");
            eprintln!("(run `h1server --help` for the settings)");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(cfg) {
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
    let inspect = inspect_enabled()?;
    let mut server = Server::bind(cfg)?;
    let mut app = demo::App::new(env!("CARGO_PKG_VERSION"), token);
    if inspect {
        let inspector = Inspector::new(server.telemetry(), INSPECT_HISTORY);
        app = app.with_inspector(inspector.clone());
        server = server.spawn_task("inspector", move |token| inspector.run(token));
        log::info!(
            "DEMO_INSPECT: the lifecycle inspector is at http://{}/debug/requests",
            server.local_addr()
        );
    }
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

/// Requests the demo's inspector keeps.
const INSPECT_HISTORY: usize = 500;

/// `DEMO_INSPECT`: `1` (or `true`) mounts the inspector; unset, empty, `0` or `false`
/// does not; anything else is an error, so a typo does not silently leave it off.
fn inspect_enabled() -> std::io::Result<bool> {
    match std::env::var("DEMO_INSPECT").as_deref().map(str::trim) {
        Err(_) | Ok("" | "0" | "false") => Ok(false),
        Ok("1" | "true") => Ok(true),
        Ok(other) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("DEMO_INSPECT={other:?}: expected 1 or 0"),
        )),
    }
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
        "  DEMO_INSPECT            1: serve the lifecycle inspector at /debug/requests (default: off, 404)"
    );
    println!("  RUST_LOG                log filter, e.g. info, debug, h1server=trace");
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

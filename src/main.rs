//! The demo service `make run` starts: the Go seeds' parcel/users service on h1server.
//!
//! Configuration: every `Config` field from `H1_*` variables, overridden by flags
//! (`--addr`, `--workers`, … — see `--help` and docs/CONFIG.md); the API token from
//! `DEMO_API_TOKEN`. SIGINT/SIGTERM drain it and it exits 0. Thin on purpose: the routes
//! live in `demo/`, the engine in the library.

mod demo;

use h1server::config::{FIELDS, FieldInfo};
use h1server::{Config, Server};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cfg = match config_from_env_and_args(std::env::args().skip(1).collect()) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => return, // --help / --version printed
        Err(msg) => {
            eprintln!("h1server: {msg}");
            eprintln!("(run `h1server --help` for the settings)");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(cfg) {
        eprintln!("h1server: {e}");
        std::process::exit(1);
    }
}

fn run(cfg: Config) -> std::io::Result<()> {
    let token = std::env::var("DEMO_API_TOKEN").unwrap_or_else(|_| {
        log::warn!(
            "DEMO_API_TOKEN is not set: the users API accepts the development token \"dev-token\""
        );
        "dev-token".to_string()
    });
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

/// Environment first, then flags (flags win). `Ok(None)` when `--help`/`--version` ran.
fn config_from_env_and_args(args: Vec<String>) -> Result<Option<Config>, String> {
    let mut cfg = Config::from_env().map_err(|e| e.to_string())?;
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
        cfg.set(info.name, &value, &flag)
            .map_err(|e| e.to_string())?;
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(Some(cfg))
}

fn print_help() {
    println!(
        "h1server {} — the demo service\n",
        env!("CARGO_PKG_VERSION")
    );
    println!("usage: h1server [--flag value | --flag=value]...\n");
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
    println!("  RUST_LOG                log filter, e.g. info, debug, h1server=trace");
}

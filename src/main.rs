//! The demo service `make run` starts: the Go seeds' parcel/users service on h1server.
//!
//! Configuration (see `cli`, `--help` and docs/CONFIG.md): every `Config` field and the
//! demo's own settings (the API token, the log format, the metrics address, the
//! inspector: `DEMO_INSPECT=1` serves it at `/debug/requests`) from flags, `H1_*`/`DEMO_*`
//! variables and an optional TOML file (`--config FILE`), in that order of precedence;
//! `--print-config` shows the result and where each value came from. SIGINT/SIGTERM drain
//! it and it exits 0. `--routes` prints the route table and exits without binding. Thin on
//! purpose: the settings live in `cli/`, the routes in `demo/`, the engine in the library.

mod cli;
mod demo;

use cli::{Action, Settings};
use demo::logging::{self, LogFormat};
use h1server::Server;
use h1server::inspect::Inspector;

/// Requests the demo's inspector keeps.
const INSPECT_HISTORY: usize = 500;

fn main() {
    // A write past RLIMIT_FSIZE (a quota, a file size guard) then fails with EFBIG, which an
    // upload answers 507, instead of SIGXFSZ's default action killing the process and every
    // connection with it. Go's runtime ignores SIGXFSZ the same way.
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread is started.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    // A misspelt variable is read by nothing: say so, once the logger (if any) runs.
    let names = std::env::vars_os().map(|(name, _)| name.to_string_lossy().into_owned());
    let unknown = cli::unknown_variables(names);
    let warn_stderr = || {
        unknown
            .iter()
            .for_each(|w| eprintln!("h1server: warning: {w}"))
    };
    let is_utf8 = |name: &str| std::env::var_os(name).is_none_or(|v| v.to_str().is_some());
    let action = cli::parse(std::env::args().skip(1).collect(), &env);
    let settings = match action.and_then(|a| cli::check_utf8(a, &is_utf8)) {
        Ok(Action::Run(settings)) => settings,
        Ok(Action::PrintConfig(settings)) => {
            warn_stderr();
            return print!("{}", settings.render());
        }
        Ok(Action::Help) => return print!("{}", cli::help()),
        Ok(Action::Version) => return println!("h1server {}", env!("CARGO_PKG_VERSION")),
        Ok(Action::Routes) => return print_routes(),
        Err(msg) => {
            eprintln!("h1server: {msg}");
            warn_stderr();
            eprintln!("(run `h1server --help` for the settings)");
            std::process::exit(2);
        }
    };
    let log_format = settings.demo.log_format;
    logging::init(log_format);
    unknown.iter().for_each(|w| log::warn!("{w}"));
    if let Err(e) = run(settings) {
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

fn run(settings: Settings) -> std::io::Result<()> {
    let token = settings.demo.api_token.clone().unwrap_or_else(|| {
        log::warn!(
            "DEMO_API_TOKEN ([demo] api_token) is not set (or empty): the users API accepts the development token \"dev-token\""
        );
        demo::DEV_TOKEN.to_string()
    });
    // Before binding: a database that cannot be opened fails the start, naming DEMO_DB.
    let d = &settings.demo;
    let stores = demo::store::open(
        d.db.as_deref(),
        d.database_url.as_deref(),
        d.db_pool,
        settings.config.workers,
    )
    .map_err(std::io::Error::other)?;
    log::info!("storage: {}", stores.description);
    let config = settings.config.clone();
    let server = match inherited_listener()? {
        Some(listener) => {
            log::info!("socket activation: serving the listening socket passed as fd 3");
            Server::from_listener(listener, config)
        }
        None => Server::bind(config),
    };
    let server = server.map_err(|e| settings.start_error(e))?;
    let metrics = match settings.demo.metrics_addr {
        Some(addr) => Some(spawn_metrics_server(addr, server.telemetry())?),
        None => None,
    };
    let mut app = demo::App::new(env!("CARGO_PKG_VERSION"), token, stores)
        .with_metrics(metrics.is_none().then(|| server.telemetry()));
    app = app
        .with_rate_limit(settings.demo.rate_limit.map(|r| (r.rate, r.burst)))
        .trust_forwarded_for(settings.demo.trust_forwarded_for)
        .with_cors_origins(settings.demo.cors_origins.clone());
    if settings.demo.rate_limit.is_none() {
        log::info!("DEMO_RATE_LIMIT=off: the users API has no rate limit");
    }
    if let Some(dir) = &settings.demo.upload_dir {
        app = app.with_upload_dir(dir.into());
    }
    let mut server = server;
    if settings.demo.inspect {
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
fn spawn_metrics_server(
    addr: std::net::SocketAddr,
    tel: h1server::Telemetry,
) -> std::io::Result<h1server::ServerHandle> {
    let cfg = h1server::Config {
        addr,
        workers: 1,
        queue_depth: 16,
        max_connections: 64,
        shutdown_timeout: std::time::Duration::from_secs(1),
        record_stages: false,
        ..h1server::Config::default()
    };
    let server = Server::bind(cfg).map_err(|e| {
        let e = std::io::Error::from(e);
        std::io::Error::new(e.kind(), format!("H1_METRICS_ADDR={addr}: {e}"))
    })?;
    log::info!("metrics on http://{}/metrics", server.local_addr());
    let mut app = h1server::Router::new();
    app.get("/metrics", h1server::metrics::handler(tel));
    server.spawn(app)
}

/// The listening socket a supervisor passed (systemd socket activation, `sd_listen_fds(3)`):
/// descriptor 3 when `LISTEN_PID` names this process and `LISTEN_FDS` is 1. Then the
/// supervisor owns the port: it is bound before the service starts, and connections made
/// while the service restarts wait in the socket's backlog instead of being refused.
fn inherited_listener() -> std::io::Result<Option<std::net::TcpListener>> {
    use std::os::fd::FromRawFd;
    let var = |name| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    if var("LISTEN_PID") != Some(std::process::id()) {
        return Ok(None);
    }
    match var("LISTEN_FDS") {
        None | Some(0) => return Ok(None),
        Some(1) => {}
        Some(n) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("LISTEN_FDS={n}: the demo serves one socket (one ListenStream=)"),
            ));
        }
    }
    // SAFETY: with LISTEN_PID naming this process, the supervisor passed descriptor 3
    // (SD_LISTEN_FDS_START) open, and nothing else in this process owns it; this function
    // runs once, at start-up, so the descriptor gets exactly one owner.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(3) };
    // Not a socket, or not a listening TCP one: say so rather than fail later.
    listener.local_addr().map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("LISTEN_FDS: descriptor 3 is not a TCP listener: {e}"),
        )
    })?;
    Ok(Some(listener))
}

/// The demo's route table, one line per pattern: methods, pattern, group (`-` for none),
/// in columns. The token does not matter here: nothing is served.
fn print_routes() {
    let stores = demo::Stores::in_memory().expect("an in-memory SQLite database");
    let mut app = demo::App::new(env!("CARGO_PKG_VERSION"), String::new(), stores);
    if std::env::var_os("H1_METRICS_ADDR").is_some() {
        app = app.with_metrics(None); // served on a listener of its own
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

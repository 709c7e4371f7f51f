//! Seed 000's API gateway: routes requests by path prefix to upstream services through
//! [`ReverseProxy`], with request-id / correlation-id propagation (seed 002) and an access
//! log. `docs/PROXY.md` describes the proxy.
//!
//!     GATEWAY_UPSTREAMS='/api/users=http://127.0.0.1:9001,/api/orders=http://127.0.0.1:9002|http://127.0.0.1:9003' \
//!     GATEWAY_ADDR=127.0.0.1:8000 cargo run --release --features proxy --example gateway
//!
//! * `GATEWAY_UPSTREAMS` (required): comma-separated `prefix=url`; several URLs for one
//!   prefix separated by `|` are taken in round robin, an upstream that refuses is
//!   skipped for `GATEWAY_HEALTH_COOLDOWN` (default 10s).
//! * `GATEWAY_ADDR` (default `127.0.0.1:8000`): where the gateway listens.
//! * `GATEWAY_UPSTREAM_TIMEOUT` (default 30s): longest wait for an upstream's response
//!   head, then `504`; `GATEWAY_CONNECT_TIMEOUT` (default 5s).
//! * `GATEWAY_MAX_IDLE_PER_HOST` (default 32): idle keep-alive connections kept per
//!   upstream (nginx's `keepalive`).
//! * Every `H1_*` variable of `Config` (docs/CONFIG.md). Bodies above `max_body_bytes`
//!   are streamed through up to `H1_MAX_UPLOAD_BYTES`, 1 GiB unless set.
//!
//! `GET /gateway/upstreams` lists the routes and each upstream's health. A bad variable
//! is reported with its name and the process exits with status 2.

use std::time::Duration;

use h1server::middleware::{AccessLog, Recovery, RequestId};
use h1server::proxy::{ReverseProxy, parse_routes};
use h1server::{BindError, Config, Request, Response, Router, Server, Stack, config};

/// Reports a configuration mistake and exits with status 2.
fn bad_config(msg: impl std::fmt::Display) -> ! {
    eprintln!("gateway: {msg}");
    std::process::exit(2);
}

/// A duration variable (`500ms`, `10s`, as `H1_*` durations, and in their range: at most
/// 8760h, and above 0 unless `zero_ok`), or its default.
fn duration_var(name: &str, default: Duration, zero_ok: bool) -> Duration {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => default,
        Err(std::env::VarError::NotUnicode(_)) => bad_config(format!("{name}: not valid UTF-8")),
        Ok(v) => match config::parse_duration(&v) {
            Err(why) => bad_config(format!("{name}={v:?}: {why}")),
            Ok(d) if d > config::MAX_DURATION => {
                bad_config(format!("{name}={v:?}: must be at most 8760h"))
            }
            Ok(d) if d.is_zero() && !zero_ok => {
                bad_config(format!("{name}={v:?}: must be greater than 0"))
            }
            Ok(d) => d,
        },
    }
}

/// A count variable (a whole number), or its default.
fn count_var(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => default,
        Err(std::env::VarError::NotUnicode(_)) => bad_config(format!("{name}: not valid UTF-8")),
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| bad_config(format!("{name}={v:?}: not a whole number"))),
    }
}

fn main() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();

    let spec = std::env::var("GATEWAY_UPSTREAMS").unwrap_or_else(|_| {
        bad_config(
            "GATEWAY_UPSTREAMS is not set (expected prefix=url[|url...],..., e.g. \
             /api/users=http://127.0.0.1:9001,/api/orders=http://127.0.0.1:9002)",
        )
    });
    let table = parse_routes(&spec)
        .unwrap_or_else(|why| bad_config(format!("GATEWAY_UPSTREAMS={spec:?}: {why}")));

    let mut cfg = Config::from_env().unwrap_or_else(|e| bad_config(e));
    if let Ok(addr) = std::env::var("GATEWAY_ADDR") {
        cfg.addr = addr.parse().unwrap_or_else(|_| {
            bad_config(format!(
                "GATEWAY_ADDR={addr:?}: not an address (expected ip:port, e.g. 127.0.0.1:8000)"
            ))
        });
    } else if std::env::var_os("H1_ADDR").is_none() {
        cfg.addr = ([127, 0, 0, 1], 8000).into();
    }
    if std::env::var_os("H1_MAX_UPLOAD_BYTES").is_none() {
        cfg.max_upload_bytes = 1 << 30;
    }

    let proxy = ReverseProxy::builder()
        .table(table)
        .connect_timeout(duration_var(
            "GATEWAY_CONNECT_TIMEOUT",
            Duration::from_secs(5),
            false,
        ))
        .response_header_timeout(duration_var(
            "GATEWAY_UPSTREAM_TIMEOUT",
            Duration::from_secs(30),
            false,
        ))
        .max_idle_per_host(count_var("GATEWAY_MAX_IDLE_PER_HOST", 32))
        .health_cooldown(duration_var(
            "GATEWAY_HEALTH_COOLDOWN",
            Duration::from_secs(10),
            true,
        ))
        // Seed 000's `ModifyResponse` sets this one field. A fixed field is declared, so
        // the event loop adds it; `.modify_response(|resp| ...)` runs code on each head
        // instead, at the cost of a worker's round trip per response (docs/PROXY.md).
        .set_response_header("X-Proxy", "api-gateway")
        .build()
        .unwrap_or_else(|e| bad_config(format!("GATEWAY_UPSTREAMS: {e}")));
    log::info!("gateway: routes {}", proxy.routes());

    let status_proxy = proxy.clone();
    let mut router = Router::new();
    router.get("/gateway/upstreams", move |_: &mut Request| {
        let mut out = String::new();
        for (prefix, ups) in status_proxy.upstream_status() {
            for u in ups {
                out.push_str(&format!(
                    "{prefix} {} {} attempts={} refusals={}\n",
                    u.url,
                    if u.healthy { "up" } else { "down" },
                    u.attempts,
                    u.refusals
                ));
            }
        }
        Response::text(out)
    });
    router.any("/", proxy);
    // The seeds' base stack, outermost first: ids before the log so it carries them.
    let app = Stack::new(router)
        .with(Recovery)
        .with(RequestId::default())
        .with(AccessLog);

    let server = match Server::bind(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gateway: {e}");
            std::process::exit(if matches!(e, BindError::Config(_)) {
                2
            } else {
                1
            });
        }
    };
    if let Err(e) = server.run(app) {
        eprintln!("gateway: {e}");
        std::process::exit(1);
    }
}

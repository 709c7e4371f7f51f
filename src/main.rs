//! The demo service: what `make run` starts. Configuration comes from `H1_*` variables
//! (see docs/CONFIG.md); SIGINT/SIGTERM drain it and it exits 0.

use h1server::{Config, Request, Response, Server};

fn app(req: &mut Request) -> Response {
    match req.path() {
        "/" => Response::text("h1server demo is reachable\n"),
        "/healthz" => Response::json_text("{\"status\":\"ok\"}\n"),
        _ => Response::error(404, ""),
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("h1server: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = Server::bind(cfg).and_then(|s| s.run(app)) {
        eprintln!("h1server: {e}");
        std::process::exit(1);
    }
}

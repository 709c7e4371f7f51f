//! Configuration owns every limit and deadline of the server: their defaults, how they are
//! read from `H1_*` environment variables or command-line flags, and the checks that reject
//! unusable combinations. It must never touch a socket, start a thread or exit the process:
//! a bad value comes back as a [`ConfigError`] that names what the user typed.
//!
//! ```
//! use h1server::config::Config;
//!
//! let env = |name: &str| (name == "H1_IDLE_TIMEOUT").then(|| "5x".to_string());
//! assert_eq!(
//!     Config::from_lookup(env).unwrap_err().to_string(),
//!     r#"invalid configuration: H1_IDLE_TIMEOUT="5x": not a duration (use e.g. 250ms, 5s, 2m)"#
//! );
//! ```

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Every limit and deadline of the server.
///
/// Build it with [`Config::default`], [`Config::from_env`] or [`Config::from_lookup`], adjust
/// fields with [`Config::set`], and call [`Config::validate`] before use (`from_lookup` does).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Where the server listens (with `loops` > 1, every loop binds it, `SO_REUSEPORT`).
    pub addr: SocketAddr,
    /// Event loop threads. Each owns a listener on `addr` (`SO_REUSEPORT`: the kernel
    /// spreads new connections across them), its connections, its timer wheel and its
    /// buffers; a connection never moves between loops. All share the worker pool, the
    /// drain, `max_connections`, `max_buffered_bytes` (one budget) and the telemetry.
    /// 1 (the default) is the one-loop design; more helps once the loop's core is busy.
    pub loops: usize,
    /// Handler threads: handlers may block, so this bounds how many run at once while the
    /// event loop itself never blocks.
    pub workers: usize,
    /// Capacity of the bounded job queue; when it is full the loop answers `503` itself, so
    /// overload is shed instead of queued without bound.
    pub queue_depth: usize,
    /// Open connections at which the loop pauses accepting, so the process never runs out of
    /// file descriptors (each connection holds one).
    pub max_connections: usize,
    /// Total deadline for a request head from accept or from the request's first byte;
    /// dribbling bytes does not extend it, which defeats slowloris.
    pub header_read_timeout: Duration,
    /// Deadline for reading a body once its head is parsed, so a stalled upload cannot hold
    /// a connection forever.
    pub read_timeout: Duration,
    /// How long a full socket may go without the client reading any of the response
    /// (counted from the last progress, as nginx's `send_timeout`; handler time excluded),
    /// so a client that stops reading is dropped while a slow, steady one is not.
    pub write_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request before it is closed
    /// silently, returning its descriptor.
    pub idle_timeout: Duration,
    /// How long a graceful drain waits for in-flight requests before closing the rest; zero
    /// closes at once.
    pub shutdown_timeout: Duration,
    /// How long the server keeps serving after the first stop signal before the drain
    /// closes the listener (the Kubernetes `preStop` pattern; 0 = drain at once): `/readyz`
    /// fails and every answer says `Connection: close` meanwhile, so a load balancer takes
    /// the instance out and ends its pooled connections after a response, never under a
    /// request in flight.
    pub drain_delay: Duration,
    /// Largest request head (line + headers) before `431`; bounds per-connection memory.
    pub max_head_bytes: usize,
    /// Most header fields before `431`; sizes the fixed parse array, hence at most 256.
    pub max_headers: usize,
    /// Longest request target before `414`; a long URI is an attack or a bug, and it must fit
    /// in the head anyway.
    pub max_uri_bytes: usize,
    /// Largest request body (decoded, for chunked) before `413`, so uploads cannot exhaust
    /// memory.
    pub max_body_bytes: u64,
    /// Bytes of request data the event loops may hold for all connections together (read
    /// buffers and bodies being read; one budget however many `loops` there are, not a
    /// share each), so N stalled uploads cannot take the memory: past
    /// it the loop stops reading bodies (nothing accepted is dropped) and a new request
    /// that needs more gets `503` + `Retry-After`.
    pub max_buffered_bytes: usize,
    /// Largest request body delivered piece by piece to a [`BodySink`](crate::BodySink)
    /// (0 = off). A `Content-Length` body above `max_body_bytes` and at most this is not
    /// buffered: the handler gets the head and answers `Response::read_body`.
    pub max_upload_bytes: u64,
    /// Requests per connection before `Connection: close` (0 = no limit), so a load balancer
    /// can rebalance long-lived clients.
    pub max_requests_per_connection: usize,
    /// Most pipelined requests handed to a worker as one job: amortises the hand-off while
    /// keeping one connection from monopolising a worker.
    pub max_batch: usize,
    /// Bytes of a streamed response queued for a slow client before its producer blocks;
    /// bounds memory per streaming response.
    pub stream_buffer_bytes: usize,
    /// Resolution of the timer wheel: deadlines fire up to one tick late, and a coarser tick
    /// means fewer wake-ups.
    pub timer_tick: Duration,
    /// Workers stamp each handler's start and end (two clock reads per request, and one per
    /// batch for `written`) for the queue, handler and write histograms, `Server-Timing`
    /// and the inspector (docs/LIFECYCLE.md); off leaves the stages the loop sees, which
    /// cost it no clock read. Off by default: on, it measured 6 % more CPU per request at
    /// c64 and up to 19 % pipelined (docs/BENCHMARKS.md, run 8). The demo turns it on, and so
    /// does creating an `inspect::Inspector`.
    pub record_stages: bool,
    /// Every answer carries `Server-Timing: parse, queue, handler` durations, for a
    /// browser's devtools (turns `record_stages` on).
    pub server_timing: bool,
    /// The server's certificate chain (PEM, leaf first): with `tls_key`, the listener
    /// speaks HTTPS (feature `tls`, docs/TLS.md). Both or neither; read, and checked
    /// against the key, when the server binds. See [`Config::with_tls`].
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Time from accept for the TLS handshake to finish (Go's `TLSHandshakeTimeout`), so
    /// a client that connects and never sends a ClientHello holds a connection no longer;
    /// the header deadline starts once it is over.
    pub tls_handshake_timeout: Duration,
}

/// Connection limit when the open-file limit is unknown or generous.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Descriptors kept back from `RLIMIT_NOFILE` (listener, epoll, logs, handlers' files), so the
/// connection limit is reached before the process limit.
pub const FD_RESERVE: u64 = 64;
/// Most event loops (`loops`).
pub const MAX_LOOPS: usize = 64;

/// The most worker threads (`workers`).
pub const MAX_WORKERS: usize = 4096;
/// Longest accepted duration (8760h), so that `Instant + timeout` can never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

impl Default for Config {
    fn default() -> Self {
        let workers = default_workers();
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            loops: 1,
            workers,
            queue_depth: default_queue_depth(workers),
            max_connections: default_max_connections(),
            header_read_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            max_head_bytes: 64 * 1024,
            max_headers: 64,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 1024 * 1024,
            max_buffered_bytes: 64 * 1024 * 1024,
            max_upload_bytes: 0,
            max_requests_per_connection: 0,
            max_batch: 64,
            stream_buffer_bytes: 256 * 1024,
            timer_tick: Duration::from_millis(10),
            record_stages: false,
            server_timing: false,
            tls_cert: None,
            tls_key: None,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// The default worker count: `max(16, 4 × cores)` (cores as this process may use them:
/// `taskset` and cgroup quotas count).
///
/// Handlers are allowed to block — the seeds' handlers call databases, other services and
/// sleep — and a blocked worker is a worker that cannot answer anyone else: with one
/// worker per core, 20 requests that each wait 1.5 s on a database take 15 s on 2 cores.
/// The event loop never blocks, so extra workers cost only their parked threads (a few
/// KiB of memory each, no CPU). Servers whose handlers never block can lower it to the
/// core count (`H1_WORKERS`).
pub fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_mul(4).clamp(16, MAX_WORKERS)
}

/// The largest accepted `max_body_bytes`: bodies are read whole into memory before the
/// handler runs, and request buffers are addressed with 32-bit offsets.
pub const MAX_BODY_BYTES: u64 = 1 << 30;

/// The default queue depth for `workers` threads: `workers × 64`, at least 1024 (with
/// the default `workers`, 4 × cores, that is 256 per core).
///
/// A connection has at most one batch queued, so the queue never holds more than the open
/// connections; the bound exists to shed load when handlers fall behind, not to refuse a
/// burst. A queue of 64 answered 503 to a benign `wrk -c512` on one core (the loop reads
/// 512 requests in one turn while the single worker is still busy, docs/BENCHMARKS.md),
/// hence the floor. The queue holds memory only for the jobs waiting in it (about 180
/// bytes each), none when idle.
pub fn default_queue_depth(workers: usize) -> usize {
    workers.saturating_mul(64).max(1024)
}

/// The default connection limit: 10 000, lowered to the soft open-file limit minus
/// [`FD_RESERVE`] when that is smaller, so accepting pauses before `accept` fails (EMFILE).
pub fn default_max_connections() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").ok();
    max_connections_for(limits.as_deref().and_then(open_files_soft_limit))
}

/// The connection limit for a soft open-file limit (`None` when unknown or unlimited).
fn max_connections_for(soft_limit: Option<u64>) -> usize {
    let Some(soft) = soft_limit else {
        return DEFAULT_MAX_CONNECTIONS;
    };
    let usable = usize::try_from(soft.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    DEFAULT_MAX_CONNECTIONS.min(usable).max(1)
}

/// The soft limit on the "Max open files" line of `/proc/self/limits` (read without libc).
fn open_files_soft_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

impl Config {
    /// Reads every field from the environment: `H1_` + field name upper case (H1_ADDR,
    /// H1_WORKERS, H1_HEADER_READ_TIMEOUT, …); unset = default.
    ///
    /// A value that is not valid UTF-8 is an error naming its variable, not read lossily.
    /// A variable named `H1_…` that is no setting (`H1_WORKER`) is logged as a warning,
    /// with the setting it is closest to: it is ignored, and a typo should not pass for
    /// a default silently.
    pub fn from_env() -> Result<Config, ConfigError> {
        for (name, _) in std::env::vars_os() {
            if let Some(meant) = unknown_env_name(name.as_encoded_bytes()) {
                let name = name.to_string_lossy();
                match meant {
                    Some(env) => log::warn!(
                        "{name} is not an h1server setting (did you mean {env}?): ignored"
                    ),
                    None => log::warn!(
                        "{name} is not an h1server setting (docs/CONFIG.md lists them): ignored"
                    ),
                }
            }
        }
        for f in FIELDS {
            if let Some(v) = std::env::var_os(f.env)
                && v.to_str().is_none()
            {
                return Err(ConfigError::new(
                    f.env,
                    &v.to_string_lossy(),
                    "not valid UTF-8",
                ));
            }
        }
        Config::from_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into()))
    }

    /// Same with an injectable lookup (for tests and for the CLI).
    ///
    /// When `H1_WORKERS` is given and `H1_QUEUE_DEPTH` is not, the queue depth follows the
    /// new worker count (`max(1024, workers × 64)`). The result is validated; a failed check names the
    /// environment variable and the text it held when the user set that field, else the
    /// field itself and its current value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        for field in FIELDS {
            if let Some(value) = lookup(field.env) {
                config.set(field.name, &value, field.env)?;
            }
        }
        if lookup("H1_QUEUE_DEPTH").is_none() {
            config.queue_depth = default_queue_depth(config.workers);
        }
        config.validate().map_err(|mut err| {
            let field = FieldInfo::lookup(&err.source);
            if let Some((env, typed)) = field.and_then(|f| Some((f.env, lookup(f.env)?))) {
                (err.source, err.value) = (env.to_string(), typed);
            }
            err
        })?;
        Ok(config)
    }

    /// Sets one field by its name ("idle_timeout") from text; `source` is what the user
    /// typed to name it (e.g. "H1_IDLE_TIMEOUT" or "--idle-timeout") and goes into the
    /// error. Unknown field → error.
    ///
    /// Only the value's syntax is checked here; ranges are [`Config::validate`]'s job.
    pub fn set(&mut self, field: &str, value: &str, source: &str) -> Result<(), ConfigError> {
        let err = |reason: &str| ConfigError::new(source, value, reason);
        let count = || parse_count(value).map_err(err);
        let time = || parse_duration(value).map_err(err);
        let size = || parse_size(value).map_err(err);
        let usize_size = || usize::try_from(size()?).map_err(|_| err("too large"));
        match field {
            "addr" => self.addr = parse_addr(value).map_err(err)?,
            "workers" => self.workers = count()?,
            "loops" => self.loops = count()?,
            "queue_depth" => self.queue_depth = count()?,
            "max_connections" => self.max_connections = count()?,
            "header_read_timeout" => self.header_read_timeout = time()?,
            "read_timeout" => self.read_timeout = time()?,
            "write_timeout" => self.write_timeout = time()?,
            "idle_timeout" => self.idle_timeout = time()?,
            "shutdown_timeout" => self.shutdown_timeout = time()?,
            "drain_delay" => self.drain_delay = time()?,
            "max_head_bytes" => self.max_head_bytes = usize_size()?,
            "max_headers" => self.max_headers = count()?,
            "max_uri_bytes" => self.max_uri_bytes = usize_size()?,
            "max_body_bytes" => self.max_body_bytes = size()?,
            "max_buffered_bytes" => self.max_buffered_bytes = usize_size()?,
            "max_upload_bytes" => self.max_upload_bytes = size()?,
            "max_requests_per_connection" => self.max_requests_per_connection = count()?,
            "max_batch" => self.max_batch = count()?,
            "stream_buffer_bytes" => self.stream_buffer_bytes = usize_size()?,
            "timer_tick" => self.timer_tick = time()?,
            "record_stages" => self.record_stages = parse_bool(value).map_err(err)?,
            "server_timing" => self.server_timing = parse_bool(value).map_err(err)?,
            // An empty path is "not set" (a config file's way of writing the default);
            // surrounding whitespace is ignored, as in every kind of value.
            "tls_cert" => self.tls_cert = path(value),
            "tls_key" => self.tls_key = path(value),
            "tls_handshake_timeout" => self.tls_handshake_timeout = time()?,
            _ => return Err(err("unknown setting")),
        }
        Ok(())
    }

    /// Cross-field checks: workers ≥ 1, queue_depth ≥ 1, max_connections ≥ 1, timeouts > 0
    /// (shutdown_timeout may be 0 = close at once), max_headers 1..=256, max_uri_bytes ≤
    /// max_head_bytes, max_head_bytes ≥ 256, …; the error names the field.
    ///
    /// Also: workers 1..=4096, loops 1..=64, max_uri_bytes ≥ 1, max_batch 1..=1024, stream_buffer_bytes ≥ 1, timer_tick
    /// 1ms..=1s, every duration ≤ [`MAX_DURATION`] (8760h).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let head = self.max_head_bytes;
        let counts = [
            ("workers", self.workers),
            ("loops", self.loops),
            ("queue_depth", self.queue_depth),
            ("max_connections", self.max_connections),
            ("max_head_bytes", head),
            ("max_headers", self.max_headers),
            ("max_uri_bytes", self.max_uri_bytes),
            ("max_batch", self.max_batch),
            ("stream_buffer_bytes", self.stream_buffer_bytes),
            ("max_buffered_bytes", self.max_buffered_bytes),
        ];
        for (field, value) in counts {
            let (min, max) = match field {
                // Requests are read whole into one buffer addressed by u32 offsets.
                "max_head_bytes" => (256, 16 << 20),
                "max_headers" => (1, 256),
                "max_uri_bytes" => (1, head),
                "max_batch" => (1, 1024),
                "loops" => (1, MAX_LOOPS),
                // A thread each (started as the pool needs them, each with its stack):
                // a count no machine can hold failed as an allocation abort, not an error
                // naming the field.
                "workers" => (1, MAX_WORKERS),
                _ => (1, usize::MAX),
            };
            let reason = match field {
                _ if value < min && max == usize::MAX => format!("must be at least {min}"),
                "max_uri_bytes" if value > max => format!("must not exceed max_head_bytes ({max})"),
                _ => format!("must be {min} to {max}"),
            };
            check((min..=max).contains(&value), field, value, &reason)?;
        }
        check(
            self.max_body_bytes <= MAX_BODY_BYTES,
            "max_body_bytes",
            self.max_body_bytes,
            "must be at most 1GiB (bodies are read whole into memory)",
        )?;
        check(
            self.max_upload_bytes == 0 || self.max_upload_bytes > self.max_body_bytes,
            "max_upload_bytes",
            self.max_upload_bytes,
            "must be 0 (off) or larger than max_body_bytes",
        )?;
        let durations = [
            ("header_read_timeout", self.header_read_timeout),
            ("read_timeout", self.read_timeout),
            ("write_timeout", self.write_timeout),
            ("idle_timeout", self.idle_timeout),
            ("shutdown_timeout", self.shutdown_timeout),
            ("drain_delay", self.drain_delay),
            ("timer_tick", self.timer_tick),
            ("tls_handshake_timeout", self.tls_handshake_timeout),
        ];
        for (field, value) in durations {
            let (min, max) = match field {
                "shutdown_timeout" | "drain_delay" => (Duration::ZERO, MAX_DURATION),
                "timer_tick" => (Duration::from_millis(1), Duration::from_secs(1)),
                _ => (Duration::from_nanos(1), MAX_DURATION),
            };
            let reason = if value.is_zero() && !min.is_zero() && max == MAX_DURATION {
                "must be greater than 0".to_string()
            } else if value > max && max == MAX_DURATION {
                "must be at most 8760h".to_string()
            } else {
                format!("must be {min:?} to {max:?}")
            };
            check((min..=max).contains(&value), field, value, &reason)?;
        }
        self.validate_tls()
    }

    /// TLS needs a certificate and its key, and a build with the `tls` feature. (The files
    /// themselves are read when the server binds.)
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let shown = |p: &PathBuf| p.display().to_string();
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), None) => Err(ConfigError::new(
                "tls_cert",
                &shown(cert),
                "set tls_key (H1_TLS_KEY) too: HTTPS needs the certificate's private key",
            )),
            (None, Some(key)) => Err(ConfigError::new(
                "tls_key",
                &shown(key),
                "set tls_cert (H1_TLS_CERT) too: HTTPS needs a certificate for the key",
            )),
            (Some(cert), Some(_)) if !cfg!(feature = "tls") => Err(ConfigError::new(
                "tls_cert",
                &shown(cert),
                "this build has no TLS (build h1server with the cargo feature `tls`)",
            )),
            _ => Ok(()),
        }
    }

    /// Serves HTTPS with the certificate chain and private key in these PEM files (feature
    /// `tls`); the same as setting `tls_cert` and `tls_key` (`H1_TLS_CERT`, `H1_TLS_KEY`).
    /// The files are read when the server binds: a missing or unreadable file, no
    /// certificate, or a key that does not match fails [`Server::bind`](crate::Server::bind)
    /// with an error naming the setting.
    ///
    /// ```
    /// use h1server::Config;
    /// let cfg = Config::default().with_tls("/etc/h1/cert.pem", "/etc/h1/key.pem");
    /// assert!(cfg.tls_cert.is_some() && cfg.tls_key.is_some());
    /// ```
    pub fn with_tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Config {
        self.tls_cert = Some(cert.into());
        self.tls_key = Some(key.into());
        self
    }
}

/// A failed [`Config::validate`] check: the field and its current value, printed as the
/// parsers read them (`5s`, `65536`), so the message can be pasted back.
fn check(ok: bool, field: &str, value: impl fmt::Debug, reason: &str) -> Result<(), ConfigError> {
    if ok {
        return Ok(());
    }
    Err(ConfigError::new(field, &format!("{value:?}"), reason))
}

/// Static description of every field, in declaration order, for --help and docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    /// The Rust field name, which [`Config::set`] takes.
    pub name: &'static str,
    /// The environment variable [`Config::from_env`] reads.
    pub env: &'static str,
    /// The demo binary's command-line flag, so `--help`, errors and docs agree.
    pub flag: &'static str,
    /// Which syntax the value takes: "duration" | "size" | "count" | "address" | "bool" |
    /// "path".
    pub kind: &'static str,
    /// The default as a person would write it, for `--help` and the docs.
    pub default: &'static str,
    /// The Go `http.Server` equivalent, for readers coming from Go, or "—".
    pub go: &'static str,
    /// One line on what the setting does, for `--help` and the docs table.
    pub help: &'static str,
}

impl FieldInfo {
    /// Finds a field by its name, environment variable or flag, so a CLI can map
    /// `--idle-timeout` or `H1_IDLE_TIMEOUT` back to `idle_timeout`.
    pub fn lookup(key: &str) -> Option<&'static FieldInfo> {
        FIELDS
            .iter()
            .find(|f| f.name == key || f.env == key || f.flag == key)
    }
}

/// Builds [`FIELDS`] from one row per field: `name env flag kind default go help;`.
macro_rules! fields {
    ($($name:ident $env:literal $flag:literal $kind:literal $default:literal $go:literal
        $help:literal;)*) => {
        &[$(FieldInfo {
            name: stringify!($name), env: $env, flag: $flag, kind: $kind,
            default: $default, go: $go, help: $help,
        }),*]
    };
}

/// Every field of [`Config`], in declaration order.
pub const FIELDS: &[FieldInfo] = fields! {
    addr "H1_ADDR" "--addr" "address" "127.0.0.1:8080" "Addr"
        "Listen address; a host name is resolved when the value is read (first result).";
    loops "H1_LOOPS" "--loops" "count" "1" "—"
        "Event loop threads (1 to 64), each with its own listener (SO_REUSEPORT) and connections.";
    workers "H1_WORKERS" "--workers" "count" "max(16, 4 × cores)" "—"
        "Threads that run handlers (1 to 4096); handlers may block, the event loop never does.";
    queue_depth "H1_QUEUE_DEPTH" "--queue-depth" "count" "max(1024, workers × 64)" "—"
        "Jobs waiting for a worker; when full, new requests get 503 + Retry-After.";
    max_connections "H1_MAX_CONNECTIONS" "--max-connections" "count"
        "10000 (at most open-file limit − 64)" "netutil.LimitListener"
        "Open connections at which accepting pauses until one closes.";
    header_read_timeout "H1_HEADER_READ_TIMEOUT" "--header-read-timeout" "duration" "5s"
        "ReadHeaderTimeout"
        "Total time to receive a request head, from accept or its first byte; then 408.";
    read_timeout "H1_READ_TIMEOUT" "--read-timeout" "duration" "30s" "ReadTimeout"
        "Time to receive a request body after its head; then 408 and close.";
    write_timeout "H1_WRITE_TIMEOUT" "--write-timeout" "duration" "10s" "WriteTimeout"
        "Time a full socket may go without the client reading any of the response; then close.";
    idle_timeout "H1_IDLE_TIMEOUT" "--idle-timeout" "duration" "60s" "IdleTimeout"
        "Time a keep-alive connection may wait for its next request; then closed silently.";
    shutdown_timeout "H1_SHUTDOWN_TIMEOUT" "--shutdown-timeout" "duration" "30s"
        "Shutdown(ctx) deadline"
        "Time a graceful drain waits for in-flight requests; 0 closes at once.";
    drain_delay "H1_DRAIN_DELAY" "--drain-delay" "duration" "0s" "preStop sleep"
        "After the first signal: /readyz fails, answers say close, for this long; then the drain.";
    max_head_bytes "H1_MAX_HEAD_BYTES" "--max-head-bytes" "size" "64KiB" "MaxHeaderBytes"
        "Largest request line + headers; larger gets 431.";
    max_headers "H1_MAX_HEADERS" "--max-headers" "count" "64" "—"
        "Most header fields in one request (1 to 256); more gets 431.";
    max_uri_bytes "H1_MAX_URI_BYTES" "--max-uri-bytes" "size" "8KiB" "—"
        "Longest request target (at most max_head_bytes); longer gets 414.";
    max_body_bytes "H1_MAX_BODY_BYTES" "--max-body-bytes" "size" "1MiB" "MaxBytesReader"
        "Largest request body (decoded, for chunked); larger gets 413 and close.";
    max_buffered_bytes "H1_MAX_BUFFERED_BYTES" "--max-buffered-bytes" "size" "64MiB" "—"
        "Request bytes held for all connections together; past it bodies wait, new needs and growing chunked bodies get 503 (413 past the whole budget).";
    max_upload_bytes "H1_MAX_UPLOAD_BYTES" "--max-upload-bytes" "size" "0" "—"
        "Largest body streamed to a BodySink (bodies over max_body_bytes); 0 = off, 413.";
    max_requests_per_connection "H1_MAX_REQUESTS_PER_CONNECTION"
        "--max-requests-per-connection" "count" "0 (unlimited)" "—"
        "Requests served on one connection before Connection: close; 0 = no limit.";
    max_batch "H1_MAX_BATCH" "--max-batch" "count" "64" "—"
        "Pipelined requests handed to a worker as one job (1 to 1024).";
    stream_buffer_bytes "H1_STREAM_BUFFER_BYTES" "--stream-buffer-bytes" "size" "256KiB" "—"
        "Bytes of a streamed response queued for a slow client before the producer blocks (a fixed body over 256 KiB, sent the same way, keeps at most 64 KiB or this, whichever is less).";
    timer_tick "H1_TIMER_TICK" "--timer-tick" "duration" "10ms" "—"
        "Timer wheel resolution (1ms to 1s); deadlines fire up to one tick late.";
    record_stages "H1_RECORD_STAGES" "--record-stages" "bool" "false" "—"
        "Stamp each handler's start and end (queue, handler, write histograms); an inspector turns it on.";
    server_timing "H1_SERVER_TIMING" "--server-timing" "bool" "false" "—"
        "Add Server-Timing (parse, queue, handler durations) to every answer.";
    tls_cert "H1_TLS_CERT" "--tls-cert" "path" "(none: plain HTTP)" "ListenAndServeTLS certFile"
        "Certificate chain (PEM); with tls_key the listener speaks HTTPS (feature tls).";
    tls_key "H1_TLS_KEY" "--tls-key" "path" "(none)" "ListenAndServeTLS keyFile"
        "The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).";
    tls_handshake_timeout "H1_TLS_HANDSHAKE_TIMEOUT" "--tls-handshake-timeout" "duration" "10s"
        "TLSHandshakeTimeout"
        "Time from accept for the TLS handshake; then the connection is closed.";
};

/// A configuration value that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// What the user typed to name the setting (`H1_IDLE_TIMEOUT`, `--idle-timeout`) or, for
    /// a failed [`Config::validate`] check, the field name, so they can find it.
    pub source: String,
    /// The offending value as given, so the user sees exactly what was read.
    pub value: String,
    /// Why it was rejected, with an example of what would be accepted where that helps.
    pub reason: String,
}

/// Variables the `h1server` binary reads besides the settings (`--config`, its log format
/// and its metrics listener): not typos.
const BINARY_ENV: &[&str] = &["H1_CONFIG", "H1_LOG_FORMAT", "H1_METRICS_ADDR"];

/// For a variable `name` that starts with `H1_` (in any case: variable names are
/// case-sensitive, so `h1_workers` is a typo too) and is no setting: `Some`, with the
/// setting's variable it is closest to when one is near (a typo or two). `None` for
/// every other name.
pub(crate) fn unknown_env_name(name: &[u8]) -> Option<Option<&'static str>> {
    if !name
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"H1_"))
        || FIELDS.iter().any(|f| f.env.as_bytes() == name)
        || BINARY_ENV.iter().any(|e| e.as_bytes() == name)
    {
        return None;
    }
    let near = FIELDS
        .iter()
        .map(|f| f.env)
        .chain(BINARY_ENV.iter().copied())
        .map(|env| (edit_distance(name, env.as_bytes()), env))
        .filter(|&(d, env)| d <= 1 + (env.len() - 3) / 4)
        .min_by_key(|&(d, _)| d);
    Some(near.map(|(_, env)| env))
}

/// Levenshtein distance between two names, letters compared in any case (one row at a
/// time; `b` at most 64 bytes, as every setting's variable is).
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let b = &b[..b.len().min(64)];
    let mut row = [0usize; 65];
    for (j, r) in row.iter_mut().enumerate().take(b.len() + 1) {
        *r = j;
    }
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let same = ca.eq_ignore_ascii_case(cb);
            let next = (diag + usize::from(!same))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

impl ConfigError {
    /// Builds an error from borrowed parts; every check in this module goes through it.
    pub fn new(source: &str, value: &str, reason: &str) -> Self {
        let (source, value, reason) = (source.into(), value.into(), reason.into());
        Self {
            source,
            value,
            reason,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (source, value, reason) = (&self.source, &self.value, &self.reason);
        write!(f, "invalid configuration: {source}={value:?}: {reason}")
    }
}

impl std::error::Error for ConfigError {}

const NOT_A_DURATION: &str = "not a duration (use e.g. 250ms, 5s, 2m)";
const NOT_A_SIZE: &str = "not a size (use e.g. 4096, 64KiB, 1MiB)";
const NOT_AN_ADDRESS: &str = "not an address (use e.g. 127.0.0.1:8080, [::1]:8080, localhost:8080)";

/// Parses a duration: "250ms", "5s", "2m", "1h", "1500us", "0"; bare numbers other than 0
/// are an error (units required); decimals like "1.5s" accepted; reject negative, empty,
/// overflow.
///
/// Units are lower case, as in Go: `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`; parts may be chained
/// (`1m30s`). Surrounding whitespace is ignored.
pub fn parse_duration(s: &str) -> Result<Duration, &'static str> {
    let s = check_sign(s)?;
    let (mut rest, mut nanos) = (s, 0u128);
    while !rest.is_empty() {
        let (int, frac, after) = split_number(rest).ok_or(NOT_A_DURATION)?;
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.');
        let (unit, next) = after.split_at(unit_end.unwrap_or(after.len()));
        let unit_nanos: u128 = match unit {
            // A lone "0" (or "0.0") needs no unit: zero is zero in any unit.
            "" if next.is_empty() && rest.len() == s.len() && is_zero(int, frac) => 0,
            "" => return Err("a duration needs a unit (use e.g. 250ms, 5s, 2m)"),
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(NOT_A_DURATION),
        };
        let part = scaled(int, frac, unit_nanos);
        nanos = part.and_then(|p| nanos.checked_add(p)).ok_or("too large")?;
        rest = next;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| "too large")?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Parses a size in bytes: "1024", "64KiB", "1MiB", "1GiB", also "KB"/"MB" as 1000-based
/// and "K"/"M" as 1024; case-insensitive unit; reject negative, empty, overflow.
///
/// Also `B`, `G`/`GB`, `T`/`TB`/`TiB`. Whole numbers only; surrounding whitespace is ignored.
pub fn parse_size(s: &str) -> Result<u64, &'static str> {
    let s = check_sign(s)?;
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        _ if number.is_empty() => return Err(NOT_A_SIZE),
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(NOT_A_SIZE),
    };
    let number: u64 = number.parse().map_err(|_| "too large")?;
    number.checked_mul(multiplier).ok_or("too large")
}

/// Parses a switch: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case).
pub fn parse_bool(s: &str) -> Result<bool, &'static str> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false (also 1/0, yes/no, on/off)"),
    }
}

/// Parses a count (a `usize` in decimal digits); rejects "-1", "abc", "1.5".
pub fn parse_count(s: &str) -> Result<usize, &'static str> {
    let s = check_sign(s)?;
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a whole number");
    }
    s.parse().map_err(|_| "too large")
}

/// Parses a socket address: `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:80`, or a host name
/// with a port (`localhost:8080`, resolved now with `ToSocketAddrs`; the first result wins).
pub fn parse_addr(s: &str) -> Result<SocketAddr, &'static str> {
    let s = check_sign(s).map_err(|_| NOT_AN_ADDRESS)?;
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let port = s.rsplit_once(':').map(|(_, port)| port.parse::<u16>());
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs.next().ok_or("host name has no addresses"),
        Err(_) if matches!(port, Some(Ok(_))) => Err("cannot resolve host name"),
        Err(_) => Err(NOT_AN_ADDRESS),
    }
}

/// A path without its surrounding whitespace; `None` (unset) when nothing is left.
fn path(s: &str) -> Option<PathBuf> {
    Some(s.trim()).filter(|v| !v.is_empty()).map(Into::into)
}

/// Trims `s` and rejects the empty and negative values that every kind rejects.
fn check_sign(s: &str) -> Result<&str, &'static str> {
    let s = s.trim();
    match s.as_bytes().first() {
        None => Err("empty value"),
        Some(b'-') => Err("must not be negative"),
        Some(_) => Ok(s),
    }
}

/// Splits a leading decimal number `int[.frac]` off `s` into (int, frac, rest); `None` when
/// there is no digit at all.
fn split_number(s: &str) -> Option<(&str, &str, &str)> {
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int, rest) = s.split_at(digits(s));
    let (frac, rest) = match rest.strip_prefix('.') {
        Some(after) => after.split_at(digits(after)),
        None => ("", rest),
    };
    (!int.is_empty() || !frac.is_empty()).then_some((int, frac, rest))
}

/// Whether the digits `int.frac` are all zeros.
fn is_zero(int: &str, frac: &str) -> bool {
    int.bytes().chain(frac.bytes()).all(|b| b == b'0')
}

/// `int.frac × scale`, truncated to a whole number; `None` on overflow. Fraction digits past
/// the 18th are ignored (far below a nanosecond for any unit here).
fn scaled(int: &str, frac: &str, scale: u128) -> Option<u128> {
    let mut whole: u128 = 0;
    for b in int.bytes() {
        whole = whole.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
    }
    let frac = &frac[..frac.len().min(18)];
    let frac_value: u128 = frac.parse().unwrap_or(0);
    let frac_part = frac_value * scale / 10u128.pow(frac.len() as u32);
    whole.checked_mul(scale)?.checked_add(frac_part)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

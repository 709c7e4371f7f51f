//! Merges the demo's settings from their four sources — defaults, the TOML file, the
//! environment, flags — once, in that order of precedence (a later source wins), then parses
//! each winning value with its kind's one parser (`Config::set`, `LogFormat::parse`), so an
//! error names exactly where the value came from. Never reads a file or the process's
//! environment itself (they come in as [`Given`] lists) and never logs.

use std::fmt;

use h1server::config::{FIELDS, FieldInfo, default_queue_depth};
use h1server::{BindError, Config};

use crate::demo::logging::LogFormat;

/// One of the demo's own settings (not a `Config` field). To add one, add a row to
/// [`DEMO_SETTINGS`] and a field to [`Demo`], and parse it in [`Demo::set`]: the file key
/// (`[demo] key`), the variable, `--help` and `--print-config` follow from the row.
#[derive(Debug, PartialEq, Eq)]
pub struct DemoSetting {
    /// Its key in the file's `[demo]` table.
    pub key: &'static str,
    /// The environment variable that sets it.
    pub env: &'static str,
    /// Which syntax the value takes, as `FieldInfo::kind` (`"bool"`, `"count"`, `"address"`,
    /// `"path"`, or `"string"`): a file's TOML boolean or integer is accepted where the kind
    /// takes one, as for a `[server]` field.
    pub kind: &'static str,
    /// The default, as `--help` shows it.
    pub default: &'static str,
    /// A secret is never printed: `--print-config` says only whether it is set.
    pub secret: bool,
    /// One line for `--help`.
    pub help: &'static str,
}

/// Every setting of the demo service itself: file key ↔ variable, in one place.
pub const DEMO_SETTINGS: &[DemoSetting] = &[
    DemoSetting {
        key: "api_token",
        env: "DEMO_API_TOKEN",
        kind: "string",
        default: "dev-token, with a warning",
        secret: true,
        help: "bearer token of the users API",
    },
    DemoSetting {
        key: "log_format",
        env: crate::demo::logging::LOG_FORMAT_ENV,
        kind: "string",
        default: "text",
        secret: false,
        help: "log line format: text or json (one object per line)",
    },
    DemoSetting {
        key: "metrics_addr",
        env: "H1_METRICS_ADDR",
        kind: "address",
        default: "unset: GET /metrics on the main address",
        secret: false,
        help: "serve GET /metrics (Prometheus) on this address instead, e.g. 127.0.0.1:9100",
    },
    DemoSetting {
        key: "db",
        env: "DEMO_DB",
        kind: "path",
        default: "./data/h1server.db",
        secret: false,
        help: "SQLite file of users and idempotency keys (:memory: for a throwaway one)",
    },
    DemoSetting {
        key: "database_url",
        env: "DEMO_DATABASE_URL",
        kind: "string",
        default: "unset: SQLite",
        secret: true,
        help: "postgres://… : PostgreSQL instead (a binary built with --features postgres)",
    },
    DemoSetting {
        key: "db_pool",
        env: "DEMO_DB_POOL",
        kind: "count",
        default: "workers",
        secret: false,
        help: "database connections",
    },
    DemoSetting {
        key: "upload_dir",
        env: "DEMO_UPLOAD_DIR",
        kind: "path",
        default: "./data/uploads",
        secret: false,
        help: "where POST /api/v1/uploads stores files",
    },
    DemoSetting {
        key: "inspect",
        env: "DEMO_INSPECT",
        kind: "bool",
        default: "false",
        secret: false,
        help: "true: serve the lifecycle inspector at /debug/requests (last 500 requests)",
    },
    DemoSetting {
        key: "rate_limit",
        env: "DEMO_RATE_LIMIT",
        kind: "string",
        default: "20/40",
        secret: false,
        help: "users API limit per client address: RATE/BURST (requests per second / at once), or off",
    },
    DemoSetting {
        key: "trust_forwarded_for",
        env: "DEMO_TRUST_FORWARDED_FOR",
        kind: "bool",
        default: "false",
        secret: false,
        help: "true: the rate limit keys clients by X-Forwarded-For's first address (only behind a proxy that sets it)",
    },
    DemoSetting {
        key: "cors_origins",
        env: "DEMO_CORS_ORIGINS",
        kind: "string",
        default: "https://example.com",
        secret: false,
        help: "origins browsers may call the service from (CORS), comma-separated; * for any, or off",
    },
];

/// The demo's own settings, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Demo {
    /// `None` when unset or blank: the service then accepts "dev-token" and warns.
    pub api_token: Option<String>,
    /// How log lines look on stderr.
    pub log_format: LogFormat,
    /// Where `/metrics` is served on a listener of its own (`None`: on the main one).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Serve the lifecycle inspector at `/debug/requests`.
    pub inspect: bool,
    /// The SQLite file (`None`: the default path).
    pub db: Option<String>,
    /// PostgreSQL instead of SQLite (a secret: it may hold a password).
    pub database_url: Option<String>,
    /// Database connections (`None`: one per worker).
    pub db_pool: Option<usize>,
    /// Where uploads are stored (`None`: the default directory).
    pub upload_dir: Option<String>,
    /// The users API's rate limit per client: (requests per second, burst); `None`: off.
    pub rate_limit: Option<RateSetting>,
    /// Key rate-limit clients by `X-Forwarded-For` (behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Origins allowed cross-origin (CORS); empty: off.
    pub cors_origins: Vec<String>,
}

/// `https://a.example,https://b.example` (`*`: any origin) as a list, or `off` (empty).
fn parse_origins(v: &str) -> Result<Vec<String>, &'static str> {
    const WANT: &str = "expected comma-separated origins (scheme://host[:port]), *, or off";
    if v.trim().eq_ignore_ascii_case("off") {
        return Ok(Vec::new());
    }
    let origins: Vec<String> = v
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    let valid = |o: &String| {
        o == "*"
            || o.split_once("://")
                .is_some_and(|(s, h)| !s.is_empty() && !h.is_empty() && !h.contains('/'))
    };
    if origins.is_empty() || !origins.iter().all(valid) {
        return Err(WANT);
    }
    Ok(origins)
}

/// A rate limit as `RATE/BURST`: `rate` requests per second, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateSetting {
    pub rate: f64,
    pub burst: u32,
}

impl RateSetting {
    /// The demo's default: 20 requests per second per client, 40 at once.
    pub const DEFAULT: RateSetting = RateSetting {
        rate: 20.0,
        burst: 40,
    };

    /// `RATE/BURST` (`20/40`, `0.5/1`), or `off` (`None`).
    pub fn parse(v: &str) -> Result<Option<RateSetting>, &'static str> {
        const WANT: &str = "expected RATE/BURST (a rate > 0 per second, a burst ≥ 1), or off";
        let v = v.trim();
        if v.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (rate, burst) = v.split_once('/').ok_or(WANT)?;
        let rate = rate.trim().parse::<f64>().map_err(|_| WANT)?;
        let burst = burst.trim().parse::<u32>().map_err(|_| WANT)?;
        if !(rate.is_finite() && rate > 0.0) || burst == 0 {
            return Err(WANT);
        }
        Ok(Some(RateSetting { rate, burst }))
    }
}

impl std::fmt::Display for RateSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.rate, self.burst)
    }
}

impl Default for Demo {
    fn default() -> Self {
        Demo {
            api_token: None,
            log_format: LogFormat::Text,
            metrics_addr: None,
            inspect: false,
            rate_limit: Some(RateSetting::DEFAULT),
            trust_forwarded_for: false,
            cors_origins: crate::demo::DEFAULT_CORS_ORIGINS
                .iter()
                .map(|o| o.to_string())
                .collect(),
            db: None,
            database_url: None,
            db_pool: None,
            upload_dir: None,
        }
    }
}

impl Demo {
    /// Parses one setting by its key; the error is the reason alone (the caller names the
    /// source).
    fn set(&mut self, key: &str, value: &str) -> Result<(), &'static str> {
        match key {
            // Surrounding whitespace is ignored, as in every value (docs/CONFIG.md): a
            // token with it could never match (a header value's spaces are not its own).
            "api_token" => self.api_token = trimmed(value),
            "log_format" => self.log_format = LogFormat::parse(value)?,
            "metrics_addr" => self.metrics_addr = Some(h1server::config::parse_addr(value)?),
            "inspect" => self.inspect = h1server::config::parse_bool(value)?,
            "rate_limit" => self.rate_limit = RateSetting::parse(value)?,
            "trust_forwarded_for" => {
                self.trust_forwarded_for = h1server::config::parse_bool(value)?
            }
            "cors_origins" => self.cors_origins = parse_origins(value)?,
            // Empty is an error, not "unset" (as for every H1_ variable): a secret that
            // templated to nothing must not switch the service to a local SQLite file.
            "db" => self.db = Some(trimmed(value).ok_or(EMPTY)?),
            "database_url" => self.database_url = Some(trimmed(value).ok_or(EMPTY)?),
            "db_pool" => self.db_pool = Some(crate::demo::store::parse_pool(value)?),
            "upload_dir" => self.upload_dir = Some(trimmed(value).ok_or(EMPTY)?),
            _ => return Err("unknown setting"),
        }
        Ok(())
    }

    /// The value as TOML, for `--print-config`; `None` for a secret.
    fn toml(&self, key: &str) -> Option<String> {
        match key {
            "log_format" => Some(format!("{:?}", self.log_format.name())),
            "metrics_addr" => self.metrics_addr.map(|a| format!("\"{a}\"")),
            "inspect" => Some(self.inspect.to_string()),
            "rate_limit" => Some(match self.rate_limit {
                Some(r) => format!("\"{r}\""),
                None => "\"off\"".to_string(),
            }),
            "trust_forwarded_for" => Some(self.trust_forwarded_for.to_string()),
            "cors_origins" => Some(if self.cors_origins.is_empty() {
                "\"off\"".to_string()
            } else {
                format!("{:?}", self.cors_origins.join(","))
            }),
            "db" => self.db.as_ref().map(|v| format!("{v:?}")),
            "db_pool" => self.db_pool.map(|n| n.to_string()),
            "upload_dir" => self.upload_dir.as_ref().map(|v| format!("{v:?}")),
            _ => None,
        }
    }

    /// Whether a secret has a value.
    fn is_set(&self, key: &str) -> bool {
        match key {
            "api_token" => self.api_token.is_some(),
            "metrics_addr" => self.metrics_addr.is_some(),
            "database_url" => self.database_url.is_some(),
            "db" => self.db.is_some(),
            "db_pool" => self.db_pool.is_some(),
            "upload_dir" => self.upload_dir.is_some(),
            _ => true,
        }
    }
}

/// Why an empty database, URL or directory is refused.
const EMPTY: &str = "empty value (unset the variable, or leave the key out, for the default)";

/// A text setting's value without its surrounding whitespace; `None` when nothing is left
/// (unset: the default).
fn trimmed(value: &str) -> Option<String> {
    Some(value.trim().to_string()).filter(|v| !v.is_empty())
}

/// Which setting a value is for: an engine field (`[server]`) or a demo setting (`[demo]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A `Config` field, set through `Config::set`.
    Field(&'static FieldInfo),
    /// A row of [`DEMO_SETTINGS`], set through [`Demo::set`].
    Demo(&'static DemoSetting),
}

impl Key {
    /// Finds a key of the file's `table` ("server" or "demo") by its name there.
    pub fn find(table: &str, name: &str) -> Option<Key> {
        match table {
            "server" => FIELDS.iter().find(|f| f.name == name).map(Key::Field),
            "demo" => DEMO_SETTINGS.iter().find(|d| d.key == name).map(Key::Demo),
            _ => None,
        }
    }

    /// Its table in the file.
    pub fn table(self) -> &'static str {
        match self {
            Key::Field(_) => "server",
            Key::Demo(_) => "demo",
        }
    }

    /// Its name in its table.
    pub fn name(self) -> &'static str {
        match self {
            Key::Field(f) => f.name,
            Key::Demo(d) => d.key,
        }
    }

    /// What syntax its value takes (`FieldInfo::kind`, `DemoSetting::kind`).
    fn kind(self) -> &'static str {
        match self {
            Key::Field(f) => f.kind,
            Key::Demo(d) => d.kind,
        }
    }

    /// Whether its value must never be shown.
    fn is_secret(self) -> bool {
        matches!(self, Key::Demo(d) if d.secret)
    }
}

/// Where a value came from: names it in errors and in `--print-config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Nothing set it.
    Default,
    /// The config file, at the value's line and column (1-based).
    File {
        path: String,
        line: usize,
        col: usize,
    },
    /// The environment variable that set it.
    Env(&'static str),
    /// The flag that set it, as typed (`--workers`).
    Flag(String),
}

impl fmt::Display for Origin {
    /// `default`, `file PATH:LINE`, `env H1_WORKERS`, `flag --workers`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path, line, .. } => write!(f, "file {path}:{line}"),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A value of the config file, before the kind's parser reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileValue {
    /// Any kind's syntax, as in a variable.
    Str(String),
    /// In decimal, whatever radix the file used.
    Int(String),
    /// Only for switches.
    Bool(bool),
    /// Any other TOML type (float, datetime, array, table), by its TOML name.
    Other(&'static str),
}

/// A value as the user gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Raw {
    /// A variable's or a flag's text.
    Text(String),
    /// A file's value, and its TOML as written (for messages).
    File { value: FileValue, written: String },
}

/// One value for one setting from one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Given {
    /// The setting.
    pub key: Key,
    /// The source, which names the value in errors and `--print-config`.
    pub origin: Origin,
    /// The value, unparsed until it wins.
    pub raw: Raw,
}

impl Given {
    /// The text the kind's parser reads, or why the file's TOML type does not fit. Text
    /// goes through as it is: one parser per kind, whatever the source.
    fn text(&self) -> Result<String, String> {
        let value = match &self.raw {
            Raw::Text(text) => return Ok(text.clone()),
            Raw::File { value, .. } => value,
        };
        match (value, self.key.kind()) {
            (FileValue::Str(s), _) => Ok(s.clone()),
            (FileValue::Int(n), "count" | "size" | "duration") => Ok(n.clone()),
            (FileValue::Bool(b), "bool") => Ok(b.to_string()),
            (value, kind) => {
                let found = match value {
                    FileValue::Str(_) => "a string",
                    FileValue::Int(_) => "an integer",
                    FileValue::Bool(_) => "a boolean",
                    FileValue::Other(t) => article(t),
                };
                Err(format!(
                    "wrong type: expected {}, found {found}",
                    expected(kind)
                ))
            }
        }
    }

    /// The message for this value rejected for `reason`: the variable or flag and its text
    /// (as `ConfigError` prints it), or the file's `PATH:LINE:COL: table.key = TOML`.
    pub fn error(&self, reason: &str) -> String {
        format!("invalid configuration: {}: {reason}", self.named())
    }

    /// Where the value was written and what it was, as the user gave it:
    /// `H1_ADDR="127.0.0.1:80"`, `--addr="127.0.0.1:80"` or the file's
    /// `PATH:LINE:COL: server.addr = "127.0.0.1:80"` (a secret's value hidden).
    pub fn named(&self) -> String {
        match (&self.origin, &self.raw) {
            (Origin::File { path, line, col }, Raw::File { written, .. }) => {
                let (table, key) = (self.key.table(), self.key.name());
                let shown = if self.key.is_secret() {
                    "(hidden)"
                } else {
                    written
                };
                format!("{path}:{line}:{col}: {table}.{key} = {shown}")
            }
            (origin, raw) => {
                let source = match origin {
                    Origin::Env(var) => var.to_string(),
                    Origin::Flag(flag) => flag.clone(),
                    _ => self.key.name().to_string(),
                };
                let text = match raw {
                    _ if self.key.is_secret() => return format!("{source}=(hidden)"),
                    Raw::Text(t) => t.as_str(),
                    Raw::File { written, .. } => written,
                };
                format!("{source}={text:?}")
            }
        }
    }
}

/// What a kind's value looks like in the file, for a type error.
fn expected(kind: &str) -> &'static str {
    match kind {
        "address" => "a string such as \"127.0.0.1:8080\"",
        "path" => "a string such as \"/etc/h1server/cert.pem\"",
        "count" => "an integer such as 8",
        "size" => "an integer (bytes) or a string such as \"1MiB\"",
        "duration" => "a string such as \"60s\"",
        "bool" => "true or false",
        _ => "a string",
    }
}

/// "an integer", "a table", …
pub fn article(toml_type: &str) -> &'static str {
    match toml_type {
        "integer" => "an integer",
        "float" => "a float",
        "boolean" => "a boolean",
        "datetime" => "a datetime",
        "array" => "an array",
        "table" => "a table",
        _ => "a string",
    }
}

/// Every setting the environment sets (engine fields, then demo settings).
///
/// A value that is not UTF-8 is read lossily and so rejected by its parser, not ignored.
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Vec<Given> {
    let fields = FIELDS.iter().map(|f| (Key::Field(f), f.env));
    let demo = DEMO_SETTINGS.iter().map(|d| (Key::Demo(d), d.env));
    fields
        .chain(demo)
        .filter_map(|(key, var)| {
            let raw = Raw::Text(env(var)?);
            let origin = Origin::Env(var);
            Some(Given { key, origin, raw })
        })
        .collect()
}

/// The effective settings and where each came from.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The engine's settings, validated.
    pub config: Config,
    /// The demo's own settings.
    pub demo: Demo,
    /// The winning value of every setting that was given (the rest are defaults).
    pub given: Vec<Given>,
    /// The config file read, and what named it (`--config` or `H1_CONFIG`).
    pub file: Option<(String, Origin)>,
}

impl Settings {
    /// Merges the sources — each list in ascending precedence: file, environment, flags — and
    /// parses the winners once. The first bad value (in that order) is the error, named by
    /// its source; a value that loses is never parsed, so a flag can override a bad variable.
    pub fn resolve(sources: [Vec<Given>; 3]) -> Result<Settings, String> {
        let mut given: Vec<Given> = Vec::new();
        for g in sources.into_iter().flatten() {
            given.retain(|w| w.key != g.key);
            given.push(g);
        }
        let (mut config, mut demo) = (Config::default(), Demo::default());
        for g in &given {
            let text = g.text().map_err(|reason| g.error(&reason))?;
            match g.key {
                Key::Field(f) => config
                    .set(f.name, &text, f.env)
                    .map_err(|e| g.error(&e.reason))?,
                Key::Demo(d) => demo.set(d.key, &text).map_err(|r| g.error(r))?,
            }
        }
        let set = |name: &str| given.iter().any(|g| g.key.name() == name);
        if set("workers") && !set("queue_depth") {
            // The queue follows the worker count unless it was given (as from_env does).
            config.queue_depth = default_queue_depth(config.workers);
        }
        if !set("record_stages") {
            // The demo is the observability showcase: its metrics, inspector and trace show
            // every stage. (The library leaves it off: it costs 6-19 % CPU per request.)
            config.record_stages = true;
        }
        if !set("max_upload_bytes")
            && config.max_body_bytes < crate::demo::uploads::MAX_UPLOAD_BYTES
        {
            // POST /api/v1/uploads streams files to disk: bodies over max_body_bytes go to it
            // piece by piece (every other route still answers them 413).
            config.max_upload_bytes = crate::demo::uploads::MAX_UPLOAD_BYTES;
        }
        config.validate().map_err(|e| {
            // A cross-field check names the field; say what the user wrote instead.
            let is_field = |g: &&Given| matches!(g.key, Key::Field(f) if f.name == e.source);
            match given.iter().find(is_field) {
                Some(g) => g.error(&e.reason),
                None => e.to_string(),
            }
        })?;
        let file = None;
        Ok(Settings {
            config,
            demo,
            given,
            file,
        })
    }

    /// A failed start ([`Server::bind`](h1server::Server::bind)) in the user's words: a
    /// value the server could not use when it bound (a TLS file; the library names it by
    /// its variable) or an address it could not listen on is named by the flag, variable
    /// or file line that gave it, as a settings error is.
    pub fn start_error(&self, e: BindError) -> std::io::Error {
        use std::io::{Error, ErrorKind};
        let given = |name: &str| {
            let field = FieldInfo::lookup(name)?;
            self.given.iter().find(|g| g.key == Key::Field(field))
        };
        match e {
            BindError::Config(c) => match given(&c.source) {
                Some(g) => Error::new(ErrorKind::InvalidInput, g.error(&c.reason)),
                None => Error::new(ErrorKind::InvalidInput, c),
            },
            BindError::Io(e)
                if matches!(
                    e.kind(),
                    ErrorKind::AddrInUse
                        | ErrorKind::AddrNotAvailable
                        | ErrorKind::PermissionDenied
                ) =>
            {
                let msg = match given("addr") {
                    Some(g) => format!("{}: {e}", g.named()),
                    None => {
                        format!("{e} (the default address: set --addr, H1_ADDR or [server] addr)")
                    }
                };
                Error::new(e.kind(), msg)
            }
            e => e.into(),
        }
    }

    /// Where a setting's value came from.
    pub fn origin(&self, key: Key) -> &Origin {
        let given = self.given.iter().find(|g| g.key == key);
        given.map_or(&Origin::Default, |g| &g.origin)
    }

    /// `--print-config`: the effective settings as a TOML file, one line per setting with
    /// where it came from (`default`, `file PATH:LINE`, `env VAR`, `flag --FLAG`) as a
    /// comment, so the output is itself a valid config file. A secret is shown only as set
    /// or not, in a comment.
    pub fn render(&self) -> String {
        let mut rows: Vec<Option<(String, String)>> = vec![None];
        for f in FIELDS {
            let line = format!("{} = {}", f.name, field_toml(&self.config, f.name));
            rows.push(Some((line, self.origin(Key::Field(f)).to_string())));
        }
        rows.push(None);
        for d in DEMO_SETTINGS {
            let line = match (self.demo.toml(d.key), d.secret) {
                (Some(value), _) => format!("{} = {value}", d.key),
                (None, _) if self.demo.is_set(d.key) => format!("# {} is set (hidden)", d.key),
                (None, _) => format!("# {} is not set ({})", d.key, d.default),
            };
            rows.push(Some((line, self.origin(Key::Demo(d)).to_string())));
        }
        // Origins line up after the settings; a commented-out secret does not widen them.
        let settings = rows.iter().flatten().filter(|(l, _)| !l.starts_with('#'));
        let width = settings.map(|(l, _)| l.chars().count()).max().unwrap_or(0);
        let mut out = String::from("# h1server settings: flags > environment > file > defaults\n");
        out += &match &self.file {
            Some((path, origin)) => format!("# config file: {path} ({origin})\n"),
            None => "# config file: none (--config FILE or H1_CONFIG)\n".to_string(),
        };
        let mut tables = ["[server]", "[demo]"].into_iter();
        for row in rows {
            match row {
                None => out += &format!("\n{}\n", tables.next().unwrap_or_default()),
                Some((line, origin)) => out += &format!("{line:width$}  # {origin}\n"),
            }
        }
        out
    }
}

/// A field's value as TOML that [`Config::set`] reads back to the same value: durations and
/// sizes as strings with a unit (`"60s"`, `"1MiB"`; a size in whole bytes as an integer),
/// counts as integers, switches as booleans. Empty for a field it lacks, which the
/// `--print-config` round-trip test catches.
pub fn field_toml(cfg: &Config, name: &str) -> String {
    // Debug writes a duration as the parser reads it ("60s", "1.5ms"), zero as "0ns".
    let time = |d: std::time::Duration| match d.is_zero() {
        true => "\"0s\"".to_string(),
        false => format!("\"{d:?}\""),
    };
    match name {
        "addr" => format!("\"{}\"", cfg.addr),
        "workers" => cfg.workers.to_string(),
        "loops" => cfg.loops.to_string(),
        "queue_depth" => cfg.queue_depth.to_string(),
        "max_connections" => cfg.max_connections.to_string(),
        "header_read_timeout" => time(cfg.header_read_timeout),
        "read_timeout" => time(cfg.read_timeout),
        "write_timeout" => time(cfg.write_timeout),
        "idle_timeout" => time(cfg.idle_timeout),
        "shutdown_timeout" => time(cfg.shutdown_timeout),
        "drain_delay" => time(cfg.drain_delay),
        "max_head_bytes" => size(cfg.max_head_bytes as u64),
        "max_headers" => cfg.max_headers.to_string(),
        "max_uri_bytes" => size(cfg.max_uri_bytes as u64),
        "max_body_bytes" => size(cfg.max_body_bytes),
        "max_buffered_bytes" => size(cfg.max_buffered_bytes as u64),
        "max_upload_bytes" => size(cfg.max_upload_bytes),
        "max_requests_per_connection" => cfg.max_requests_per_connection.to_string(),
        "max_batch" => cfg.max_batch.to_string(),
        "stream_buffer_bytes" => size(cfg.stream_buffer_bytes as u64),
        "timer_tick" => time(cfg.timer_tick),
        "record_stages" => cfg.record_stages.to_string(),
        "server_timing" => cfg.server_timing.to_string(),
        "tls_cert" => path(cfg.tls_cert.as_deref()),
        "tls_key" => path(cfg.tls_key.as_deref()),
        "tls_handshake_timeout" => time(cfg.tls_handshake_timeout),
        _ => String::new(),
    }
}

/// A path as a TOML string ("" when unset); Debug escapes quotes and backslashes as TOML's
/// basic strings do.
fn path(p: Option<&std::path::Path>) -> String {
    format!(
        "{:?}",
        p.map(|p| p.display().to_string()).unwrap_or_default()
    )
}

/// A size with the largest binary unit that divides it exactly, else in bytes.
fn size(bytes: u64) -> String {
    let units = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    match units
        .iter()
        .find(|(_, s)| bytes != 0 && bytes % (1 << s) == 0)
    {
        Some((unit, shift)) => format!("\"{}{unit}\"", bytes >> shift),
        None => bytes.to_string(),
    }
}

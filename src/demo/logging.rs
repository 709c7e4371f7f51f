//! The demo binary's logger: env_logger writing either its usual text lines (the default,
//! `H1_LOG_FORMAT=text`) or one JSON object per line (`H1_LOG_FORMAT=json`).
//!
//! It only formats what the engine and the middleware log; it never changes what they
//! log, so the library and `examples/hello` know nothing of it.
//!
//! A JSON line, in this order (the shape of Go's `slog.NewJSONHandler`):
//!
//! | key | value |
//! |---|---|
//! | `time` | RFC 3339 UTC, microseconds: `2025-01-31T12:00:00.123456Z` |
//! | `level` | `ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE` |
//! | `target` | the `log` target: `h1server::event_loop`, `h1server::access`, … |
//! | `msg` | the message; for access lines (target `h1server::access`) just `"request"` |
//! | `conn` | the connection id (number), when the line is about a connection |
//! | … | every `log` key-value of the record, typed (access lines: see below) |
//!
//! Access lines carry their fields as key-values (see `AccessLog`): `method`, `path`,
//! `status`, `bytes`, `duration_ms` (a number of milliseconds), `request_id`,
//! `correlation_id`, `idempotency_key`, `remote`, `conn`, `panicked`. Their text message is
//! only those fields as logfmt, so it is not repeated in `msg`.
//!
//! Engine lines say which connection they are about as a `conn=N ` prefix of their text
//! (`conn=3 accepted from 127.0.0.1:5555`); the formatter reads that prefix into the
//! `conn` field and drops it from `msg` — a cheap parse of the text, taken so the engine
//! need not change how it logs. A key-value that would repeat one of the keys above is
//! written as `kv.<key>`, so a line never has a key twice.

use std::io::{self, Write as _};

use log::kv::{Key, Value, VisitSource, VisitValue};
use serde::ser::{SerializeMap as _, Serializer as _};
use serde_json::Value as Json;

/// The variable that picks the format.
pub const LOG_FORMAT_ENV: &str = "H1_LOG_FORMAT";

/// The `log` target of `AccessLog` lines (documented, and what `RUST_LOG` filters on).
const ACCESS_TARGET: &str = "h1server::access";

/// What one log line looks like on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// env_logger's text line: `[time LEVEL target] message`.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `text` or `json` (any case, surrounding whitespace ignored); anything else is an error, the reason alone (the caller
    /// names the variable or the file line it came from).
    pub fn parse(value: &str) -> Result<LogFormat, &'static str> {
        match value.trim() {
            v if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            v if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            _ => Err("not a log format (use text or json)"),
        }
    }

    /// The value that selects it, for `--print-config`.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Installs the process's logger (level from `RUST_LOG`, default `info`). With JSON, a
/// panic is logged as one JSON line too (target `panic`) instead of the standard hook's
/// text on stderr.
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let time = buf.timestamp_micros().to_string();
            let mut line = Vec::with_capacity(256);
            write_json(&mut line, &time, record)?;
            buf.write_all(&line)
        });
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let what = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("Box<dyn Any>");
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("<unnamed>");
            match info.location() {
                Some(at) => {
                    log::error!(target: "panic", "thread '{name}' panicked at {at}: {what}")
                }
                None => log::error!(target: "panic", "thread '{name}' panicked: {what}"),
            }
        }));
    }
    builder.init();
}

/// Writes `record` as one JSON object and a newline.
fn write_json(out: &mut Vec<u8>, time: &str, record: &log::Record<'_>) -> io::Result<()> {
    let text = record.args().to_string();
    let is_access = record.target() == ACCESS_TARGET;
    let (conn, msg) = if is_access {
        (None, "request")
    } else {
        split_conn(&text)
    };
    let mut fields = Fields(Vec::new());
    // A visitor that only collects cannot fail.
    let _ = record.key_values().visit(&mut fields);

    let mut ser = serde_json::Serializer::new(&mut *out);
    let mut map = ser.serialize_map(None)?;
    map.serialize_entry("time", time)?;
    map.serialize_entry("level", record.level().as_str())?;
    map.serialize_entry("target", record.target())?;
    map.serialize_entry("msg", msg)?;
    let mut reserved = vec!["time", "level", "target", "msg"];
    if let Some(conn) = conn {
        map.serialize_entry("conn", &conn)?;
        reserved.push("conn");
    }
    for (key, value) in &fields.0 {
        if reserved.contains(&key.as_str()) {
            map.serialize_entry(&format!("kv.{key}"), value)?;
        } else {
            map.serialize_entry(key, value)?;
        }
    }
    map.end()?;
    out.push(b'\n');
    Ok(())
}

/// `conn=12 rest` → `(Some(12), "rest")`; any other text → `(None, text)`.
fn split_conn(text: &str) -> (Option<u64>, &str) {
    let Some(after) = text.strip_prefix("conn=") else {
        return (None, text);
    };
    let end = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    let (digits, rest) = after.split_at(end);
    match digits.parse() {
        Ok(id) if rest.is_empty() || rest.starts_with(' ') => (Some(id), rest.trim_start()),
        _ => (None, text),
    }
}

/// A record's key-values, in order, as JSON values.
struct Fields(Vec<(String, Json)>);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let mut json = ToJson(Json::Null);
        value.visit(&mut json)?;
        self.0.push((key.as_str().to_string(), json.0));
        Ok(())
    }
}

/// Turns one `log` value into JSON: numbers, booleans and null as such, strings as
/// strings, and anything captured with `Display`/`Debug` (`remote:% = addr`) as its text.
struct ToJson(Json);

impl<'v> VisitValue<'v> for ToJson {
    fn visit_any(&mut self, value: Value<'_>) -> Result<(), log::kv::Error> {
        self.0 = Json::String(value.to_string());
        Ok(())
    }
    fn visit_null(&mut self) -> Result<(), log::kv::Error> {
        self.0 = Json::Null;
        Ok(())
    }
    fn visit_u64(&mut self, value: u64) -> Result<(), log::kv::Error> {
        self.0 = value.into();
        Ok(())
    }
    fn visit_i64(&mut self, value: i64) -> Result<(), log::kv::Error> {
        self.0 = value.into();
        Ok(())
    }
    fn visit_f64(&mut self, value: f64) -> Result<(), log::kv::Error> {
        // NaN and infinities have no JSON number: null.
        self.0 = value.into();
        Ok(())
    }
    fn visit_bool(&mut self, value: bool) -> Result<(), log::kv::Error> {
        self.0 = value.into();
        Ok(())
    }
    fn visit_str(&mut self, value: &str) -> Result<(), log::kv::Error> {
        self.0 = value.into();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(record: &log::Record<'_>) -> serde_json::Map<String, Json> {
        let mut out = Vec::new();
        write_json(&mut out, "2025-01-31T12:00:00.000001Z", record).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
        assert!(text.ends_with('\n'));
        match serde_json::from_str(&text).unwrap() {
            Json::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn log_format_is_text_or_json_and_rejects_anything_else() {
        assert_eq!(LogFormat::parse("text"), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse("json"), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse("JSON"), Ok(LogFormat::Json));
        // Surrounding whitespace is ignored, as in every other value (docs/CONFIG.md).
        assert_eq!(LogFormat::parse(" json\t"), Ok(LogFormat::Json));
        for bad in ["", " ", "logfmt", "js on"] {
            assert_eq!(
                LogFormat::parse(bad),
                Err("not a log format (use text or json)")
            );
        }
        for format in [LogFormat::Text, LogFormat::Json] {
            assert_eq!(LogFormat::parse(format.name()), Ok(format));
        }
    }

    #[test]
    fn conn_prefix_is_read_into_a_field() {
        assert_eq!(
            split_conn("conn=3 accepted from 127.0.0.1:5555"),
            (Some(3), "accepted from 127.0.0.1:5555")
        );
        assert_eq!(split_conn("conn=12"), (Some(12), ""));
        for plain in [
            "listening on 127.0.0.1:8080",
            "conn=x y",
            "conn=3x",
            "conn= 3",
            "a conn=3",
        ] {
            assert_eq!(split_conn(plain), (None, plain));
        }
    }

    #[test]
    fn engine_line_has_time_level_target_msg_and_conn_in_order() {
        let args = format_args!("conn={} accepted from {}", 3, "127.0.0.1:5555");
        let map = line(
            &log::Record::builder()
                .args(args)
                .level(log::Level::Trace)
                .target("h1server::event_loop")
                .build(),
        );
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        // serde_json's Map sorts keys; the order on the wire is checked below.
        assert_eq!(keys, ["conn", "level", "msg", "target", "time"]);
        assert_eq!(map["time"], "2025-01-31T12:00:00.000001Z");
        assert_eq!(map["level"], "TRACE");
        assert_eq!(map["target"], "h1server::event_loop");
        assert_eq!(map["msg"], "accepted from 127.0.0.1:5555");
        assert_eq!(map["conn"], 3);

        let mut out = Vec::new();
        let args = format_args!("conn=3 x");
        write_json(
            &mut out,
            "t",
            &log::Record::builder().args(args).target("x").build(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"time\":\"t\",\"level\":\"INFO\",\"target\":\"x\",\"msg\":\"x\",\"conn\":3}\n"
        );
    }

    #[test]
    fn quotes_newlines_and_control_characters_are_escaped_on_one_line() {
        let args = format_args!("a \"b\" \\ c\nd\r\u{1b}[31m");
        let map = line(&log::Record::builder().args(args).target("t").build());
        assert_eq!(map["msg"], "a \"b\" \\ c\nd\r\u{1b}[31m");
        assert!(!map.contains_key("conn"));
    }

    #[test]
    fn key_values_are_typed_fields_and_access_lines_say_request() {
        let kvs: &[(&str, Value<'_>)] = &[
            ("method", Value::from("GET")),
            ("status", Value::from(200u16)),
            ("bytes", Value::null()),
            ("duration_ms", Value::from(0.42f64)),
            ("remote", Value::from_display(&"127.0.0.1:5555")),
            ("panicked", Value::from(false)),
            ("conn", Value::from(7u64)),
        ];
        let args = format_args!("method=GET status=200");
        let map = line(
            &log::Record::builder()
                .args(args)
                .target(ACCESS_TARGET)
                .key_values(&kvs)
                .build(),
        );
        assert_eq!(map["msg"], "request");
        assert_eq!(map["method"], "GET");
        assert_eq!(map["status"], 200);
        assert_eq!(map["bytes"], Json::Null);
        assert_eq!(map["duration_ms"], 0.42);
        assert_eq!(map["remote"], "127.0.0.1:5555");
        assert_eq!(map["panicked"], false);
        assert_eq!(map["conn"], 7);
    }

    #[test]
    fn a_key_value_named_like_a_fixed_key_is_renamed_not_repeated() {
        let kvs: &[(&str, Value<'_>)] = &[("msg", Value::from("x")), ("conn", Value::from(9u64))];
        let args = format_args!("conn=4 hello");
        let mut out = Vec::new();
        write_json(
            &mut out,
            "t",
            &log::Record::builder()
                .args(args)
                .target("t")
                .key_values(&kvs)
                .build(),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("\"msg\":\"hello\",\"conn\":4,\"kv.msg\":\"x\",\"kv.conn\":9}\n"),
            "{text}"
        );
    }
}

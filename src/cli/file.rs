//! Reads the demo's TOML config file (`--config FILE`, `H1_CONFIG`) into [`Given`] values,
//! each with the line and column it was written at. It checks the file's shape only —
//! valid TOML, known tables (`[server]`, `[demo]`) and keys; values are parsed later, with
//! the variables' parsers, once the sources are merged. It never reads anything but the
//! one file it is given.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::settings::{DEMO_SETTINGS, FileValue, Given, Key, Origin, Raw, article};
use h1server::config::FIELDS;

/// The file's tables, in the order `--print-config` writes them.
pub const TABLES: [&str; 2] = ["server", "demo"];

/// Reads and checks the file at `path`; `named_by` says where the path came from, for the
/// error when it cannot be read.
pub fn read(path: &str, named_by: &Origin) -> Result<Vec<Given>, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| {
        format!("invalid configuration: cannot read config file {path} ({named_by}): {e}")
    };
    // Read at most one byte past the limit: a path to /dev/zero or a large log must not
    // take the memory. (Bytes first: the cut may split a character.)
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "invalid configuration: config file {path} ({named_by}): larger than 1 MiB"
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let before = std::str::from_utf8(&e.as_bytes()[..valid]).unwrap_or_default();
        let (line, col) = line_col(before, valid);
        format!("invalid configuration: {path}:{line}:{col}: not valid UTF-8")
    })?;
    parse(path, &text)
}

/// The largest config file read (a complete one is about 2 KiB).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Checks a file's text; `path` only names it in origins and errors.
pub fn parse(path: &str, text: &str) -> Result<Vec<Given>, String> {
    let at = |span: Range<usize>| {
        let (line, col) = line_col(text, span.start);
        let path = path.to_string();
        Origin::File { path, line, col }
    };
    let fail = |span: Range<usize>, what: &str| {
        let (line, col) = line_col(text, span.start);
        format!("invalid configuration: {path}:{line}:{col}: {what}")
    };
    let doc = DeTable::parse(text).map_err(|e| {
        let what = format!("not valid TOML: {}", e.message());
        fail(e.span().unwrap_or(0..0), &what)
    })?;
    let mut given = Vec::new();
    for (name, value) in in_file_order(doc.get_ref()) {
        let table = name.get_ref().as_ref();
        if !TABLES.contains(&table) {
            return Err(fail(name.span(), &unknown_table(table)));
        }
        let DeValue::Table(entries) = value.get_ref() else {
            let found = article(value.get_ref().type_str());
            let what = format!("{table}: expected a table ([{table}]), found {found}");
            return Err(fail(value.span(), &what));
        };
        for (key, value) in in_file_order(entries) {
            let name = key.get_ref().as_ref();
            let Some(key) = Key::find(table, name) else {
                return Err(fail(key.span(), &unknown_key(table, name)));
            };
            let written = shorten(&text[value.span()]);
            let raw = Raw::File {
                value: file_value(value.get_ref()),
                written,
            };
            let origin = at(value.span());
            given.push(Given { key, origin, raw });
        }
    }
    Ok(given)
}

type Entry<'a, 'i> = (
    &'a toml::Spanned<toml::de::DeString<'i>>,
    &'a toml::Spanned<DeValue<'i>>,
);

/// A table's entries in the order they are written (the map sorts them by key), so the
/// first error reported is the first in the file.
fn in_file_order<'a, 'i>(table: &'a DeTable<'i>) -> Vec<Entry<'a, 'i>> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

/// A TOML value as the settings read it.
fn file_value(value: &DeValue<'_>) -> FileValue {
    match value {
        DeValue::String(s) => FileValue::Str(s.to_string()),
        DeValue::Integer(n) => match i128::from_str_radix(n.as_str(), n.radix()) {
            Ok(n) => FileValue::Int(n.to_string()),
            Err(_) => FileValue::Other("integer"),
        },
        DeValue::Boolean(b) => FileValue::Bool(*b),
        other => FileValue::Other(other.type_str()),
    }
}

/// The value as written, on one line and at most 40 characters, for a message.
fn shorten(written: &str) -> String {
    let line = written.lines().next().unwrap_or_default();
    if line.len() < written.len() || line.chars().count() > 40 {
        let cut: String = line.chars().take(37).collect();
        return format!("{cut}...");
    }
    line.to_string()
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

/// Why a top-level name is wrong: a setting outside its table, or a misspelt table.
fn unknown_table(name: &str) -> String {
    for table in TABLES {
        if Key::find(table, name).is_some() {
            return format!("{name}: a setting outside its table (put it under [{table}])");
        }
    }
    match closest(name, TABLES.iter().copied()) {
        Some(t) => format!("{name}: unknown table (did you mean [{t}]?)"),
        None => format!("{name}: unknown table (the tables are [server] and [demo])"),
    }
}

/// Why a key of `table` is wrong: it belongs to the other table, or it is misspelt.
fn unknown_key(table: &str, name: &str) -> String {
    for other in TABLES.into_iter().filter(|t| *t != table) {
        if Key::find(other, name).is_some() {
            return format!("{table}.{name}: not a [{table}] setting (put it under [{other}])");
        }
    }
    let known: Vec<&str> = match table {
        "server" => FIELDS.iter().map(|f| f.name).collect(),
        _ => DEMO_SETTINGS.iter().map(|d| d.key).collect(),
    };
    match closest(name, known.into_iter()) {
        Some(k) => format!("{table}.{name}: unknown setting (did you mean {k}?)"),
        None => format!(
            "{table}.{name}: unknown setting (`h1server --help` lists them; docs/CONFIG.md)"
        ),
    }
}

/// The known name `typed` most likely meant: the same once written as a file key
/// (`H1_WORKERS`, `--idle-timeout`, `DEMO_API_TOKEN`), or a near miss
/// (Damerau-Levenshtein distance at most 1 + len / 4: `wrokers` → `workers`).
pub fn closest<'a>(typed: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = typed.trim_start_matches('-').to_ascii_lowercase();
    let mut key = lower.replace('-', "_");
    for prefix in ["h1_", "demo_"] {
        if let Some(rest) = key.strip_prefix(prefix) {
            key = rest.to_string();
        }
    }
    known
        .map(|k| (strsim::damerau_levenshtein(&key, k), k))
        .filter(|(distance, k)| *distance <= 1 + k.len() / 4)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

//! The demo binary's command line: which action to take (`--help`, `--version`, `--routes`,
//! `--print-config`, or run the service) and the settings to take it with, from flags, the
//! environment and an optional TOML file ([`file`]), merged by [`settings`]. It never binds
//! a socket and never logs (no logger is installed yet): errors come back as one line of
//! text for `main`, which exits 2.

mod file;
mod settings;
#[cfg(test)]
mod tests;

use h1server::config::{FIELDS, FieldInfo};

pub use settings::Settings;
use settings::{DEMO_SETTINGS, Given, Key, Origin, Raw};

/// The flag that names the config file.
pub const CONFIG_FLAG: &str = "--config";
/// The variable that names the config file (the flag wins).
pub const CONFIG_ENV: &str = "H1_CONFIG";

/// What the command line asks for.
#[derive(Debug)]
pub enum Action {
    /// Serve with these settings.
    Run(Settings),
    /// Print these settings and where each came from, then exit 0 without binding.
    PrintConfig(Settings),
    Help,
    Version,
    Routes,
}

/// Reads the command line (`args` without the program name) and, unless it asks for help,
/// the version or the routes — which read no setting, so they work whatever the file and
/// variables say — the settings: flags > environment (`env`) > file > defaults.
pub fn parse(args: Vec<String>, env: &dyn Fn(&str) -> Option<String>) -> Result<Action, String> {
    let mut flags: Vec<Given> = Vec::new();
    let mut config_file: Option<(String, Origin)> = None;
    let mut print = false;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Action::Help),
            "-V" | "--version" => return Ok(Action::Version),
            "--routes" => return Ok(Action::Routes),
            "--print-config" => {
                print = true;
                continue;
            }
            _ => {}
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let info = FieldInfo::lookup(&flag).filter(|i| i.flag == flag);
        if info.is_none() && flag != CONFIG_FLAG {
            let flags = FIELDS.iter().map(|f| f.name).chain(["config"]);
            return Err(
                match file::closest(&flag, flags).filter(|_| flag.starts_with("--")) {
                    Some(name) => format!(
                        "unknown argument {arg:?} (did you mean --{}?)",
                        name.replace('_', "-")
                    ),
                    None => format!("unknown argument {arg:?}"),
                },
            );
        }
        let kind = info.map_or("a file", |i| i.kind);
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .ok_or_else(|| format!("{flag} needs a value ({kind})"))?,
        };
        match info {
            Some(info) => flags.push(Given {
                key: Key::Field(info),
                origin: Origin::Flag(flag),
                raw: Raw::Text(value),
            }),
            None => config_file = Some((value, Origin::Flag(flag))),
        }
    }
    let config_file = config_file.or_else(|| Some((env(CONFIG_ENV)?, Origin::Env(CONFIG_ENV))));
    let from_file = match &config_file {
        Some((path, origin)) if path.trim().is_empty() => {
            return Err(format!("invalid configuration: {origin}: empty file name"));
        }
        Some((path, origin)) => file::read(path, origin)?,
        None => Vec::new(),
    };
    let mut settings = Settings::resolve([from_file, settings::from_env(env), flags])?;
    settings.file = config_file;
    Ok(match print {
        true => Action::PrintConfig(settings),
        false => Action::Run(settings),
    })
}

/// The prefixes of the variables the demo reads: a variable with one that names no setting
/// is a typo (`H1_WORKER`), since nothing reads it.
const PREFIXES: [&str; 2] = ["H1_", "DEMO_"];

/// One warning per variable in `names` (the environment's) that has the prefix of the
/// demo's settings but names none, with the one most likely meant. A warning, not an
/// error: the environment is shared (a Kubernetes service named `h1` injects `H1_PORT`),
/// so an unknown name may belong to someone else. The value is never shown (it may be a
/// secret meant for a misspelt `DEMO_API_TOKEN`).
pub fn unknown_variables(names: impl Iterator<Item = String>) -> Vec<String> {
    let known = || {
        let fields = FIELDS.iter().map(|f| f.env);
        let demo = DEMO_SETTINGS.iter().map(|d| d.env);
        fields.chain(demo).chain([CONFIG_ENV])
    };
    // Each variable as `file::closest` compares names: lower case, without the prefix.
    let key = |var: &str| {
        let var = var.to_ascii_lowercase();
        let bare = PREFIXES.map(|p| p.to_ascii_lowercase());
        bare.iter()
            .find_map(|p| var.strip_prefix(p.as_str()).map(str::to_string))
            .unwrap_or(var)
    };
    let keys: Vec<(String, &str)> = known().map(|v| (key(v), v)).collect();
    let mut names: Vec<String> = names
        // In any case: `h1_workers` is as much a typo (variables' names are case-sensitive).
        .filter(|n| {
            PREFIXES
                .iter()
                .any(|p| n.to_ascii_uppercase().starts_with(p))
        })
        .filter(|n| !known().any(|k| k == n))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let meant = file::closest(&name, keys.iter().map(|(k, _)| k.as_str()))
                .and_then(|k| keys.iter().find(|(key, _)| key == k))
                .map(|(_, var)| *var);
            match meant {
                Some(var) => format!("{name} is not a setting (did you mean {var}?): ignored"),
                None => format!("{name} is not a setting (`h1server --help` lists them): ignored"),
            }
        })
        .collect()
}

/// Refuses a setting whose value came from a variable that is not UTF-8 (`is_utf8` says
/// which are): the environment is read lossily, so a path would silently name another
/// file, with U+FFFD for the bytes that were not UTF-8. Only the values used count: a
/// variable a flag overrides is not read.
pub fn check_utf8(action: Action, is_utf8: &dyn Fn(&str) -> bool) -> Result<Action, String> {
    let (Action::Run(s) | Action::PrintConfig(s)) = &action else {
        return Ok(action);
    };
    for g in &s.given {
        if let Origin::Env(var) = g.origin {
            if !is_utf8(var) {
                return Err(
                    g.error("not valid UTF-8 (shown with U+FFFD for the bytes that are not)")
                );
            }
        }
    }
    Ok(action)
}

/// `--help`: the actions, then every setting with its flag, variable, default and meaning.
pub fn help() -> String {
    let mut out = format!(
        "h1server {} — the demo service\n\n",
        env!("CARGO_PKG_VERSION")
    );
    out += "usage: h1server [--config FILE] [--flag value | --flag=value]... [--print-config]\n";
    out += "       h1server --routes | --help | --version\n\n";
    out += "  --config FILE   read settings from a TOML file ([server]: every setting below by\n";
    out +=
        "                  its field name, e.g. idle_timeout = \"60s\"; [demo]: the demo's own);\n";
    out += &format!("                  also {CONFIG_ENV}=FILE\n");
    out += "  --print-config  print the effective settings, each with where it came from\n";
    out += "                  (default, file, env, flag), and exit without binding\n";
    out += "  --routes        print the route table (methods, pattern, group) and exit\n";
    out += "                  without binding; GET /debug/routes serves it as JSON\n\n";
    out += "Every setting is also read from its environment variable and the config file;\n";
    out += "a flag wins over the environment, which wins over the file. Fields ([server]):\n\n";
    let w = FIELDS.iter().map(|f| f.flag.len()).max().unwrap_or(10);
    for f in FIELDS {
        out += &format!(
            "  {:w$}  {:<22} default {:<18} {}\n",
            f.flag, f.env, f.default, f.help
        );
    }
    out += "\nThe demo's own settings ([demo] key, variable):\n\n";
    for d in DEMO_SETTINGS {
        out += &format!(
            "  {:<12} {:<22}  {} (default: {})\n",
            d.key, d.env, d.help, d.default
        );
    }
    out += "  RUST_LOG (variable only)            log filter, e.g. info, debug, h1server=trace\n";
    out
}

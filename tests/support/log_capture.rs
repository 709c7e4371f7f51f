//! A `log` logger that keeps the engine's lines (target `h1server…`) in memory, for tests
//! that read the trace: `log::set_logger(&LINES)`, then `LINES.0.lock()`.

use std::sync::Mutex;

/// The captured lines, in order (each record's message only).
pub struct Capture(pub Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.target().starts_with("h1server")
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            self.0.lock().unwrap().push(format!("{}", r.args()));
        }
    }
    fn flush(&self) {}
}

/// The process's capture (a test binary installs it once).
pub static LINES: Capture = Capture(Mutex::new(Vec::new()));

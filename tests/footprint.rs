//! Footprint (issue #11): the engine alone must stay small. Builds `examples/hello`
//! without default features (the engine, no logger) in the release profile, stripped,
//! into a target directory of its own (`target/footprint`, kept between runs: it costs a
//! full build the first time, about 20 s here, then an LTO link only when the code
//! changed), and fails when
//!
//! * the stripped binary is larger than [`MAX_BYTES`] (0.625 MiB; measured 636 240
//!   bytes, 0.607 MiB, rustc 1.95, x86_64 Linux), or
//! * the server, idle with its default workers 0.7 s after answering one `GET /`,
//!   holds more anonymous memory (`RssAnon`: heap, stacks, the engine's tables) than
//!   [`ANON_BASE_KB`] plus [`ANON_PER_CORE_KB`] per core, or more resident memory in
//!   all (`VmRSS`, which adds the mapped pages of the binary and libc) than
//!   [`RSS_BASE_KB`] plus the same per core. One worker per core runs (the others
//!   start only when handlers block), hence the allowance per core.
//!
//! docs/BENCHMARKS.md ("Footprint") has the figures, what was cut, and how to find what
//! grew (`cargo bloat --release --no-default-features --example hello --crates`).
//! `cargo test --test footprint -- --nocapture` prints the measurements.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Largest stripped engine-only `examples/hello`: 680 KiB (measured 692 352 bytes on
/// 2026-12-01; docs/BENCHMARKS.md, "Footprint", lists what grew it, change by change).
const MAX_BYTES: u64 = 680 * 1024;
/// `RssAnon` allowed beyond the per-core share (measured 224–256 KB on 2 cores).
const ANON_BASE_KB: u64 = 256;
/// Per running worker: its stack, its malloc arena, its share of the tables.
const ANON_PER_CORE_KB: u64 = 32;
/// `VmRSS` allowed beyond the per-core share (measured 2 376–2 556 KB on 2 cores, of
/// which libc and the dynamic loader are about 1.6 MB).
const RSS_BASE_KB: u64 = 2816;

#[test]
fn engine_only_hello_stays_small() {
    let bin = build_hello();
    let bytes = std::fs::metadata(&bin).expect("the built hello").len();
    let mib = bytes as f64 / 1048576.0;
    eprintln!(
        "footprint: {} stripped: {bytes} bytes ({mib:.3} MiB)",
        bin.display()
    );
    assert!(
        bytes <= MAX_BYTES,
        "the stripped engine-only examples/hello is {bytes} bytes ({mib:.3} MiB), over the \
         stated {MAX_BYTES} ({:.3} MiB): see docs/BENCHMARKS.md (Footprint) for what grew it",
        MAX_BYTES as f64 / 1048576.0
    );

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let (rss, anon, threads) = idle_memory(&bin);
    let (max_anon, max_rss) = (
        ANON_BASE_KB + ANON_PER_CORE_KB * cores,
        RSS_BASE_KB + ANON_PER_CORE_KB * cores,
    );
    eprintln!(
        "footprint: idle with default workers ({cores} cores): VmRSS {rss} kB (limit {max_rss}), \
         RssAnon {anon} kB (limit {max_anon}), {threads} threads"
    );
    assert!(anon <= max_anon, "idle RssAnon {anon} kB > {max_anon} kB");
    assert!(rss <= max_rss, "idle VmRSS {rss} kB > {max_rss} kB");
}

/// Builds the engine-only hello in release, stripped, and returns its path.
fn build_hello() -> PathBuf {
    // target/<profile>/deps/footprint-… → target/footprint
    let exe = std::env::current_exe().unwrap();
    let dir = exe.ancestors().nth(3).unwrap().join("footprint");
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--release",
            "--no-default-features",
            "--example",
            "hello",
        ])
        .arg("--target-dir")
        .arg(&dir)
        // `strip = true` for this build only: the release profile otherwise as it is.
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "cargo build --release --no-default-features --example hello failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("release/examples/hello")
}

/// Kills the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin` on a free port with the default configuration, waits for it to answer
/// `GET /`, lets it settle and reads (VmRSS, RssAnon) in kB and its thread count.
fn idle_memory(bin: &Path) -> (u64, u64, u64) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(bin);
    cmd.args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("H1_") {
            cmd.env_remove(k); // the defaults, whatever the caller's environment says
        }
    }
    let mut server = Server(cmd.spawn().expect("starting hello"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers(port) {
        assert!(
            Instant::now() < deadline,
            "hello did not answer on port {port}"
        );
        if let Ok(Some(st)) = server.0.try_wait() {
            panic!("hello exited: {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(700));
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.0.id())).unwrap();
    let field = |name: &str| -> u64 {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"));
        line.trim_start_matches(':')
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {line}"))
    };
    (field("VmRSS"), field("RssAnon"), field("Threads"))
}

/// Whether `GET /` on `port` answers 200.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    resp.starts_with(b"HTTP/1.1 200")
}

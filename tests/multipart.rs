//! `multipart/form-data` uploads over real sockets: curl's `-F` forms through a test
//! server and through the demo binary (a 50 MiB file stored byte for byte, with the
//! server's memory measured), malformed forms (400), limits (413), and stalled uploads
//! that hold no worker and leave no file.
#![cfg(feature = "multipart")]

mod support;
use support::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use h1server::multipart::{self, DiskFiles, Limits};
use h1server::{Config, Request, Response};

/// A fresh directory under the system's temporary one, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("h1-mp-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn files(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.0.join(sub))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `len` bytes of a fixed pseudo-random sequence (xorshift), written in 1 MiB blocks: CR,
/// LF and `-` turn up everywhere, as in any binary file.
fn write_noise(path: &Path, len: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for b in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
        let n = left.min(block.len());
        f.write_all(&block[..n]).unwrap();
        left -= n;
    }
    f.flush().unwrap();
}

fn sha256(path: &Path) -> String {
    require_tool("sha256sum");
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn curl(args: &[&str]) -> Output {
    require_tool("curl");
    Command::new("curl")
        .args(["-s", "--max-time", "60"])
        .args(args)
        .output()
        .expect("run curl")
}

/// `curl -w` with the status on the last line: (status, body).
fn curl_status(args: &[&str]) -> (u16, String) {
    let out = curl(&[&["-w", "\n%{http_code}"], args].concat());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A server whose `/upload` stores forms in `dir` with `limits`, answering
/// "fields: a=b,…; files: name:filename:size:id,…"; bodies over 64 KiB are streamed.
fn form_server(workers: usize, dir: &Path, limits: Limits) -> TestServer {
    let cfg = Config {
        workers,
        max_body_bytes: 64 * 1024,
        max_upload_bytes: 1 << 30,
        read_timeout: Duration::from_secs(5),
        ..test_config()
    };
    let dir = dir.to_path_buf();
    TestServer::with_config(cfg, move |req: &mut Request| match req.path() {
        "/upload" => {
            let files = DiskFiles::new(dir.clone(), |u| {
                let fields: Vec<String> = u
                    .fields
                    .iter()
                    .map(|f| format!("{}={}", f.name, f.value))
                    .collect();
                let files: Vec<String> = u
                    .files
                    .iter()
                    .map(|f| format!("{}:{}:{}:{}", f.name, f.filename, f.size, f.id))
                    .collect();
                Response::text(format!(
                    "fields: {}; files: {}",
                    fields.join(","),
                    files.join(",")
                ))
                .with_status(201)
            });
            multipart::receive(req, limits, files)
        }
        "/parse" => match multipart::parse(req) {
            Ok(form) => Response::text(format!(
                "{} fields, {} files",
                form.fields.len(),
                form.files.len()
            )),
            Err(refusal) => refusal,
        },
        _ => Response::text("plain\n"),
    })
}

#[test]
fn curl_forms_small_and_streamed_are_stored_byte_for_byte() {
    let tmp = TempDir::new("curl");
    let server = form_server(2, &tmp.0.join("up"), Limits::default());
    let url = format!("http://{}/upload", server.addr);
    for (len, streamed) in [(1000, false), (3 << 20, true)] {
        let src = tmp.0.join(format!("src-{len}.bin"));
        write_noise(&src, len);
        let file_arg = format!("file=@{};filename=../../x y.bin", src.display());
        let (status, body) = curl_status(&["-F", "note=hello world", "-F", &file_arg, &url]);
        assert_eq!(status, 201, "{len} bytes (streamed: {streamed}): {body}");
        let (fields, files) = body.split_once("; files: ").unwrap();
        assert_eq!(fields, "fields: note=hello world");
        let f: Vec<&str> = files.split(':').collect();
        assert_eq!(
            &f[..3],
            ["file", "../../x y.bin", &len.to_string()],
            "{body}"
        );
        let stored = tmp.0.join("up").join(f[3]);
        assert_eq!(sha256(&stored), sha256(&src), "{len} bytes");
    }
    // `multipart::parse` for buffered forms; a streamed one is refused, not misread.
    let parse = format!("http://{}/parse", server.addr);
    let (status, body) = curl_status(&["-F", "a=1", "-F", "b=2", &parse]);
    assert_eq!((status, body.as_str()), (200, "2 fields, 0 files"));
    let big = format!("file=@{}", tmp.0.join("src-3145728.bin").display());
    let (status, body) = curl_status(&["-F", &big, &parse]);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("multipart::receive"), "{body}");
}

/// A head for a form body of `len` bytes with boundary `B`.
fn form_head(len: usize) -> String {
    format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {len}\r\n\r\n"
    )
}

/// A form with one file of `n` bytes of 'x', then `tail`.
fn file_then(n: usize, tail: &str) -> Vec<u8> {
    let mut b = b"--B\r\nContent-Disposition: form-data; name=f; filename=a.bin\r\n\r\n".to_vec();
    b.resize(b.len() + n, b'x');
    b.extend_from_slice(tail.as_bytes());
    b
}

#[test]
fn malformed_forms_get_400_naming_the_problem_and_leave_no_file() {
    let tmp = TempDir::new("bad");
    let server = form_server(2, &tmp.0, Limits::default());
    let long_boundary = format!("multipart/form-data; boundary={}", "b".repeat(71));
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        // (what, body, content type, status, words in the answer)
        (
            "boundary inside a part, streamed",
            file_then(200_000, "\r\n--Bx\r\n\r\n--B--"),
            "multipart/form-data; boundary=B",
            400,
            "boundary delimiter is followed",
        ),
        (
            "no disposition, streamed",
            file_then(200_000, "\r\n--B\r\n\r\nv\r\n--B--"),
            "multipart/form-data; boundary=B",
            400,
            "no Content-Disposition",
        ),
        (
            "ends before the close, streamed",
            file_then(200_000, ""),
            "multipart/form-data; boundary=B",
            400,
            "closing boundary",
        ),
        (
            "bare LF in a part header",
            b"--B\r\nContent-Disposition: form-data; name=a\n\r\nv\r\n--B--".to_vec(),
            "multipart/form-data; boundary=B",
            400,
            "header line is malformed",
        ),
        (
            "no boundary parameter",
            file_then(10, "\r\n--B--"),
            "multipart/form-data",
            400,
            "no boundary parameter",
        ),
        (
            "a boundary of 71 characters",
            file_then(10, "\r\n--B--"),
            &long_boundary,
            400,
            "1-70",
        ),
        (
            "not a form",
            file_then(10, "\r\n--B--"),
            "text/plain",
            415,
            "multipart/form-data",
        ),
    ];
    for (what, body, ct, status, words) in cases {
        let head = form_head(body.len()).replace("multipart/form-data; boundary=B", ct);
        let mut s = server.connect();
        s.write_all(head.as_bytes()).unwrap();
        // The server may answer and close before taking all of it.
        let _ = s.write_all(&body);
        let mut r = Reader::new(s);
        let resp = r.read_response();
        assert_eq!(resp.status, status, "{what}: {}", resp.text());
        assert!(resp.text().contains(words), "{what}: {}", resp.text());
        assert_eq!(tmp.files(""), Vec::<String>::new(), "{what}: files left");
    }
}

#[test]
fn forms_over_a_limit_get_413_naming_it_and_leave_no_file() {
    let tmp = TempDir::new("limits");
    let limits = Limits {
        max_file_bytes: 1 << 20,
        max_total_bytes: 4 << 20,
        max_parts: 3,
        ..Limits::default()
    };
    let server = form_server(2, &tmp.0.join("up"), limits);
    let url = format!("http://{}/upload", server.addr);
    let src = tmp.0.join("two-mib.bin");
    write_noise(&src, 2 << 20);
    let big = format!("file=@{}", src.display());
    // Refused mid-stream: the file passes max_file_bytes after 1 MiB was stored.
    let (status, body) = curl_status(&["-F", "a=1", "-F", &big, &url]);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("max_file_bytes (1048576)"), "{body}");
    // Refused from the announced length, before a byte of the body is read.
    let (status, body) = curl_status(&["-F", &big, "-F", &big, "-F", &big, &url]);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("max_total_bytes (4194304)"), "{body}");
    let (status, body) = curl_status(&["-F", "a=1", "-F", "b=2", "-F", "c=3", "-F", "d=4", &url]);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("max_parts (3)"), "{body}");
    assert_eq!(tmp.files("up"), Vec::<String>::new(), "no file left behind");
}

#[test]
fn stalled_multipart_uploads_hold_no_worker_and_leave_no_file_when_they_leave() {
    let tmp = TempDir::new("stall");
    let server = form_server(2, &tmp.0, Limits::default());
    // 6 uploads of a 1 MB file stop after 300 KB (inside the file) on 2 workers: a worker
    // per upload would leave nobody to answer the GETs below.
    let body = file_then(1_000_000, "\r\n--B--\r\n");
    let stalled: Vec<_> = (0..6)
        .map(|_| {
            let mut s = server.connect();
            s.write_all(form_head(body.len()).as_bytes()).unwrap();
            s.write_all(&body[..300_000]).unwrap();
            s
        })
        .collect();
    assert!(
        wait_until(IO_TIMEOUT, || tmp.files("").len() == 6),
        "each stalled upload has its .part file: {:?}",
        tmp.files("")
    );
    assert!(tmp.files("").iter().all(|f| f.ends_with(".part")));
    for i in 0..10 {
        let resp = roundtrip(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(resp.text(), "plain\n", "request {i}");
    }
    drop(stalled);
    assert!(
        wait_until(IO_TIMEOUT, || tmp.files("").is_empty()),
        "the uploaders left; their partial files stay: {:?}",
        tmp.files("")
    );
}

/// VmRSS or VmHWM of a process, in KiB.
fn proc_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
}

#[cfg(feature = "cli")]
#[test]
fn the_demo_stores_a_50_mib_curl_upload_identically_with_little_memory() {
    use std::process::Stdio;
    const TOKEN: &str = "upload-token";
    const LEN: usize = 50 << 20;
    let tmp = TempDir::new("demo");
    let src = tmp.0.join("big.bin");
    write_noise(&src, LEN);
    let port = free_port();
    let child = Command::new(built_binary("h1server", false))
        .env("DEMO_DB", ":memory:")
        .env("H1_ADDR", format!("127.0.0.1:{port}"))
        .env("H1_WORKERS", "2")
        .env("DEMO_API_TOKEN", TOKEN)
        .env("DEMO_UPLOAD_DIR", tmp.0.join("up"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the demo");
    let child = ChildGuard(child);
    let pid = child.0.id();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        wait_until(Duration::from_secs(20), || std::net::TcpStream::connect(
            addr
        )
        .is_ok()),
        "the demo did not start listening"
    );
    let url = format!("http://{addr}/api/v1/uploads");
    let auth = format!("Authorization: Bearer {TOKEN}");
    // Without the token: refused before the body is read.
    let (status, _) = curl_status(&["-F", "a=1", &url]);
    assert_eq!(status, 401);
    // Warm up (buffers, pools, a streamed upload), then measure the big one.
    let warm = tmp.0.join("warm.bin");
    write_noise(&warm, 2 << 20);
    let warm_arg = format!("file=@{}", warm.display());
    assert_eq!(curl_status(&["-H", &auth, "-F", &warm_arg, &url]).0, 201);
    let rss_before = proc_kib(pid, "VmRSS:");
    let file_arg = format!("file=@{}", src.display());
    let (status, body) = curl_status(&["-H", &auth, "-F", "field=value", "-F", &file_arg, &url]);
    assert_eq!(status, 201, "{body}");
    let peak = proc_kib(pid, "VmHWM:");
    let growth_kib = peak.saturating_sub(rss_before);
    eprintln!(
        "50 MiB upload: VmRSS before {rss_before} KiB, VmHWM after {peak} KiB, growth {growth_kib} KiB"
    );
    let json: serde_json::Value = serde_json::from_str(&body).expect("a JSON answer");
    assert_eq!(
        json["fields"],
        serde_json::json!([{"name": "field", "value": "value"}])
    );
    let file = &json["files"][0];
    assert_eq!(file["name"], "file");
    assert_eq!(file["filename"], "big.bin");
    assert_eq!(file["size"], LEN as u64);
    let stored = PathBuf::from(file["path"].as_str().unwrap());
    assert_eq!(stored, tmp.0.join("up").join(file["id"].as_str().unwrap()));
    assert_eq!(sha256(&stored), sha256(&src), "the stored file differs");
    assert!(
        growth_kib < 8 * 1024,
        "the server grew by {growth_kib} KiB for a 50 MiB upload: it was buffered"
    );
}

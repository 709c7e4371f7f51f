//! Attacks on uploads over real sockets: hostile file names, boundaries split byte by byte,
//! malformed and lying bodies, clients that stall or reset mid-file, many concurrent
//! uploads, thousands of tiny parts, a full disk, the upload directory removed. What must
//! hold: every failure gets a clear status, no stored file is outside the upload
//! directory or overwrites another, no `.part` file is left, and every `201` names files
//! complete on disk with the declared size and content.
#![cfg(feature = "multipart")]

mod support;
use support::*;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use h1server::multipart::{self, DiskFiles, Limits};
use h1server::{Config, Request, Response};

/// Files stored by the last `201`s, as the handler reported them: (id, path, size).
type Stored = Arc<Mutex<Vec<(String, PathBuf, u64)>>>;

/// `/upload` stores forms in `dir` with `limits` (bodies over `max_body` bytes are
/// streamed) and answers `201` with one line per file: `name|size|id`; `/` answers
/// `plain`.
fn server(
    dir: &Path,
    limits: Limits,
    max_body: u64,
    read_timeout: Duration,
) -> (TestServer, Stored) {
    let cfg = Config {
        workers: 2,
        max_body_bytes: max_body,
        max_upload_bytes: 1 << 30,
        read_timeout,
        ..test_config()
    };
    let dir = dir.to_path_buf();
    let stored: Stored = Arc::default();
    let seen = stored.clone();
    let server = TestServer::with_config(cfg, move |req: &mut Request| match req.path() {
        "/upload" => {
            let seen = seen.clone();
            let files = DiskFiles::new(dir.clone(), move |u| {
                let mut out = String::new();
                for f in &u.files {
                    out.push_str(&format!("{}|{}|{}\n", f.name, f.size, f.id));
                    seen.lock()
                        .unwrap()
                        .push((f.id.clone(), f.path.clone(), f.size));
                }
                Response::text(out).with_status(201)
            });
            multipart::receive(req, limits, files)
        }
        _ => Response::text("plain\n"),
    });
    (server, stored)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn head(len: usize, ct: &str) -> String {
    format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: {len}\r\n\r\n"
    )
}

/// One part with `disposition` (after `form-data; `) and `content`, closed.
fn one_file(disposition: &str, content: &[u8]) -> Vec<u8> {
    let mut b =
        format!("--B\r\nContent-Disposition: form-data; {disposition}\r\n\r\n").into_bytes();
    b.extend_from_slice(content);
    b.extend_from_slice(b"\r\n--B--\r\n");
    b
}

/// Sends `body` with boundary `B` and reads the answer.
fn post(addr: std::net::SocketAddr, body: &[u8]) -> Resp {
    post_ct(addr, body, "multipart/form-data; boundary=B")
}

fn post_ct(addr: std::net::SocketAddr, body: &[u8], ct: &str) -> Resp {
    let mut s = connect(addr);
    s.write_all(head(body.len(), ct).as_bytes()).unwrap();
    let _ = s.write_all(body); // a refusal may close before all of it is taken
    Reader::new(s).read_response()
}

/// `n` bytes of noise with CR, LF and `-` in it.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 7 {
                0 => b'\r',
                1 => b'\n',
                2 => b'-',
                _ => (x >> 32) as u8,
            }
        })
        .map(|c| if c == b'B' { b'b' } else { c }) // the boundary never appears in content
        .collect()
}

/// Every `201` line's file is in `dir` (by id), complete, with the size it reported.
fn check_acknowledged(dir: &Path, resp: &Resp, expect: &[&[u8]]) {
    assert_eq!(resp.status, 201, "{}", resp.text());
    let text = resp.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expect.len(), "{text}");
    for (l, want) in lines.iter().zip(expect) {
        let f: Vec<&str> = l.split('|').collect();
        let (size, id) = (f[1], f[2]);
        assert!(
            !id.is_empty() && id.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'),
            "id {id:?}"
        );
        assert_eq!(size, want.len().to_string(), "{text}");
        let got = std::fs::read(dir.join(id)).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(
            got == *want,
            "file {id} differs from what was sent ({} vs {} bytes)",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn hostile_file_names_stay_inside_the_upload_dir_and_never_collide() {
    let tmp = TempDir::new("upl-names");
    let dir = tmp.0.join("up");
    let (server, _) = server(&dir, Limits::default(), 1024, Duration::from_secs(5));
    let long = format!("filename=\"{}\"", "a".repeat(4096));
    let cases = [
        "name=f; filename=\"../../etc/x\"",
        "name=f; filename=\"/etc/passwd\"",
        "name=f; filename=\"..\\\\..\\\\x\"",
        "name=f; filename=\"%2e%2e/%2e%2e/x\"",
        "name=f; filename=\"a/b/c\"",
        "name=f; filename=\".part\"",
        "name=f; filename=\"x.part\"",
        "name=f; filename=\"..\"",
        "name=f; filename=\".\"",
        "name=\"../../n\"; filename=\"../n\"",
    ];
    let mut all: Vec<String> = cases.iter().map(|s| s.to_string()).collect();
    all.push(format!("name=f; {long}"));
    for (i, d) in all.iter().enumerate() {
        for len in [100usize, 5000] {
            // buffered and streamed
            let content = noise(len, i as u64 + 7);
            let resp = post(server.addr, &one_file(d, &content));
            check_acknowledged(&dir, &resp, &[&content]);
        }
    }
    // Nothing outside: the temp dir holds only `up`, and `up` only generated names.
    assert_eq!(names(&tmp.0), vec!["up".to_string()]);
    let stored = names(&dir);
    assert_eq!(stored.len(), all.len() * 2, "{stored:?}");
    assert!(stored.iter().all(|n| !n.ends_with(".part")), "{stored:?}");
    // RFC 7578 §4.2: `filename*` is not used in forms; with it alone the part is a field.
    let resp = post(
        server.addr,
        &one_file("name=f; filename*=UTF-8''%2e%2e%2fx", b"v"),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(resp.text(), "");
    // NUL or a control character in a part header: refused.
    let resp = post(server.addr, &one_file("name=f; filename=\"a\0b\"", b"v"));
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(names(&dir).len(), all.len() * 2);
}

#[test]
fn boundary_near_misses_delivered_byte_by_byte_are_kept_as_content() {
    let tmp = TempDir::new("upl-bytes");
    let dir = tmp.0.join("up");
    // Streamed (over 64 bytes): each byte can arrive in its own window.
    let (server, _) = server(&dir, Limits::default(), 64, Duration::from_secs(5));
    let content: &[u8] =
        b"\r\n-\r\n--\r\r\n--\r\n--A\r\n-B\n--B\n--B--\r--B\r\n\r\n-\r\n--b\r\n\r\n--\r";
    let mut body =
        b"preamble\r\n--B  \t\r\nContent-Disposition: form-data; name=f; filename=x\r\n\r\n"
            .to_vec();
    body.extend_from_slice(content);
    body.extend_from_slice(
        b"\r\n--B\r\nContent-Disposition: form-data; name=g; filename=y\r\n\r\n",
    );
    body.extend_from_slice(content);
    body.extend_from_slice(b"\r\n--B-- \r\nepilogue\r\n--B\r\n");
    let mut s = connect(server.addr);
    s.set_nodelay(true).unwrap();
    s.write_all(head(body.len(), "multipart/form-data; boundary=\"B\"").as_bytes())
        .unwrap();
    for b in &body {
        s.write_all(std::slice::from_ref(b)).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    let resp = Reader::new(s).read_response();
    check_acknowledged(&dir, &resp, &[content, content]);
}

#[test]
fn malformed_and_lying_bodies_get_4xx_and_leave_no_file() {
    let tmp = TempDir::new("upl-bad");
    let dir = tmp.0.join("up");
    let (server, _) = server(&dir, Limits::default(), 1024, Duration::from_secs(1));
    let file = noise(3000, 3);
    let mut no_close = one_file("name=f; filename=a", &file);
    no_close.truncate(no_close.len() - 4); // `\r\n--B` without `--`
    let mut lf_only = b"--B\nContent-Disposition: form-data; name=f; filename=a\n\n".to_vec();
    lf_only.extend_from_slice(&file);
    lf_only.extend_from_slice(b"\n--B--\n");
    let mut big_head =
        b"--B\r\nContent-Disposition: form-data; name=f; filename=a\r\nX-Pad: ".to_vec();
    big_head.resize(big_head.len() + 64 * 1024, b'p');
    big_head.extend_from_slice(b"\r\n\r\nv\r\n--B--\r\n");
    let mut nested = b"--B\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n".to_vec();
    nested.extend_from_slice(&file);
    nested.extend_from_slice(b"\r\n--B\r\n\r\nheaderless\r\n--B--\r\n");
    let b71 = format!("multipart/form-data; boundary={}", "b".repeat(71));
    let cases: Vec<(&str, Vec<u8>, &str, u16)> = vec![
        (
            "missing close",
            no_close,
            "multipart/form-data; boundary=B",
            400,
        ),
        ("bare LF", lf_only, "multipart/form-data; boundary=B", 400),
        (
            "64 KiB header line",
            big_head,
            "multipart/form-data; boundary=B",
            413,
        ),
        (
            "part without headers",
            nested,
            "multipart/form-data; boundary=B",
            400,
        ),
        (
            "empty boundary",
            one_file("name=f; filename=a", &file),
            "multipart/form-data; boundary=",
            400,
        ),
        (
            "empty quoted boundary",
            one_file("name=f; filename=a", &file),
            "multipart/form-data; boundary=\"\"",
            400,
        ),
        (
            "71-char boundary",
            one_file("name=f; filename=a", &file),
            &b71,
            400,
        ),
        (
            "not multipart",
            one_file("name=f; filename=a", &file),
            "application/octet-stream",
            415,
        ),
    ];
    for (what, body, ct, status) in cases {
        let resp = post_ct(server.addr, &body, ct);
        assert_eq!(resp.status, status, "{what}: {}", resp.text());
        assert_eq!(names(&dir), Vec::<String>::new(), "{what}: files left");
    }
    // A 70-character boundary and nested multipart/mixed content: stored as bytes.
    let b70 = "7".repeat(70);
    let mut mixed = format!(
        "--{b70}\r\nContent-Disposition: form-data; name=f; filename=a\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n"
    )
    .into_bytes();
    let inner: &[u8] = b"--inner\r\nContent-Type: text/plain\r\n\r\nhi\r\n--inner--";
    mixed.extend_from_slice(inner);
    mixed.extend_from_slice(format!("\r\n--{b70}--").as_bytes());
    let resp = post_ct(
        server.addr,
        &mixed,
        &format!("multipart/form-data; boundary={b70}"),
    );
    check_acknowledged(&dir, &resp, &[inner]);
    std::fs::remove_dir_all(&dir).unwrap();

    // Content-Length shorter than the body: the form is cut, refused; the rest of the
    // bytes never become a stored file.
    let body = one_file("name=f; filename=a", &file);
    let mut s = connect(server.addr);
    s.write_all(head(body.len() - 10, "multipart/form-data; boundary=B").as_bytes())
        .unwrap();
    s.write_all(&body).unwrap();
    let resp = Reader::new(s).read_response();
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(names(&dir), Vec::<String>::new());

    // Content-Length longer than the body, the client waits: 408 at read_timeout and the
    // `.part` file is removed.
    let mut s = connect(server.addr);
    s.write_all(head(body.len() + 10, "multipart/form-data; boundary=B").as_bytes())
        .unwrap();
    s.write_all(&body).unwrap();
    let mut r = Reader::new(s.try_clone().unwrap());
    r.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let resp = r.read_response();
    assert_eq!(resp.status, 408, "{}", resp.text());
    assert!(
        wait_until(IO_TIMEOUT, || names(&dir).is_empty()),
        "{:?}",
        names(&dir)
    );

    // Longer, and the client half-closes: nothing is stored.
    let mut s = connect(server.addr);
    s.write_all(head(body.len() + 10, "multipart/form-data; boundary=B").as_bytes())
        .unwrap();
    s.write_all(&body).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        !String::from_utf8_lossy(&rest).contains(" 201 "),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        wait_until(IO_TIMEOUT, || names(&dir).is_empty()),
        "{:?}",
        names(&dir)
    );
}

#[test]
fn stalled_and_reset_uploads_hold_no_worker_and_leave_no_part_file() {
    let tmp = TempDir::new("upl-stall");
    let dir = tmp.0.join("up");
    let (server, _) = server(&dir, Limits::default(), 1024, Duration::from_secs(30));
    let contents: Vec<Vec<u8>> = (0..50).map(|i| noise(200_000 + i * 7, i as u64)).collect();
    let bodies: Vec<Vec<u8>> = contents
        .iter()
        .map(|c| one_file("name=f; filename=same.bin", c))
        .collect();
    // 50 uploads of the same file name, each stopped half way, on 2 workers.
    let mut conns: Vec<TcpStream> = bodies
        .iter()
        .map(|b| {
            let mut s = connect(server.addr);
            s.write_all(head(b.len(), "multipart/form-data; boundary=B").as_bytes())
                .unwrap();
            s.write_all(&b[..b.len() / 2]).unwrap();
            s
        })
        .collect();
    assert!(
        wait_until(IO_TIMEOUT, || names(&dir).len() == 50),
        "a .part per upload: {}",
        names(&dir).len()
    );
    for i in 0..10 {
        let r = roundtrip(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.text(), "plain\n", "request {i} while 50 uploads wait");
    }
    // Ten of them reset mid-file: their files go.
    for s in conns.drain(40..) {
        reset_on_close(&s);
        drop(s);
    }
    assert!(
        wait_until(IO_TIMEOUT, || names(&dir).len() == 40),
        "reset uploads leave their .part: {:?}",
        names(&dir).len()
    );
    // The other forty finish: each 201 names its own complete file.
    let resps: Vec<Resp> = conns
        .into_iter()
        .zip(&bodies)
        .map(|(mut s, b)| {
            s.write_all(&b[b.len() / 2..]).unwrap();
            s
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|s| Reader::new(s).read_response())
        .collect();
    for (r, c) in resps.iter().zip(&contents) {
        check_acknowledged(&dir, r, &[c]);
    }
    let left = names(&dir);
    assert_eq!(left.len(), 40, "{left:?}");
    assert!(left.iter().all(|n| !n.ends_with(".part")), "{left:?}");
}

/// This process's open descriptors on files under `dir`.
fn open_fds(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.starts_with(dir)))
        .count()
}

#[test]
fn thousands_of_tiny_file_parts_close_their_files() {
    let tmp = TempDir::new("upl-tiny");
    let dir = tmp.0.join("up");
    let limits = Limits {
        max_parts: 5000,
        ..Limits::default()
    };
    let (server, _) = server(&dir, limits, 1024, Duration::from_secs(5));
    let mut body = Vec::new();
    let n = 3000;
    for i in 0..n {
        body.extend_from_slice(
            format!("--B\r\nContent-Disposition: form-data; name=f; filename=f{i}\r\n\r\n{i}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(b"--B--\r\n");
    let resp = post(server.addr, &body);
    assert_eq!(resp.status, 201);
    assert_eq!(resp.text().lines().count(), n);
    assert_eq!(names(&dir).len(), n);
    assert_eq!(open_fds(&dir), 0, "stored files left open");
    // One part more than max_parts: 413, and every file of the form is removed.
    std::fs::remove_dir_all(&dir).unwrap();
    let mut over = Vec::new();
    for i in 0..5001 {
        over.extend_from_slice(
            format!("--B\r\nContent-Disposition: form-data; name=f; filename=f{i}\r\n\r\n{i}\r\n")
                .as_bytes(),
        );
    }
    over.extend_from_slice(b"--B--\r\n");
    let resp = post(server.addr, &over);
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert!(
        wait_until(IO_TIMEOUT, || names(&dir).is_empty()),
        "{} left",
        names(&dir).len()
    );
    assert_eq!(open_fds(&dir), 0, "files of a refused form left open");
}

#[test]
fn a_body_over_max_upload_bytes_is_413_before_a_file_is_made() {
    let tmp = TempDir::new("upl-max");
    let dir = tmp.0.join("up");
    let cfg = Config {
        max_body_bytes: 1024,
        max_upload_bytes: 100_000,
        ..test_config()
    };
    let d = dir.clone();
    let server = TestServer::with_config(cfg, move |req: &mut Request| {
        multipart::receive(
            req,
            Limits::default(),
            DiskFiles::new(d.clone(), |_| Response::text("ok").with_status(201)),
        )
    });
    let body = one_file("name=f; filename=a", &noise(200_000, 9));
    let resp = post(server.addr, &body);
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert_eq!(names(&dir), Vec::<String>::new());
}

/// A small tmpfs, mounted for the test (root only; skipped elsewhere), unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_507_and_leaves_nothing_of_the_form() {
    let tmp = TempDir::new("upl-full");
    let Some(fs) = Tmpfs::mount(&tmp.0.join("mnt"), "1m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here");
        return;
    };
    let dir = fs.0.join("up");
    let (server, stored) = server(&dir, Limits::default(), 64 * 1024, Duration::from_secs(5));
    // Streamed, one file over the disk.
    let resp = post(
        server.addr,
        &one_file("name=f; filename=a", &noise(2 << 20, 1)),
    );
    assert_eq!(resp.status, 507, "{}", resp.text());
    assert_eq!(names(&dir), Vec::<String>::new());
    // Streamed, two files: the first fits, the second does not; both go.
    let mut body = b"--B\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n".to_vec();
    body.extend_from_slice(&noise(600_000, 2));
    body.extend_from_slice(
        b"\r\n--B\r\nContent-Disposition: form-data; name=g; filename=b\r\n\r\n",
    );
    body.extend_from_slice(&noise(600_000, 3));
    body.extend_from_slice(b"\r\n--B--\r\n");
    let resp = post(server.addr, &body);
    assert_eq!(resp.status, 507, "{}", resp.text());
    assert_eq!(names(&dir), Vec::<String>::new());
    // Buffered (under 64 KiB) when the disk is already full: 507, nothing left.
    let filler = fs.0.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    drop(f);
    let resp = post(
        server.addr,
        &one_file("name=f; filename=a", &noise(30_000, 4)),
    );
    assert_eq!(resp.status, 507, "{}", resp.text());
    assert_eq!(names(&dir), Vec::<String>::new());
    // Room again: the next upload is stored whole.
    std::fs::remove_file(&filler).unwrap();
    let c = noise(300_000, 5);
    let resp = post(server.addr, &one_file("name=f; filename=a", &c));
    check_acknowledged(&dir, &resp, &[&c]);
    assert_eq!(stored.lock().unwrap().len(), 1);
    // The file system made read-only while the server runs: 500, nothing stored.
    let remount = |how: &str| {
        std::process::Command::new("mount")
            .args(["-o", &format!("remount,{how}")])
            .arg(&fs.0)
            .status()
            .is_ok_and(|s| s.success())
    };
    if remount("ro") {
        let before = names(&dir);
        let resp = post(
            server.addr,
            &one_file("name=f; filename=a", &noise(300_000, 6)),
        );
        assert_eq!(resp.status, 500, "{}", resp.text());
        let resp = post(
            server.addr,
            &one_file("name=f; filename=a", &noise(3_000, 6)),
        );
        assert_eq!(resp.status, 500, "{}", resp.text());
        assert_eq!(names(&dir), before);
        assert!(remount("rw"));
    }
}

#[test]
fn the_upload_dir_removed_while_running_is_never_acknowledged_half_written() {
    let tmp = TempDir::new("upl-rmdir");
    let dir = tmp.0.join("up");
    let (server, _) = server(&dir, Limits::default(), 1024, Duration::from_secs(5));
    let c = noise(100_000, 11);
    let body = one_file("name=f; filename=a", &c);
    // Removed between uploads: made again.
    let resp = post(server.addr, &body);
    check_acknowledged(&dir, &resp, &[&c]);
    std::fs::remove_dir_all(&dir).unwrap();
    let resp = post(server.addr, &body);
    check_acknowledged(&dir, &resp, &[&c]);
    std::fs::remove_dir_all(&dir).unwrap();
    // Removed mid-file: the answer is a 5xx, never a 201 for a file that is gone.
    let mut s = connect(server.addr);
    s.write_all(head(body.len(), "multipart/form-data; boundary=B").as_bytes())
        .unwrap();
    s.write_all(&body[..body.len() / 2]).unwrap();
    assert!(wait_until(IO_TIMEOUT, || names(&dir).len() == 1));
    std::fs::remove_dir_all(&dir).unwrap();
    s.write_all(&body[body.len() / 2..]).unwrap();
    let resp = Reader::new(s).read_response();
    assert!(resp.status >= 500, "{} {}", resp.status, resp.text());
    assert_eq!(names(&dir), Vec::<String>::new());
}

#[test]
fn a_client_that_half_closes_after_its_whole_body_gets_its_201() {
    let tmp = TempDir::new("upl-half");
    let dir = tmp.0.join("up");
    let (server, _) = server(&dir, Limits::default(), 1024, Duration::from_secs(5));
    for len in [500usize, 3 << 20] {
        let c = noise(len, len as u64);
        let body = one_file("name=f; filename=a", &c);
        let mut s = connect(server.addr);
        s.write_all(head(body.len(), "multipart/form-data; boundary=B").as_bytes())
            .unwrap();
        s.write_all(&body).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let resp = Reader::new(s).read_response();
        check_acknowledged(&dir, &resp, &[&c]);
    }
}

#[test]
fn uploads_in_flight_at_shutdown_leave_no_part_file() {
    let tmp = TempDir::new("upl-stop");
    let dir = tmp.0.join("up");
    let cfg = Config {
        max_body_bytes: 1024,
        max_upload_bytes: 1 << 30,
        shutdown_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_secs(30),
        ..test_config()
    };
    let d = dir.clone();
    let server = TestServer::with_config(cfg, move |req: &mut Request| {
        multipart::receive(
            req,
            Limits::default(),
            DiskFiles::new(d.clone(), |_| Response::text("ok").with_status(201)),
        )
    });
    let body = one_file("name=f; filename=a", &noise(500_000, 1));
    let conns: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = connect(server.addr);
            s.write_all(head(body.len(), "multipart/form-data; boundary=B").as_bytes())
                .unwrap();
            s.write_all(&body[..200_000]).unwrap();
            s
        })
        .collect();
    assert!(
        wait_until(IO_TIMEOUT, || names(&dir).len() == 4),
        "{:?}",
        names(&dir)
    );
    server.stop().unwrap();
    assert!(
        wait_until(Duration::from_secs(3), || names(&dir).is_empty()),
        "partial files left after the server stopped: {:?}",
        names(&dir)
    );
    drop(conns);
}

/// The demo binary on a free port with an in-memory store; `env` on top.
#[cfg(feature = "cli")]
fn start_demo(env: &[(&str, &str)]) -> (ChildGuard, std::net::SocketAddr) {
    use std::process::{Command, Stdio};
    let port = free_port();
    let mut cmd = Command::new(built_binary("h1server", false));
    cmd.env("H1_ADDR", format!("127.0.0.1:{port}"))
        .env("DEMO_API_TOKEN", "upl-token")
        .env("DEMO_DB", ":memory:")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = ChildGuard(cmd.spawn().expect("spawn the demo binary"));
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(wait_until(Duration::from_secs(20), || TcpStream::connect(
        addr
    )
    .is_ok()));
    (child, addr)
}

#[cfg(feature = "cli")]
#[test]
fn the_demo_upload_route_refuses_before_reading_and_stores_whole_files() {
    let tmp = TempDir::new("upl-demo");
    let dir = tmp.0.join("up");
    let (_child, addr) = start_demo(&[
        ("DEMO_UPLOAD_DIR", dir.to_str().unwrap()),
        ("H1_MAX_UPLOAD_BYTES", "4000000"),
    ]);
    let c = noise(2_000_000, 77);
    let body = one_file("name=file; filename=\"../../../etc/passwd\"", &c);
    let send = |extra: &str, body: &[u8]| {
        let mut s = connect(addr);
        let h = format!(
            "POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\n{extra}Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        );
        s.write_all(h.as_bytes()).unwrap();
        let mut r = Reader::new(s);
        let first = r.read_response();
        if first.status != 100 {
            return first;
        }
        let _ = r.stream.write_all(body);
        r.read_response()
    };
    // No token: 401 without a 100 Continue, nothing stored.
    let r = send("", &body);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(names(&dir), Vec::<String>::new());
    // Over H1_MAX_UPLOAD_BYTES: 413 before the body.
    let big = one_file("name=file; filename=a", &noise(4_100_000, 1));
    let r = send("Authorization: Bearer upl-token\r\n", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(names(&dir), Vec::<String>::new());
    // Stored whole, inside the directory, under a generated name.
    let r = send("Authorization: Bearer upl-token\r\n", &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let f = &v["files"][0];
    assert_eq!(f["filename"], "../../../etc/passwd");
    assert_eq!(f["size"], c.len());
    let id = f["id"].as_str().unwrap();
    assert_eq!(names(&dir), vec![id.to_string()]);
    assert!(std::fs::read(dir.join(id)).unwrap() == c);
}

/// An upload whose next piece waits for room in a full job queue is held back by the
/// server, not by its client: the client sent its whole body in time, so the server must
/// not answer `408 Request Timeout` (RFC 9110 §15.5.9: "did not receive a complete
/// request message within the time that it was prepared to wait") and throw the upload
/// away. The loop already stops the read deadline while a worker has a piece ("its time
/// is the handler's, not the client's", src/conn/upload.rs); a piece waiting for queue
/// room is the server's time just the same.
#[test]
fn an_upload_piece_waiting_for_queue_room_is_not_timed_out_as_the_clients_fault() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Keeps the body; `seen` says how much of it arrived so far.
    struct Keep(Vec<u8>, Arc<AtomicUsize>);
    impl h1server::BodySink for Keep {
        fn data(&mut self, piece: &[u8]) -> Result<(), Response> {
            self.0.extend_from_slice(piece);
            self.1.store(self.0.len(), Ordering::SeqCst);
            Ok(())
        }
        fn finish(self: Box<Self>) -> Response {
            Response::new(201).with_body(self.0)
        }
    }

    let gate = Gate::default();
    let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
    let entered_tx = Mutex::new(entered_tx);
    let seen = Arc::new(AtomicUsize::new(0));
    let cfg = Config {
        workers: 1,
        queue_depth: 1,
        max_body_bytes: 1024,
        max_upload_bytes: 1 << 20,
        read_timeout: Duration::from_millis(500),
        ..test_config()
    };
    let (g, n) = (gate.clone(), seen.clone());
    let server = TestServer::with_config(cfg, move |req: &mut Request| match req.path() {
        "/upload" => Response::read_body(Keep(Vec::new(), n.clone())),
        _ => {
            let _ = entered_tx.lock().unwrap().send(());
            g.wait(Duration::from_secs(10));
            Response::text("done\n")
        }
    });
    let _open = OpenOnDrop(gate.clone());
    let tel = server.handle().telemetry();

    let body = noise(8000, 5);
    let mut up = server.connect();
    up.write_all(head(body.len(), "application/octet-stream").as_bytes())
        .unwrap();
    up.write_all(&body[..4000]).unwrap();
    // All of it taken by the sink, and the sink back on the loop: the pool is idle.
    assert!(wait_until(IO_TIMEOUT, || {
        let t = tel.snapshot();
        seen.load(Ordering::SeqCst) == 4000 && t.queue_depth == 0 && t.busy_workers == 0
    }));

    // The one worker is busy, the one queue slot taken.
    let mut busy = Vec::new();
    for i in 0..2 {
        let mut s = Reader::new(server.connect());
        s.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
        busy.push(s);
        if i == 0 {
            entered
                .recv_timeout(IO_TIMEOUT)
                .expect("the slow handler runs");
        }
    }
    // The queue gauge is set at the end of a loop turn: a connection accepted after the
    // second GET was sent makes a turn that has read it.
    let _probe = server.connect();
    assert!(wait_until(IO_TIMEOUT, || tel.snapshot().accepted == 4));
    assert!(wait_until(IO_TIMEOUT, || tel.snapshot().queue_depth == 1));

    // The client sends the rest of its body at once; the server cannot take it yet.
    up.write_all(&body[4000..]).unwrap();
    // Three times read_timeout (500 ms) with the body's bytes held by the server: a
    // deadline firing in that time ends the wait early.
    let fired = |t: &h1server::telemetry::Snapshot| t.deadlines.iter().any(|(_, n)| *n > 0);
    let _ = wait_until(Duration::from_millis(1500), || fired(&tel.snapshot()));
    gate.open();
    for (i, s) in busy.iter_mut().enumerate() {
        let r = s.read_response();
        assert_eq!(r.status, 200, "GET {i}: {}", r.text());
    }
    up.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let resp = Reader::new(up).read_response();
    assert_eq!(
        resp.status,
        201,
        "an upload whose client sent everything in time: {}",
        resp.text()
    );
    assert!(resp.body == body, "the body arrived changed");
}

/// Two `Content-Type` field lines with different boundaries: which one frames the form
/// is ambiguous (RFC 9110 §5.3: Content-Type is not a list, so a sender must not repeat
/// it), and a filter in front that reads the other one sees other parts than those
/// stored — the multipart form of request smuggling. The server took the first and
/// stored the file; it must refuse the form with `400` and store nothing, buffered or
/// streamed, as it does for a repeated `boundary` parameter.
#[test]
fn a_form_with_two_content_types_is_refused_and_nothing_is_stored() {
    let tmp = TempDir::new("upl-two-ct");
    let dir = tmp.0.join("up");
    let (server, _) = server(&dir, Limits::default(), 1024, Duration::from_secs(5));
    for len in [100usize, 5000] {
        let body = one_file("name=f; filename=a", &noise(len, 3));
        for ct in [
            "multipart/form-data; boundary=B\r\nContent-Type: multipart/form-data; boundary=Z",
            "multipart/form-data; boundary=Z\r\nContent-Type: multipart/form-data; boundary=B",
            "multipart/form-data; boundary=B\r\nContent-Type: text/plain",
        ] {
            let resp = post_ct(server.addr, &body, ct);
            assert_eq!(resp.status, 400, "{len} bytes, {ct:?}: {}", resp.text());
            assert!(resp.text().contains("Content-Type"), "{}", resp.text());
            assert_eq!(names(&dir), Vec::<String>::new(), "{len} bytes, {ct:?}");
        }
        // The other line not UTF-8: still two.
        let mut req = head(body.len(), "multipart/form-data; boundary=B").into_bytes();
        let end = req.len() - 2;
        req.splice(
            end..end,
            b"Content-Type: multipart/form-data; boundary=\xffZ\r\n"
                .iter()
                .copied(),
        );
        let mut s = connect(server.addr);
        s.write_all(&req).unwrap();
        let _ = s.write_all(&body);
        let resp = Reader::new(s).read_response();
        assert_eq!(
            resp.status,
            400,
            "{len} bytes, a non-UTF-8 second line: {}",
            resp.text()
        );
        assert_eq!(names(&dir), Vec::<String>::new());
    }
}

/// `DiskFiles` whose writes block (on a gate) once `slow` is set: a store that takes its
/// time, so that a piece of the body is at a worker when the server stops.
struct SlowDisk<F> {
    inner: DiskFiles<F>,
    slow: Arc<std::sync::atomic::AtomicBool>,
    gate: Gate,
    entered: Mutex<std::sync::mpsc::Sender<()>>,
}

impl<F> multipart::MultipartHandler for SlowDisk<F>
where
    F: FnOnce(multipart::Upload) -> Response + Send + 'static,
{
    type Writer = <DiskFiles<F> as multipart::MultipartHandler>::Writer;
    fn on_field(&mut self, name: &str, value: &str) -> Result<(), Response> {
        self.inner.on_field(name, value)
    }
    fn on_file_start(&mut self, part: &multipart::Part) -> Result<Self::Writer, Response> {
        self.inner.on_file_start(part)
    }
    fn on_file_data(&mut self, w: &mut Self::Writer, data: &[u8]) -> Result<(), Response> {
        if self.slow.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = self.entered.lock().unwrap().send(());
            self.gate.wait(Duration::from_secs(3));
        }
        self.inner.on_file_data(w, data)
    }
    fn on_file_end(
        &mut self,
        part: multipart::Part,
        w: Self::Writer,
        size: u64,
    ) -> Result<(), Response> {
        self.inner.on_file_end(part, w, size)
    }
    fn finish(self) -> Response {
        self.inner.finish()
    }
    fn abort(self) {
        self.inner.abort()
    }
}

/// The server stops (its `shutdown_timeout` passes) while a piece of an upload is being
/// written on a worker: the loop has closed the connection and returned, and the piece's
/// sink comes back from the worker to nobody. It must still hear `abort` — DiskFiles
/// removes its `.part` file there — instead of being dropped with the file left behind
/// ("the upload ended early (… the server stopped): clean up", `BodySink::abort`).
#[test]
fn an_upload_piece_at_a_worker_when_the_server_stops_still_removes_its_part_file() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = TempDir::new("upl-stop-piece");
    let dir = tmp.0.join("up");
    let cfg = Config {
        max_body_bytes: 1024,
        max_upload_bytes: 1 << 30,
        shutdown_timeout: Duration::from_millis(500),
        ..test_config()
    };
    let slow = Arc::new(AtomicBool::new(false));
    let gate = Gate::default();
    let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
    let entered_tx = Arc::new(Mutex::new(entered_tx));
    let (d, s2, g2) = (dir.clone(), slow.clone(), gate.clone());
    let server = TestServer::with_config(cfg, move |req: &mut Request| {
        let handler = SlowDisk {
            inner: DiskFiles::new(d.clone(), |_| Response::text("ok").with_status(201)),
            slow: s2.clone(),
            gate: g2.clone(),
            entered: Mutex::new(entered_tx.lock().unwrap().clone()),
        };
        multipart::receive(req, Limits::default(), handler)
    });
    let _open = OpenOnDrop(gate.clone());
    let body = one_file("name=f; filename=a", &noise(400_000, 1));
    let mut s = connect(server.addr);
    s.write_all(head(body.len(), "multipart/form-data; boundary=B").as_bytes())
        .unwrap();
    s.write_all(&body[..100_000]).unwrap();
    assert!(
        wait_until(IO_TIMEOUT, || names(&dir).len() == 1),
        "no .part"
    );
    slow.store(true, Ordering::SeqCst);
    s.write_all(&body[100_000..200_000]).unwrap();
    entered
        .recv_timeout(IO_TIMEOUT)
        .expect("a piece is being written");
    // The drain gives up after 500 ms with the piece still at the worker.
    server.stop().unwrap();
    gate.open();
    assert!(
        wait_until(Duration::from_secs(5), || names(&dir).is_empty()),
        "the .part file of an upload cut by the shutdown is left: {:?}",
        names(&dir)
    );
    drop(s);
}

/// A file that already has the name an upload is about to be stored under (another
/// instance sharing the directory — in containers each is often pid 1 — or anything an
/// operator put there) is never replaced: the upload is stored under another name, and
/// the other file keeps its content. `rename` replaced it silently.
#[test]
fn a_finished_upload_never_replaces_a_file_already_named_like_it() {
    let tmp = TempDir::new("upl-noreplace");
    let dir = tmp.0.join("up");
    let (server, _) = server(&dir, Limits::default(), 1024, Duration::from_secs(5));
    let c = noise(100_000, 21);
    let body = one_file("name=f; filename=a", &c);
    let mut s = connect(server.addr);
    s.write_all(head(body.len(), "multipart/form-data; boundary=B").as_bytes())
        .unwrap();
    s.write_all(&body[..50_000]).unwrap();
    assert!(wait_until(IO_TIMEOUT, || names(&dir).len() == 1));
    let part = names(&dir).remove(0);
    let taken = part
        .strip_suffix(".part")
        .expect("a .part file")
        .to_string();
    std::fs::write(dir.join(&taken), b"precious").unwrap();
    s.write_all(&body[50_000..]).unwrap();
    let resp = Reader::new(s).read_response();
    assert!(
        std::fs::read(dir.join(&taken)).unwrap() == b"precious",
        "the existing file was replaced by the upload"
    );
    check_acknowledged(&dir, &resp, &[&c]);
    let text = resp.text();
    assert!(!text.contains(&taken), "{text}");
    assert_eq!(names(&dir).len(), 2, "{:?}", names(&dir));
}

/// `DiskFiles` whose `on_file_data` panics on a piece holding `PANIC`: a handler's bug.
struct Panicky<F>(DiskFiles<F>);

impl<F> multipart::MultipartHandler for Panicky<F>
where
    F: FnOnce(multipart::Upload) -> Response + Send + 'static,
{
    type Writer = <DiskFiles<F> as multipart::MultipartHandler>::Writer;
    fn on_field(&mut self, name: &str, value: &str) -> Result<(), Response> {
        self.0.on_field(name, value)
    }
    fn on_file_start(&mut self, part: &multipart::Part) -> Result<Self::Writer, Response> {
        self.0.on_file_start(part)
    }
    fn on_file_data(&mut self, w: &mut Self::Writer, data: &[u8]) -> Result<(), Response> {
        assert!(!data.windows(5).any(|w| w == b"PANIC"), "a handler's bug");
        self.0.on_file_data(w, data)
    }
    fn on_file_end(
        &mut self,
        part: multipart::Part,
        w: Self::Writer,
        size: u64,
    ) -> Result<(), Response> {
        self.0.on_file_end(part, w, size)
    }
    fn finish(self) -> Response {
        self.0.finish()
    }
    fn abort(self) {
        self.0.abort()
    }
}

/// A streamed upload whose handler panics on a piece: the client gets `500`, and what the
/// form stored so far (its first file, complete; the `.part` of the second) is removed —
/// the sink hears `abort` as when the form is refused, instead of being dropped with its
/// files left behind.
#[test]
fn an_upload_whose_handler_panics_mid_file_leaves_no_file() {
    let tmp = TempDir::new("upl-panic");
    let dir = tmp.0.join("up");
    let cfg = Config {
        max_body_bytes: 1024,
        max_upload_bytes: 1 << 30,
        ..test_config()
    };
    let d = dir.clone();
    let server = TestServer::with_config(cfg, move |req: &mut Request| {
        let files = DiskFiles::new(d.clone(), |_| Response::text("ok").with_status(201));
        multipart::receive(req, Limits::default(), Panicky(files))
    });
    let mut body = b"--B\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n".to_vec();
    body.extend_from_slice(&noise(100_000, 1));
    body.extend_from_slice(
        b"\r\n--B\r\nContent-Disposition: form-data; name=g; filename=b\r\n\r\n",
    );
    body.extend_from_slice(&noise(100_000, 2));
    let mut s = connect(server.addr);
    s.write_all(head(body.len() + 300_000, "multipart/form-data; boundary=B").as_bytes())
        .unwrap();
    s.write_all(&body).unwrap();
    assert!(
        wait_until(IO_TIMEOUT, || names(&dir).len() == 2),
        "{:?}",
        names(&dir)
    );
    let mut rest = b"PANIC".repeat(20);
    rest.resize(300_000, b'x');
    let _ = s.write_all(&rest);
    let resp = Reader::new(s).read_response();
    assert_eq!(resp.status, 500, "{}", resp.text());
    assert!(
        wait_until(IO_TIMEOUT, || names(&dir).is_empty()),
        "files of a form whose handler panicked are left: {:?}",
        names(&dir)
    );
}

/// The same with a form small enough to be buffered: the handler runs on its worker at
/// once, the panic is a `500`, and the form's first file is removed.
#[test]
fn a_buffered_form_whose_handler_panics_leaves_no_file() {
    let tmp = TempDir::new("upl-panic-buf");
    let dir = tmp.0.join("up");
    let d = dir.clone();
    let server = TestServer::with_config(test_config(), move |req: &mut Request| {
        let files = DiskFiles::new(d.clone(), |_| Response::text("ok").with_status(201));
        multipart::receive(req, Limits::default(), Panicky(files))
    });
    let mut body = b"--B\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n".to_vec();
    body.extend_from_slice(&noise(1000, 1));
    body.extend_from_slice(
        b"\r\n--B\r\nContent-Disposition: form-data; name=g; filename=b\r\n\r\nPANIC\r\n--B--\r\n",
    );
    let resp = post(server.addr, &body);
    assert_eq!(resp.status, 500, "{}", resp.text());
    assert_eq!(
        names(&dir),
        Vec::<String>::new(),
        "files of a form whose handler panicked"
    );
}

/// Stalled form uploads hold no more memory than `max_buffered_bytes`: what a streamed
/// form's sink keeps between pieces (its fields' values, up to `max_fields_bytes` per
/// form) is charged to the budget, and the upload whose fields the budget has no room
/// for is answered `503` and closed. Before, nothing charged them: 100 stalled demo
/// uploads held 73 MiB against a 64 MiB budget. Once the stalled clients leave, their
/// share comes back and a form is stored again.
#[test]
fn stalled_uploads_hold_their_fields_within_the_memory_budget() {
    let tmp = TempDir::new("upl-fields");
    let dir = tmp.0.join("up");
    let budget = 256 * 1024;
    let cfg = Config {
        workers: 2,
        max_body_bytes: 1024,
        max_upload_bytes: 1 << 30,
        max_buffered_bytes: budget,
        read_timeout: Duration::from_secs(30),
        ..test_config()
    };
    let limits = Limits {
        max_field_bytes: 1 << 20,
        max_fields_bytes: 1 << 20,
        ..Limits::default()
    };
    let store = dir.clone();
    let server = TestServer::with_config(cfg, move |req: &mut Request| {
        let files = DiskFiles::new(store.clone(), |u| {
            Response::text(format!("{} field(s)\n", u.fields.len())).with_status(201)
        });
        multipart::receive(req, limits, files)
    });
    let field = vec![b'a'; 64 * 1024];
    let mut open_form = b"--B\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n".to_vec();
    open_form.extend_from_slice(&field);
    // Eight forms, each 64 KiB into a field value, announced longer: each stalls there.
    let mut clients: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = connect(server.addr);
            let ct = "multipart/form-data; boundary=B";
            s.write_all(head(open_form.len() + 1000, ct).as_bytes())
                .unwrap();
            s.write_all(&open_form).unwrap();
            std::thread::sleep(Duration::from_millis(150)); // its sink has taken it
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (mut refused, mut stalled) = (0, 0);
    for s in &mut clients {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        let text = String::from_utf8_lossy(&got);
        if got.is_empty() {
            stalled += 1;
        } else {
            assert!(
                text.starts_with("HTTP/1.1 503 ") && text.contains("onnection: close"),
                "{text}"
            );
            refused += 1;
        }
    }
    assert!(
        refused >= 1 && stalled * field.len() <= budget,
        "{stalled} uploads stalled holding 64 KiB of fields each within a {budget}-byte budget, {refused} refused"
    );
    assert!(
        stalled >= 1,
        "the budget holds some forms: {refused} refused"
    );
    drop(clients);
    // Their share comes back: the same form, finished, is stored.
    let mut whole = open_form.clone();
    whole.extend_from_slice(b"\r\n--B--\r\n");
    let ok = wait_until(IO_TIMEOUT, || post(server.addr, &whole).status == 201);
    assert!(ok, "a form after the stalled ones left was not stored");
}

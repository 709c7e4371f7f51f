//! The worker side of forms without a socket: `receive` with `DiskFiles` and a probe
//! handler over buffered bodies (`TestRequest`) — what is stored, what is reported, what is
//! cleaned up, and that each handler ends with exactly one of `finish` and `abort`.

use super::*;

/// A fresh directory under the system's temporary one, removed on drop (pass or fail).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("h1-multipart-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn form_request(body: &[u8]) -> crate::Request {
    crate::testing::TestRequest::post("/up")
        .header("Content-Type", "multipart/form-data; boundary=B")
        .body(body.to_vec())
        .build()
}

/// Answers "<field>=<value>;…|<filename>:<size>:<id>;…" from what DiskFiles stored.
fn disk(dir: &std::path::Path) -> DiskFiles<impl FnOnce(Upload) -> Response + Send + 'static> {
    DiskFiles::new(dir, |u: Upload| {
        let fields: Vec<String> = u
            .fields
            .iter()
            .map(|f| format!("{}={}", f.name, f.value))
            .collect();
        let files: Vec<String> = u
            .files
            .iter()
            .map(|f| format!("{}:{}:{}", f.filename, f.size, f.id))
            .collect();
        Response::text(format!("{}|{}", fields.join(";"), files.join(";")))
    })
}

#[test]
fn disk_files_stores_files_under_generated_names_and_reports_the_clients() {
    let dir = TempDir::new("store");
    let body = b"--B\r\nContent-Disposition: form-data; name=note\r\n\r\nhi\r\n\
--B\r\nContent-Disposition: form-data; name=f; filename=\"../../etc/passwd\"\r\n\r\nroot:x:0:0\r\n\
--B\r\nContent-Disposition: form-data; name=g; filename=\"/tmp/x\"\r\n\r\n\r\n--B--";
    let resp = receive(&form_request(body), Limits::default(), disk(&dir));
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8(resp.body_bytes().to_vec()).unwrap();
    let (fields, files) = text.split_once('|').unwrap();
    assert_eq!(fields, "note=hi");
    let files: Vec<Vec<&str>> = files.split(';').map(|f| f.split(':').collect()).collect();
    assert_eq!((files[0][0], files[0][1]), ("../../etc/passwd", "10"));
    assert_eq!((files[1][0], files[1][1]), ("/tmp/x", "0"));
    let ids = [files[0][2], files[1][2]];
    for id in ids {
        assert!(
            id.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'),
            "{id}"
        );
    }
    let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(
        files_in(&dir),
        want,
        "only the generated names, no .part left"
    );
    assert_eq!(std::fs::read(dir.join(ids[0])).unwrap(), b"root:x:0:0");
}

#[test]
fn a_refused_form_leaves_no_file_behind() {
    let good_file = "--B\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\nstored\r\n";
    let table: Vec<(String, u16, Limits)> = vec![
        // malformed after a complete file
        (
            format!("{good_file}--B\r\n\r\n\r\n--B--"),
            400,
            Limits::default(),
        ),
        // ends inside a second file
        (
            format!(
                "{good_file}--B\r\nContent-Disposition: form-data; name=g; filename=b\r\n\r\nhalf"
            ),
            400,
            Limits::default(),
        ),
        // over max_file_bytes inside a second file
        (
            format!(
                "{good_file}--B\r\nContent-Disposition: form-data; name=g; filename=b\r\n\r\n0123456789\r\n--B--"
            ),
            413,
            Limits {
                max_file_bytes: 8,
                ..Limits::default()
            },
        ),
    ];
    for (body, status, limits) in table {
        let dir = TempDir::new("refused");
        let resp = receive(&form_request(body.as_bytes()), limits, disk(&dir));
        assert_eq!(resp.status(), status, "{body:?}");
        assert_eq!(files_in(&dir), Vec::<String>::new(), "{body:?}");
    }
}

/// Counts what happened to it; refuses files named "no".
struct Probe(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl MultipartHandler for Probe {
    type Writer = std::io::Sink;
    fn on_field(&mut self, name: &str, value: &str) -> Result<(), Response> {
        self.0.lock().unwrap().push(format!("field {name}={value}"));
        Ok(())
    }
    fn on_file_start(&mut self, part: &Part) -> Result<Self::Writer, Response> {
        if part.filename.as_deref() == Some("no") {
            return Err(Response::error(422, "not that one\n"));
        }
        Ok(std::io::sink())
    }
    fn on_file_end(&mut self, part: Part, _: Self::Writer, size: u64) -> Result<(), Response> {
        self.0
            .lock()
            .unwrap()
            .push(format!("file {}:{size}", part.name));
        Ok(())
    }
    fn finish(self) -> Response {
        self.0.lock().unwrap().push("finish".into());
        Response::text("ok")
    }
    fn abort(self) {
        self.0.lock().unwrap().push("abort".into());
    }
}

#[test]
fn a_handler_hears_each_part_then_finish_or_abort_exactly_once() {
    let file = |name: &str| {
        format!("--B\r\nContent-Disposition: form-data; name=f; filename={name}\r\n\r\nxyz\r\n")
    };
    let table: Vec<(String, &str, u16, &[&str])> = vec![
        (
            format!(
                "--B\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n{}--B--",
                file("ok")
            ),
            "multipart/form-data; boundary=B",
            200,
            &["field a=1", "file f:3", "finish"],
        ),
        (
            format!("{}--B--", file("no")),
            "multipart/form-data; boundary=B",
            422,
            &["abort"],
        ),
        (
            format!("{}--B--", file("ok")),
            "text/plain",
            415,
            &["abort"],
        ),
        (
            format!("{}--B--", file("ok")),
            "multipart/form-data",
            400,
            &["abort"],
        ),
    ];
    for (body, ct, status, seen) in table {
        let log = std::sync::Arc::default();
        let req = crate::testing::TestRequest::post("/up")
            .header("Content-Type", ct)
            .body(body.clone())
            .build();
        let resp = receive(&req, Limits::default(), Probe(std::sync::Arc::clone(&log)));
        assert_eq!(resp.status(), status, "{body:?}");
        assert_eq!(*log.lock().unwrap(), seen, "{body:?}");
    }
}

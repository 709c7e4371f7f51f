//! [`DiskFiles`]: a [`MultipartHandler`] that writes each file of a form to a directory
//! under a generated name, and keeps the fields.
//!
//! Runs on workers, one body window per call; holds a 64 KiB write buffer per upload,
//! never a file. Never uses a client's filename as a path.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, ErrorKind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::sink::write_failed;
use super::{Field, MultipartHandler, Part};
use crate::response::Response;

/// The write buffer of a file in progress: windows are larger, so most writes go straight
/// through; small pieces (around a near-boundary) are gathered.
const WRITE_BUFFER: usize = 64 * 1024;

/// A file [`DiskFiles`] stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
pub struct StoredFile {
    /// The form field's name.
    pub name: String,
    /// The client's name for the file: reported, never used as a path.
    pub filename: String,
    /// The part's `Content-Type`, when given.
    pub content_type: Option<String>,
    /// Its length in bytes.
    pub size: u64,
    /// The generated name it was stored under (hex digits and `-`).
    pub id: String,
    /// Where it is: the directory joined with `id`.
    pub path: PathBuf,
}

/// What a form held once [`DiskFiles`] stored it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
pub struct Upload {
    /// The fields, in body order.
    pub fields: Vec<Field>,
    /// The files, in body order.
    pub files: Vec<StoredFile>,
}

/// Stores each file of a form in `dir` under a generated name (`id`), and answers with
/// `respond(upload)` once the form is complete.
///
/// A file is written as `<id>.part` and renamed to `<id>` when its part ends, so a crash
/// leaves only `.part` files behind; a file already named `<id>` is never replaced (the
/// upload takes another id). When the form is refused or the upload ends early,
/// every file of this form is removed. The directory is created when the first file
/// arrives. Files are not `fsync`ed.
///
/// ```
/// use h1server::multipart::DiskFiles;
/// use h1server::Response;
///
/// let files = DiskFiles::new("./data/uploads", |upload| {
///     Response::text(format!("{} files\n", upload.files.len())).with_status(201)
/// });
/// # let _ = files;
/// ```
pub struct DiskFiles<F> {
    /// Where files go.
    dir: PathBuf,
    /// Makes the answer from what was stored.
    respond: F,
    /// What was received so far.
    upload: Upload,
    /// The file being written: its `.part` path, renamed on its end, removed on abort.
    partial: Option<PathBuf>,
}

impl<F> DiskFiles<F>
where
    F: FnOnce(Upload) -> Response + Send + 'static,
{
    /// Files go to `dir`; `respond` makes the answer from what the form held.
    pub fn new(dir: impl Into<PathBuf>, respond: F) -> Self {
        DiskFiles {
            dir: dir.into(),
            respond,
            upload: Upload::default(),
            partial: None,
        }
    }

    /// A new file `<dir>/<id>.part`, created (never an existing one).
    fn create(&self) -> std::io::Result<(PathBuf, File)> {
        fs::create_dir_all(&self.dir)?;
        loop {
            let id = new_id();
            let path = self.dir.join(format!("{id}.part"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => return Ok((path, f)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A name no other upload of this process has, and unlikely in any other: the time in
/// nanoseconds, the process id, a counter. Only hex digits and `-`.
fn new_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:016x}-{:x}-{n:x}", std::process::id())
}

/// Gives the complete file `<id>.part` its final name `<id>` — never replacing a file
/// that already has it (another process sharing the directory, an operator's file): then
/// it takes a new id. A hard link, then the `.part` name removed; where the file system
/// has no hard links, a rename (which would replace).
fn publish(partial: &std::path::Path) -> std::io::Result<PathBuf> {
    let mut done = partial.with_extension("");
    for _ in 0..16 {
        match fs::hard_link(partial, &done) {
            Ok(()) => {
                // Both names are the complete file: a `.part` left here is only a name.
                let _ = fs::remove_file(partial);
                return Ok(done);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                done = partial.with_file_name(new_id());
            }
            Err(_) => {
                fs::rename(partial, &done)?;
                return Ok(done);
            }
        }
    }
    Err(std::io::Error::new(
        ErrorKind::AlreadyExists,
        "no free name for an uploaded file",
    ))
}

impl<F> MultipartHandler for DiskFiles<F>
where
    F: FnOnce(Upload) -> Response + Send + 'static,
{
    type Writer = BufWriter<File>;

    fn on_field(&mut self, name: &str, value: &str) -> Result<(), Response> {
        self.upload.fields.push(Field {
            name: name.to_owned(),
            value: value.to_owned(),
        });
        Ok(())
    }

    fn on_file_start(&mut self, _part: &Part) -> Result<Self::Writer, Response> {
        let (path, file) = self.create().map_err(write_failed)?;
        self.partial = Some(path);
        Ok(BufWriter::with_capacity(WRITE_BUFFER, file))
    }

    fn on_file_end(&mut self, part: Part, writer: Self::Writer, size: u64) -> Result<(), Response> {
        writer
            .into_inner()
            .map_err(|e| write_failed(e.into_error()))?;
        let partial = self.partial.take().expect("a file is in progress");
        let done = match publish(&partial) {
            Ok(done) => done,
            Err(e) => {
                let _ = fs::remove_file(&partial);
                return Err(write_failed(e));
            }
        };
        let id = done
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.upload.files.push(StoredFile {
            name: part.name,
            filename: part.filename.unwrap_or_default(),
            content_type: part.content_type,
            size,
            id,
            path: done,
        });
        Ok(())
    }

    fn finish(self) -> Response {
        (self.respond)(self.upload)
    }

    fn abort(self) {
        let stored = self.upload.files.iter().map(|f| &f.path);
        for path in self.partial.iter().chain(stored) {
            if let Err(e) = fs::remove_file(path) {
                log::warn!(
                    "multipart: removing {} of a refused upload: {e}",
                    path.display()
                );
            }
        }
    }
}

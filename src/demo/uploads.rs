//! `POST /api/v1/uploads`: a `multipart/form-data` form whose files are streamed to
//! `DEMO_UPLOAD_DIR` (default `./data/uploads`) under generated names; the answer is `201`
//! with JSON listing the fields and the stored files (name, filename, content type, size,
//! id, path), or `400 {"error":"the form has no file"}` when it held none (seed 001's
//! `uploadHandler`: "Can't get file").
//!
//! Bodies over `max_body_bytes` reach this route piece by piece: the binary sets
//! `max_upload_bytes` to [`MAX_UPLOAD_BYTES`] unless told otherwise, and every other route
//! still refuses such bodies with `413` ([`refuse_streamed_elsewhere`]).

use std::path::PathBuf;

use h1server::multipart::{self, DiskFiles, Limits};
use h1server::{Handler, Next, Request, Response, status};

/// The route (in the API group: bearer auth, rate limit, idempotency keys).
pub const PATH: &str = "/api/v1/uploads";
/// Where files go.
pub const DIR_ENV: &str = "DEMO_UPLOAD_DIR";
/// Where files go when `DEMO_UPLOAD_DIR` is not set.
pub const DEFAULT_DIR: &str = "./data/uploads";
/// The largest upload: the binary's default `max_upload_bytes`, and this route's file
/// and form limits.
pub const MAX_UPLOAD_BYTES: u64 = 1 << 30;

/// `DEMO_UPLOAD_DIR`, or `./data/uploads`.
pub fn dir_from_env() -> PathBuf {
    match std::env::var(DIR_ENV) {
        Ok(d) if !d.trim().is_empty() => PathBuf::from(d),
        _ => PathBuf::from(DEFAULT_DIR),
    }
}

/// This route's form limits: files up to [`MAX_UPLOAD_BYTES`], a few parts, small fields.
pub fn limits() -> Limits {
    Limits {
        max_parts: 32,
        max_file_bytes: MAX_UPLOAD_BYTES,
        max_total_bytes: MAX_UPLOAD_BYTES,
        ..Limits::default()
    }
}

/// Stores the form's files in `dir`; answers `201` and what was stored, or `400` when
/// the form has no file (nothing was created).
pub fn handler(dir: PathBuf) -> impl Handler {
    move |req: &mut Request| {
        let files = DiskFiles::new(dir.clone(), |upload| {
            if upload.files.is_empty() {
                return Response::json(&serde_json::json!({ "error": "the form has no file" }))
                    .with_status(status::BAD_REQUEST);
            }
            Response::json(&upload).with_status(status::CREATED)
        });
        multipart::receive(req, limits(), files)
    }
}

/// A body over `max_body_bytes` arrives unread (`Request::streamed_body_len`): only the
/// upload route reads it; anywhere else it is refused with `413` as it was before uploads
/// (and the connection closes, the body unread).
pub fn refuse_streamed_elsewhere(req: &mut Request, next: Next<'_>) -> Response {
    if req.streamed_body_len().is_some() && req.path() != PATH {
        return Response::error(status::CONTENT_TOO_LARGE, "Request body too large\n");
    }
    next.run(req)
}

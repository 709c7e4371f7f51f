//! The users API of the seeds (`/api/v1/users`), on whatever [`UsersStore`] the demo
//! opened: the handlers validate and answer, the store keeps the rows.
//!
//! A store failure never leaks its details to the client: `503` when the database is
//! busy or unreachable, `500` otherwise, with the detail in the log.
//!
//! Conditional requests (RFC 9110 §13, `h1server::conditional`): `GET /users/{id}` (and
//! HEAD) sends a strong `ETag` — a hash of the user's version and JSON, so it changes at
//! every update — and `Last-Modified`, and answers `304` to a matching `If-None-Match`
//! or a satisfied `If-Modified-Since`. `PUT /users/{id}` evaluates `If-Match` /
//! `If-Unmodified-Since` (and `If-None-Match`) before anything else and answers `412`
//! without writing when one fails; the write itself is conditional on the version the
//! preconditions were evaluated on, so a concurrent update in between is a `412` too,
//! never a lost update. A missing user is `404` whatever the preconditions (§13.2.1:
//! they are ignored when the answer without them would not be 2xx or 412; this PUT never
//! creates). A PUT's `200` carries no `ETag` (§9.3.4: the stored representation is not
//! the request's content as sent): a client GETs the new one.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use h1server::conditional::{self, Validators, Verdict};
use h1server::router::Group;
use h1server::{Request, Response, status};

use super::store::{DbError, NewUser, Updated, User, UsersStore};

/// The page size when the client names none.
const DEFAULT_LIMIT: u32 = 20;
/// The largest page.
const MAX_LIMIT: u32 = 100;

#[derive(Debug)]
struct UserInput {
    name: String,
    email: String,
}

/// The fields a client sends, in the order they are checked.
const FIELDS: [&str; 2] = ["name", "email"];

impl UserInput {
    /// `value` as a `UserInput`, or the `400` naming each field that is missing or not a
    /// string (serde's own message names a line and column, not the field). Other fields
    /// are ignored.
    fn from_json(value: serde_json::Value) -> Result<UserInput, Response> {
        let serde_json::Value::Object(mut object) = value else {
            return Err(field_errors(
                "invalid JSON body: expected an object",
                Vec::new(),
                status::BAD_REQUEST,
            ));
        };
        let mut problems = Vec::new();
        let [name, email] = FIELDS.map(|field| match object.remove(field) {
            Some(serde_json::Value::String(s)) => s,
            Some(_) => {
                problems.push((field, "must be a string"));
                String::new()
            }
            None => {
                problems.push((field, "is required"));
                String::new()
            }
        });
        if !problems.is_empty() {
            return Err(field_errors(
                "invalid JSON fields",
                problems,
                status::BAD_REQUEST,
            ));
        }
        Ok(UserInput { name, email })
    }

    /// Validation errors as (field, message), empty when valid.
    fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut p = Vec::new();
        if self.name.trim().is_empty() {
            p.push(("name", "must not be empty"));
        }
        if !self.email.contains('@') {
            p.push(("email", "must be an email address"));
        }
        p
    }
}

fn field_errors(error: &str, problems: Vec<(&str, &str)>, code: u16) -> Response {
    let fields: Vec<_> = problems
        .into_iter()
        .map(|(f, m)| serde_json::json!({ "field": f, "message": m }))
        .collect();
    Response::json(&serde_json::json!({ "error": error, "fields": fields })).with_status(code)
}

/// A user's strong entity tag: a hash of its version and its JSON.
fn etag_of(user: &User) -> String {
    let json = serde_json::to_string(user).unwrap_or_default();
    conditional::strong_etag_of(format!("{}:{json}", user.version).as_bytes())
}

/// When the user was last written, if the row knows.
fn last_modified(user: &User) -> Option<SystemTime> {
    let ms = u64::try_from(user.updated_ms?).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

fn precondition_failed() -> Response {
    Response::json(&serde_json::json!({ "error": "precondition failed" }))
        .with_status(status::PRECONDITION_FAILED)
}

fn not_found(id: u64) -> Response {
    Response::json(&serde_json::json!({ "error": format!("user {id} not found") }))
        .with_status(status::NOT_FOUND)
}

/// The answer to a store failure; the detail goes to the log only.
fn db_failed(req: &Request, e: &DbError) -> Response {
    let code = match e {
        DbError::Busy(_) => {
            log::warn!("conn={} users store: {e}", req.conn_id());
            status::SERVICE_UNAVAILABLE
        }
        DbError::Unavailable(_) => {
            log::error!("conn={} users store: {e}", req.conn_id());
            status::SERVICE_UNAVAILABLE
        }
        DbError::Failed(_) => {
            log::error!("conn={} users store: {e}", req.conn_id());
            status::INTERNAL_SERVER_ERROR
        }
    };
    let resp = Response::json(&serde_json::json!({ "error": e.public() })).with_status(code);
    if code == status::SERVICE_UNAVAILABLE {
        resp.with_header("Retry-After", "1")
    } else {
        resp
    }
}

fn id_of(req: &Request) -> Result<u64, Response> {
    req.param("id").and_then(|s| s.parse().ok()).ok_or_else(|| {
        Response::json(&serde_json::json!({ "error": "id must be a number" }))
            .with_status(status::BAD_REQUEST)
    })
}

/// The body as JSON, or the library's `415` (wrong content type) / `400` (not JSON)
/// with its message as this API's JSON error, `{"error": "…"}`, like every other error
/// of the users API (the library's answer is plain text, for any service).
fn json_body(req: &Request) -> Result<serde_json::Value, Response> {
    req.json().map_err(|plain| {
        let message = String::from_utf8_lossy(plain.body_bytes())
            .trim_end()
            .to_string();
        Response::json(&serde_json::json!({ "error": message })).with_status(plain.status())
    })
}

/// The JSON body as a valid `NewUser`, or the answer saying what is wrong with it
/// (415 wrong content type, 400 bad JSON or a field missing or not a string, naming the
/// field, 422 invalid fields), always as JSON.
fn valid_input(req: &Request) -> Result<NewUser, Response> {
    let input = UserInput::from_json(json_body(req)?)?;
    let problems = input.problems();
    if problems.is_empty() {
        Ok(NewUser {
            name: input.name,
            email: input.email,
        })
    } else {
        Err(field_errors(
            "validation failed",
            problems,
            status::UNPROCESSABLE_CONTENT,
        ))
    }
}

/// `?limit=&offset=`: limit 1..=100 (default 20), offset ≥ 0 (default 0); a bad value
/// (also an empty one) is `400` naming the parameter.
fn page_of(req: &Request) -> Result<(u32, u64), Response> {
    let mut problems = Vec::new();
    let limit = match req.query_param("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                problems.push(("limit", "must be an integer from 1 to 100"));
                DEFAULT_LIMIT
            }
        },
    };
    let offset = match req.query_param("offset") {
        // At most i64::MAX: what a database's OFFSET takes.
        None => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => n as u64,
            _ => {
                problems.push(("offset", "must be an integer ≥ 0"));
                0
            }
        },
    };
    if problems.is_empty() {
        Ok((limit, offset))
    } else {
        Err(field_errors(
            "invalid query parameter",
            problems,
            status::BAD_REQUEST,
        ))
    }
}

pub fn routes(api: &mut Group<'_>, users: &Arc<dyn UsersStore>) {
    let u = users.clone();
    api.get("/users", move |req: &mut Request| {
        let (limit, offset) = match page_of(req) {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        match u.list(limit, offset) {
            Ok(page) => Response::json(&serde_json::json!({
                "users": page.users,
                "count": page.users.len(),
                "total": page.total,
                "limit": limit,
                "offset": offset,
            })),
            Err(e) => db_failed(req, &e),
        }
    });
    let u = users.clone();
    api.post("/users", move |req: &mut Request| {
        let input = match valid_input(req) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        match u.create(&input) {
            Ok(user) => Response::json(&user)
                .with_status(status::CREATED)
                .with_header("Location", format!("/api/v1/users/{}", user.id)),
            Err(e) => db_failed(req, &e),
        }
    });
    let u = users.clone();
    api.get("/users/{id}", move |req: &mut Request| {
        let id = match id_of(req) {
            Ok(id) => id,
            Err(resp) => return resp,
        };
        match u.get(id) {
            Ok(Some(user)) => {
                let etag = etag_of(&user);
                let v = Validators::new(Some(&etag), last_modified(&user));
                conditional::respond(req, &v, || {
                    Response::json(&user).with_header("Cache-Control", "private, no-cache")
                })
            }
            Ok(None) => not_found(id),
            Err(e) => db_failed(req, &e),
        }
    });
    let u = users.clone();
    api.put("/users/{id}", move |req: &mut Request| {
        let id = match id_of(req) {
            Ok(id) => id,
            Err(resp) => return resp,
        };
        // Preconditions first (§13.2.2: before the method is performed or its content
        // read), on the user as it is now; with none, the write is unconditional.
        let if_version = if conditional::has_preconditions(req) {
            let user = match u.get(id) {
                Ok(Some(user)) => user,
                Ok(None) => return not_found(id),
                Err(e) => return db_failed(req, &e),
            };
            let etag = etag_of(&user);
            let v = Validators::new(Some(&etag), last_modified(&user));
            if conditional::evaluate(req, &v) != Verdict::Proceed {
                return precondition_failed();
            }
            Some(user.version)
        } else {
            None
        };
        let input = match valid_input(req) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        match u.update(id, &input, if_version) {
            Ok(Updated::Done(user)) => Response::json(&user),
            Ok(Updated::Missing) => not_found(id),
            // Written by another request since the preconditions were evaluated.
            Ok(Updated::Changed) => precondition_failed(),
            Err(e) => db_failed(req, &e),
        }
    });
}

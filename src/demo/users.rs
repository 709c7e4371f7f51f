//! The users API of the seeds (`/api/v1/users`), on an in-memory store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use h1server::router::Group;
use h1server::{Request, Response, status};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize)]
pub struct User {
    id: u64,
    name: String,
    email: String,
}

#[derive(Debug, Deserialize)]
struct UserInput {
    name: String,
    email: String,
}

impl UserInput {
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

/// The store: users by id.
#[derive(Default)]
pub struct Users {
    inner: Mutex<(u64, BTreeMap<u64, User>)>,
}

fn invalid(problems: Vec<(&str, &str)>) -> Response {
    let fields: Vec<_> = problems
        .into_iter()
        .map(|(f, m)| serde_json::json!({ "field": f, "message": m }))
        .collect();
    Response::json(&serde_json::json!({ "error": "validation failed", "fields": fields }))
        .with_status(status::UNPROCESSABLE_CONTENT)
}

fn not_found(id: u64) -> Response {
    Response::json(&serde_json::json!({ "error": format!("user {id} not found") }))
        .with_status(status::NOT_FOUND)
}

fn id_of(req: &Request) -> Result<u64, Response> {
    req.param("id").and_then(|s| s.parse().ok()).ok_or_else(|| {
        Response::json(&serde_json::json!({ "error": "id must be a number" }))
            .with_status(status::BAD_REQUEST)
    })
}

/// The JSON body as a valid `UserInput`, or the answer saying what is wrong with it
/// (415 wrong content type, 400 bad JSON, 422 invalid fields).
fn valid_input(req: &Request) -> Result<UserInput, Response> {
    let input: UserInput = req.json()?;
    let problems = input.problems();
    if problems.is_empty() {
        Ok(input)
    } else {
        Err(invalid(problems))
    }
}

pub fn routes(api: &mut Group<'_>, users: &Arc<Users>) {
    let u = users.clone();
    api.get("/users", move |_: &mut Request| {
        let g = u.inner.lock().unwrap_or_else(|e| e.into_inner());
        let list: Vec<&User> = g.1.values().collect();
        Response::json(&serde_json::json!({ "users": list, "count": list.len() }))
    });
    let u = users.clone();
    api.post("/users", move |req: &mut Request| {
        let input = match valid_input(req) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        let mut g = u.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        let user = User {
            id: g.0,
            name: input.name,
            email: input.email,
        };
        g.1.insert(user.id, user.clone());
        Response::json(&user)
            .with_status(status::CREATED)
            .with_header("Location", format!("/api/v1/users/{}", user.id))
    });
    let u = users.clone();
    api.get("/users/{id}", move |req: &mut Request| {
        let id = match id_of(req) {
            Ok(id) => id,
            Err(resp) => return resp,
        };
        let g = u.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.1.get(&id) {
            Some(user) => Response::json(user),
            None => not_found(id),
        }
    });
    let u = users.clone();
    api.put("/users/{id}", move |req: &mut Request| {
        let id = match id_of(req) {
            Ok(id) => id,
            Err(resp) => return resp,
        };
        let input = match valid_input(req) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        let mut g = u.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.1.get_mut(&id) {
            Some(user) => {
                user.name = input.name;
                user.email = input.email;
                Response::json(&*user)
            }
            None => not_found(id),
        }
    });
}

//! `GET /`: the page a person opens in a browser — the service's version and route table,
//! the live tick stream of `/events`, and a form that creates users through the API.
//! It never puts a secret in the page: the token field is prefilled only with the public
//! development token, and everyone who does not ask for HTML gets the old text line.
//!
//! The HTML, CSS and JS live beside this file and are compiled in (`include_str!`): no
//! CDN, no build step. CSS and JS are served as their own routes so the page can run
//! under a Content-Security-Policy without `'unsafe-inline'`.

use std::sync::OnceLock;

use h1server::conditional::{self, Validators};
use h1server::{Request, Response};

use super::DEV_TOKEN;

const HTML: &str = include_str!("page/index.html");
const CSS: &str = include_str!("page/page.css");
const JS: &str = include_str!("page/page.js");

/// What `GET /` answers clients that do not want HTML (curl, probes, load tools).
const TEXT: &str = "parcel service is reachable\n";

/// Everything is same-origin; nothing inline, no form ever submitted natively (the inputs
/// have no `name` either, so a page without JS cannot put the token in a URL).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// The rendered page, built once at start-up.
pub struct Page {
    /// `index.html` with the version and the token field filled in.
    html: String,
}

impl Page {
    /// Renders the page for `version`. `token` is the API token the server accepts: the
    /// field is prefilled only when it is [`DEV_TOKEN`], which the README already prints;
    /// any other token is a secret and stays out of the page (the person types it).
    pub fn new(version: &str, token: &str) -> Self {
        let (value, hint) = if token == DEV_TOKEN {
            (
                r#" value="dev-token""#,
                "Prefilled: this server runs with the development token (DEMO_API_TOKEN is unset).",
            )
        } else {
            (
                "",
                "The token this server was started with (DEMO_API_TOKEN); it is sent only as a bearer header.",
            )
        };
        let html = HTML
            .replace("{{version}}", &escape(version))
            .replace("{{token_value}}", value)
            .replace("{{token_hint}}", hint);
        Page { html }
    }

    /// `GET /`: the page when the client asks for HTML, the text line otherwise.
    pub fn index(&self, req: &Request) -> Response {
        let resp = if wants_html(req.header("Accept")) {
            Response::html(self.html.clone())
                .with_header("Content-Security-Policy", CSP)
                .with_header("Cache-Control", "no-cache")
        } else {
            Response::text(TEXT)
        };
        // The answer depends on Accept: a cache must not give curl's answer to a browser.
        resp.with_header("Vary", "Accept")
    }

    /// `GET /assets/page.css`.
    pub fn css(req: &mut Request) -> Response {
        static TAG: OnceLock<String> = OnceLock::new();
        asset(req, CSS, "text/css; charset=utf-8", &TAG)
    }

    /// `GET /assets/page.js`.
    pub fn js(req: &mut Request) -> Response {
        static TAG: OnceLock<String> = OnceLock::new();
        asset(req, JS, "text/javascript; charset=utf-8", &TAG)
    }
}

/// A compiled-in asset with a strong `ETag` (a hash of its bytes, computed once):
/// `no-cache` makes a browser revalidate it at each load, and a current copy is `304`.
fn asset(
    req: &Request,
    body: &'static str,
    content_type: &'static str,
    tag: &OnceLock<String>,
) -> Response {
    let etag = tag.get_or_init(|| conditional::strong_etag_of(body.as_bytes()));
    conditional::respond(req, &Validators::new(Some(etag), None), || {
        Response::new(200)
            .with_header("Content-Type", content_type)
            .with_body(body.as_bytes())
            .with_header("Cache-Control", "no-cache")
            .with_header("X-Content-Type-Options", "nosniff")
    })
}

/// Whether an `Accept` header lists `text/html` with a non-zero quality (RFC 9110
/// §12.5.1: "a value of 0 means not acceptable"). `*/*` alone is not enough: curl sends
/// it, and browsers name `text/html` explicitly.
fn wants_html(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            media.eq_ignore_ascii_case("text/html")
                && !parts.any(|p| {
                    p.split_once('=').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("q")
                            && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
                    })
                })
        })
    })
}

/// `s` safe to put in HTML text or a quoted attribute.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_only_for_clients_that_name_it() {
        for (accept, html) in [
            (None, false),
            (Some("*/*"), false),
            (Some("application/json"), false),
            (Some("text/*"), false),
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                true,
            ),
            (Some("TEXT/HTML"), true),
            (Some("text/plain, text/html;q=0.5"), true),
            (Some("text/html;q=0"), false),
            (Some("text/html; q=0.0, */*"), false),
            (Some("text/htmlx"), false),
        ] {
            assert_eq!(wants_html(accept), html, "{accept:?}");
        }
    }

    #[test]
    fn the_token_field_is_prefilled_only_with_the_development_token() {
        let dev = Page::new("1.2.3", DEV_TOKEN).html;
        assert!(dev.contains(r#"value="dev-token""#), "{dev}");
        let prod = Page::new("1.2.3", "s3cret-prod").html;
        assert!(!prod.contains("s3cret-prod") && !prod.contains("value="));
        assert!(!prod.contains("{{"), "every placeholder filled");
        assert!(prod.contains("v1.2.3"));
    }

    #[test]
    fn the_version_is_escaped() {
        assert!(Page::new("<b>&", "x").html.contains("v&lt;b&gt;&amp;"));
    }
}

//! The web dashboard: a single-page application served at `/`.
//!
//! Every asset (HTML, CSS, JavaScript, icon) lives in `crates/clew-server/ui/`
//! and is embedded in the binary at build time ([`Assets`]), so the
//! dashboard works with no internet access. The page reads the JSON API
//! under `/v1` like any other client; it builds the DOM from text nodes only
//! (no `innerHTML`), and every response carries a Content-Security-Policy
//! that allows scripts from the server itself only, so a value that came
//! from a job (data, tags, error messages, metadata) renders as text.
//!
//! Routes (outside the token rule, which the page itself follows):
//! * `GET /` — the page; `GET /ui/{file}` — its assets.
//! * `GET /ui/session` — `{"auth_required", "logged_in", "csrf"}`; without
//!   an API token it issues a session cookie to the browser.
//! * `POST /ui/login` (`{"token": "..."}`) — with the right token, issues a
//!   session cookie; `POST /ui/logout` ends it.
//!
//! Sessions and the CSRF rule: [`session`].

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::api::ApiJson;
use crate::auth::constant_time_eq;
use crate::error::ApiError;
use crate::state::AppState;

pub mod session;

/// The dashboard's files, embedded at build time.
#[derive(rust_embed::Embed)]
#[folder = "ui/"]
pub struct Assets;

/// The Content-Security-Policy every response carries.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The dashboard routes (outside the token rule).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/session", get(session_info))
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/{*file}", get(asset))
}

async fn index() -> Response {
    serve_file("index.html")
}

async fn asset(Path(file): Path<String>) -> Response {
    serve_file(&file)
}

fn serve_file(name: &str) -> Response {
    let Some(file) = Assets::get(name) else {
        return ApiError::not_found(format!("no dashboard file {name:?}")).into_response();
    };
    let mime = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, mime),
            // The files change with the binary; always revalidate.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        file.data.into_owned(),
    )
        .into_response()
}

/// Middleware: security headers on every response (the API's too).
pub async fn security_headers(req: Request<Body>, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

async fn session_info(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let auth_required = state.config().token.is_some();
    if let Some(id) = session::session_id(&state, &headers) {
        let csrf = state.session_key().csrf_token(id);
        return Json(json!({"auth_required": auth_required, "logged_in": true, "csrf": csrf}))
            .into_response();
    }
    if auth_required {
        return Json(json!({"auth_required": true, "logged_in": false, "csrf": null}))
            .into_response();
    }
    issue(&state, auth_required)
}

/// A new session: its cookie and its CSRF token.
fn issue(state: &AppState, auth_required: bool) -> Response {
    let value = state.session_key().issue(session::unix_now());
    let id = state
        .session_key()
        .verify(&value, session::unix_now())
        .expect("a session just issued verifies")
        .to_owned();
    let csrf = state.session_key().csrf_token(&id);
    (
        [(header::SET_COOKIE, session::set_cookie(&value))],
        Json(json!({"auth_required": auth_required, "logged_in": true, "csrf": csrf})),
    )
        .into_response()
}

/// Body of `POST /ui/login`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The server's API token.
    pub token: String,
}

async fn login(State(state): State<AppState>, ApiJson(body): ApiJson<LoginBody>) -> Response {
    match state.config().token.as_deref() {
        Some(token) if constant_time_eq(body.token.trim().as_bytes(), token.as_bytes()) => {
            issue(&state, true)
        }
        Some(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "invalid API token",
        )
        .into_response(),
        None => issue(&state, false),
    }
}

async fn logout() -> Response {
    (
        [(header::SET_COOKIE, session::clear_cookie())],
        Json(json!({"logged_out": true})),
    )
        .into_response()
}

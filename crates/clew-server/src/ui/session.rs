//! Dashboard sessions and the cross-site request forgery (CSRF) rule.
//!
//! # Sessions
//! A browser holds a session cookie `clew_session=<id>.<sig>`: `id` is
//! random text and the time it was issued, `sig` an HMAC-SHA256 of `id`
//! under the server's session key. Sessions are stateless (nothing is kept
//! on the server), expire after [`SESSION_SECONDS`], and are `HttpOnly`,
//! `SameSite=Strict`.
//!
//! * Without an API token, `GET /ui/session` issues a session to any
//!   browser that asks (everyone may use the API anyway); the session
//!   exists to carry the CSRF token.
//! * With an API token, a session is issued only by `POST /ui/login` with
//!   that token, and a valid session cookie then passes the token rule
//!   ([`crate::auth`]) like the bearer token does. The session key is
//!   derived from the token, so every server sharing the token accepts the
//!   session, and changing the token ends every session.
//!
//! # CSRF
//! Every state-changing request (any method but GET, HEAD, OPTIONS) that
//! comes from a browser — it carries the session cookie, an `Origin`
//! header or a `Sec-Fetch-Site` header — must carry `X-CSRF-Token` equal to
//! the HMAC of the session id under the session key (`csrf_token`), and
//! its `Origin` (when sent) must be the server itself and its
//! `Sec-Fetch-Site` not `cross-site`, else it is refused with 403 `csrf`. A page on another site can neither read
//! that token nor set the header without a CORS preflight, which the server
//! never grants. Requests with a valid bearer token, and programmatic
//! clients (which send none of those headers), are not affected.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::{bearer_ok, constant_time_eq};
use crate::error::ApiError;
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "clew_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts, in seconds (one day).
pub const SESSION_SECONDS: u64 = 24 * 3600;

/// The key that signs session cookies and CSRF tokens.
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// The key for a server: derived from the API token when there is one
    /// (so servers sharing a token share sessions), else random.
    pub fn for_token(token: Option<&str>) -> SessionKey {
        match token {
            Some(t) => SessionKey(hmac(t.as_bytes(), b"clew dashboard session key v1")),
            None => SessionKey(rand::random()),
        }
    }

    /// A new session cookie value, issued at `now` (unix seconds).
    pub fn issue(&self, now: u64) -> String {
        let nonce: [u8; 16] = rand::random();
        let id = format!("{}-{now}", hex(&nonce));
        let sig = hex(&hmac(&self.0, format!("session:{id}").as_bytes()));
        format!("{id}.{sig}")
    }

    /// The session id of a cookie value, if its signature holds and it has
    /// not expired at `now`.
    pub fn verify<'a>(&self, value: &'a str, now: u64) -> Option<&'a str> {
        let (id, sig) = value.rsplit_once('.')?;
        let want = hex(&hmac(&self.0, format!("session:{id}").as_bytes()));
        if !constant_time_eq(sig.as_bytes(), want.as_bytes()) {
            return None;
        }
        let issued: u64 = id.rsplit_once('-')?.1.parse().ok()?;
        (now >= issued && now - issued < SESSION_SECONDS).then_some(id)
    }

    /// The CSRF token of session `id`.
    pub fn csrf_token(&self, id: &str) -> String {
        hex(&hmac(&self.0, format!("csrf:{id}").as_bytes()))
    }
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(msg);
    m.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unix seconds now (sessions expire by the wall clock, not the engine's).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The value of cookie `name` in `headers`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The valid session id the request's cookie carries, if any.
pub fn session_id<'a>(state: &AppState, headers: &'a HeaderMap) -> Option<&'a str> {
    let value = cookie(headers, COOKIE)?;
    state.session_key().verify(value, unix_now())
}

/// The `Set-Cookie` value for a session.
pub fn set_cookie(value: &str) -> String {
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}")
}

/// The `Set-Cookie` value that ends a session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn from_browser(headers: &HeaderMap) -> bool {
    cookie(headers, COOKIE).is_some()
        || headers.contains_key(header::ORIGIN)
        || headers.contains_key("sec-fetch-site")
}

/// Whether the request's `Origin` (if any) is the server itself.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && origin_host == host
}

/// Middleware: the CSRF rule (see the module documentation).
pub async fn csrf_guard(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let path = req.uri().path();
    // Logging in is the one browser POST without a session yet; it needs a
    // JSON body (so a cross-site form cannot send it) and the same origin.
    let login = path == "/ui/login";
    if safe || bearer_ok(&state, req.headers()) || !from_browser(req.headers()) {
        return next.run(req).await;
    }
    if login {
        if same_origin(req.headers()) {
            return next.run(req).await;
        }
        return refuse("cross-origin login refused");
    }
    let headers = req.headers();
    // Defence in depth: even with the session's token, a write whose
    // `Origin` is another site (or that the browser marks cross-site) is
    // refused.
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if !same_origin(headers) || cross_site {
        return refuse(
            "cross-origin request refused: the dashboard's writes come from its own origin",
        );
    }
    let Some(id) = session_id(&state, headers) else {
        return refuse(
            "missing or expired dashboard session: reload the page (browser requests that change state need a session and its CSRF token)",
        );
    };
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let want = state.session_key().csrf_token(id);
    if given.is_empty() || !constant_time_eq(given.as_bytes(), want.as_bytes()) {
        return refuse("missing or invalid CSRF token: send the X-CSRF-Token header the dashboard session gives");
    }
    next.run(req).await
}

fn refuse(message: &str) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "csrf", message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_sessions_verify_until_they_expire() {
        let k = SessionKey::for_token(None);
        let c = k.issue(1_000);
        let id = k.verify(&c, 1_000).expect("valid");
        assert!(c.starts_with(id));
        assert!(k.verify(&c, 1_000 + SESSION_SECONDS - 1).is_some());
        assert!(k.verify(&c, 1_000 + SESSION_SECONDS).is_none());
        assert!(k.verify(&c, 999).is_none());
    }

    #[test]
    fn forged_or_foreign_sessions_fail() {
        let k = SessionKey::for_token(Some("secret"));
        let other = SessionKey::for_token(Some("other"));
        let c = k.issue(50);
        assert!(other.verify(&c, 50).is_none());
        let (id, _) = c.rsplit_once('.').unwrap();
        assert!(k.verify(&format!("{id}.{}", "0".repeat(64)), 50).is_none());
        assert!(k.verify("garbage", 50).is_none());
        // The same token gives the same key: sessions survive a restart.
        let again = SessionKey::for_token(Some("secret"));
        assert!(again.verify(&c, 50).is_some());
        assert_eq!(k.csrf_token("a"), again.csrf_token("a"));
        assert_ne!(k.csrf_token("a"), k.csrf_token("b"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; clew_session=xyz.abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE), Some("xyz.abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }
}

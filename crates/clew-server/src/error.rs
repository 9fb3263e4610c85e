//! [`ApiError`]: every route's error body.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use clew_core::{Error, ErrorKind};

/// An error as the API reports it: a status and
/// `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `invalid_argument`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match e.kind() {
            ErrorKind::Invalid => {
                ApiError::new(StatusCode::BAD_REQUEST, e.kind().code(), e.message())
            }
            ErrorKind::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, e.kind().code(), e.message())
            }
            ErrorKind::Conflict => {
                ApiError::new(StatusCode::CONFLICT, e.kind().code(), e.message())
            }
            _ => {
                // The details stay in the log; the client learns only that
                // it was not its fault.
                tracing::error!(error = %e, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error (details are in the server log)",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

/// Turns axum's plain-text rejections (body too large, malformed JSON,
/// wrong content type, unknown method) into the JSON error body.
pub async fn body_limit_as_json(req: Request<Body>, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"));
    if status.is_success() || is_json {
        return resp;
    }
    let (code, default) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "request body is larger than the server's limit",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "method not allowed on this route")
        }
        s if s.is_client_error() => ("invalid_request", "invalid request"),
        _ => return resp,
    };
    let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let message = if text.trim().is_empty() {
        default.to_owned()
    } else {
        text.trim().to_owned()
    };
    ApiError::new(status, code, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_are_a_500_that_hides_the_details() {
        let e = ApiError::from(Error::store("disk I/O error at /var/lib/secret/clew.db"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message().contains("secret"), "{}", e.message());
        assert!(e.message().contains("server log"));
    }

    #[test]
    fn engine_kinds_map_to_their_statuses() {
        assert_eq!(
            ApiError::from(Error::invalid("x")).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ApiError::from(Error::not_found("x")).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ApiError::from(Error::conflict("x")).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(ApiError::from(Error::conflict("msg")).message(), "msg");
    }
}

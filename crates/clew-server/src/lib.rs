//! clew-server: the HTTP/JSON face of the job engine.
//!
//! # Layout
//! * [`state`]: [`AppState`] (the engine, the server's settings, the event
//!   wake-up channel) and [`ServerConfig`].
//! * [`error`]: [`ApiError`], the one error body every route returns:
//!   `{"error": {"code": "...", "message": "..."}}`; internal errors are a
//!   generic 500 whose details go to the log only.
//! * [`compat`]: the qless compatibility endpoint (`POST /v1/qless`,
//!   `GET /v1/qless/events`, `POST /v1/qless/flush`).
//! * [`api`]: the resource-style API under `/v1`.
//! * [`events`]: the Server-Sent Events stream `GET /v1/events`.
//! * [`auth`]: the bearer-token rule.
//! * [`metrics`]: Prometheus metrics at `GET /metrics`.
//! * [`ui`]: the web dashboard at `/`, its sessions and the CSRF rule.
//!
//! [`app`] builds the router (tests drive it without a socket); [`serve`]
//! runs it on a bound listener until a shutdown future resolves, letting
//! in-flight requests finish.

use std::future::Future;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

pub mod api;
pub mod auth;
pub mod compat;
pub mod error;
pub mod events;
pub mod metrics;
pub mod namespace;
pub mod openapi;
pub mod state;
pub mod ui;

pub use error::ApiError;
pub use state::{AppState, ServerConfig};

/// The whole router: health check, qless compatibility endpoint, resource
/// API and event stream, behind the token rule and the body-size limit.
pub fn app(state: AppState) -> Router {
    let limit = state.config().body_limit;
    let v1 = Router::new()
        .merge(compat::routes())
        .merge(api::routes())
        .merge(events::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::time_requests,
        ))
        .merge(metrics::routes())
        // Inside the token rule: an unknown route is a 401 without the
        // token, like every route but the health check.
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn(error::body_limit_as_json))
        .layer(DefaultBodyLimit::max(limit));
    Router::new()
        .route(
            "/healthz",
            get(|State(s): State<AppState>| async move {
                Json(serde_json::json!({"ok": true, "namespace": s.config().namespace}))
            }),
        )
        .merge(ui::routes())
        .merge(v1)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ui::session::csrf_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            namespace::check_namespace,
        ))
        .layer(axum::middleware::from_fn(ui::security_headers))
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` resolves; in-flight
/// requests finish before this returns, and open event streams end.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let streams = state.clone();
    let shutdown = async move {
        shutdown.await;
        streams.begin_shutdown();
    };
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A future that resolves on SIGINT (ctrl-c) or SIGTERM. The signal
/// handlers are installed when this function is called, not when the future
/// is first polled, so a signal that arrives right after start-up (as soon
/// as the listening address is printed) is never missed.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {},
                () = wait(int) => {},
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

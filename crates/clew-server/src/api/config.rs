//! Config: all values, one value, set, unset.

use axum::extract::{Path, State};
use axum::Json;
use clew_core::{Command, Reply};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{natural, run, ApiJson, ErrorBody};
use crate::error::ApiError;
use crate::state::{AppState, RequestNow};

/// The config routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(config_all))
        .routes(routes!(config_keys))
        .routes(routes!(config_get, config_set, config_unset))
}

/// Every config key with its value (defaults overlaid with stored values).
#[utoipa::path(get, path = "/v1/config", tag = "config",
    responses(
        (status = 200, description = "`{key: value, ...}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn config_all(
    State(state): State<AppState>,
    now: RequestNow,
) -> Result<Json<Value>, ApiError> {
    let reply = run(&state, now, Command::ConfigGet { key: None }).await?;
    Ok(Json(natural(&reply)))
}

/// The keys clew honours: default, unit, whether `GET /v1/config` lists it
/// when unset, and what it does; and the per-queue key suffixes.
#[utoipa::path(get, path = "/v1/config-keys", tag = "config",
    responses(
        (status = 200, description = "`{\"keys\": [{key, default, unit, reported, description}], \"queue_keys\": [{suffix, unit, description}]}`", body = Object)))]
pub async fn config_keys() -> Json<Value> {
    use clew_core::config::{KNOWN, QUEUE_KEYS};
    let keys: Vec<Value> = KNOWN
        .iter()
        .map(|k| {
            serde_json::json!({
                "key": k.key,
                "default": k.default.to_json(),
                "unit": k.unit,
                "reported": k.reported,
                "description": k.description,
            })
        })
        .collect();
    let queue_keys: Vec<Value> = QUEUE_KEYS
        .iter()
        .map(|(suffix, unit, description)| {
            serde_json::json!({"suffix": suffix, "unit": unit, "description": description})
        })
        .collect();
    Json(serde_json::json!({"keys": keys, "queue_keys": queue_keys}))
}

/// One config value (its default when not set); 404 for an unknown key
/// that has no value.
#[utoipa::path(get, path = "/v1/config/{key}", tag = "config",
    params(("key" = String, Path, description = "The key")),
    responses(
        (status = 200, description = "`{\"key\", \"value\"}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn config_get(
    State(state): State<AppState>,
    now: RequestNow,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let reply = run(
        &state,
        now,
        Command::ConfigGet {
            key: Some(key.clone()),
        },
    )
    .await?;
    match reply {
        Reply::ConfigValue(Some(v)) => Ok(Json(serde_json::json!({"key": key, "value": v}))),
        _ => Err(ApiError::not_found(format!(
            "config key {key:?} has no value"
        ))),
    }
}

/// Body of `PUT /v1/config/{key}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigValue {
    /// The value: a string or a number (stored as text).
    #[schema(value_type = String)]
    pub value: Value,
}

/// Stores a config value.
#[utoipa::path(put, path = "/v1/config/{key}", tag = "config",
    params(("key" = String, Path, description = "The key")),
    request_body = ConfigValue,
    responses(
        (status = 200, description = "`{\"key\", \"value\"}`: the value now", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn config_set(
    State(state): State<AppState>,
    now: RequestNow,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<ConfigValue>,
) -> Result<Json<Value>, ApiError> {
    let value = match body.value {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(ApiError::invalid(format!(
                "value: expected a string or a number, got {other}"
            )))
        }
    };
    run(
        &state,
        now.clone(),
        Command::ConfigSet {
            key: key.clone(),
            value,
        },
    )
    .await?;
    config_get(State(state), now, Path(key)).await
}

/// Deletes a stored config value (its default shows through again).
#[utoipa::path(delete, path = "/v1/config/{key}", tag = "config",
    params(("key" = String, Path, description = "The key")),
    responses(
        (status = 200, description = "`{\"unset\": key}`", body = Object),
        (status = "4XX", description = "Refused", body = ErrorBody)))]
pub async fn config_unset(
    State(state): State<AppState>,
    now: RequestNow,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    run(&state, now, Command::ConfigUnset { key: key.clone() }).await?;
    Ok(Json(serde_json::json!({ "unset": key })))
}

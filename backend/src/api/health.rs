//! Health, readiness, server facts, and the JSON 404.

use std::sync::Arc;

use agentfarm_shared::api::ServerInfo;
use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde_json::{Value, json};

use crate::error::AppError;
use crate::service::Farm;

/// `GET /healthz`: the process serves HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers.
pub async fn readyz(State(farm): State<Arc<Farm>>) -> Result<Json<Value>, AppError> {
    farm.store()
        .call(|conn| Ok(conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?))
        .await?;
    Ok(Json(json!({"status": "ready"})))
}

/// `GET /api/info`.
pub async fn info(State(info): State<Arc<ServerInfo>>) -> Json<ServerInfo> {
    Json(ServerInfo::clone(&info))
}

/// Any other path.
pub async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(uri.path().to_owned())
}

//! `/api/configs`: list, create, get, update (a new version), delete, versions.

use std::sync::Arc;

use agentfarm_shared::config::{AgentConfig, ConfigSpec, ConfigVersion};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::extract::ApiJson;
use crate::error::AppError;
use crate::service::Farm;

/// `GET /api/configs`.
pub async fn list(State(farm): State<Arc<Farm>>) -> Result<Json<Vec<AgentConfig>>, AppError> {
    Ok(Json(farm.configs().await?))
}

/// `POST /api/configs`: 201 with the new config.
pub async fn create(
    State(farm): State<Arc<Farm>>,
    ApiJson(spec): ApiJson<ConfigSpec>,
) -> Result<(StatusCode, Json<AgentConfig>), AppError> {
    Ok((StatusCode::CREATED, Json(farm.create_config(spec).await?)))
}

/// `GET /api/configs/{id}`.
pub async fn get(
    State(farm): State<Arc<Farm>>,
    Path(id): Path<String>,
) -> Result<Json<AgentConfig>, AppError> {
    Ok(Json(farm.config(id).await?))
}

/// `PUT /api/configs/{id}`: the body becomes the next version.
pub async fn update(
    State(farm): State<Arc<Farm>>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<ConfigSpec>,
) -> Result<Json<AgentConfig>, AppError> {
    Ok(Json(farm.update_config(id, spec).await?))
}

/// `DELETE /api/configs/{id}`: 204.
pub async fn delete(State(farm): State<Arc<Farm>>, Path(id): Path<String>) -> Result<StatusCode, AppError> {
    farm.delete_config(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/configs/{id}/versions`: newest first.
pub async fn versions(
    State(farm): State<Arc<Farm>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<ConfigVersion>>, AppError> {
    Ok(Json(farm.config_versions(id).await?))
}

//! `/api/runs`: launch, list, get, stop, follow-up messages, logs, delete.

use std::sync::Arc;

use agentfarm_shared::api::{LogQuery, RunQuery};
use agentfarm_shared::log::LogPage;
use agentfarm_shared::run::{FollowUp, LaunchRequest, Run};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::extract::{ApiJson, ApiQuery};
use crate::error::AppError;
use crate::service::Farm;

/// `GET /api/runs?state=&config_id=&limit=`: newest first.
pub async fn list(
    State(farm): State<Arc<Farm>>,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> Result<Json<Vec<Run>>, AppError> {
    Ok(Json(farm.runs(query).await?))
}

/// `POST /api/runs`: 201 with the queued run.
pub async fn launch(
    State(farm): State<Arc<Farm>>,
    ApiJson(request): ApiJson<LaunchRequest>,
) -> Result<(StatusCode, Json<Run>), AppError> {
    Ok((StatusCode::CREATED, Json(farm.launch(request).await?)))
}

/// `GET /api/runs/{id}`.
pub async fn get(State(farm): State<Arc<Farm>>, Path(id): Path<String>) -> Result<Json<Run>, AppError> {
    Ok(Json(farm.run(id).await?))
}

/// `POST /api/runs/{id}/stop`: 202; the run reaches `stopped` when its agent has exited.
pub async fn stop(
    State(farm): State<Arc<Farm>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Run>), AppError> {
    Ok((StatusCode::ACCEPTED, Json(farm.stop(id).await?)))
}

/// `POST /api/runs/{id}/messages`: 202 once the agent has the message.
pub async fn send(
    State(farm): State<Arc<Farm>>,
    Path(id): Path<String>,
    ApiJson(message): ApiJson<FollowUp>,
) -> Result<(StatusCode, Json<Run>), AppError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(farm.send_input(id, message.text).await?),
    ))
}

/// `GET /api/runs/{id}/logs?after_seq=&limit=`.
pub async fn logs(
    State(farm): State<Arc<Farm>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Json<LogPage>, AppError> {
    Ok(Json(farm.logs(id, query).await?))
}

/// `DELETE /api/runs/{id}`: 204; only an ended run.
pub async fn delete(State(farm): State<Arc<Farm>>, Path(id): Path<String>) -> Result<StatusCode, AppError> {
    farm.delete_run(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! `/api/usage`: the subscription's usage window, as the model proxy last read it from the model's answers.

use std::sync::Arc;

use agentfarm_shared::usage::UsageWindow;
use axum::Json;
use axum::extract::State;

use crate::error::AppError;
use crate::service::Farm;

/// `GET /api/usage`: the window, or `null` before the model ever stated one.
pub async fn window(State(farm): State<Arc<Farm>>) -> Result<Json<Option<UsageWindow>>, AppError> {
    Ok(Json(farm.store().usage_window().await?))
}

//! `/api/history`: how runs ended, day by day, and what they cost (the Settings screen's chart).

use std::sync::Arc;

use agentfarm_shared::api::{HISTORY_DAYS, RunHistory};
use axum::Json;
use axum::extract::State;
use chrono::Utc;

use crate::error::AppError;
use crate::service::Farm;

/// `GET /api/history`: the last [`HISTORY_DAYS`] days, today included.
pub async fn history(State(farm): State<Arc<Farm>>) -> Result<Json<RunHistory>, AppError> {
    let days = farm.store().run_history(Utc::now(), HISTORY_DAYS).await?;
    Ok(Json(RunHistory { days }))
}

//! `/api/push/*`: the VAPID key, subscribing devices (or confirming them), listing, removing, testing.

use std::sync::Arc;

use agentfarm_shared::push::{NewSubscription, PushKey, Subscription};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::extract::ApiJson;
use crate::error::AppError;
use crate::push::Push;

/// `GET /api/push/key`.
pub async fn key(State(push): State<Arc<Push>>) -> Result<Json<PushKey>, AppError> {
    Ok(Json(push.key()?))
}

/// `POST /api/push/subscriptions`: 201 for a new device, 200 when it confirms an existing one.
pub async fn subscribe(
    State(push): State<Arc<Push>>,
    ApiJson(new): ApiJson<NewSubscription>,
) -> Result<(StatusCode, Json<Subscription>), AppError> {
    let (subscription, created) = push.subscribe(new).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(subscription)))
}

/// `GET /api/push/subscriptions`.
pub async fn list(State(push): State<Arc<Push>>) -> Result<Json<Vec<Subscription>>, AppError> {
    Ok(Json(push.subscriptions().await?))
}

/// `DELETE /api/push/subscriptions/{id}`: 204.
pub async fn remove(State(push): State<Arc<Push>>, Path(id): Path<String>) -> Result<StatusCode, AppError> {
    push.unsubscribe(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/push/subscriptions/{id}/test`: 202, the test notification is queued.
pub async fn test(State(push): State<Arc<Push>>, Path(id): Path<String>) -> Result<StatusCode, AppError> {
    push.test(id).await?;
    Ok(StatusCode::ACCEPTED)
}

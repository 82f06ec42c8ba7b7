//! Health, readiness, server facts, the cluster checks, and the JSON 404.

use std::sync::Arc;

use agentfarm_shared::api::{Check, CheckStatus, DoctorReport, ServerInfo};
use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde_json::{Value, json};

use crate::doctor::Doctor;
use crate::error::AppError;
use crate::service::Farm;

/// `GET /healthz`: the process serves HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers (else 503). The runtime's trouble, such as a cluster API that does not
/// answer, is reported as `degraded` with its reason but still with 200: the app must stay reachable to say so.
pub async fn readyz(State(farm): State<Arc<Farm>>) -> Result<Json<Value>, AppError> {
    farm.store().ping().await?;
    Ok(Json(match farm.runtime_trouble().await {
        Some(reason) => json!({"status": "degraded", "reason": reason}),
        None => json!({"status": "ready"}),
    }))
}

/// `GET /api/info`.
pub async fn info(State(info): State<Arc<ServerInfo>>) -> Json<ServerInfo> {
    Json(ServerInfo::clone(&info))
}

/// `GET /api/doctor`: what `agentfarm doctor` says about the cluster, now.
pub async fn doctor(State(doctor): State<Option<Arc<Doctor>>>) -> Json<DoctorReport> {
    match doctor {
        Some(doctor) => Json(doctor.report().await),
        None => Json(DoctorReport {
            checks: vec![Check {
                name: "Runtime".into(),
                status: CheckStatus::Warn,
                detail: "local: agents run as processes of the server's user, not isolated; there is no cluster to check"
                    .into(),
                fix: Some("run the server in the cluster (see infra/README.md) or with --runtime kubernetes".into()),
            }],
        }),
    }
}

/// Any other path.
pub async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(uri.path().to_owned())
}

//! The one error type of the backend, and how it becomes an HTTP response with the API's error shape. It is
//! not logged here: the response carries a [`Failure`] that the request's trace layer logs once
//! ([`crate::api::trace`]).

use agentfarm_shared::api::{ApiError, ErrorBody};
use agentfarm_shared::validate::Violations;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::runtime::RuntimeError;
use crate::store::StoreError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Fields failed validation.
    #[error("invalid input")]
    Invalid(Violations),
    /// The request is malformed; `field` names the culprit when one can be named.
    #[error("{message}")]
    BadRequest {
        /// The field at fault.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The body is not `application/json`.
    #[error("request bodies must be application/json")]
    UnsupportedMediaType,
    /// The body is larger than allowed.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// No identity where one is required.
    #[error("{0}")]
    Unauthorized(String),
    /// An agent's request to a proxy without a valid capability (none, unknown, or its run has ended).
    #[error("{0}")]
    NoCapability(String),
    /// A service a proxy forwards to did not answer.
    #[error("{0}")]
    Upstream(String),
    /// A cross-site request, a foreign origin, an unknown host, or an identity not allowed or not believed.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing.
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(RuntimeError),
}

impl AppError {
    /// A malformed request naming `field`.
    pub fn bad_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => AppError::NotFound(what),
            StoreError::Conflict(message) => AppError::Conflict(message),
            StoreError::InvalidTransition { .. } => AppError::Conflict(err.to_string()),
            other => AppError::Store(other),
        }
    }
}

impl From<RuntimeError> for AppError {
    fn from(err: RuntimeError) -> Self {
        match err {
            RuntimeError::NotRunning(_) | RuntimeError::NotAccepting(_) => {
                AppError::Conflict(err.to_string())
            }
            RuntimeError::Failed(_) => AppError::Runtime(err),
        }
    }
}

impl From<Violations> for AppError {
    fn from(violations: Violations) -> Self {
        AppError::Invalid(violations)
    }
}

/// What went wrong, in a response's extensions, for the log only (never sent): the error code and the whole
/// error, details the client is not told included.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The API error code (`internal`, `not_found`, …).
    pub code: &'static str,
    /// The error as the server knows it.
    pub detail: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            AppError::Invalid(_) | AppError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "invalid"),
            AppError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            AppError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AppError::Unauthorized(_) | AppError::NoCapability(_) => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
            AppError::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::Store(_) | AppError::Runtime(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        // git asks its credential helper only when challenged.
        let challenge = matches!(self, AppError::NoCapability(_));
        let failure = Failure {
            code,
            detail: self.to_string(),
        };
        let error = match self {
            AppError::Invalid(violations) => {
                let fields = violations.into_errors();
                let message = fields
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                ApiError {
                    code: code.into(),
                    message,
                    field: fields.first().map(|e| e.field.clone()),
                    fields,
                }
            }
            AppError::BadRequest { field, message } => ApiError {
                code: code.into(),
                message,
                field,
                fields: vec![],
            },
            AppError::Store(_) | AppError::Runtime(_) => {
                // Details stay in the server log (the failure below); the client learns only that it was not
                // its fault.
                ApiError {
                    code: code.into(),
                    message: "internal error; see the server log".into(),
                    field: None,
                    fields: vec![],
                }
            }
            other => ApiError {
                code: code.into(),
                message: other.to_string(),
                field: None,
                fields: vec![],
            },
        };
        let mut response = (status, Json(ErrorBody { error })).into_response();
        response.extensions_mut().insert(failure);
        if challenge {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"agentfarm agent\""),
            );
        }
        response
    }
}

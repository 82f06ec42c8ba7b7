//! Extractors for JSON bodies and query strings whose errors use the API's error shape and name the field.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::MAX_BODY_BYTES;
use crate::error::AppError;

/// A JSON body. Missing fields, wrong types, unknown fields and bad nesting are 400s naming the field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(_) => AppError::PayloadTooLarge(MAX_BODY_BYTES),
                other => AppError::BadRequest {
                    field: None,
                    message: other.body_text(),
                },
            })?;
        if bytes.is_empty() {
            return Err(AppError::BadRequest {
                field: None,
                message: "a JSON body is required".into(),
            });
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let message = err.inner().to_string();
            AppError::BadRequest {
                field: field_name(&path, &message),
                message,
            }
        })?;
        deserializer.end().map_err(|err| AppError::BadRequest {
            field: None,
            message: format!("trailing data after the JSON body: {err}"),
        })?;
        Ok(ApiJson(value))
    }
}

/// A query string, e.g. `?state=running&limit=10`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.inner().to_string();
                AppError::BadRequest {
                    field: field_name(&path, &message),
                    message,
                }
            })
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

/// The field an error is about: the path serde was at, or the name in "unknown field `x`".
fn field_name(path: &str, message: &str) -> Option<String> {
    if let Some(unknown) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    {
        // The path already ends at the unknown key, except at the top level of some inputs.
        return Some(if path.is_empty() || path == "." {
            unknown.to_owned()
        } else {
            path.to_owned()
        });
    }
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        return Some(missing.to_owned());
    }
    (path != "." && !path.is_empty()).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::field_name;

    #[test]
    fn fields_are_named() {
        assert_eq!(
            field_name(".", "unknown field `evil`, expected one of `name`").as_deref(),
            Some("evil")
        );
        assert_eq!(
            field_name("evil", "unknown field `evil`").as_deref(),
            Some("evil")
        );
        assert_eq!(
            field_name(".", "missing field `task_prompt`").as_deref(),
            Some("task_prompt")
        );
        assert_eq!(
            field_name("max_turns", "invalid type: string").as_deref(),
            Some("max_turns")
        );
        assert_eq!(
            field_name("repos[0]", "invalid type").as_deref(),
            Some("repos[0]")
        );
        assert_eq!(field_name(".", "EOF while parsing").as_deref(), None);
    }
}

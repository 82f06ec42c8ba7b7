//! The REST verbs on stored objects (list, get, create, replace, patch, delete) and SelfSubjectAccessReview.

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::Creation;
use crate::controller;
use crate::kind::Kind;
use crate::patch;
use crate::select::Selector;
use crate::server::{Query, Shared};
use crate::status::{ApiError, json_response};
use crate::store::{Store, name_of};

/// Label and field selectors of a list or watch.
pub(crate) struct Filter {
    /// Kind listed.
    pub(crate) kind: Kind,
    /// Namespace (`None`: all).
    pub(crate) namespace: Option<String>,
    /// `labelSelector`.
    labels: Selector,
    /// `fieldSelector`.
    fields: Selector,
}

impl Filter {
    /// The filter of a list or watch request.
    pub(crate) fn new(kind: Kind, namespace: Option<&str>, query: &Query) -> Result<Filter, ApiError> {
        let selector = |key: &str| Selector::parse(query.get(key).map(String::as_str).unwrap_or_default());
        Ok(Filter {
            kind,
            namespace: namespace.filter(|_| kind.namespaced()).map(str::to_owned),
            labels: selector("labelSelector")?,
            fields: selector("fieldSelector")?,
        })
    }

    /// Whether an object of `kind` is selected.
    pub(crate) fn matches(&self, kind: Kind, object: &Value) -> bool {
        kind == self.kind
            && self
                .namespace
                .as_ref()
                .is_none_or(|namespace| name_of(object).0 == *namespace)
            && self.labels.matches_labels(object)
            && self.fields.matches_fields(object)
    }
}

/// `GET` a collection: `{Kind}List` with `metadata.resourceVersion`; `limit`/`continue` paginate (the
/// continue token is an offset, so pages are not a consistent snapshot).
pub(crate) fn list(
    shared: &Arc<Shared>,
    kind: Kind,
    namespace: Option<&str>,
    query: &Query,
) -> Result<Response, ApiError> {
    let filter = Filter::new(kind, namespace, query)?;
    let store = shared.lock();
    let items: Vec<&Value> = store
        .objects
        .iter()
        .filter(|((object_kind, _, _), object)| filter.matches(*object_kind, object))
        .map(|(_, object)| object)
        .collect();
    let offset: usize = match query.get("continue").filter(|token| !token.is_empty()) {
        Some(token) => token
            .strip_prefix("fake-offset-")
            .and_then(|offset| offset.parse().ok())
            .ok_or_else(|| ApiError::new(410, "Expired", "fake kube: invalid continue token"))?,
        None => 0,
    };
    let limit = query
        .get("limit")
        .and_then(|limit| limit.parse::<usize>().ok())
        .filter(|limit| *limit > 0)
        .unwrap_or(usize::MAX);
    let page: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(limit)
        .map(|object| (*object).clone())
        .collect();
    let next = offset.saturating_add(page.len());
    let mut metadata = json!({"resourceVersion": store.rv.to_string()});
    if next < items.len() {
        metadata["continue"] = json!(format!("fake-offset-{next}"));
        metadata["remainingItemCount"] = json!(items.len() - next);
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", kind.name()),
            "apiVersion": kind.api_version(),
            "metadata": metadata,
            "items": page,
        }),
    ))
}

/// `GET` one object.
pub(crate) fn get(
    shared: &Arc<Shared>,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> Result<Response, ApiError> {
    let store = shared.lock();
    let object = store.get(kind, scope(kind, namespace), name)?;
    Ok(json_response(StatusCode::OK, object))
}

/// `POST` a new object (`201`; `409 AlreadyExists` on a duplicate). A Job gets its Pod.
pub(crate) fn create(
    shared: &Arc<Shared>,
    kind: Kind,
    namespace: &str,
    body: Value,
) -> Result<Response, ApiError> {
    if let Some(body_namespace) = body.pointer("/metadata/namespace").and_then(Value::as_str)
        && kind.namespaced()
        && body_namespace != namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let created = shared.with(|store| {
        let created = store.create(kind, namespace, body)?;
        if kind == Kind::Job {
            controller::job_created(store, &created)?;
        }
        let (namespace, name) = name_of(&created);
        store.creations.push(Creation {
            kind,
            namespace,
            name,
            at: Instant::now(),
        });
        Ok::<_, ApiError>(created)
    })?;
    Ok(json_response(StatusCode::CREATED, &created))
}

/// `PUT` (replace) an object or its status; a stale `metadata.resourceVersion` gets `409 Conflict`.
pub(crate) fn replace(
    shared: &Arc<Shared>,
    kind: Kind,
    namespace: &str,
    name: &str,
    body: Value,
    status_only: bool,
) -> Result<Response, ApiError> {
    let updated = shared.with(|store| {
        let current = store.get(kind, scope(kind, namespace), name)?.clone();
        check_version(kind, name, &current, &body)?;
        let next = if status_only {
            let mut next = current;
            next["status"] = body.get("status").cloned().unwrap_or(Value::Null);
            next
        } else {
            let mut next = body;
            next["metadata"]["namespace"] = current["metadata"]["namespace"].clone();
            next["metadata"]["name"] = json!(name);
            if next.get("status").is_none()
                && let Some(status) = current.get("status")
            {
                next["status"] = status.clone();
            }
            next
        };
        store.update(kind, next)
    })?;
    Ok(json_response(StatusCode::OK, &updated))
}

/// `PATCH` an object or its status. Merge, strategic-merge and apply patches are applied as JSON merge
/// patches; `application/json-patch+json` as JSON patch.
pub(crate) fn patch(
    shared: &Arc<Shared>,
    kind: Kind,
    namespace: &str,
    name: &str,
    content_type: &str,
    body: &Value,
    status_only: bool,
) -> Result<Response, ApiError> {
    let updated = shared.with(|store| {
        let current = store.get(kind, scope(kind, namespace), name)?.clone();
        let mut next = current.clone();
        if content_type.starts_with("application/json-patch+json") {
            patch::json_patch(&mut next, body)?;
        } else {
            check_version(kind, name, &current, body)?;
            patch::merge(&mut next, body);
        }
        if status_only {
            let mut only = current;
            only["status"] = next.get("status").cloned().unwrap_or(Value::Null);
            next = only;
        }
        next["metadata"]["name"] = json!(name);
        next["metadata"]["namespace"] = current_namespace(store, kind, namespace, name);
        store.update(kind, next)
    })?;
    Ok(json_response(StatusCode::OK, &updated))
}

/// `DELETE` an object; returns it (with `deletionTimestamp` if finalizers keep it). Jobs cascade to their
/// Pods only with `propagationPolicy` `Background` or `Foreground` (query or `DeleteOptions` body); the
/// default for Jobs, as in Kubernetes, orphans them. `gracePeriodSeconds` (query or body) sets a Pod's grace
/// period.
pub(crate) fn delete(
    shared: &Arc<Shared>,
    kind: Kind,
    namespace: &str,
    name: &str,
    query: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let options: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let policy = query
        .get("propagationPolicy")
        .map(String::as_str)
        .or_else(|| options.get("propagationPolicy").and_then(Value::as_str))
        .unwrap_or("Orphan");
    let cascade = matches!(policy, "Background" | "Foreground");
    let grace = query
        .get("gracePeriodSeconds")
        .and_then(|seconds| seconds.parse::<i64>().ok())
        .or_else(|| options.get("gracePeriodSeconds").and_then(Value::as_i64))
        .map(|seconds| seconds.max(0));
    let deleted = shared.with(|store| store.delete(kind, namespace, name, cascade, grace))?;
    Ok(json_response(StatusCode::OK, &deleted))
}

/// `POST selfsubjectaccessreviews`: `status.allowed` from the test's rules (first match wins; default allow).
pub(crate) fn access_review(shared: &Arc<Shared>, body: &[u8]) -> Result<Response, ApiError> {
    let mut review: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("invalid JSON body: {error}")))?;
    let attributes = review
        .pointer("/spec/resourceAttributes")
        .cloned()
        .unwrap_or(Value::Null);
    let field = |key: &str| {
        attributes
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let rules = shared.lock().access_rules.clone();
    let rule = rules.iter().find(|rule| {
        rule.verb.as_deref().is_none_or(|verb| verb == field("verb"))
            && rule.group.as_deref().is_none_or(|group| group == field("group"))
            && rule
                .resource
                .as_deref()
                .is_none_or(|resource| resource == field("resource"))
            && rule
                .subresource
                .as_deref()
                .is_none_or(|sub| sub == field("subresource"))
            && rule
                .namespace
                .as_deref()
                .is_none_or(|namespace| namespace == field("namespace"))
    });
    let allowed = rule.is_none_or(|rule| rule.allowed);
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["metadata"] = json!({"creationTimestamp": null});
    review["status"] = if allowed {
        json!({"allowed": true, "reason": "fake kube: allowed"})
    } else {
        json!({"allowed": false, "denied": true, "reason": "fake kube: denied by test rule"})
    };
    Ok(json_response(StatusCode::CREATED, &review))
}

/// The namespace key of `kind` (empty for cluster-scoped kinds).
fn scope(kind: Kind, namespace: &str) -> &str {
    if kind.namespaced() { namespace } else { "" }
}

/// The stored `metadata.namespace` (null for cluster-scoped objects).
fn current_namespace(store: &Store, kind: Kind, namespace: &str, name: &str) -> Value {
    store
        .get(kind, scope(kind, namespace), name)
        .ok()
        .and_then(|object| object.pointer("/metadata/namespace").cloned())
        .unwrap_or(Value::Null)
}

/// `409 Conflict` if `body` names a `metadata.resourceVersion` other than the stored one.
fn check_version(kind: Kind, name: &str, current: &Value, body: &Value) -> Result<(), ApiError> {
    match body.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
        Some(wanted)
            if Some(wanted)
                != current
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str) =>
        {
            Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    kind.qualified()
                ),
            ))
        }
        _ => Ok(()),
    }
}

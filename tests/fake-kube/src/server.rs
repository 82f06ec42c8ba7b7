//! The HTTP front: records every request, injects faults, parses the Kubernetes URL layout and dispatches to
//! the REST verbs, watches, logs and attach.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::to_bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::{broadcast, watch};

use crate::kind::Kind;
use crate::status::{ApiError, json_response};
use crate::store::{Event, Store};
use crate::{RecordedRequest, api, attach, logs, watch as watches};

/// Largest request body read.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Capacity of the live event channel; a watch that falls this far behind is closed (and re-watches).
const EVENT_CAPACITY: usize = 4096;

/// State shared by the server and the [`crate::FakeKube`] handle.
pub(crate) struct Shared {
    /// Objects, events, logs, faults.
    store: Mutex<Store>,
    /// Live events, sent under the store lock so a watch subscribing under it misses nothing.
    pub(crate) events: broadcast::Sender<Arc<Event>>,
    /// Bumped after every change (log lines, stdin, objects): what followers and waiters wait on.
    pub(crate) tick: watch::Sender<u64>,
    /// Bumped by `reset_watches`: open watches drop their connection.
    pub(crate) resets: watch::Sender<u64>,
}

impl Shared {
    /// Empty state.
    pub(crate) fn new() -> Shared {
        Shared {
            store: Mutex::new(Store::default()),
            events: broadcast::channel(EVENT_CAPACITY).0,
            tick: watch::channel(0).0,
            resets: watch::channel(0).0,
        }
    }

    /// The store, for reading (or changes that need no broadcast or wake-up).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a change: broadcasts the events it recorded (still under the lock), then wakes waiters.
    pub(crate) fn with<R>(&self, change: impl FnOnce(&mut Store) -> R) -> R {
        let mut store = self.lock();
        let result = change(&mut store);
        for event in store.pending.drain(..) {
            // No receivers is fine.
            let _ = self.events.send(event);
        }
        drop(store);
        self.tick.send_modify(|count| *count += 1);
        result
    }
}

/// The router of a fake server.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(dispatch).with_state(shared)
}

/// Query parameters (last value wins).
pub(crate) type Query = HashMap<String, String>;

/// Where a request points.
struct Target {
    /// The resource kind.
    kind: Kind,
    /// Namespace from the URL (`None`: cluster-wide or cluster-scoped).
    namespace: Option<String>,
    /// Object name.
    name: Option<String>,
    /// Subresource (`status`, `log`, `attach`).
    sub: Option<String>,
}

/// Records `request`, applies fault switches and routes it.
async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let uri = request.uri().clone();
    let method = request.method().clone();
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |value| value.as_str().to_owned());
    tracing::debug!(%method, path = path_and_query, "fake kube request");
    let injected = shared.with(|store| {
        store.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path_and_query.clone(),
            at: std::time::Instant::now(),
        });
        let faults = &mut store.faults;
        if faults.failing || faults.fail_next > 0 {
            faults.fail_next = faults.fail_next.saturating_sub(1);
            Some(ApiError::code(faults.fail_code, "fake kube: injected fault"))
        } else {
            None
        }
    });
    if let Some(error) = injected {
        return error.into_response();
    }
    let query: Query = uri
        .query()
        .map(|query| form_urlencoded::parse(query.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return version_info(),
        ["api"] => {
            return json_response(
                StatusCode::OK,
                &json!({"kind": "APIVersions", "versions": ["v1"]}),
            );
        }
        ["apis"] => return api_groups(),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return ApiError::not_found("path", uri.path()).into_response(),
    };
    if group == "authorization.k8s.io" && rest == ["selfsubjectaccessreviews"] && method == Method::POST {
        let Ok(body) = to_bytes(request.into_body(), MAX_BODY).await else {
            return ApiError::code(413, "request body too large").into_response();
        };
        return api::access_review(&shared, &body).into_response();
    }
    let (namespace, plural, tail) = match rest {
        ["namespaces", namespace, plural, tail @ ..] => (Some((*namespace).to_owned()), *plural, tail),
        [plural, tail @ ..] => (None, *plural, tail),
        [] => return ApiError::not_found("path", uri.path()).into_response(),
    };
    let Some(kind) = Kind::from_url(group, version, plural) else {
        return ApiError::not_found("resource", plural).into_response();
    };
    let target = Target {
        kind,
        namespace,
        name: tail.first().map(|name| (*name).to_owned()),
        sub: tail.get(1).map(|sub| (*sub).to_owned()),
    };
    if tail.len() > 2 || (kind.namespaced() && target.name.is_some() && target.namespace.is_none()) {
        return ApiError::not_found("path", uri.path()).into_response();
    }
    match route(&shared, &method, &target, &query, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// Sends a request for a resource to its handler.
async fn route(
    shared: &Arc<Shared>,
    method: &Method,
    target: &Target,
    query: &Query,
    request: Request,
) -> Result<Response, ApiError> {
    let namespace = target.namespace.as_deref().unwrap_or_default();
    let kind = target.kind;
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    match (method, target.name.as_deref(), target.sub.as_deref()) {
        (&Method::GET, None, None) if watching => {
            watches::watch(shared, kind, target.namespace.as_deref(), query)
        }
        (&Method::GET, None, None) => api::list(shared, kind, target.namespace.as_deref(), query),
        (&Method::GET, Some(name), None | Some("status")) => api::get(shared, kind, namespace, name),
        (&Method::GET, Some(name), Some("log")) if kind == Kind::Pod => {
            logs::logs(shared, namespace, name, query)
        }
        (&Method::GET, Some(name), Some("attach")) if kind == Kind::Pod => {
            let (mut parts, _body) = request.into_parts();
            let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &())
                .await
                .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
            attach::attach(shared, namespace, name, upgrade)
        }
        (&Method::POST, None, None) => {
            let body = read_json(request).await?;
            api::create(shared, kind, namespace, body)
        }
        (&Method::PUT, Some(name), sub @ (None | Some("status"))) => {
            let body = read_json(request).await?;
            api::replace(shared, kind, namespace, name, body, sub.is_some())
        }
        (&Method::PATCH, Some(name), sub @ (None | Some("status"))) => {
            let content_type = request
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = read_json(request).await?;
            api::patch(shared, kind, namespace, name, &content_type, &body, sub.is_some())
        }
        (&Method::DELETE, Some(name), None) => {
            let body = to_bytes(request.into_body(), MAX_BODY)
                .await
                .map_err(|_| ApiError::code(413, "request body too large"))?;
            api::delete(shared, kind, namespace, name, query, &body)
        }
        _ => Err(ApiError::code(
            405,
            format!("fake kube: {method} is not supported on this path"),
        )),
    }
}

/// Reads a JSON request body.
async fn read_json(request: Request) -> Result<serde_json::Value, ApiError> {
    let body = to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| ApiError::code(413, "request body too large"))?;
    serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request(format!("invalid JSON body: {error}")))
}

/// `GET /version`.
fn version_info() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "major": "1",
            "minor": "34",
            "gitVersion": "v1.34.0-fake",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "go1.24.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }),
    )
}

/// `GET /apis`: the groups served.
fn api_groups() -> Response {
    let groups: Vec<serde_json::Value> = ["batch", "node.k8s.io", "authorization.k8s.io"]
        .into_iter()
        .map(|name| {
            let version = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
            json!({"name": name, "versions": [version], "preferredVersion": version})
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )
}

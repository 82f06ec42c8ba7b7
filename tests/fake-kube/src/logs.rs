//! `GET pods/{name}/log` with `follow`, `timestamps`, `sinceTime`, `sinceSeconds` and `tailLines`. Logs of a
//! `Pending` pod are refused like the real API server does (`400`, "waiting to start"); a follow stream ends
//! once the pod has succeeded, failed or is gone.

use std::io;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::stream;
use serde_json::Value;
use tokio::sync::watch;

use crate::kind::Kind;
use crate::server::{Query, Shared};
use crate::status::ApiError;
use crate::store::{LogLine, Store, now};

/// A follow stream in progress.
struct Following {
    /// The server state.
    shared: Arc<Shared>,
    /// `(namespace, pod)`.
    key: (String, String),
    /// Index of the next line to send.
    next: usize,
    /// Change notifications.
    tick: watch::Receiver<u64>,
    /// Prefix lines with their timestamp.
    timestamps: bool,
}

/// Serves a pod's log.
pub(crate) fn logs(
    shared: &Arc<Shared>,
    namespace: &str,
    pod: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let flag = |key: &str| {
        query
            .get(key)
            .is_some_and(|value| value == "true" || value == "1")
    };
    let (follow, timestamps) = (flag("follow"), flag("timestamps"));
    let since = match (query.get("sinceTime"), query.get("sinceSeconds")) {
        (Some(time), _) => Some(
            DateTime::parse_from_rfc3339(time)
                .map_err(|error| ApiError::bad_request(format!("invalid sinceTime {time:?}: {error}")))?
                .with_timezone(&Utc),
        ),
        (None, Some(seconds)) => {
            let seconds: i64 = seconds
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid sinceSeconds {seconds:?}")))?;
            Some(now() - chrono::Duration::seconds(seconds))
        }
        (None, None) => None,
    };
    let tail: Option<usize> = query.get("tailLines").and_then(|lines| lines.parse().ok());
    let key = (namespace.to_owned(), pod.to_owned());
    let store = shared.lock();
    let object = store.get(Kind::Pod, namespace, pod)?;
    if phase(object) == "Pending" {
        let container = object
            .pointer("/spec/containers/0/name")
            .and_then(Value::as_str)
            .unwrap_or("main");
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod}\" is waiting to start: {}",
            waiting_reason(object)
        )));
    }
    let lines = store.logs.get(&key).map(Vec::as_slice).unwrap_or_default();
    let selected: Vec<&LogLine> = lines
        .iter()
        .filter(|line| since.is_none_or(|since| line.at >= since))
        .collect();
    let skip = tail.map_or(0, |tail| selected.len().saturating_sub(tail));
    let initial = render(selected.into_iter().skip(skip), timestamps);
    let next = lines.len();
    drop(store);
    let body = if follow {
        let state = Following {
            shared: Arc::clone(shared),
            key,
            next,
            tick: shared.tick.subscribe(),
            timestamps,
        };
        let first = stream::iter([Ok::<_, io::Error>(Bytes::from(initial))]);
        Body::from_stream(futures_util::StreamExt::chain(
            first,
            stream::unfold(state, next_chunk),
        ))
    } else {
        Body::from(initial)
    };
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// The next lines of a follow stream, waiting for them; `None` once the pod is done and drained.
async fn next_chunk(mut state: Following) -> Option<(Result<Bytes, io::Error>, Following)> {
    loop {
        state.tick.borrow_and_update();
        let (chunk, done) = {
            let store = state.shared.lock();
            let lines = store.logs.get(&state.key).map(Vec::as_slice).unwrap_or_default();
            let chunk = render(lines.iter().skip(state.next), state.timestamps);
            state.next = lines.len().max(state.next);
            (chunk, terminated(&store, &state.key))
        };
        if !chunk.is_empty() {
            return Some((Ok(Bytes::from(chunk)), state));
        }
        if done || state.tick.changed().await.is_err() {
            return None;
        }
    }
}

/// Whether the pod is gone, succeeded or failed.
pub(crate) fn terminated(store: &Store, key: &(String, String)) -> bool {
    store
        .get(Kind::Pod, &key.0, &key.1)
        .map_or(true, |pod| matches!(phase(pod), "Succeeded" | "Failed"))
}

/// Why a pending pod's (first) container is waiting (`ContainerCreating` unless its status says otherwise).
pub(crate) fn waiting_reason(pod: &Value) -> &str {
    pod.pointer("/status/containerStatuses/0/state/waiting/reason")
        .and_then(Value::as_str)
        .unwrap_or("ContainerCreating")
}

/// A pod's `status.phase`.
pub(crate) fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
}

/// Lines as the kubelet sends them (`{RFC3339Nano} ` prefix with timestamps).
fn render<'a>(lines: impl Iterator<Item = &'a LogLine>, timestamps: bool) -> String {
    let mut text = String::new();
    for line in lines {
        if timestamps {
            text.push_str(&line.at.to_rfc3339_opts(SecondsFormat::Nanos, true));
            text.push(' ');
        }
        text.push_str(&line.text);
        text.push('\n');
    }
    text
}

//! `?watch=true`: a chunked stream of newline-delimited watch events. Replays retained events newer than
//! `resourceVersion` (or, for `""`/`"0"`, every current object as `ADDED`), then goes live. A version older
//! than the retained window (or an injected fault) gets what a real API server sends: HTTP 200 with one
//! `ERROR` event carrying a `410 Expired` Status, then the end of the stream.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::stream;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::api::Filter;
use crate::kind::Kind;
use crate::server::{Query, Shared};
use crate::status::{ApiError, status_json};
use crate::store::Event;

/// Server-side watch timeout when the client sends no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// A watch stream in progress.
struct Watching {
    /// Lines still to send before waiting for live events.
    queued: VecDeque<Bytes>,
    /// Live events.
    events: broadcast::Receiver<Arc<Event>>,
    /// `reset_watches` signal.
    resets: watch::Receiver<u64>,
    /// Server-side end of the watch.
    deadline: Instant,
    /// What this watch selects.
    filter: Filter,
    /// For the `duplicate_events` switch.
    shared: Arc<Shared>,
    /// No more live events (after an `ERROR` event).
    finished: bool,
}

/// Starts a watch.
pub(crate) fn watch(
    shared: &Arc<Shared>,
    kind: Kind,
    namespace: Option<&str>,
    query: &Query,
) -> Result<Response, ApiError> {
    let filter = Filter::new(kind, namespace, query)?;
    let since = query
        .get("resourceVersion")
        .map(String::as_str)
        .unwrap_or_default();
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|value| value == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|seconds| seconds.parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let mut store = shared.lock();
    let events = shared.events.subscribe();
    let mut queued = VecDeque::new();
    let mut finished = false;
    let gone = if store.faults.gone_watches > 0 {
        store.faults.gone_watches -= 1;
        true
    } else {
        false
    };
    match since {
        _ if gone => finished = true,
        "" | "0" => {
            for ((object_kind, _, _), object) in &store.objects {
                if filter.matches(*object_kind, object) {
                    queued.push_back(line("ADDED", object));
                }
            }
        }
        version => {
            let Ok(version) = version.parse::<u64>() else {
                return Err(ApiError::bad_request(format!(
                    "invalid resourceVersion {version:?}"
                )));
            };
            if version < store.window_start {
                finished = true;
            } else {
                for event in store.events.iter().filter(|event| event.rv > version) {
                    if filter.matches(event.kind, &event.object) {
                        queued.push_back(line(event.kind_of_change, &event.object));
                    }
                }
            }
        }
    }
    if finished {
        let message = format!("too old resource version: {since} ({})", store.window_start);
        queued.push_back(line("ERROR", &status_json(410, "Expired", &message)));
    } else if bookmarks {
        let bookmark = json!({
            "kind": kind.name(),
            "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": store.rv.to_string()},
        });
        queued.push_back(line("BOOKMARK", &bookmark));
    }
    drop(store);
    let state = Watching {
        queued,
        events,
        resets: shared.resets.subscribe(),
        deadline: Instant::now() + timeout,
        filter,
        shared: Arc::clone(shared),
        finished,
    };
    let body = Body::from_stream(stream::unfold(state, next_line));
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// The next chunk of a watch: queued lines, then live events until the deadline, a reset (an error: the
/// connection is dropped) or lag (the end).
async fn next_line(mut state: Watching) -> Option<(Result<Bytes, io::Error>, Watching)> {
    loop {
        if let Some(queued) = state.queued.pop_front() {
            return Some((Ok(queued), state));
        }
        if state.finished {
            return None;
        }
        tokio::select! {
            event = state.events.recv() => match event {
                Ok(event) => {
                    if state.filter.matches(event.kind, &event.object) {
                        let chunk = line(event.kind_of_change, &event.object);
                        if state.shared.lock().faults.duplicate_events {
                            state.queued.push_back(chunk.clone());
                        }
                        state.queued.push_back(chunk);
                    }
                }
                Err(_) => return None,
            },
            changed = state.resets.changed() => {
                state.finished = true;
                if changed.is_ok() {
                    let reset = io::Error::new(io::ErrorKind::ConnectionReset, "fake kube: watch reset");
                    return Some((Err(reset), state));
                }
                return None;
            }
            () = tokio::time::sleep_until(state.deadline) => return None,
        }
    }
}

/// One watch event line.
fn line(kind_of_change: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind_of_change, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

//! The axum routes: `POST /v1/messages`, `POST /v1/messages/count_tokens`, `HEAD|GET /api/hello`, and a
//! recording 404 for the rest.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream;
use serde_json::{Value, json};

use crate::gate::{Gates, Passed};
use crate::scenario::{self, Block, Reply};
use crate::sse::{Answer, Content, error_body};
use crate::{RecordedRequest, RequestKind};

/// Shared state of one fake server.
#[derive(Default)]
pub(crate) struct Shared {
    /// `[[wait:NAME]]` gates.
    pub(crate) gates: Gates,
    /// Everything received, in arrival order.
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    /// Source of unique ids.
    counter: AtomicU64,
}

impl Shared {
    fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn record(&self, request: RecordedRequest) {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request);
    }
}

/// The router of a fake server.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/api/hello", get(hello).head(hello))
        .fallback(other)
        .with_state(shared)
}

/// Decides whether a `/v1/messages` body is the main conversation or a side request (title, quota probe, …).
pub(crate) fn classify(body: &Value) -> RequestKind {
    let has_tools = body
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| !tools.is_empty());
    let max_tokens = body.get("max_tokens").and_then(Value::as_u64).unwrap_or(0);
    if has_tools && max_tokens > 1 {
        RequestKind::Main
    } else {
        RequestKind::Side
    }
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        shared.record(recorded(RequestKind::Other, &method, &uri, &headers, Value::Null));
        return error_response(400, &[], "invalid_request_error", "Body is not JSON.");
    };
    let kind = classify(&body);
    shared.record(recorded(kind, &method, &uri, &headers, body.clone()));
    tracing::debug!(?kind, path = %uri, "fake model request");
    let plan = match kind {
        RequestKind::Main => scenario::plan(&body, unix_now()),
        _ => scenario::Plan {
            gate: None,
            reply: side_reply(&body),
        },
    };
    if let Some(gate) = &plan.gate
        && shared.gates.pass(gate).await == Passed::Closed
    {
        return error_response(503, &[], "api_error", "The fake model server has stopped.");
    }
    match plan.reply {
        Reply::Error {
            status,
            headers,
            error_type,
            message,
        } => error_response(status, &headers, error_type, &message),
        Reply::Message {
            blocks,
            stop_reason,
            headers,
        } => {
            let answer = Answer {
                id: format!("msg_fake_{:04}", shared.next_id()),
                model: body
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or("claude-fake")
                    .to_owned(),
                content: blocks.into_iter().map(|block| content(&shared, block)).collect(),
                stop_reason: stop_reason.to_owned(),
                input_tokens: estimate_tokens(&body),
            };
            let streaming = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
            answer_response(&shared, &answer, streaming, &headers)
        }
    }
}

/// The answer to a request that is not the main conversation: a short text.
fn side_reply(body: &Value) -> Reply {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let text = messages.last().map(scenario::user_text).unwrap_or_default();
    let first_line = text.lines().next().unwrap_or_default();
    let short: String = first_line.chars().take(40).collect();
    Reply::Message {
        blocks: vec![Block::Text(vec![format!("Fake side answer: {short}")])],
        stop_reason: "end_turn",
        headers: Vec::new(),
    }
}

fn content(shared: &Shared, block: Block) -> Content {
    match block {
        Block::Text(chunks) => Content::Text(chunks),
        Block::ToolUse { name, input } => Content::ToolUse {
            id: format!("toolu_fake_{:04}", shared.next_id()),
            name: name.to_owned(),
            input,
        },
    }
}

fn answer_response(
    shared: &Shared,
    answer: &Answer,
    streaming: bool,
    extra: &[(String, String)],
) -> Response {
    let mut headers = header_map(extra);
    if let Ok(value) = HeaderValue::from_str(&format!("req_fake_{:04}", shared.next_id())) {
        headers.insert("request-id", value);
    }
    if !streaming {
        return (StatusCode::OK, headers, axum::Json(answer.message())).into_response();
    }
    let events = answer
        .events()
        .into_iter()
        .map(|(name, data)| Ok::<_, Infallible>(Event::default().event(name).data(data.to_string())));
    (StatusCode::OK, headers, Sse::new(stream::iter(events))).into_response()
}

fn error_response(status: u16, extra: &[(String, String)], error_type: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        header_map(extra),
        axum::Json(error_body(error_type, message)),
    )
        .into_response()
}

fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            map.insert(name, value);
        }
    }
    map
}

async fn count_tokens(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let tokens = estimate_tokens(&body);
    shared.record(recorded(RequestKind::CountTokens, &method, &uri, &headers, body));
    axum::Json(json!({"input_tokens": tokens})).into_response()
}

/// The CLI's connectivity check (`HEAD /api/hello`, sent when non-essential traffic is allowed).
async fn hello(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.record(recorded(RequestKind::Other, &method, &uri, &headers, Value::Null));
    StatusCode::OK.into_response()
}

async fn other(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    tracing::debug!(%method, path = %uri, "fake model: unknown route");
    shared.record(recorded(RequestKind::Other, &method, &uri, &headers, body));
    error_response(
        404,
        &[],
        "not_found_error",
        "The fake model does not serve this path.",
    )
}

fn recorded(
    kind: RequestKind,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Value,
) -> RecordedRequest {
    RecordedRequest {
        kind,
        method: method.to_string(),
        path: uri.to_string(),
        headers: agentfarm_local_server::recorded_headers(headers),
        body,
    }
}

/// About four characters per token, over the whole body; never zero.
fn estimate_tokens(body: &Value) -> u64 {
    let chars = body
        .get("messages")
        .map_or(0, |messages| messages.to_string().len());
    u64::try_from(chars / 4).unwrap_or(u64::MAX).max(1)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn call(
        shared: &Arc<Shared>,
        method: &str,
        path: &str,
        body: &Value,
    ) -> (StatusCode, HeaderMap, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = router(Arc::clone(shared)).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    fn main_body(text: &str, stream: bool) -> Value {
        json!({
            "model": "claude-test", "max_tokens": 1000, "stream": stream,
            "tools": [{"name": "Bash"}],
            "messages": [{"role": "user", "content": text}],
        })
    }

    #[tokio::test]
    async fn non_streaming_request_gets_one_json_message() {
        let shared = Arc::new(Shared::default());
        let (status, _, body) =
            call(&shared, "POST", "/v1/messages", &main_body("[[write:/x]]", false)).await;
        assert_eq!(status, StatusCode::OK);
        let message: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(message["type"], "message");
        assert_eq!(message["model"], "claude-test");
        assert_eq!(message["stop_reason"], "tool_use");
        assert_eq!(message["content"][0]["name"], "Write");
        assert_eq!(message["content"][0]["input"]["file_path"], "/x");
    }

    #[tokio::test]
    async fn streaming_request_gets_server_sent_events() {
        let shared = Arc::new(Shared::default());
        let (status, headers, body) = call(
            &shared,
            "POST",
            "/v1/messages?beta=true",
            &main_body("hi [[rate-headers]]", true),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/event-stream");
        assert_eq!(headers["anthropic-ratelimit-unified-status"], "allowed_warning");
        let names: Vec<&str> = body
            .lines()
            .filter_map(|line| line.strip_prefix("event: "))
            .collect();
        assert_eq!(names.first(), Some(&"message_start"));
        assert_eq!(names.last(), Some(&"message_stop"));
        assert!(
            body.contains(r#""text":"Fake answer to: hi [[rate-headers]]""#),
            "{body}"
        );
        assert_eq!(shared.requests.lock().unwrap()[0].kind, RequestKind::Main);
    }

    #[tokio::test]
    async fn errors_carry_anthropic_bodies_and_headers() {
        let shared = Arc::new(Shared::default());
        let (status, headers, body) = call(
            &shared,
            "POST",
            "/v1/messages",
            &main_body("[[status:429]]", true),
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers["retry-after"], "0");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "rate_limit_error");
        let (status, headers, _) = call(
            &shared,
            "POST",
            "/v1/messages",
            &main_body("[[usage-limit]]", true),
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            headers["anthropic-ratelimit-unified-representative-claim"],
            "five_hour"
        );
        let (status, _, body) = call(
            &shared,
            "POST",
            "/v1/messages",
            &main_body("[[status:529]]", true),
        )
        .await;
        assert_eq!(status.as_u16(), 529);
        assert!(body.contains("overloaded_error"));
    }

    #[tokio::test]
    async fn side_requests_are_answered_and_never_parked() {
        let shared = Arc::new(Shared::default());
        let probe =
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "quota"}]});
        let (status, _, body) = call(&shared, "POST", "/v1/messages?beta=true", &probe).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["content"][0]["text"],
            "Fake side answer: quota"
        );
        let title = json!({"model": "m", "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "[[wait:never]] title please"}]});
        let (status, _, _) = call(&shared, "POST", "/v1/messages", &title).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, body) = call(
            &shared,
            "POST",
            "/v1/messages/count_tokens",
            &main_body("abc", false),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            serde_json::from_str::<Value>(&body).unwrap()["input_tokens"]
                .as_u64()
                .unwrap()
                > 0
        );
        let (status, _, _) = call(&shared, "HEAD", "/api/hello", &Value::Null).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = call(&shared, "GET", "/v1/models", &Value::Null).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let kinds: Vec<RequestKind> = shared.requests.lock().unwrap().iter().map(|r| r.kind).collect();
        use RequestKind::{CountTokens, Other, Side};
        assert_eq!(kinds, [Side, Side, CountTokens, Other, Other]);
    }

    #[tokio::test]
    async fn parked_request_is_answered_after_release_or_shutdown() {
        let shared = Arc::new(Shared::default());
        let held = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move { call(&shared, "POST", "/v1/messages", &main_body("[[wait:g]] a", true)).await }
        });
        shared.gates.arrived("g").await;
        shared.gates.release("g");
        let (status, _, body) = held.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("Fake answer to: [[wait:g]] a"));

        let held = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move { call(&shared, "POST", "/v1/messages", &main_body("[[wait:h]] b", true)).await }
        });
        shared.gates.arrived("h").await;
        shared.gates.close();
        assert_eq!(held.await.unwrap().0, StatusCode::SERVICE_UNAVAILABLE);
    }
}

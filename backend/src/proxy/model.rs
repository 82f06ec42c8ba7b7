//! The model proxy: `/proxy/anthropic/v1/…` forwarded to the Anthropic API with the owner's Claude token in
//! place of the run's capability. Answers stream back as they come (Server-Sent Events, back-pressure from
//! the agent's reading, the upstream request dropped when the agent goes away), errors as they are, so that
//! Claude Code's own retries and usage-limit messages work. On the way it counts each run's requests and
//! tokens and keeps the subscription's usage window (`anthropic-ratelimit-unified-*`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use agentfarm_shared::run::RunUsage;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::Stream;
use serde_json::Value;

use super::{Run, Upstream, forwardable};
use crate::error::AppError;
use crate::metrics::LabeledCounter;
use crate::store::{Store, WindowRecord};

/// Largest request body forwarded (a long conversation with images stays far below).
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// Largest non-streamed answer read for its `usage`; a bigger one passes through uncounted.
const MAX_SCANNED_JSON: usize = 1024 * 1024;

/// The prefix of the subscription's usage-window headers.
pub const WINDOW_HEADER_PREFIX: &str = "anthropic-ratelimit-unified-";

/// Model tokens the agents used, by kind (`input`, `output`, `cache_creation`, `cache_read`), summed over
/// every run, for `/metrics`. Not one series per run: run ids never stop coming, so a run id label would
/// grow the server's memory and every scrape (and the monitoring's storage) without bound. Each run's own
/// counts are its `usage` in the API; the totals here show the fleet's rate.
#[derive(Debug, Clone)]
pub struct ModelTokens(LabeledCounter);

impl Default for ModelTokens {
    fn default() -> Self {
        ModelTokens(LabeledCounter::with_values(
            "kind",
            &["input", "output", "cache_creation", "cache_read"],
        ))
    }
}

impl ModelTokens {
    /// The counter, by kind.
    pub fn by_kind(&self) -> &LabeledCounter {
        &self.0
    }

    fn add(&self, tokens: Tokens) {
        self.0.inc_by("input", tokens.input);
        self.0.inc_by("output", tokens.output);
        self.0.inc_by("cache_creation", tokens.cache_creation);
        self.0.inc_by("cache_read", tokens.cache_read);
    }
}

/// Forwards one request of run `holder`'s agent.
pub async fn forward(
    State(upstream): State<Arc<Upstream>>,
    State(http): State<reqwest::Client>,
    State(store): State<Store>,
    State(model_tokens): State<ModelTokens>,
    Run(holder): Run,
    Path(path): Path<String>,
    request: Request,
) -> Result<Response, AppError> {
    if !path.starts_with("v1/") || path.split('/').any(|segment| segment == "..") {
        return Err(AppError::NotFound(format!("/{path} on the model proxy")));
    }
    let token = upstream.credentials.claude.get().await.map_err(|err| {
        tracing::error!(%err, "the model proxy has no Claude token");
        AppError::Upstream("the control plane has no Claude token; see its log".into())
    })?;
    let (parts, body) = request.into_parts();
    let query = parts
        .uri
        .query()
        .map(|query| format!("?{query}"))
        .unwrap_or_default();
    let url = format!("{}/{path}{query}", upstream.anthropic_url.trim_end_matches('/'));
    let body = axum::body::to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|_| AppError::PayloadTooLarge(MAX_REQUEST_BYTES))?;
    let mut forwarded = http.request(parts.method, &url).bearer_auth(token).body(body);
    // Without accept-encoding the answer comes uncompressed, so that its usage can be read on the way.
    let passed = |name: &axum::http::HeaderName| forwardable(name) && *name != header::ACCEPT_ENCODING;
    for (name, value) in parts.headers.iter().filter(|(name, _)| passed(name)) {
        forwarded = forwarded.header(name, value);
    }
    // Logged by the trace layer, with the error.
    let answer = forwarded
        .send()
        .await
        .map_err(|err| AppError::Upstream(format!("the model API did not answer: {err}")))?;
    // Kept before the answer goes on: the scheduler reads it when the agent's run ends on a rejection.
    if let Some(window) = usage_window(answer.headers())
        && let Err(err) = store.set_usage_window(window).await
    {
        tracing::warn!(%err, "could not keep the usage window");
    }
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers().iter().filter(|(name, _)| forwardable(name)) {
        response = response.header(name, value);
    }
    let scanner = Scanner::for_content_type(answer.headers());
    let metered = Metered {
        inner: Box::pin(answer.bytes_stream()),
        scanner,
        tokens: Tokens::default(),
        store,
        model_tokens,
        run_id: holder.run_id,
        recorded: false,
    };
    response
        .body(Body::from_stream(metered))
        .map_err(|err| AppError::Upstream(format!("the model API's answer cannot be passed on: {err}")))
}

/// The `anthropic-ratelimit-unified-*` headers of an answer, if it has any.
fn usage_window(headers: &HeaderMap) -> Option<WindowRecord> {
    let found: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().strip_prefix(WINDOW_HEADER_PREFIX)?;
            Some((key.to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    (!found.is_empty()).then(|| WindowRecord {
        headers: found,
        observed_at: chrono::Utc::now(),
    })
}

/// Reads the token counts out of an answer as it passes: Server-Sent Events line by line, a JSON answer whole.
enum Scanner {
    /// `text/event-stream`: the part of a line not yet complete.
    Events(Vec<u8>),
    /// `application/json`, up to [`MAX_SCANNED_JSON`].
    Json(Vec<u8>),
    /// Anything else.
    Nothing,
}

/// Token counts seen so far in one answer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tokens {
    input: u64,
    output: u64,
    cache_creation: u64,
    cache_read: u64,
}

impl Tokens {
    /// Takes the counts an API `usage` object states (later events restate the totals).
    fn take(&mut self, usage: &Value) {
        let field = |name| usage.get(name).and_then(Value::as_u64);
        let slots = [
            ("input_tokens", &mut self.input),
            ("output_tokens", &mut self.output),
            ("cache_creation_input_tokens", &mut self.cache_creation),
            ("cache_read_input_tokens", &mut self.cache_read),
        ];
        for (name, slot) in slots {
            if let Some(count) = field(name) {
                *slot = count;
            }
        }
    }
}

impl Scanner {
    fn for_content_type(headers: &HeaderMap) -> Scanner {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if content_type.starts_with("text/event-stream") {
            Scanner::Events(Vec::new())
        } else if content_type.starts_with("application/json") {
            Scanner::Json(Vec::new())
        } else {
            Scanner::Nothing
        }
    }

    fn feed(&mut self, chunk: &[u8], tokens: &mut Tokens) {
        match self {
            Scanner::Events(partial) => {
                partial.extend_from_slice(chunk);
                while let Some(end) = partial.iter().position(|&byte| byte == b'\n') {
                    let line: Vec<u8> = partial.drain(..=end).collect();
                    if let Some(data) = line.strip_prefix(b"data:") {
                        event_usage(data, tokens);
                    }
                }
            }
            Scanner::Json(body) => {
                if body.len() + chunk.len() <= MAX_SCANNED_JSON {
                    body.extend_from_slice(chunk);
                } else {
                    *self = Scanner::Nothing;
                }
            }
            Scanner::Nothing => {}
        }
    }

    fn finish(&mut self, tokens: &mut Tokens) {
        if let Scanner::Json(body) = self
            && let Ok(answer) = serde_json::from_slice::<Value>(body)
            && let Some(usage) = answer.get("usage")
        {
            tokens.take(usage);
        }
        *self = Scanner::Nothing;
    }
}

/// The usage in one event's data: `message_start` carries the message's, `message_delta` the totals so far.
fn event_usage(data: &[u8], tokens: &mut Tokens) {
    let Ok(event) = serde_json::from_slice::<Value>(data.trim_ascii()) else {
        return;
    };
    let usage = match event.get("type").and_then(Value::as_str) {
        Some("message_start") => event.pointer("/message/usage"),
        Some("message_delta") => event.get("usage"),
        _ => None,
    };
    if let Some(usage) = usage {
        tokens.take(usage);
    }
}

/// The answer's body on its way to the agent; what it counted is stored when it ends or is dropped (the agent
/// went away).
struct Metered {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    scanner: Scanner,
    tokens: Tokens,
    store: Store,
    model_tokens: ModelTokens,
    run_id: String,
    recorded: bool,
}

impl Metered {
    /// Stores the request and its tokens, once.
    fn record(&mut self) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        self.scanner.finish(&mut self.tokens);
        self.model_tokens.add(self.tokens);
        let usage = RunUsage {
            requests: 1,
            input_tokens: self.tokens.input,
            output_tokens: self.tokens.output,
            cache_creation_tokens: self.tokens.cache_creation,
            cache_read_tokens: self.tokens.cache_read,
        };
        let (store, run_id) = (self.store.clone(), self.run_id.clone());
        // Dropped outside a runtime only at shutdown, when the count no longer matters.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = store.count_usage(run_id, usage).await {
                    tracing::warn!(%err, "could not count a model request");
                }
            });
        }
    }
}

impl Stream for Metered {
    type Item = reqwest::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = this.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => this.scanner.feed(chunk, &mut this.tokens),
            Poll::Ready(None | Some(Err(_))) => this.record(),
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.record();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_from_events_split_anywhere() {
        let stream = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,",
            "\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\"}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":57}}\n\n",
        );
        for cut in [1, 7, 50, stream.len()] {
            let mut scanner = Scanner::Events(Vec::new());
            let mut tokens = Tokens::default();
            for piece in stream.as_bytes().chunks(cut) {
                scanner.feed(piece, &mut tokens);
            }
            scanner.finish(&mut tokens);
            assert_eq!(
                tokens,
                Tokens {
                    input: 12,
                    output: 57,
                    cache_creation: 3,
                    cache_read: 4
                },
                "chunks of {cut}"
            );
        }
    }

    #[test]
    fn a_json_answer_is_read_whole_and_a_huge_one_is_let_through() {
        let mut scanner = Scanner::Json(Vec::new());
        let mut tokens = Tokens::default();
        scanner.feed(br#"{"usage":{"input_tokens":5,"#, &mut tokens);
        scanner.feed(br#""output_tokens":6}}"#, &mut tokens);
        scanner.finish(&mut tokens);
        assert_eq!((tokens.input, tokens.output), (5, 6));

        let mut scanner = Scanner::Json(Vec::new());
        let mut tokens = Tokens::default();
        scanner.feed(&vec![b' '; MAX_SCANNED_JSON + 1], &mut tokens);
        scanner.finish(&mut tokens);
        assert_eq!(tokens, Tokens::default());
    }

    #[test]
    fn the_usage_window_is_every_unified_header() {
        let mut headers = HeaderMap::new();
        headers.insert("anthropic-ratelimit-unified-status", "rejected".parse().unwrap());
        headers.insert("anthropic-ratelimit-unified-reset", "1765000000".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        let window = usage_window(&headers).unwrap();
        assert_eq!(
            window.headers,
            vec![
                ("status".to_owned(), "rejected".to_owned()),
                ("reset".to_owned(), "1765000000".to_owned())
            ]
        );
        assert!(usage_window(&HeaderMap::new()).is_none());
    }
}

//! The HTTP side: checks each `POST /push/<id>` in the documented order, answers it, and records it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use p256::SecretKey;
use tokio::sync::Notify;

use crate::{Delivery, RecordedPush, Scripted, ece, vapid};

/// The largest message body a push service must accept (RFC 8030 §7.2); larger ones get `413`.
pub(crate) const MAX_BODY: usize = 4096;

/// How much of a body is read at all (to tell "too large" from a broken connection).
const READ_LIMIT: usize = 1024 * 1024;

/// Where endpoints live: `/push/<id>`.
const PUSH_PREFIX: &str = "/push/";

/// State shared by the server and the [`crate::FakePush`] handle.
pub(crate) struct Shared {
    /// `http://127.0.0.1:<port>`.
    pub(crate) origin: String,
    /// Subscribers and requests.
    pub(crate) state: Mutex<State>,
    /// Woken after every request.
    pub(crate) changed: Notify,
}

/// Everything that changes.
#[derive(Default)]
pub(crate) struct State {
    /// Subscribers by endpoint id.
    pub(crate) endpoints: HashMap<String, Endpoint>,
    /// Every request, in arrival order.
    pub(crate) requests: Vec<RecordedPush>,
    /// How many messages were accepted (numbers the `Location`s).
    accepted: u64,
}

/// One subscriber as the service knows it.
pub(crate) struct Endpoint {
    /// Its private key (the browser's, which the fake plays).
    pub(crate) secret: SecretKey,
    /// Its auth secret.
    pub(crate) auth: [u8; 16],
    /// The application server key it was subscribed with, if bound to one.
    pub(crate) server_key: Option<Vec<u8>>,
    /// Scripted answers still to give.
    pub(crate) script: VecDeque<Scripted>,
    /// Accepted messages.
    pub(crate) deliveries: Vec<Delivery>,
}

/// The router of the fake (serve it with `ConnectInfo<SocketAddr>`).
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(dispatch).with_state(shared)
}

/// The answer to one request.
struct Answer {
    status: u16,
    headers: Vec<(HeaderName, String)>,
    /// Why the message was not delivered, if it was not.
    refusal: Option<String>,
}

impl Answer {
    fn refuse(status: u16, reason: impl Into<String>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            refusal: Some(reason.into()),
        }
    }
}

/// Reads, checks, answers and records one request.
async fn dispatch(AxumState(shared): AxumState<Arc<Shared>>, request: Request) -> Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |path| path.as_str().to_owned());
    let body = to_bytes(body, READ_LIMIT).await;
    let too_large = body.is_err();
    let body = body.map(|bytes| bytes.to_vec()).unwrap_or_default();

    let answer = {
        let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        let id = parts.uri.path().strip_prefix(PUSH_PREFIX).unwrap_or("");
        let answer = match state.endpoints.get_mut(id) {
            None => Answer::refuse(404, "no such endpoint"),
            Some(endpoint) => {
                let body_len = if too_large { usize::MAX } else { body.len() };
                handle(
                    &shared.origin,
                    endpoint,
                    &parts.method,
                    &parts.headers,
                    &body,
                    body_len,
                    at,
                )
            }
        };
        let answer = if answer.status == 201 {
            state.accepted += 1;
            let mut answer = answer;
            answer.headers.push((
                header::LOCATION,
                format!("{}/message/{}", shared.origin, state.accepted),
            ));
            answer
        } else {
            answer
        };
        tracing::debug!(path, status = answer.status, refusal = ?answer.refusal, "fake push request");
        state.requests.push(RecordedPush {
            at,
            method: parts.method.to_string(),
            path,
            headers: agentfarm_local_server::recorded_headers(&parts.headers),
            body,
            status: answer.status,
            refusal: answer.refusal.clone(),
        });
        answer
    };
    shared.changed.notify_waiters();

    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        answer
            .refusal
            .map(|reason| format!("{reason}\n"))
            .unwrap_or_default(),
    )
        .into_response();
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The first value of header `name` as text (`Err` if it is not visible ASCII).
fn text<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, String> {
    headers
        .get(name)
        .map(|value| value.to_str().map_err(|_| format!("{name} header is not text")))
        .transpose()
}

/// Checks a request to a known endpoint and, if it passes, delivers it or gives the scripted answer.
fn handle(
    origin: &str,
    endpoint: &mut Endpoint,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    body_len: usize,
    at: Instant,
) -> Answer {
    if method != Method::POST {
        return Answer::refuse(405, format!("method {method} is not POST"));
    }
    if body_len > MAX_BODY {
        return Answer::refuse(413, format!("body is larger than {MAX_BODY} bytes"));
    }

    let authorization = match text(headers, "authorization") {
        Ok(value) => value,
        Err(reason) => return Answer::refuse(401, reason),
    };
    let verified = match vapid::verify(authorization, origin, crate::testing::unix_now()) {
        Ok(verified) => verified,
        Err(refused) => return Answer::refuse(refused.status, refused.reason),
    };
    if let Some(server_key) = &endpoint.server_key
        && *server_key != verified.key
    {
        return Answer::refuse(
            403,
            "k= is not the application server key the subscription was made with",
        );
    }

    let ttl = match text(headers, "ttl") {
        Ok(Some(ttl)) => match ttl.trim().parse::<u64>() {
            Ok(ttl) => ttl,
            Err(_) => return Answer::refuse(400, format!("TTL {ttl:?} is not a non-negative integer")),
        },
        Ok(None) => return Answer::refuse(400, "no TTL header"),
        Err(reason) => return Answer::refuse(400, reason),
    };
    let urgency = match text(headers, "urgency") {
        Ok(Some(urgency)) if !["very-low", "low", "normal", "high"].contains(&urgency) => {
            return Answer::refuse(
                400,
                format!("Urgency {urgency:?} is not very-low, low, normal or high"),
            );
        }
        Ok(urgency) => urgency.map(str::to_owned),
        Err(reason) => return Answer::refuse(400, reason),
    };
    let topic = match text(headers, "topic") {
        Ok(Some(topic))
            if topic.is_empty()
                || topic.len() > 32
                || !topic
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_') =>
        {
            return Answer::refuse(
                400,
                format!("Topic {topic:?} is not 1-32 characters of base64url"),
            );
        }
        Ok(topic) => topic.map(str::to_owned),
        Err(reason) => return Answer::refuse(400, reason),
    };

    let plaintext = if body.is_empty() {
        Vec::new()
    } else {
        match text(headers, "content-encoding") {
            Ok(Some(encoding)) if encoding.eq_ignore_ascii_case("aes128gcm") => {}
            Ok(Some(encoding)) => {
                return Answer::refuse(400, format!("Content-Encoding {encoding:?} is not aes128gcm"));
            }
            Ok(None) => return Answer::refuse(400, "a body without Content-Encoding"),
            Err(reason) => return Answer::refuse(400, reason),
        }
        match ece::decrypt(&endpoint.secret, &endpoint.auth, body) {
            Ok(plaintext) => plaintext,
            Err(reason) => return Answer::refuse(400, reason),
        }
    };

    let delivery = Delivery {
        plaintext,
        ttl: Some(ttl),
        urgency,
        topic,
        vapid: verified.claims,
        vapid_key: verified.key_text,
        at,
    };
    match endpoint.script.pop_front() {
        Some(Scripted::Status(status)) if (200..300).contains(&status) => {
            endpoint.deliveries.push(delivery);
            Answer {
                status,
                headers: vec![(HeaderName::from_static("ttl"), ttl.to_string())],
                refusal: None,
            }
        }
        Some(Scripted::Status(status)) => Answer::refuse(status, format!("scripted {status}")),
        Some(Scripted::TooMany { retry_after_secs }) => Answer {
            status: 429,
            headers: vec![(header::RETRY_AFTER, retry_after_secs.to_string())],
            refusal: Some("scripted 429".to_owned()),
        },
        Some(Scripted::Redirect { location }) => Answer {
            status: 302,
            headers: vec![(header::LOCATION, location)],
            refusal: Some("scripted 302".to_owned()),
        },
        None => {
            endpoint.deliveries.push(delivery);
            Answer {
                status: 201,
                headers: vec![(HeaderName::from_static("ttl"), ttl.to_string())],
                refusal: None,
            }
        }
    }
}

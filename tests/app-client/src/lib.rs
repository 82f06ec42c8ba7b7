//! A client of a running agentfarm server, for tests: JSON requests with the app's own `Origin` (as the web
//! app sends them), the live WebSocket `/api/ws`, and a patience that only ends hung tests. Test support:
//! every call panics on what a test cannot go on from.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support; see above

use std::time::Duration;

use agentfarm_shared::run::{Run, RunState};
use agentfarm_shared::ws::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Safety net for anything a test awaits: far longer than any step takes, so it only ends hung tests.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// `future`, or a test failure after [`PATIENCE`].
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("it never got there")
}

/// An HTTP client that sends the server's own origin, as the web app would.
pub fn client(url: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", url.parse().unwrap());
    client_builder().default_headers(headers).build().unwrap()
}

/// A client builder; TLS is compiled in for the runner's HTTPS calls, so a crypto provider must be chosen.
pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// Sends `request`; its status and its body (JSON, a string when it is not JSON, null when empty).
pub async fn respond(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        },
    )
}

/// A running server's API, as the web app uses it.
#[derive(Clone)]
pub struct App {
    /// Its base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The HTTP client, sending the server's own origin.
    pub http: reqwest::Client,
}

impl App {
    /// The API of the server at `url`.
    pub fn new(url: impl Into<String>) -> App {
        let url = url.into();
        let http = client(&url);
        App { url, http }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        respond(self.http.get(format!("{}{path}", self.url))).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        respond(self.http.post(format!("{}{path}", self.url)).json(&body)).await
    }

    /// Creates a config named `name` whose task is `task`; its id.
    pub async fn create_config(&self, name: &str, task: &str) -> String {
        self.create_config_with(json!({"name": name, "task_prompt": task}))
            .await
    }

    /// Creates the config `spec`; its id.
    pub async fn create_config_with(&self, spec: Value) -> String {
        let (status, body) = self.post("/api/configs", spec).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Launches config `config_id` with the one-off task `prompt`.
    pub async fn launch(&self, config_id: &str, prompt: &str) -> Run {
        let (status, body) = self
            .post("/api/runs", json!({"config_id": config_id, "prompt": prompt}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// Run `id` now.
    pub async fn run(&self, id: &str) -> Run {
        let (status, body) = self.get(&format!("/api/runs/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// A new socket to the live stream.
    pub async fn socket(&self) -> Socket {
        Socket::connect(&self.url).await
    }
}

/// A WebSocket client of `/api/ws`.
pub struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    /// Connects to `url`'s live stream with the server's own origin.
    pub async fn connect(url: &str) -> Socket {
        let mut request = format!("{}/api/ws", url.replace("http://", "ws://"))
            .into_client_request()
            .unwrap();
        request.headers_mut().insert("origin", url.parse().unwrap());
        let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.status(), 101);
        Socket { ws }
    }

    /// Sends `frame`.
    pub async fn send(&mut self, frame: &ClientFrame) {
        self.ws
            .send(Message::text(serde_json::to_string(frame).unwrap()))
            .await
            .unwrap();
    }

    /// Sends `text` as one text frame, whatever it holds.
    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Reads until the server's close frame and returns its code (1005 when it named none).
    pub async fn close_code(&mut self) -> u16 {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next()).await.unwrap();
            if let Some(Ok(Message::Close(frame))) = message {
                return frame.map_or(1005, |f| f.code.into());
            }
            assert!(
                matches!(message, Some(Ok(_))),
                "the socket ended without a close frame: {message:?}"
            );
        }
    }

    /// Follows run `run_id`'s log from after line `after_seq`.
    pub async fn subscribe(&mut self, run_id: &str, after_seq: u64) {
        self.send(&ClientFrame::Subscribe {
            run_id: run_id.into(),
            after_seq,
        })
        .await;
    }

    /// The next frame other than a heartbeat.
    pub async fn next(&mut self) -> ServerFrame {
        self.next_with_text().await.0
    }

    /// The next frame other than a heartbeat, and the text it came as.
    pub async fn next_with_text(&mut self) -> (ServerFrame, String) {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("no frame in time");
            match message.expect("socket closed").expect("socket error") {
                Message::Text(text) => match serde_json::from_str(text.as_str()).unwrap() {
                    ServerFrame::Heartbeat => {}
                    frame => return (frame, text.to_string()),
                },
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// Reads frames, handing each to `seen`, until it returns `Some`.
    pub async fn until<T>(&mut self, mut seen: impl FnMut(&ServerFrame) -> Option<T>) -> T {
        loop {
            let frame = self.next().await;
            if let Some(value) = seen(&frame) {
                return value;
            }
        }
    }

    /// Reads frames until run `id` is in `state`; returns the run and every state it passed through, in order.
    pub async fn until_state(&mut self, id: &str, state: RunState) -> (Run, Vec<RunState>) {
        let mut states = Vec::new();
        let run = self
            .until(|frame| match frame {
                ServerFrame::Run { run } if run.id == id => {
                    if states.last() != Some(&run.state) {
                        states.push(run.state);
                    }
                    (run.state == state).then(|| Run::clone(run))
                }
                _ => None,
            })
            .await;
        (run, states)
    }

    /// Reads frames until run `id` has ended, however it ended; returns the run.
    pub async fn until_ended(&mut self, id: &str) -> Run {
        self.until(|frame| match frame {
            ServerFrame::Run { run } if run.id == id && run.state.is_terminal() => Some(Run::clone(run)),
            _ => None,
        })
        .await
    }
}

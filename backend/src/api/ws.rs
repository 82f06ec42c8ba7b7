//! The live stream: one socket per client carrying every run change and the logs of the runs it subscribed
//! to. The session loop is generic over `Sink`/`Stream` so tests can drive it without a network.
//!
//! Delivery rule per subscription: the client has everything before `next`; a line is sent only if its
//! sequence number is `next`, and any hole (lines published before the client subscribed, or dropped while it
//! lagged) is filled from the store first, with a `gap` frame for lines the store no longer keeps. So each
//! line arrives exactly once, in order, whatever the timing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agentfarm_shared::log::LogLine;
use agentfarm_shared::push::DEVICE_COOKIE;
use agentfarm_shared::run::Run;
use agentfarm_shared::ws::{ClientFrame, HEARTBEAT_SECS, MAX_CLIENT_FRAME_BYTES, ServerFrame};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::BroadcastStream;
use tokio_tungstenite::tungstenite;

use crate::hub::{LogBatch, RunEvent};
use crate::push::Push;
use crate::push::foreground::Viewer;
use crate::service::Farm;
use crate::store::StoreError;

/// Finished runs a new client is shown besides the active ones.
const SNAPSHOT_RECENT: u32 = 50;
/// Lines read from the store per query while catching up.
const CATCH_UP_PAGE: u32 = 500;
/// Most line bytes in one `log` frame.
const FRAME_TEXT_BUDGET: usize = 1024 * 1024;
/// The socket's read buffer.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// A client that takes longer than this to accept one frame is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// `GET /api/ws` (the guard has already checked the Origin).
/// The device is named by the `agentfarm_device` cookie (its push subscription), so pushes about the runs
/// it watches here skip it.
pub async fn upgrade(
    State(farm): State<Arc<Farm>>,
    State(push): State<Arc<Push>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let viewer = device(&headers).map(|device| Viewer::new(Arc::clone(push.foreground()), device));
    upgrade
        // Every poll of the socket readies this much buffer, zeroed (tungstenite's default, 128 KiB, made
        // zeroing a third of the server's CPU in the fan-out benchmark); clients send only small frames.
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(MAX_CLIENT_FRAME_BYTES)
        .max_frame_size(MAX_CLIENT_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            session(sink, stream, farm, viewer).await;
        })
}

/// The push subscription the `agentfarm_device` cookie names, when it looks like one.
fn device(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().split_once('='))
        .find(|(name, _)| *name == DEVICE_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|id| {
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Why a session ended early.
#[derive(Debug)]
enum Closed {
    /// The client is gone or too slow.
    Client,
    /// The server is shutting down.
    Server,
}

impl From<StoreError> for Closed {
    fn from(_: StoreError) -> Self {
        Closed::Server
    }
}

/// Serves one client until it leaves.
pub async fn session<W, R>(sink: W, mut stream: R, farm: Arc<Farm>, viewer: Option<Viewer>)
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let _counted = farm.metrics().socket_opened();
    // Subscribe before reading the snapshot, so nothing published in between is missed.
    let mut runs = farm.hub().subscribe_runs();
    let mut client = Client {
        sink,
        farm: Arc::clone(&farm),
        next: HashMap::new(),
        logs: StreamMap::new(),
        viewer,
    };
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(HEARTBEAT_SECS),
        Duration::from_secs(HEARTBEAT_SECS),
    );
    let closed = farm.hub().closed();
    tokio::pin!(closed);
    let mut result = client.snapshot().await;
    while result.is_ok() {
        result = tokio::select! {
            () = &mut closed => {
                let frame = CloseFrame { code: close_code::AWAY, reason: "the server is shutting down".into() };
                let _ = client.sink.send(Message::Close(Some(frame))).await;
                Err(Closed::Server)
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => client.on_frame(text.as_str()).await,
                Some(Ok(Message::Binary(_))) => client.error("invalid", "frames must be JSON text").await,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                Some(Err(err)) if too_big(&err) => {
                    let frame = CloseFrame {
                        code: close_code::SIZE,
                        reason: format!("frames are limited to {MAX_CLIENT_FRAME_BYTES} bytes").into(),
                    };
                    let _ = client.sink.send(Message::Close(Some(frame))).await;
                    Err(Closed::Client)
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => Err(Closed::Client),
            },
            event = runs.recv() => match event {
                Ok(event) => client.on_run_event(event).await,
                Err(RecvError::Lagged(_)) => client.resync().await,
                Err(RecvError::Closed) => Err(Closed::Server),
            },
            // Ends (and is disabled for this turn) when the client follows no run.
            Some((run_id, batch)) = client.logs.next() => match batch {
                Ok(lines) => client.on_lines(&run_id, &lines).await,
                Err(_lagged) => client.resync().await,
            },
            _ = heartbeat.tick() => client.send(&ServerFrame::Heartbeat).await,
        };
    }
    tracing::debug!(reason = ?result, "socket session ended");
}

/// Whether a read failed because the client sent a frame or message over the limit.
fn too_big(err: &axum::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|err| matches!(err, tungstenite::Error::Capacity(_)))
}

struct Client<W> {
    sink: W,
    farm: Arc<Farm>,
    /// Per subscribed run: the next sequence number the client needs.
    next: HashMap<String, u64>,
    /// Per subscribed run: its lines as the hub publishes them.
    logs: StreamMap<String, BroadcastStream<LogBatch>>,
    /// The device on the other end, when it named itself: the runs it watches are open there.
    viewer: Option<Viewer>,
}

impl<W: Sink<Message> + Unpin> Client<W> {
    async fn send(&mut self, frame: &ServerFrame) -> Result<(), Closed> {
        let text = serde_json::to_string(frame).map_err(|_| Closed::Server)?;
        match tokio::time::timeout(SEND_TIMEOUT, self.sink.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Closed::Client),
        }
    }

    async fn error(&mut self, code: &str, message: impl Into<String>) -> Result<(), Closed> {
        self.send(&ServerFrame::Error {
            code: code.into(),
            message: message.into(),
        })
        .await
    }

    async fn snapshot(&mut self) -> Result<(), Closed> {
        let runs = self.farm.store().snapshot_runs(SNAPSHOT_RECENT).await?;
        self.send(&ServerFrame::Snapshot { runs }).await
    }

    async fn on_frame(&mut self, text: &str) -> Result<(), Closed> {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(err) => return self.error("invalid", format!("bad frame: {err}")).await,
        };
        match frame {
            ClientFrame::Subscribe { run_id, after_seq } => {
                if let Some(viewer) = &mut self.viewer {
                    viewer.watch(&run_id);
                }
                // Follow the run's channel before reading the store, so no line stored in between is missed.
                let lines = self.farm.hub().subscribe_log(&run_id);
                self.logs.insert(run_id.clone(), BroadcastStream::new(lines));
                self.next.insert(run_id.clone(), after_seq.saturating_add(1));
                self.catch_up(&run_id, None).await
            }
            ClientFrame::Unsubscribe { run_id } => {
                if let Some(viewer) = &mut self.viewer {
                    viewer.unwatch(&run_id);
                }
                self.forget(&run_id);
                Ok(())
            }
            ClientFrame::Ping => self.send(&ServerFrame::Pong).await,
        }
    }

    async fn on_run_event(&mut self, event: RunEvent) -> Result<(), Closed> {
        match event {
            RunEvent::Changed(run) => {
                // The run's lines published before this change reach the client before it.
                let (published, lagged) = self.published(&run.id);
                for lines in published {
                    self.on_lines(&run.id, &lines).await?;
                }
                if lagged {
                    // The snapshot of the resync carries the change.
                    return self.resync().await;
                }
                self.send(&ServerFrame::Run {
                    run: Box::new(Run::clone(&run)),
                })
                .await
            }
            RunEvent::Removed(run_id) => {
                self.forget(&run_id);
                self.send(&ServerFrame::RunRemoved {
                    run_id: run_id.to_string(),
                })
                .await
            }
        }
    }

    /// The batches of `run_id`'s lines published and not yet taken, and whether the client fell behind them.
    fn published(&mut self, run_id: &str) -> (Vec<LogBatch>, bool) {
        let mut published = Vec::new();
        let Some((_, channel)) = self.logs.iter_mut().find(|(id, _)| *id == run_id) else {
            return (published, false);
        };
        // A batch not yet published leaves the receive pending; the socket's loop polls it again.
        while let Some(Some(batch)) = channel.next().now_or_never() {
            match batch {
                Ok(lines) => published.push(lines),
                Err(_lagged) => return (published, true),
            }
        }
        (published, false)
    }

    /// Stops following `run_id`.
    fn forget(&mut self, run_id: &str) {
        self.next.remove(run_id);
        self.logs.remove(run_id);
    }

    /// Sends the lines of a batch the client has not had, filling any hole before them from the store.
    async fn on_lines(&mut self, run_id: &str, lines: &[LogLine]) -> Result<(), Closed> {
        let (Some(&next), Some(first)) = (self.next.get(run_id), lines.first()) else {
            return Ok(());
        };
        if first.seq > next {
            self.catch_up(run_id, Some(first.seq - 1)).await?;
        }
        let Some(&next) = self.next.get(run_id) else {
            return Ok(());
        };
        let fresh: Vec<LogLine> = lines.iter().filter(|line| line.seq >= next).cloned().collect();
        self.send_lines(run_id, fresh).await
    }

    /// The client missed events: tell it, then bring it up to date from the store.
    async fn resync(&mut self) -> Result<(), Closed> {
        self.send(&ServerFrame::Resync).await?;
        self.snapshot().await?;
        let runs: Vec<String> = self.next.keys().cloned().collect();
        for run_id in runs {
            self.catch_up(&run_id, None).await?;
        }
        Ok(())
    }

    /// Sends stored lines from the client's `next` up to `upto` (or the newest), gap first if some are gone.
    async fn catch_up(&mut self, run_id: &str, upto: Option<u64>) -> Result<(), Closed> {
        loop {
            let Some(&next) = self.next.get(run_id) else {
                return Ok(());
            };
            if upto.is_some_and(|upto| next > upto) {
                return Ok(());
            }
            let page = match self
                .farm
                .store()
                .logs(run_id.to_owned(), next - 1, CATCH_UP_PAGE)
                .await
            {
                Ok(page) => page,
                Err(StoreError::NotFound(_)) => {
                    self.forget(run_id);
                    return self.error("not_found", format!("run {run_id} not found")).await;
                }
                Err(err) => return Err(err.into()),
            };
            if let Some((from_seq, to_seq)) = page.gap {
                self.send(&ServerFrame::Gap {
                    run_id: run_id.to_owned(),
                    from_seq,
                    to_seq,
                })
                .await?;
                self.next.insert(run_id.to_owned(), to_seq + 1);
            }
            let full_page = page.lines.len() >= CATCH_UP_PAGE as usize;
            let lines: Vec<LogLine> = page
                .lines
                .into_iter()
                .filter(|line| upto.is_none_or(|upto| line.seq <= upto))
                .collect();
            let reached_upto = lines
                .last()
                .is_some_and(|line| upto.is_some_and(|upto| line.seq >= upto));
            if lines.is_empty() {
                return Ok(());
            }
            self.send_lines(run_id, lines).await?;
            if !full_page || reached_upto {
                return Ok(());
            }
        }
    }

    /// Sends contiguous lines starting at the client's `next`, in frames of bounded size.
    async fn send_lines(&mut self, run_id: &str, lines: Vec<LogLine>) -> Result<(), Closed> {
        let Some(last) = lines.last().map(|line| line.seq) else {
            return Ok(());
        };
        let mut frame = Vec::new();
        let mut bytes = 0;
        for line in lines {
            if bytes + line.text.len() > FRAME_TEXT_BUDGET && !frame.is_empty() {
                self.send(&ServerFrame::Log {
                    run_id: run_id.to_owned(),
                    lines: std::mem::take(&mut frame),
                })
                .await?;
                bytes = 0;
            }
            bytes += line.text.len();
            frame.push(line);
        }
        if !frame.is_empty() {
            self.send(&ServerFrame::Log {
                run_id: run_id.to_owned(),
                lines: frame,
            })
            .await?;
        }
        self.next.insert(run_id.to_owned(), last + 1);
        Ok(())
    }
}

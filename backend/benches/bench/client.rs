//! A WebSocket client of `/api/ws` that follows some runs to their end, timing every live line (written by
//! the agent → decoded here) and every run's end (the agent's last line → the terminal `run` frame).

use std::collections::HashMap;

use agentfarm_shared::ws::{ClientFrame, ServerFrame};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::agent::{now_nanos, stamp};

/// What one client saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Nanoseconds from each `bench` line's writing to its arrival here, for the lines written after the
    /// client subscribed. Those written before reach it in its catch-up from the store, up to the whole
    /// launch time late: that times the catch-up, not the fan-out.
    pub line_latency: Vec<u64>,
    /// Nanoseconds from each run's `bench-exit` line to its terminal frame arriving here.
    pub end_latency: Vec<u64>,
    /// Lines received.
    pub lines: u64,
    /// When the last line arrived (wall-clock nanoseconds).
    pub last_at: u64,
}

/// Connects to the server at `url` with its own origin.
pub async fn connect(
    url: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let mut request = format!("{}/api/ws", url.replace("http://", "ws://")).into_client_request()?;
    request.headers_mut().insert("origin", url.parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(ws)
}

/// Follows `runs` from their first line to their end.
pub async fn follow(url: String, runs: Vec<String>) -> anyhow::Result<Seen> {
    let mut ws = connect(&url).await?;
    for run_id in &runs {
        let frame = serde_json::to_string(&ClientFrame::Subscribe {
            run_id: run_id.clone(),
            after_seq: 0,
        })?;
        ws.send(Message::text(frame)).await?;
    }
    let live_from = now_nanos();
    let mut seen = Seen::default();
    // Per run: lines received, the exit stamp, and the last sequence number once it has ended.
    let mut progress: HashMap<String, (u64, Option<u64>, Option<u64>)> =
        runs.iter().map(|id| (id.clone(), (0, None, None))).collect();
    while progress
        .values()
        .any(|(got, _, last)| last.is_none_or(|last| *got < last))
    {
        let message = ws.next().await.context("the socket closed")??;
        let Message::Text(text) = message else { continue };
        let at = now_nanos();
        match serde_json::from_str::<ServerFrame>(text.as_str())? {
            ServerFrame::Log { run_id, lines } => {
                let Some(run) = progress.get_mut(&run_id) else {
                    continue;
                };
                for line in lines {
                    run.0 += 1;
                    seen.lines += 1;
                    seen.last_at = at;
                    if line.text.starts_with("bench ") {
                        if let Some(written) = stamp(&line.text)
                            && written >= live_from
                        {
                            seen.line_latency.push(at.saturating_sub(written));
                        }
                    } else if line.text.starts_with("bench-exit ") {
                        run.1 = stamp(&line.text);
                    }
                }
            }
            ServerFrame::Run { run } if run.state.is_terminal() => {
                if let Some(progress) = progress.get_mut(&run.id)
                    && progress.2.is_none()
                {
                    progress.2 = Some(run.last_seq);
                    if let Some(exit) = progress.1 {
                        seen.end_latency.push(at.saturating_sub(exit));
                    }
                }
            }
            ServerFrame::Gap { .. } => bail!("a gap: the server dropped lines it should keep"),
            _ => {}
        }
    }
    Ok(seen)
}

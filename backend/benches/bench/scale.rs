//! Scale and launch: idle memory; `tracked` runs in mixed states (running, queued, stopped) with `watchers`
//! clients: list and snapshot latency, memory per run; and launch latency, API request → the agent running.

use std::time::Instant;

use agentfarm_shared::ws::{ClientFrame, ServerFrame};
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::agent::{now_nanos, stamp};
use crate::client;
use crate::server::{self, Server};
use crate::stats::{ms, percentile};
use crate::{Plan, Row};

/// Times `attempts` runs of `request` (nanoseconds each).
async fn timed<F, Fut>(attempts: usize, mut request: F) -> anyhow::Result<Vec<u64>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut samples = Vec::with_capacity(attempts);
    for _ in 0..attempts {
        let started = Instant::now();
        request().await?;
        samples.push(u64::try_from(started.elapsed().as_nanos())?);
    }
    Ok(samples)
}

/// Connects and waits for the snapshot.
async fn snapshot(url: &str) -> anyhow::Result<()> {
    let mut ws = client::connect(url).await?;
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message?
            && let ServerFrame::Snapshot { .. } = serde_json::from_str(text.as_str())?
        {
            return Ok(());
        }
    }
    anyhow::bail!("the socket closed before the snapshot")
}

pub async fn measure(plan: Plan) -> anyhow::Result<Vec<Row>> {
    // Agents that print a line a second for an hour: the running ones stay running.
    let running = (plan.tracked / 10).max(1);
    let server = Server::start(1, 3600, running).await?;
    let pid = server.pid();
    let config = server.config().await?;
    server.http.get(format!("{}/api/runs", server.url)).send().await?;
    let idle = server::rss_mib(pid);

    let mut runs = Vec::new();
    for _ in 0..plan.tracked {
        runs.push(server.launch(&config).await?);
    }
    // Every third queued run stopped: running, queued and ended runs side by side.
    for run in runs.iter().skip(running).step_by(3) {
        server.post(&format!("/api/runs/{run}/stop"), Value::Null).await?;
    }
    let with_runs = server::rss_mib(pid);

    let url = server.url.clone();
    let http = server.http.clone();
    let mut list = timed(50, || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let runs: Value = http.get(format!("{url}/api/runs")).send().await?.json().await?;
            anyhow::ensure!(
                runs.as_array().is_some_and(|runs| !runs.is_empty()),
                "no runs listed"
            );
            Ok(())
        }
    })
    .await?;
    let mut snapshots = timed(20, || snapshot(&url)).await?;

    let mut watchers = Vec::new();
    for (i, _) in (0..plan.watchers).enumerate() {
        let mut ws = client::connect(&url).await?;
        let subscribe = ClientFrame::Subscribe {
            run_id: runs[i % running].clone(),
            after_seq: 0,
        };
        futures_util::SinkExt::send(&mut ws, Message::text(serde_json::to_string(&subscribe)?)).await?;
        watchers.push(ws);
    }
    snapshot(&url).await?;
    let with_clients = server::rss_mib(pid);
    drop(watchers);
    drop(server);

    // Launches on a fresh server with room for all of them: request → the agent's first line.
    let server = Server::start(0, 0, plan.launches).await?;
    let config = server.config().await?;
    let mut launched = Vec::new();
    for _ in 0..plan.launches {
        let asked = now_nanos();
        launched.push((asked, server.launch(&config).await?));
    }
    let mut launch = Vec::new();
    for (asked, run) in launched {
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let page: Value = server
                .http
                .get(format!("{}/api/runs/{run}/logs", server.url))
                .send()
                .await?
                .json()
                .await?;
            let first = page["lines"][0]["text"].as_str().and_then(stamp);
            if let Some(started) = first {
                launch.push(started.saturating_sub(asked));
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "run {run} never started");
            tokio::task::yield_now().await;
        }
    }

    let per_run = (with_runs - idle).max(0.0) * 1024.0 / plan.tracked as f64;
    Ok(vec![
        Row {
            measure: "Idle server RSS".into(),
            target: "≤ 20 MB".into(),
            measured: format!("{idle:.1} MiB"),
            floor: "–".into(),
        },
        Row {
            measure: format!(
                "RSS with {} runs ({running} running, the rest queued or stopped), then + {} clients",
                plan.tracked, plan.watchers
            ),
            target: "≤ 64 MB at 100 runs + 50 clients".into(),
            measured: format!("{with_runs:.1} MiB, then {with_clients:.1} MiB ({per_run:.0} KiB per run)"),
            floor: "–".into(),
        },
        Row {
            measure: format!("`GET /api/runs` with {} runs, p50 / p99", plan.tracked),
            target: "–".into(),
            measured: format!("{} / {}", ms(percentile(&mut list, 50.0)), ms(percentile(&mut list, 99.0))),
            floor: "–".into(),
        },
        Row {
            measure: "WebSocket connect → snapshot, p50 / p99".into(),
            target: "–".into(),
            measured: format!(
                "{} / {}",
                ms(percentile(&mut snapshots, 50.0)),
                ms(percentile(&mut snapshots, 99.0))
            ),
            floor: "–".into(),
        },
        Row {
            measure: "Launch, `POST /api/runs` → the agent process running its first line (local runtime), p50 / p99"
                .into(),
            // The 50 ms target is for the runtime's create call (the Kubernetes row); this also counts the
            // agent process starting.
            target: "–".into(),
            measured: format!("{} / {}", ms(percentile(&mut launch, 50.0)), ms(percentile(&mut launch, 99.0))),
            floor: "–".into(),
        },
    ])
}

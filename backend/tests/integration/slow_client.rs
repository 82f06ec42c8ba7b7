//! A socket that stops reading never blocks producers: it falls behind, gets `resync`, and then receives
//! every line it missed from the store, exactly once and in order. Drives the session loop over channels.

use std::sync::Arc;
use std::time::Duration;

use agentfarm::api::ws::session;
use agentfarm::hub::{Hub, HubEvent};
use agentfarm::runtime::local::{LocalRuntime, LocalSettings};
use agentfarm::service::{Farm, FarmLimits};
use agentfarm::store::{NewLine, NewRun, RunPatch, Store};
use agentfarm_shared::config::ConfigSpec;
use agentfarm_shared::log::LogStream;
use agentfarm_shared::ws::{ClientFrame, ServerFrame};
use axum::extract::ws::Message;
use chrono::Utc;
use futures_util::{sink, stream};
use tokio::sync::mpsc;

use crate::harness::PATIENCE;

const LINES: u64 = 2_000;
const PER_EVENT: u64 = 10;

#[tokio::test]
async fn a_slow_client_resyncs_and_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("farm.db")).unwrap();
    store
        .create_config("c".into(), ConfigSpec::new("c", "task"), Utc::now())
        .await
        .unwrap();
    let run = NewRun {
        id: "r1".into(),
        config_id: "c".into(),
        config_version: 1,
        prompt: "task".into(),
    };
    store.insert_run(run, Utc::now()).await.unwrap();
    let runtime = Arc::new(LocalRuntime::new(LocalSettings {
        runs_dir: dir.path().join("runs"),
        agent_command: "true".into(),
        env_passthrough: vec![],
        agent_env: vec![],
        idle_timeout: Duration::ZERO,
        stop_grace: Duration::ZERO,
    }));
    let hub = Hub::new(8);
    let farm = Farm::new(
        store.clone(),
        runtime,
        hub.clone(),
        FarmLimits {
            max_running: 1,
            log_retention: 1_000_000,
        },
    );

    // The client's side: frames from the server arrive on `frames` (room for one); it writes on `say`.
    let (frames_tx, mut frames) = mpsc::channel::<Message>(1);
    let (say, heard) = mpsc::channel::<Result<Message, axum::Error>>(4);
    let to_client = sink::unfold(frames_tx, |tx, message: Message| async move {
        tx.send(message)
            .await
            .map(|()| tx)
            .map_err(|_| axum::Error::new("client gone"))
    });
    let from_client = stream::unfold(heard, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    tokio::spawn(session(Box::pin(to_client), Box::pin(from_client), farm));

    let first = next(&mut frames).await;
    assert!(matches!(first, ServerFrame::Snapshot { .. }), "{first:?}");
    let subscribe = serde_json::to_string(&ClientFrame::Subscribe {
        run_id: "r1".into(),
        after_seq: 0,
    })
    .unwrap();
    say.send(Ok(Message::Text(subscribe.into()))).await.unwrap();

    // Produce far more than the hub holds while the client reads nothing: this must not wait for it.
    for _ in 0..LINES / PER_EVENT {
        let lines = (0..PER_EVENT)
            .map(|i| NewLine {
                ts: Utc::now(),
                stream: LogStream::Stdout,
                text: format!("line {i}"),
                truncated: false,
            })
            .collect();
        let (stored, _) = store
            .append_logs("r1".into(), lines, RunPatch::default(), 1_000_000, Utc::now())
            .await
            .unwrap();
        hub.publish(HubEvent::Log {
            run_id: "r1".into(),
            lines: stored.into(),
        });
    }

    let mut resynced = false;
    let mut seqs = Vec::new();
    while seqs.last() != Some(&LINES) {
        match next(&mut frames).await {
            ServerFrame::Resync => resynced = true,
            ServerFrame::Log { run_id, lines } => {
                assert_eq!(run_id, "r1");
                seqs.extend(lines.iter().map(|line| line.seq));
            }
            ServerFrame::Snapshot { .. } | ServerFrame::Heartbeat => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        resynced,
        "the client fell 200 events behind a hub of 8 and was not told"
    );
    assert_eq!(
        seqs,
        (1..=LINES).collect::<Vec<_>>(),
        "every line exactly once, in order"
    );
}

async fn next(frames: &mut mpsc::Receiver<Message>) -> ServerFrame {
    let message = tokio::time::timeout(PATIENCE, frames.recv())
        .await
        .unwrap()
        .unwrap();
    let Message::Text(text) = message else {
        panic!("{message:?}")
    };
    serde_json::from_str(text.as_str()).unwrap()
}

//! The subscription's usage window, read by the model proxy from the model's answers: shown by `/api/usage`,
//! obeyed by the scheduler (queued runs wait for the reset instead of failing at once), and, for configs that
//! ask for it, a run the limit stopped continues by itself on its branch after the reset.

use agentfarm_shared::run::{RESUME_PROMPT, Run, RunState};
use agentfarm_shared::usage::UsageWindow;
use agentfarm_shared::ws::ServerFrame;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::TestServer;

async fn window(server: &TestServer) -> UsageWindow {
    let (status, body) = server.get("/api/usage").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_window_holds_queued_runs_until_it_resets_and_a_stopped_run_resumes_on_its_branch() {
    let server = TestServer::start_with(|s| s.max_running = 1).await;
    assert_eq!(
        server.get("/api/usage").await.1,
        json!(null),
        "no window before any answer"
    );
    let config = server
        .create_config_with(json!({"name": "Limited", "task_prompt": "unused", "auto_resume": true}))
        .await;
    let mut socket = server.socket().await;

    // An answer with the window's headers: 91% of the five hours used.
    let warned = server.launch(&config, "[[rate-headers]] hello").await;
    assert_eq!(socket.until_ended(&warned.id).await.state, RunState::Succeeded);
    let first = window(&server).await;
    assert_eq!(first.status, "allowed_warning");
    assert_eq!(first.five_hour.utilization, Some(0.91));
    assert_eq!(first.exhausted_until(Utc::now()), None);

    // The limit: rejected until a reset a few seconds ahead.
    let limited = server.launch(&config, "[[usage-limit:4]] work").await;
    let stopped = socket.until_ended(&limited.id).await;
    assert_eq!(stopped.state, RunState::Failed, "{stopped:?}");
    let reset: DateTime<Utc> = stopped
        .limit_resets_at
        .expect("the run knows when the limit resets");
    let rejected = window(&server).await;
    assert_eq!(rejected.status, "rejected");
    assert_eq!(rejected.resets_at, Some(reset));

    // Launched meanwhile: queued, and started only at the reset; so is the stopped run's continuation.
    let waiting = server.launch(&config, "after the reset").await;
    assert_eq!(waiting.state, RunState::Queued);
    let resumed = socket
        .until(|frame| match frame {
            ServerFrame::Run { run }
                if run.id != waiting.id && run.branch == stopped.branch && run.id != stopped.id =>
            {
                Some(Run::clone(run))
            }
            _ => None,
        })
        .await;
    assert_eq!(resumed.prompt, RESUME_PROMPT);
    for id in [&resumed.id, &waiting.id] {
        let run = socket.until_ended(id).await;
        assert_eq!(run.state, RunState::Succeeded, "{run:?}");
        let started = run.started_at.expect("it started");
        assert!(
            started >= reset,
            "{id} started at {started}, before the reset at {reset}"
        );
    }
    let resumed = server.run(&resumed.id).await;
    assert_eq!(
        resumed.branch, stopped.branch,
        "the continuation works on the same branch"
    );
    assert!(resumed.usage.requests >= 1, "{:?}", resumed.usage);
}

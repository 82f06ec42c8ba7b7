//! Restarts in the middle of a run: the control plane killed (its pod deleted without grace, as a crashed
//! node would leave it) adopts the run and streams on from its stored line, while the agent rides out the
//! model proxy's absence with Claude Code's own retries; the API server restarted under
//! the server's open watches and log stream loses and repeats no line.

use std::time::Duration;

use agentfarm_real_cluster::components;
use agentfarm_real_cluster::process;
use agentfarm_shared::run::RunState;
use serde_json::json;

use crate::runs::{follow_log, repeated, stored_lines, until_ended, until_gone};
use crate::suite::{SYSTEM, suite};

/// Kills the control plane's pod (no grace), waits for the Deployment's new one to answer; the app.
pub async fn restart_control_plane() -> agentfarm_app_client::App {
    let suite = suite();
    suite.kubectl(&[
        "-n",
        SYSTEM,
        "delete",
        "pod",
        "-l",
        "app.kubernetes.io/name=agentfarm-control-plane",
        "--grace-period=0",
        "--force",
    ]);
    suite.kubectl(&[
        "-n",
        SYSTEM,
        "rollout",
        "status",
        "deploy/agentfarm-control-plane",
        "--timeout=300s",
    ]);
    suite.app_ready(Duration::from_secs(120)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_killed_mid_run_adopts_it_and_streams_on() {
    let suite = suite();
    let _turn = suite.turn().await;
    let kube = suite.kube().await;
    let app = suite.app();
    let config = app
        .create_config_with(json!({"name": suite.named("Adopted"), "task_prompt": "unused", "cpu": "250m"}))
        .await;
    let run = app
        .launch(&config, "[[wait:control-plane-back]] [[bash:seq 1 50]] count")
        .await;
    let followed = tokio::spawn({
        let (kube, id) = (kube.clone(), run.id.clone());
        async move { follow_log(&kube, &id).await }
    });
    agentfarm_app_client::within(suite.model.parked("control-plane-back")).await;
    let before = stored_lines(&app, &run.id).await;
    assert!(!before.is_empty(), "lines were stored before the kill");

    let app = restart_control_plane().await;
    let mut socket = app.socket().await;
    suite.model.release("control-plane-back");
    let ended = until_ended(&mut socket, &run.id).await;
    assert_eq!(ended.state, RunState::Succeeded, "{ended:?}");
    let stored = stored_lines(&app, &run.id).await;
    assert_eq!(&stored[..before.len()], before, "what was stored before stays");
    assert_eq!(
        stored,
        followed.await.expect("the log follower"),
        "and every line after, once"
    );
    until_gone(&kube, &run.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_restarted_under_the_watches_and_the_log_stream_loses_and_repeats_nothing() {
    let suite = suite();
    let _turn = suite.turn().await;
    let kube = suite.kube().await;
    let app = suite.app();
    let config = app
        .create_config_with(
            json!({"name": suite.named("API restart"), "task_prompt": "unused", "cpu": "250m"}),
        )
        .await;
    let mut socket = app.socket().await;
    let run = app
        .launch(&config, "[[wait:api-back]] [[bash:seq 1 50]] count")
        .await;
    agentfarm_app_client::within(suite.model.parked("api-back")).await;

    let layout = suite.layout.clone();
    tokio::task::spawn_blocking(move || {
        process::restart(&layout, "kube-apiserver").expect("restart the API server");
        components::wait_apiserver(&layout).expect("the API server back");
    })
    .await
    .expect("the restart");
    // The pod's whole log as the kubelet serves it, from its first line (a follow started now still reads from
    // the beginning) to its end.
    let followed = tokio::spawn({
        let (kube, id) = (kube.clone(), run.id.clone());
        async move { follow_log(&kube, &id).await }
    });
    suite.model.release("api-back");
    let ended = until_ended(&mut socket, &run.id).await;
    assert_eq!(ended.state, RunState::Succeeded, "{ended:?}");
    let stored = stored_lines(&app, &run.id).await;
    assert_eq!(
        stored,
        followed.await.expect("the log follower"),
        "every line of the pod's log stored, in order"
    );
    assert!(
        repeated(&stored).is_empty(),
        "a line stored twice: {:?}",
        repeated(&stored)
    );
    let counted: Vec<&String> = stored
        .iter()
        .filter(|line| line.contains("tool_result") && line.contains("49\\n50"))
        .collect();
    assert_eq!(counted.len(), 1, "the seq output, once");
    until_gone(&kube, &run.id).await;
}

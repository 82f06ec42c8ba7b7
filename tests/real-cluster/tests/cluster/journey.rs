//! The whole journey on the real cluster, under gVisor and under runc: a launch becomes a Job whose pod runs in
//! its RuntimeClass; the real runner clones from the fake GitHub over the pod network, the real Claude Code CLI
//! runs a Bash tool call against the fake model (its `uname -r` in the transcript tells the kernel); every
//! line the kubelet serves through `pods/log` is stored once; a follow-up goes in through `pods/attach`; the
//! branch is pushed and a pull request opened; the archive finalizer lets the pod go only once the log's tail
//! is stored; the Job and pod go; the run succeeds.

use agentfarm_shared::run::RunState;
use k8s_openapi::api::core::v1::Pod;
use reqwest::StatusCode;
use serde_json::json;

use crate::runs::{
    ARCHIVE_FINALIZER, follow_log, pod_when, repeated, stored_lines, stored_when_released, until_ended,
    until_gone, until_state,
};
use crate::suite::suite;

/// The kernel gVisor reports (Debian's runsc).
const GVISOR_KERNEL: &str = "4.4.0";

async fn journey(class: &str) {
    let suite = suite();
    let _turn = suite.turn().await;
    let kube = suite.kube().await;
    let app = suite.app();
    let repo = format!("journey-{class}");
    suite.github.create_repo("octo", &repo, "main");
    let config = app
        .create_config_with(json!({
            "name": suite.named(&format!("Journey {class}")),
            "repos": [format!("octo/{repo}")],
            "runtime_class": class,
            "cpu": "500m",
            "memory": "1Gi",
            "task_prompt": "unused",
        }))
        .await;
    let mut socket = app.socket().await;
    let run = app
        .launch(
            &config,
            "[[bash:uname -r && echo hello > HELLO.md]] which kernel is this?",
        )
        .await;

    // Alongside the run: the pod's log as the kubelet serves it, and what was stored when the pod was let go.
    let followed = tokio::spawn({
        let kube = kube.clone();
        let id = run.id.clone();
        async move { follow_log(&kube, &id).await }
    });
    let released = tokio::spawn({
        let (kube, app, id) = (kube.clone(), app.clone(), run.id.clone());
        async move { stored_when_released(&kube, &app, &id).await }
    });

    let (_, first_turn) = until_state(&mut socket, &run.id, RunState::WaitingForInput).await;
    let pod: Pod = pod_when(&kube, &run.id, |_| true).await;
    let spec = pod.spec.clone().unwrap_or_default();
    assert_eq!(
        spec.runtime_class_name.as_deref(),
        Some(class),
        "the pod's RuntimeClass"
    );
    assert_eq!(
        spec.node_name.as_deref(),
        Some(agentfarm_real_cluster::layout::NODE),
        "scheduled"
    );
    assert_eq!(
        pod.status.as_ref().and_then(|status| status.phase.as_deref()),
        Some("Running"),
        "the agent waits for a follow-up in a running pod"
    );
    assert!(
        pod.metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == ARCHIVE_FINALIZER),
        "the pod is held for its log"
    );

    // The follow-up goes in through pods/attach.
    let (status, body) = app
        .post(
            &format!("/api/runs/{}/messages", run.id),
            json!({"text": "[[bash:echo again >> HELLO.md]] and once more"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ended = until_ended(&mut socket, &run.id).await;
    assert_eq!(ended.state, RunState::Succeeded, "{ended:?}");
    assert_eq!(ended.exit_code, Some(0));
    assert_eq!(
        &first_turn[first_turn.len() - 2..],
        [RunState::Running, RunState::WaitingForInput],
        "{first_turn:?}"
    );

    // Every line the kubelet served is stored, once, in order; nothing was let go before the tail was stored.
    let from_kubelet = followed.await.expect("the log follower");
    let stored = stored_lines(&app, &run.id).await;
    assert_eq!(
        stored, from_kubelet,
        "the stored log is the pod's log, line for line"
    );
    assert!(
        repeated(&stored).is_empty(),
        "a line stored twice: {:?}",
        repeated(&stored)
    );
    let at_release = released.await.expect("the finalizer watch");
    assert_eq!(
        at_release, stored,
        "the whole log was stored before the pod was let go"
    );

    // The kernel the agent's own shell saw, in its transcript.
    let kernel = stored
        .iter()
        .find(|line| line.contains("tool_result") && (line.contains(GVISOR_KERNEL) || line.contains('.')))
        .expect("the uname -r tool result");
    let host_kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("the host's kernel");
    if class == "gvisor" {
        assert!(
            kernel.contains(GVISOR_KERNEL),
            "gVisor's kernel in the transcript: {kernel}"
        );
        assert!(!kernel.contains(host_kernel.trim()), "not the host's: {kernel}");
    } else {
        assert!(
            kernel.contains(host_kernel.trim()),
            "the host's kernel under runc: {kernel}"
        );
    }
    let follow_up = suite
        .model
        .requests()
        .iter()
        .any(|request| request.last_user_text().contains("and once more"));
    assert!(follow_up, "the follow-up reached Claude");

    // Pushed and proposed.
    let branch = ended.branch.clone().expect("a branch");
    assert_eq!(branch, format!("agentfarm/{}", run.id));
    assert_eq!(
        suite
            .github
            .file_at("octo", &repo, &branch, "HELLO.md")
            .as_deref(),
        Some("hello\nagain\n")
    );
    assert!(
        suite
            .github
            .pulls()
            .iter()
            .any(|pull| pull.repo == repo && pull.head == branch),
        "a pull request for {branch}"
    );
    assert!(ended.pr_url.is_some());

    // Nothing left of the agent in the cluster.
    until_gone(&kube, &run.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_runs_in_gvisor() {
    journey("gvisor").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_runs_under_runc_too() {
    journey("runc").await;
}

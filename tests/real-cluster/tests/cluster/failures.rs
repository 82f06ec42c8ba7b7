//! What only a real cluster shows, each end as the server reports it: a memory limit exceeded, the Job's
//! deadline, an image that does not exist, a missing (capability) Secret, a stop (its grace period and what exists
//! pushed), a pod deleted behind the server's back, and a Job the store does not know.

use agentfarm_real_cluster::layout::NODE;
use agentfarm_shared::run::{Run, RunState};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use reqwest::StatusCode;
use serde_json::json;

use crate::runs::{pod_when, started, until_ended, until_gone, until_state};
use crate::suite::{AGENTS, Suite, suite};

/// Creates a config from `fields` (plus a name and a task) and launches it with `prompt`; the ended run.
async fn run_to_end(name: &str, fields: serde_json::Value, prompt: &str) -> Run {
    let app = suite().app();
    let mut spec =
        json!({"name": suite().named(name), "task_prompt": "unused", "cpu": "250m", "memory": "512Mi"});
    for (key, value) in fields.as_object().into_iter().flatten() {
        spec[key] = value.clone();
    }
    let config = app.create_config_with(spec).await;
    let mut socket = app.socket().await;
    let run = app.launch(&config, prompt).await;
    until_ended(&mut socket, &run.id).await
}

/// The node, cordoned until dropped (also when a test fails, so that the next finds it schedulable).
struct Cordoned(&'static Suite);

impl Cordoned {
    fn node(suite: &'static Suite) -> Cordoned {
        suite.kubectl(&["cordon", NODE]);
        Cordoned(suite)
    }
}

impl Drop for Cordoned {
    fn drop(&mut self) {
        self.0.kubectl(&["uncordon", NODE]);
    }
}

fn reason(run: &Run) -> String {
    format!(
        "{} / {}",
        run.reason.clone().unwrap_or_default(),
        run.last_error.clone().unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_limit_exceeded_ends_as_oom_killed() {
    let suite = suite();
    let _turn = suite.turn().await;
    // The agent's shell holds 400 MiB in memory (tail keeps a line without newline whole) under 128 MiB.
    let run = run_to_end(
        "Out of memory",
        json!({"memory": "128Mi"}),
        "[[bash:head -c 400M /dev/zero | tail -c 1 > /dev/null]] use memory",
    )
    .await;
    assert_eq!(run.state, RunState::Failed, "{run:?}");
    assert!(
        reason(&run).contains("OOMKilled"),
        "the reason names the OOM kill: {}",
        reason(&run)
    );
    until_gone(&suite.kube().await, &run.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_deadline_ends_the_run_with_its_reason() {
    let suite = suite();
    let _turn = suite.turn().await;
    // Claude waits at the gate, which nobody opens: the Job's activeDeadlineSeconds (one minute) ends it.
    let run = run_to_end(
        "Deadline",
        json!({"timeout_minutes": 1}),
        "[[wait:never]] think forever",
    )
    .await;
    assert_eq!(run.state, RunState::Failed, "{run:?}");
    assert!(
        reason(&run).starts_with("timed out"),
        "the Job's DeadlineExceeded, told as the config's timeout: {}",
        reason(&run)
    );
    until_gone(&suite.kube().await, &run.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_fails_fast_with_the_pull_reason() {
    let suite = suite();
    let _turn = suite.turn().await;
    let run = run_to_end("No such image", json!({"image_tag": "does-not-exist"}), "hello").await;
    assert_eq!(run.state, RunState::Failed, "{run:?}");
    let why = reason(&run);
    assert!(
        why.contains("ErrImagePull") || why.contains("ImagePullBackOff"),
        "{why}"
    );
    until_gone(&suite.kube().await, &run.id).await;
}

/// The one Secret an agent's pod reads is its run's capability, made with its Job. Gone before the pod
/// starts (the node cordoned meanwhile, so that the pod waits for it), the kubelet cannot start the container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_fails_with_create_container_config_error() {
    let suite = suite();
    let _turn = suite.turn().await;
    let app = suite.app();
    let config = app
        .create_config_with(json!({"name": suite.named("No Secret"), "task_prompt": "unused", "cpu": "250m"}))
        .await;
    let cordoned = Cordoned::node(suite);
    let mut socket = app.socket().await;
    let run = app.launch(&config, "hello").await;
    pod_when(&suite.kube().await, &run.id, |_| true).await;
    suite.kubectl(&[
        "-n",
        AGENTS,
        "delete",
        "secret",
        &format!("agent-{}-capability", run.id),
    ]);
    drop(cordoned);
    let run = until_ended(&mut socket, &run.id).await;
    assert_eq!(run.state, RunState::Failed, "{run:?}");
    assert!(
        reason(&run).contains("CreateContainerConfigError"),
        "{}",
        reason(&run)
    );
    until_gone(&suite.kube().await, &run.id).await;
}

/// A stop deletes the Job and pod with the grace period; the runner, told with SIGTERM, pushes what exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_honours_the_grace_period_and_pushes_what_exists() {
    let suite = suite();
    let _turn = suite.turn().await;
    let kube = suite.kube().await;
    let app = suite.app();
    suite.github.create_repo("octo", "stopped", "main");
    let config = app
        .create_config_with(
            json!({"name": suite.named("Stopped"), "repos": ["octo/stopped"], "task_prompt": "unused", "cpu": "250m"}),
        )
        .await;
    let mut socket = app.socket().await;
    let run = app
        .launch(&config, "[[bash:echo partial > PARTIAL.md]] start")
        .await;
    until_state(&mut socket, &run.id, RunState::WaitingForInput).await;
    let (status, body) = app
        .post(
            &format!("/api/runs/{}/messages", run.id),
            json!({"text": "[[wait:never]] more"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    until_state(&mut socket, &run.id, RunState::Running).await;
    let (status, body) = app.post(&format!("/api/runs/{}/stop", run.id), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let deleting = pod_when(&kube, &run.id, |pod| pod.metadata.deletion_timestamp.is_some()).await;
    let grace = deleting
        .spec
        .as_ref()
        .and_then(|spec| spec.termination_grace_period_seconds);
    assert_eq!(
        deleting.metadata.deletion_grace_period_seconds, grace,
        "deleted with the pod's own grace period"
    );
    let ended = until_ended(&mut socket, &run.id).await;
    assert_eq!(ended.state, RunState::Stopped, "{ended:?}");
    let branch = format!("agentfarm/{}", run.id);
    assert_eq!(
        suite
            .github
            .file_at("octo", "stopped", &branch, "PARTIAL.md")
            .as_deref(),
        Some("partial\n"),
        "what existed was pushed"
    );
    until_gone(&kube, &run.id).await;
}

/// A pod deleted behind the server's back (force, no grace): the run ends failed or lost, never running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_behind_the_servers_back_is_never_left_running() {
    let suite = suite();
    let _turn = suite.turn().await;
    let kube = suite.kube().await;
    let app = suite.app();
    let config = app
        .create_config_with(
            json!({"name": suite.named("Deleted pod"), "task_prompt": "unused", "cpu": "250m"}),
        )
        .await;
    let mut socket = app.socket().await;
    let run = app.launch(&config, "[[wait:never]] think").await;
    let pod = pod_when(&kube, &run.id, started).await;
    suite.kubectl(&[
        "-n",
        AGENTS,
        "delete",
        "pod",
        pod.metadata.name.as_deref().unwrap_or_default(),
        "--grace-period=0",
        "--force",
        "--wait=false",
    ]);
    let ended = until_ended(&mut socket, &run.id).await;
    assert!(
        matches!(ended.state, RunState::Failed | RunState::Lost),
        "{ended:?}"
    );
    until_gone(&kube, &run.id).await;
}

/// A Job with agentfarm's labels for a run the store never had: swept when the server (re)starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_the_store_does_not_know_is_swept() {
    let suite = suite();
    let _turn = suite.turn().await;
    let kube = suite.kube().await;
    let stray = "01jstray0000000000000000000";
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": format!("agent-{stray}"),
            "namespace": AGENTS,
            "labels": {"app.kubernetes.io/managed-by": "agentfarm", "agentfarm.dev/run": stray},
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/managed-by": "agentfarm", "agentfarm.dev/run": stray}},
                "spec": {
                    "runtimeClassName": "gvisor",
                    "automountServiceAccountToken": false,
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "agent",
                        "image": agentfarm_real_cluster::layout::BUSYBOX_IMAGE,
                        "command": ["sleep", "3600"],
                        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "32Mi", "ephemeral-storage": "16Mi"},
                            "limits": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "64Mi"},
                        },
                    }],
                },
            },
        },
    });
    let jobs: Api<Job> = Api::namespaced(kube.clone(), AGENTS);
    jobs.create(
        &kube::api::PostParams::default(),
        &serde_json::from_value(job).expect("a Job"),
    )
    .await
    .expect("create the stray Job");
    pod_when(&kube, stray, |pod: &Pod| pod.metadata.name.is_some()).await;
    crate::restarts::restart_control_plane().await;
    until_gone(&kube, stray).await;
}

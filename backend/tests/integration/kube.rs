//! The Kubernetes runtime against the fake API server: the Job's security settings, logs exactly once, a
//! relist after `410 Gone`, an API outage, the restart truth table, and `agentfarm doctor`.

use std::collections::HashMap;

use agentfarm::runtime::RunSpec;
use agentfarm::runtime::kube::job::{self, job_name};
use agentfarm::store::{NewRun, RunPatch, Store};
use agentfarm_fake_kube::{ContainerState, FakeKube, JobCondition, Kind, PodPhase};
use agentfarm_fake_model::FakeModel;
use agentfarm_shared::config::ConfigSpec;
use agentfarm_shared::log::LogPage;
use agentfarm_shared::run::{Run, RunState};
use agentfarm_shared::ws::ServerFrame;
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, Socket, TestServer, client, start_process, test_settings, within};

const NS: &str = "agentfarm-agents";

async fn stored_lines(server_url: &str, run_id: &str) -> Vec<String> {
    let (status, page) = crate::harness::respond(client(server_url).get(format!(
        "{server_url}/api/runs/{run_id}/logs?after_seq=0&limit=5000"
    )))
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let page: LogPage = serde_json::from_value(page).unwrap();
    let seqs: Vec<u64> = page.lines.iter().map(|l| l.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "contiguous, once each"
    );
    page.lines.into_iter().map(|line| line.text).collect()
}

/// Reads frames until every run in `want` is in its state; returns the runs.
async fn until_states(socket: &mut Socket, want: &[(&str, RunState)]) -> HashMap<String, Run> {
    let mut seen: HashMap<String, Run> = HashMap::new();
    loop {
        if want
            .iter()
            .all(|(id, state)| seen.get(*id).is_some_and(|run| run.state == *state))
        {
            return seen;
        }
        match socket.next().await {
            ServerFrame::Snapshot { runs } => {
                for run in runs {
                    seen.insert(run.id.clone(), run);
                }
            }
            ServerFrame::Run { run } => {
                seen.insert(run.id.clone(), *run);
            }
            _ => {}
        }
    }
}

fn pod_of(fake: &FakeKube, run_id: &str) -> String {
    fake.pods_of_job(NS, &job_name(run_id))
        .pop()
        .expect("the run has a pod")
}

/// Every field the `restricted` Pod Security profile asks for, on the Job the server really created; the
/// whole Job is pinned by the golden file in `runtime/kube/job.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_05_the_agent_pod_is_restricted() {
    let server = TestServer::start_on(Backend::Kube, |s| s.idle_timeout = 60).await;
    let fake = server.kube.as_ref().unwrap();
    let config = server.create_config("Locked down", "unused").await;
    let run = server.launch(&config, "[[wait:hold]] think").await;
    within(server.model.parked("hold")).await;

    let job = fake.object(Kind::Job, NS, &job_name(&run.id)).unwrap();
    let spec = &job["spec"];
    assert_eq!(spec["backoffLimit"], 0, "never re-run an agent silently");
    assert_eq!(spec["activeDeadlineSeconds"], 120 * 60);
    assert!(spec["ttlSecondsAfterFinished"].as_i64().unwrap() > 0);
    let labels = &job["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "agentfarm");
    assert_eq!(labels["agentfarm.dev/run"], run.id.as_str());
    assert_eq!(labels["agentfarm.dev/config"], config.as_str());
    assert_eq!(
        job["metadata"]["annotations"]["agentfarm.dev/config-version"],
        "1"
    );

    let pod = fake.object(Kind::Pod, NS, &pod_of(fake, &run.id)).unwrap();
    assert_eq!(
        pod["metadata"]["finalizers"],
        json!(["agentfarm.dev/archive-logs"])
    );
    let spec = &pod["spec"];
    assert_eq!(spec["runtimeClassName"], "gvisor");
    assert_eq!(spec["restartPolicy"], "Never");
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(spec["enableServiceLinks"], false);
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        spec["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &spec["containers"][0];
    assert_eq!(container["stdin"], true);
    assert_eq!(container["stdinOnce"], false);
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory", "ephemeral-storage"] {
            assert!(
                container["resources"][kind][resource].is_string(),
                "{kind} {resource}"
            );
        }
    }
    // The run's capability comes from the run's own Secret, never as a value in the object; the owner's tokens
    // not at all.
    let env = container["env"].as_array().unwrap();
    let capability = format!("agent-{}-capability", run.id);
    for name in ["CLAUDE_CODE_OAUTH_TOKEN", "AGENTFARM_RUN_TOKEN"] {
        let var = env.iter().find(|v| v["name"] == name).unwrap();
        assert!(
            var.get("value").is_none()
                && var["valueFrom"]["secretKeyRef"]
                    == json!({"name": capability, "key": "token", "optional": false}),
            "{var}"
        );
    }
    assert!(env.iter().all(|v| v["name"] != "GITHUB_TOKEN"), "{env:?}");
    assert!(!job.to_string().contains(agentfarm_fake_model::FAKE_OAUTH_TOKEN));
    server.model.release("hold");
}

/// Every line the agent wrote is stored once, in order, though every watch event arrives twice; then the
/// Job goes and only our finalizer leaves the pod (another controller's stays).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_21_every_line_once_then_the_pod_is_let_go() {
    let server = TestServer::start_on(Backend::Kube, |_| {}).await;
    let fake = server.kube.as_ref().unwrap();
    fake.duplicate_events(true);
    let config = server.create_config("Lines", "unused").await;
    let mut socket = server.socket().await;
    let run = server
        .launch(&config, "[[wait:go]] [[bash:seq 1 300]] count")
        .await;
    within(server.model.parked("go")).await;
    let pod = pod_of(fake, &run.id);
    let patch = json!([{"op": "add", "path": "/metadata/finalizers/-", "value": "example.com/keep"}]);
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(fake.client(), NS);
    pods.patch(
        &pod,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::<()>::Json(serde_json::from_value(patch).unwrap()),
    )
    .await
    .unwrap();
    server.model.release("go");
    socket.until_state(&run.id, RunState::Succeeded).await;

    // Released: the Job is gone, and the pod carries only the other finalizer.
    within(fake.wait_until(|fake| {
        fake.object(Kind::Job, NS, &job_name(&run.id)).is_none()
            && fake
                .object(Kind::Pod, NS, &pod)
                .is_some_and(|pod| pod["metadata"]["finalizers"] == json!(["example.com/keep"]))
    }))
    .await;
    assert_eq!(stored_lines(&server.url, &run.id).await, fake.logs_of(NS, &pod));
}

/// A watch that resumes too late gets `410 Gone` and relists: a run whose Job and pod were deleted meanwhile
/// (with no event) ends as `lost`, never `running`; the others carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_17_a_relist_after_gone_notices_deleted_agents() {
    let server = TestServer::start_on(Backend::Kube, |_| {}).await;
    let fake = server.kube.as_ref().unwrap();
    let config = server.create_config("Relist", "unused").await;
    let mut socket = server.socket().await;
    let doomed = server.launch(&config, "[[wait:a]] one").await;
    let kept = server.launch(&config, "[[wait:b]] two").await;
    within(server.model.parked("a")).await;
    within(server.model.parked("b")).await;
    until_states(
        &mut socket,
        &[(&doomed.id, RunState::Running), (&kept.id, RunState::Running)],
    )
    .await;

    let pod = pod_of(fake, &doomed.id);
    assert!(fake.delete_without_event(NS, Kind::Job, &job_name(&doomed.id)));
    assert!(fake.delete_without_event(NS, Kind::Pod, &pod));
    // Both watchers resume from a version the server no longer has.
    fake.gone_next_watch();
    fake.gone_next_watch();
    fake.reset_watches();
    let (lost, _) = socket.until_state(&doomed.id, RunState::Lost).await;
    assert!(lost.reason.unwrap().contains("deleted outside agentfarm"));
    assert!(server.metric("agentfarm_kube_watch_restarts_total").await >= 1.0);

    server.model.release("b");
    socket.until_state(&kept.id, RunState::Succeeded).await;
    server.model.release("a");
}

/// The API server answers 503 for a while: the watchers back off (no tight loop), `/readyz` reports the
/// runtime degraded with the reason, then ready again once the API is back, and the run completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_18_an_api_outage_is_ridden_out_with_backoff() {
    let server = TestServer::start_on(Backend::Kube, |_| {}).await;
    let fake = server.kube.as_ref().unwrap();
    let config = server.create_config("Outage", "unused").await;
    let mut socket = server.socket().await;
    let run = server.launch(&config, "[[wait:out]] wait").await;
    within(server.model.parked("out")).await;
    socket.until_state(&run.id, RunState::Running).await;

    let outage_start = fake.requests().len();
    fake.fail_until_recovered(503);
    fake.reset_watches();
    let job_lists = |fake: &FakeKube| -> Vec<std::time::Instant> {
        fake.requests()[outage_start..]
            .iter()
            .filter(|r| {
                r.method == "GET"
                    && r.path
                        .starts_with(&format!("/apis/batch/v1/namespaces/{NS}/jobs?"))
            })
            .map(|r| r.at)
            .collect()
    };
    // The client retries with a backoff from 5 ms that doubles (with jitter), and the watcher adds its own
    // from 800 ms: a dozen attempts take seconds. A tight loop makes them in milliseconds.
    within(fake.wait_until(|fake| job_lists(fake).len() >= 12)).await;
    let attempts = job_lists(fake);
    let spread = attempts[11] - attempts[0];
    assert!(
        spread >= std::time::Duration::from_secs(1),
        "12 attempts within {spread:?}: a tight loop"
    );
    // The probe behind it gives up after a few seconds of retries; the outage goes on meanwhile.
    let health = within(async {
        loop {
            let seen = fake.requests().len();
            let (status, health) = server.get("/readyz").await;
            assert_eq!(status, StatusCode::OK, "still serving: {health}");
            if health["status"] == "degraded" {
                return health;
            }
            fake.wait_until(|fake| fake.requests().len() > seen).await;
        }
    })
    .await;
    assert!(
        health["reason"].as_str().unwrap().contains("cluster's API"),
        "{health}"
    );

    fake.recover();
    server.model.release("out");
    let (done, _) = socket.until_state(&run.id, RunState::Succeeded).await;
    assert_eq!(done.exit_code, Some(0));
    stored_lines(&server.url, &run.id).await;
    // The watchers saw the run end: they are through.
    assert_eq!(server.get("/readyz").await.1, json!({"status": "ready"}));
}

fn spec(run_id: &str) -> RunSpec {
    RunSpec {
        run_id: run_id.into(),
        config_id: "c".into(),
        config_version: 1,
        config: ConfigSpec::new("c", "task"),
        prompt: "task".into(),
        session_id: "00000000-0000-4000-8000-000000000000".into(),
        branch: format!("agentfarm/{run_id}"),
        capability: agentfarm::capability::Capability::mint().unwrap(),
    }
}

fn terminated(code: i32, reason: &str) -> ContainerState {
    ContainerState::Terminated {
        exit_code: code,
        reason: reason.into(),
    }
}

/// The restart truth table: what the server finds after a restart, and what each run becomes — once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_19_20_restart_truth_table() {
    let model = FakeModel::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(dir.path(), &model);
    let kube = agentfarm::server::kube_settings(&settings);
    std::fs::create_dir_all(&settings.data_dir).unwrap();

    // The store as a crashed server left it.
    let store = Store::open(&settings.data_dir.join("agentfarm.db")).unwrap();
    store
        .create_config("c".into(), ConfigSpec::new("c", "task"), Utc::now())
        .await
        .unwrap();
    let runs = [
        ("run-running", RunState::Running),
        ("run-done", RunState::Running),
        ("run-deadline", RunState::Running),
        ("run-oom", RunState::WaitingForInput),
        ("run-missing", RunState::Running),
        ("run-never-created", RunState::Starting),
        ("run-created", RunState::Starting),
    ];
    for (id, state) in runs {
        let new = NewRun {
            id: id.into(),
            config_id: "c".into(),
            config_version: 1,
            prompt: "task".into(),
            branch: format!("agentfarm/{id}"),
        };
        store.insert_run(new, Utc::now()).await.unwrap();
        for step in [RunState::Starting, RunState::Running, RunState::WaitingForInput] {
            store
                .transition(id.into(), step, RunPatch::default(), Utc::now())
                .await
                .unwrap();
            if step == state {
                break;
            }
        }
    }
    drop(store);

    // The cluster as it went on without the server.
    let fake = FakeKube::start().await;
    for id in [
        "run-running",
        "run-done",
        "run-deadline",
        "run-oom",
        "run-created",
        "run-unknown",
    ] {
        fake.seed(serde_json::to_value(job::job(&spec(id), &kube).unwrap()).unwrap());
    }
    let pod = |id: &str| pod_of(&fake, id);
    for id in ["run-running", "run-done", "run-deadline", "run-oom"] {
        fake.set_pod_phase(NS, &pod(id), PodPhase::Running, &ContainerState::Running);
        fake.append_log(NS, &pod(id), &format!("{id} before the restart"));
    }
    fake.append_log(NS, &pod("run-done"), "done while the server was down");
    fake.set_pod_phase(
        NS,
        &pod("run-done"),
        PodPhase::Succeeded,
        &terminated(0, "Completed"),
    );
    fake.set_job_condition(NS, &job_name("run-done"), &JobCondition::Complete);
    fake.set_pod_phase(
        NS,
        &pod("run-deadline"),
        PodPhase::Failed,
        &terminated(143, "Error"),
    );
    let deadline = JobCondition::Failed {
        reason: "DeadlineExceeded".into(),
        message: "Job was active longer than specified deadline".into(),
    };
    fake.set_job_condition(NS, &job_name("run-deadline"), &deadline);
    fake.set_pod_phase(
        NS,
        &pod("run-oom"),
        PodPhase::Failed,
        &terminated(137, "OOMKilled"),
    );
    let backoff = JobCondition::Failed {
        reason: "BackoffLimitExceeded".into(),
        message: "Job has reached the specified backoff limit".into(),
    };
    fake.set_job_condition(NS, &job_name("run-oom"), &backoff);
    let running_pod = pod("run-running");

    let server = start_process(&settings, Some(fake.url())).await;
    let url = server.url.clone();
    let mut socket = Socket::connect(&url).await;
    let first = until_states(
        &mut socket,
        &[
            ("run-running", RunState::Running),
            ("run-done", RunState::Succeeded),
            ("run-deadline", RunState::Failed),
            ("run-oom", RunState::Failed),
            ("run-missing", RunState::Lost),
        ],
    )
    .await;
    let deadline_reason = first["run-deadline"].reason.as_deref().unwrap();
    assert!(deadline_reason.starts_with("timed out"), "{deadline_reason}");
    assert!(
        first["run-oom"]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("OOMKilled")
    );
    assert_eq!(
        stored_lines(&url, "run-done").await,
        ["run-done before the restart", "done while the server was down"]
    );
    let one_job = |fake: &FakeKube, id: &str| {
        fake.objects(Kind::Job)
            .iter()
            .filter(|job| job["metadata"]["labels"]["agentfarm.dev/run"] == id)
            .count()
            == 1
    };
    // A crash between storing `starting` and creating the Job leaves one Job, created now; never two.
    within(fake.wait_until(|fake| {
        one_job(fake, "run-never-created")
            && one_job(fake, "run-created")
            // The stray Job of a run the store does not know is deleted; finished ones are let go.
            && fake.object(Kind::Job, NS, &job_name("run-unknown")).is_none()
            && ["run-done", "run-deadline", "run-oom"]
                .iter()
                .all(|id| fake.object(Kind::Job, NS, &job_name(id)).is_none() && fake.pods_of_job(NS, &job_name(id)).is_empty())
    }))
    .await;
    let before = stored_lines(&url, "run-running").await;
    assert_eq!(before, ["run-running before the restart"]);
    server.exit().await;

    // Down again; the agent writes on; back up: the log continues without a repeat or a hole.
    fake.append_log(NS, &running_pod, "while down");
    let server = start_process(&settings, Some(fake.url())).await;
    let url = server.url.clone();
    let mut socket = Socket::connect(&url).await;
    fake.append_log(NS, &running_pod, "after the restart");
    fake.set_pod_phase(NS, &running_pod, PodPhase::Succeeded, &terminated(0, "Completed"));
    fake.set_job_condition(NS, &job_name("run-running"), &JobCondition::Complete);
    let seen = until_states(&mut socket, &[("run-running", RunState::Succeeded)]).await;
    assert_eq!(seen["run-running"].exit_code, Some(0));
    assert_eq!(
        stored_lines(&url, "run-running").await,
        [
            "run-running before the restart",
            "while down",
            "after the restart"
        ]
    );
    for (id, state) in [
        ("run-done", RunState::Succeeded),
        ("run-deadline", RunState::Failed),
        ("run-oom", RunState::Failed),
        ("run-missing", RunState::Lost),
        ("run-never-created", RunState::Starting),
        ("run-created", RunState::Starting),
    ] {
        assert_eq!(seen[id].state, state, "{id} changed on the second restart");
        assert_eq!(seen[id].finished_at, first[id].finished_at, "{id} ended twice");
    }
    assert!(one_job(&fake, "run-never-created") && one_job(&fake, "run-created"));
    server.exit().await;
}

/// `agentfarm doctor` against the fake cluster: a table, and a failure with its fix and a non-zero exit when
/// the RuntimeClass or a Secret is missing (the agent image is a site's own, pinned by digest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_prints_its_table_and_fails_with_a_fix() {
    let fake = FakeKube::start().await;
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(kubeconfig.path(), kubeconfig_for(&fake.url())).unwrap();
    let path = kubeconfig.path().to_owned();
    let doctor = move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_agentfarm"))
            .arg("doctor")
            .env_clear()
            .env("KUBECONFIG", &path)
            .env(
                "AGENTFARM_AGENT_IMAGE",
                format!("ghcr.io/owner/agentfarm-agent@sha256:{}", "0a".repeat(32)),
            )
            .output()
            .unwrap()
    };
    let failing = tokio::task::spawn_blocking(doctor.clone()).await.unwrap();
    let table = String::from_utf8_lossy(&failing.stdout).into_owned();
    assert_eq!(failing.status.code(), Some(1), "{table}");
    assert!(
        table.contains("RuntimeClass gvisor") && table.contains("fix:"),
        "{table}"
    );
    assert!(table.contains("Secret claude-token"), "{table}");

    let b64 = |text: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text);
    fake.seed(json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"}, "handler": "runsc"}));
    fake.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}));
    // The owner's tokens live with the control plane, never in the agents' namespace.
    for name in ["claude-token", "github-token"] {
        fake.seed(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "agentfarm-system"}, "data": {"token": b64("secret-value")}}));
    }
    let passing = tokio::task::spawn_blocking(doctor).await.unwrap();
    let table = String::from_utf8_lossy(&passing.stdout).into_owned();
    assert_eq!(passing.status.code(), Some(0), "{table}");
    assert!(!table.contains("secret-value"), "{table}");
}

/// The settings screen's source: `/api/doctor` shows the same checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_the_doctor_report() {
    let server = TestServer::start_on(Backend::Kube, |_| {}).await;
    let (status, report) = server.get("/api/doctor").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|check| check["name"].as_str())
        .collect();
    assert!(
        names.contains(&"API server") && names.contains(&"RBAC"),
        "{names:?}"
    );
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| check["status"] == "fail")
        .collect();
    assert!(
        failed.iter().any(|check| check["name"] == "RuntimeClass gvisor"),
        "the fake cluster has no gvisor RuntimeClass: {failed:?}"
    );
}

/// `--runtime auto` takes the cluster the kubeconfig names when it answers, else the local runtime, and
/// says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_picks_the_cluster_when_one_answers() {
    let fake = FakeKube::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_for(&fake.url())).unwrap();
    let runtime_line = |kubeconfig: Option<std::path::PathBuf>, data: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentfarm"));
        command
            .args([
                "serve",
                "--runtime",
                "auto",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.path().join(data))
            .env_clear()
            .env("HOME", dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(path) = kubeconfig {
            command.env("KUBECONFIG", path);
        }
        async move {
            let mut child = command.spawn().unwrap();
            let stdout = child.stdout.take().unwrap();
            let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
            loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("the server printed its runtime");
                if line.contains("runtime:") {
                    return line;
                }
            }
        }
    };
    let line = within(runtime_line(Some(kubeconfig), "with-cluster")).await;
    assert!(line.contains("runtime: kubernetes"), "{line}");
    let line = within(runtime_line(None, "without")).await;
    assert!(line.contains("runtime: local"), "{line}");
}

fn kubeconfig_for(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
    )
}

//! The real kube client against the fake: CRUD, watcher, status flow, logs, attach, finalizers, 410, SSAR,
//! and the process kubelet (containers as local processes).

// Test code: a failed unwrap is a failed test. (`allow-*-in-tests` does not cover helpers outside `#[test]`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use agentfarm_fake_kube::{AccessRule, ContainerState, FakeKube, JobCondition, Kind, Kubelet, PodPhase};
use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, AttachParams, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "agents";

/// Safety net only: every wait below completes as soon as the awaited thing happens.
async fn within<T>(future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out"),
    }
}

fn job(name: &str) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": "agentfarm"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": "agentfarm", "agent": name}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "agent", "image": "agent:1"}],
                },
            },
        },
    }))
    .unwrap()
}

/// Creates a Job and returns the name of its pod.
async fn create_job(fake: &FakeKube, name: &str) -> String {
    let jobs: Api<Job> = Api::namespaced(fake.client(), NS);
    jobs.create(&PostParams::default(), &job(name)).await.unwrap();
    let pods = fake.pods_of_job(NS, name);
    assert_eq!(pods.len(), 1);
    pods[0].clone()
}

#[tokio::test]
async fn created_job_gets_a_pod_and_duplicates_conflict() {
    let fake = FakeKube::start().await;
    let client = fake.client();
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let created = jobs.create(&PostParams::default(), &job("a1")).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.resource_version.is_some());

    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let listed = pods
        .list(&ListParams::default().labels("agent=a1,job-name=a1"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let pod = &listed.items[0];
    assert!(pod.metadata.name.as_deref().unwrap().starts_with("a1-"));
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Job", "a1"));
    assert!(listed.metadata.resource_version.is_some());
    assert!(
        pods.list(&ListParams::default().labels("agent=zz"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let by_name = jobs
        .list(&ListParams::default().fields("metadata.name=a1"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let all: Api<Job> = Api::all(client);
    assert_eq!(all.list(&ListParams::default()).await.unwrap().items.len(), 1);

    match jobs.create(&PostParams::default(), &job("a1")).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "AlreadyExists"));
        }
        other => panic!("expected 409, got {other:?}"),
    }
    assert!(jobs.get_opt("missing").await.unwrap().is_none());
    match jobs.get("missing").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404),
        other => panic!("expected 404, got {other:?}"),
    }
}

#[tokio::test]
async fn watcher_sees_init_then_status_changes() {
    let fake = FakeKube::start().await;
    let pod_name = create_job(&fake, "w1").await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), NS);
    let mut events = watcher(jobs, watcher::Config::default())
        .default_backoff()
        .boxed();
    assert!(matches!(within(events.next()).await, Some(Ok(Event::Init))));
    match within(events.next()).await {
        Some(Ok(Event::InitApply(job))) => assert_eq!(job.metadata.name.as_deref(), Some("w1")),
        other => panic!("expected InitApply, got {other:?}"),
    }
    assert!(matches!(within(events.next()).await, Some(Ok(Event::InitDone))));

    assert!(fake.set_pod_phase(
        NS,
        &pod_name,
        PodPhase::Failed,
        &ContainerState::Terminated {
            exit_code: 137,
            reason: "OOMKilled".into(),
        }
    ));
    assert!(fake.set_job_condition(
        NS,
        "w1",
        &JobCondition::Failed {
            reason: "DeadlineExceeded".into(),
            message: "Job was active longer than specified deadline".into(),
        }
    ));
    match within(events.next()).await {
        Some(Ok(Event::Apply(job))) => {
            let condition = &job.status.unwrap().conditions.unwrap()[0];
            assert_eq!(condition.type_, "Failed");
            assert_eq!(condition.reason.as_deref(), Some("DeadlineExceeded"));
        }
        other => panic!("expected Apply, got {other:?}"),
    }
    let pods: Api<Pod> = Api::namespaced(fake.client(), NS);
    let pod = pods.get(&pod_name).await.unwrap();
    let terminated = pod.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (137, Some("OOMKilled"))
    );
}

#[tokio::test]
async fn gone_makes_the_watcher_relist_without_a_tight_loop() {
    let fake = FakeKube::start().await;
    create_job(&fake, "g1").await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), NS);
    let mut events = watcher(jobs.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    while !matches!(within(events.next()).await, Some(Ok(Event::InitDone))) {}

    // The open watch is dropped and the resume is answered with 410: the watcher must re-list.
    fake.gone_next_watch();
    fake.reset_watches();
    let mut relisted = false;
    while !relisted {
        match within(events.next()).await {
            Some(Ok(Event::Init)) => relisted = true,
            Some(_) => {}
            None => panic!("watcher ended"),
        }
    }
    assert!(matches!(
        within(events.next()).await,
        Some(Ok(Event::InitApply(_)))
    ));
    assert!(matches!(within(events.next()).await, Some(Ok(Event::InitDone))));

    // Compaction: the next resume is older than the window and gets 410 as well.
    jobs.create(&PostParams::default(), &job("g2")).await.unwrap();
    while !matches!(within(events.next()).await, Some(Ok(Event::Apply(_)))) {}
    // Something the watcher has not seen (another kind) is compacted away, so its resume is too old.
    fake.seed(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": NS}}));
    fake.compact();
    fake.reset_watches();
    while !matches!(within(events.next()).await, Some(Ok(Event::InitDone))) {}

    let lists = fake
        .requests()
        .iter()
        .filter(|request| request.method == "GET" && !request.is_watch())
        .count();
    assert!(lists <= 6, "too many list calls: {:?}", fake.requests());
}

#[tokio::test]
async fn follow_log_stream_receives_appended_lines_until_the_pod_ends() {
    let fake = FakeKube::start().await;
    let pod_name = create_job(&fake, "l1").await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), NS);
    match pods.logs(&pod_name, &LogParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 400, "pending pod"),
        other => panic!("expected 400 for a pending pod, got {other:?}"),
    }
    fake.set_pod_phase(NS, &pod_name, PodPhase::Running, &ContainerState::Running);
    fake.append_log(NS, &pod_name, "before");
    let stream = pods
        .log_stream(
            &pod_name,
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    let mut lines = stream.lines();
    assert_eq!(within(lines.try_next()).await.unwrap().as_deref(), Some("before"));
    fake.append_log(NS, &pod_name, "one");
    assert_eq!(within(lines.try_next()).await.unwrap().as_deref(), Some("one"));
    fake.append_log(NS, &pod_name, "two");
    fake.set_pod_phase(
        NS,
        &pod_name,
        PodPhase::Succeeded,
        &ContainerState::Terminated {
            exit_code: 0,
            reason: "Completed".into(),
        },
    );
    assert_eq!(within(lines.try_next()).await.unwrap().as_deref(), Some("two"));
    assert_eq!(within(lines.try_next()).await.unwrap(), None);

    let tail = pods
        .logs(
            &pod_name,
            &LogParams {
                tail_lines: Some(1),
                timestamps: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert!(tail.ends_with(" two\n") && tail.lines().count() == 1, "{tail:?}");
}

#[tokio::test]
async fn attach_delivers_stdin() {
    let fake = FakeKube::start().await;
    let pod_name = create_job(&fake, "s1").await;
    fake.set_pod_phase(NS, &pod_name, PodPhase::Running, &ContainerState::Running);
    let pods: Api<Pod> = Api::namespaced(fake.client(), NS);
    let params = AttachParams::default().stdin(true).stdout(false).stderr(false);
    let mut attached = pods.attach(&pod_name, &params).await.unwrap();
    let mut stdin = attached.stdin().unwrap();
    stdin.write_all(b"hello agent\n").await.unwrap();
    stdin.flush().await.unwrap();
    within(fake.wait_until(|fake| fake.stdin_of(NS, &pod_name) == b"hello agent\n")).await;

    // The session ends with a status once the pod is done.
    fake.set_pod_phase(
        NS,
        &pod_name,
        PodPhase::Succeeded,
        &ContainerState::Terminated {
            exit_code: 0,
            reason: "Completed".into(),
        },
    );
    let status = within(attached.take_status().unwrap()).await;
    assert_eq!(status.and_then(|status| status.status), Some("Success".into()));
}

#[tokio::test]
async fn finalizer_keeps_a_deleted_pod_until_patched_away() {
    let fake = FakeKube::start().await;
    fake.seed(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "f1", "namespace": NS, "finalizers": ["agentfarm.dev/archive"]},
        "spec": {"containers": [{"name": "agent", "image": "agent:1"}]},
    }));
    let pods: Api<Pod> = Api::namespaced(fake.client(), NS);
    let mut events = watcher(pods.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    while !matches!(within(events.next()).await, Some(Ok(Event::InitDone))) {}

    pods.delete("f1", &DeleteParams::default()).await.unwrap();
    let pod = pods.get("f1").await.unwrap();
    assert!(pod.metadata.deletion_timestamp.is_some());
    match within(events.next()).await {
        Some(Ok(Event::Apply(pod))) => assert!(pod.metadata.deletion_timestamp.is_some()),
        other => panic!("expected Apply, got {other:?}"),
    }

    let remove = json!({"metadata": {"finalizers": null}});
    pods.patch("f1", &PatchParams::default(), &Patch::Merge(&remove))
        .await
        .unwrap();
    assert!(pods.get_opt("f1").await.unwrap().is_none());
    assert!(matches!(within(events.next()).await, Some(Ok(Event::Delete(_)))));
    assert!(fake.objects(Kind::Pod).is_empty());
}

#[tokio::test]
async fn self_subject_access_review_follows_the_rules() {
    let fake = FakeKube::start().await;
    let reviews: Api<SelfSubjectAccessReview> = Api::all(fake.client());
    let review = |verb: &str, resource: &str| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(NS.into()),
                verb: Some(verb.into()),
                group: Some("batch".into()),
                resource: Some(resource.into()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let allowed = |answer: SelfSubjectAccessReview| answer.status.map(|status| status.allowed);
    let answer = reviews
        .create(&PostParams::default(), &review("create", "jobs"))
        .await
        .unwrap();
    assert_eq!(allowed(answer), Some(true));

    fake.set_access_rules(vec![AccessRule {
        verb: Some("delete".into()),
        resource: Some("jobs".into()),
        allowed: false,
        ..AccessRule::default()
    }]);
    let answer = reviews
        .create(&PostParams::default(), &review("delete", "jobs"))
        .await
        .unwrap();
    assert_eq!(allowed(answer), Some(false));
    let answer = reviews
        .create(&PostParams::default(), &review("create", "jobs"))
        .await
        .unwrap();
    assert_eq!(allowed(answer), Some(true));
}

#[tokio::test]
async fn injected_faults_are_status_errors() {
    let fake = FakeKube::start().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), NS);
    fake.fail_next(1, 500);
    match jobs.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (500, "InternalError"));
        }
        other => panic!("expected 500, got {other:?}"),
    }
    assert!(jobs.list(&ListParams::default()).await.is_ok());

    // kube 5's client retries 503 (and 429, 504) by itself: one call, two requests.
    fake.fail_next(1, 503);
    let before = fake.requests().len();
    assert!(jobs.list(&ListParams::default()).await.is_ok());
    assert_eq!(fake.requests().len() - before, 2);
    let requests = fake.requests();
    assert!(requests.windows(2).all(|pair| pair[0].at <= pair[1].at));
}

/// A kubelet that runs `sh` as `/bin/sh`, with volumes under `root`.
fn kubelet(root: &Path) -> Kubelet {
    Kubelet {
        programs: vec![("sh".into(), "/bin/sh".into())],
        root: root.to_owned(),
        extra_env: vec![("PATH".into(), "/usr/bin:/bin".into())],
    }
}

/// A Job whose container runs `sh -c script`; `container` and `pod_spec` are merged into its template.
fn sh_job(name: &str, script: &str, container: &Value, pod_spec: &Value) -> Value {
    let mut job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"agent": name}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "agent", "image": "agent:1", "command": ["sh", "-c"], "args": [script]}],
                },
            },
        },
    });
    for (key, value) in container.as_object().unwrap() {
        job["spec"]["template"]["spec"]["containers"][0][key] = value.clone();
    }
    for (key, value) in pod_spec.as_object().unwrap() {
        job["spec"]["template"]["spec"][key] = value.clone();
    }
    job
}

/// Creates `job` through the API and returns its pod's name.
async fn create(fake: &FakeKube, job: Value) -> String {
    let name = job["metadata"]["name"].as_str().unwrap().to_owned();
    let jobs: Api<Job> = Api::namespaced(fake.client(), NS);
    jobs.create(&PostParams::default(), &serde_json::from_value(job).unwrap())
        .await
        .unwrap();
    fake.pods_of_job(NS, &name).pop().unwrap()
}

fn pod_field(fake: &FakeKube, pod: &str, pointer: &str) -> Value {
    fake.object(Kind::Pod, NS, pod)
        .and_then(|pod| pod.pointer(pointer).cloned())
        .unwrap_or(Value::Null)
}

fn job_conditions(fake: &FakeKube, job: &str) -> Vec<(String, String)> {
    let job = fake.object(Kind::Job, NS, job).unwrap_or(Value::Null);
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|condition| {
            let text = |key: &str| condition[key].as_str().unwrap_or_default().to_owned();
            (text("type"), text("reason"))
        })
        .collect()
}

const TERMINATED: &str = "/status/containerStatuses/0/state/terminated";

#[tokio::test]
async fn kubelet_runs_a_job_with_secret_env_volumes_stdin_and_logs() {
    let root = tempfile::tempdir().unwrap();
    let fake = FakeKube::start().await;
    fake.run_pods(kubelet(root.path()));
    fake.seed(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": NS},
        "data": {"token": "czNjcmV0"},
    }));
    let script = "echo token=$TOKEN; read a; echo got=$a; read b; echo got=$b; echo saved > \"$WORK/out\"; \
                  echo cwd=$(pwd)";
    let container = json!({
        "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "WORK", "value": "/work"},
        ],
        "workingDir": "/work/sub",
        "volumeMounts": [{"name": "work", "mountPath": "/work"}],
    });
    let volumes = json!({"volumes": [{"name": "work", "emptyDir": {}}]});
    let pod = create(&fake, sh_job("p1", script, &container, &volumes)).await;
    let work = root.path().join(NS).join(&pod).join("work");
    within(fake.wait_until(|fake| pod_field(fake, &pod, "/status/phase") == "Running")).await;
    assert_eq!(pod_field(&fake, &pod, "/status/podIP"), "127.0.0.1");

    let pods: Api<Pod> = Api::namespaced(fake.client(), NS);
    let params = AttachParams::default().stdin(true).stdout(false).stderr(false);
    let mut attached = pods.attach(&pod, &params).await.unwrap();
    let follow = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let mut lines = pods.log_stream(&pod, &follow).await.unwrap().lines();
    assert_eq!(
        within(lines.try_next()).await.unwrap().as_deref(),
        Some("token=s3cret")
    );
    let mut stdin = attached.stdin().unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    stdin.flush().await.unwrap();
    assert_eq!(
        within(lines.try_next()).await.unwrap().as_deref(),
        Some("got=hello")
    );
    // Closing this session's stdin (kube sends the v5 close signal) leaves the container's stdin open.
    drop(stdin);
    let mut second = pods.attach(&pod, &params).await.unwrap();
    let mut stdin = second.stdin().unwrap();
    stdin.write_all(b"again\n").await.unwrap();
    stdin.flush().await.unwrap();
    assert_eq!(
        within(lines.try_next()).await.unwrap().as_deref(),
        Some("got=again")
    );
    let cwd = format!("cwd={}", work.join("sub").display());
    assert_eq!(within(lines.try_next()).await.unwrap(), Some(cwd.clone()));
    assert_eq!(
        within(lines.try_next()).await.unwrap(),
        None,
        "the stream ends with the pod"
    );

    assert_eq!(
        fake.logs_of(NS, &pod),
        ["token=s3cret", "got=hello", "got=again", cwd.as_str()]
    );
    assert_eq!(fake.stdin_of(NS, &pod), b"hello\nagain\n");
    assert_eq!(std::fs::read_to_string(work.join("out")).unwrap(), "saved\n");
    let status = within(attached.take_status().unwrap()).await;
    assert_eq!(status.and_then(|status| status.status), Some("Success".into()));

    let pod = pods.get(&pod).await.unwrap();
    let status = pod.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Succeeded"));
    let terminated = status.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (0, Some("Completed"))
    );
    let jobs: Api<Job> = Api::namespaced(fake.client(), NS);
    let job = jobs.get("p1").await.unwrap().status.unwrap();
    assert_eq!((job.succeeded, job.active), (Some(1), Some(0)));
    assert_eq!(
        job_conditions(&fake, "p1"),
        [("Complete".to_owned(), "Completed".to_owned())]
    );
}

#[tokio::test]
async fn kubelet_reports_a_failing_command_and_an_unknown_program() {
    let root = tempfile::tempdir().unwrap();
    let fake = FakeKube::start().await;
    fake.run_pods(kubelet(root.path()));
    let pod = create(
        &fake,
        sh_job("e1", "echo oops >&2; exit 3", &json!({}), &json!({})),
    )
    .await;
    within(fake.wait_until(|fake| !job_conditions(fake, "e1").is_empty())).await;
    assert_eq!(pod_field(&fake, &pod, "/status/phase"), "Failed");
    assert_eq!(pod_field(&fake, &pod, &format!("{TERMINATED}/exitCode")), 3);
    assert_eq!(pod_field(&fake, &pod, &format!("{TERMINATED}/reason")), "Error");
    assert_eq!(fake.logs_of(NS, &pod), ["oops"]);
    assert_eq!(
        job_conditions(&fake, "e1"),
        [("Failed".to_owned(), "BackoffLimitExceeded".to_owned())]
    );
    let job = fake.object(Kind::Job, NS, "e1").unwrap();
    assert_eq!(
        (&job["status"]["failed"], &job["status"]["active"]),
        (&json!(1), &json!(0))
    );

    let missing = sh_job("e2", "", &json!({"command": ["/usr/bin/python3"]}), &json!({}));
    let pod = create(&fake, missing).await;
    within(fake.wait_until(|fake| !job_conditions(fake, "e2").is_empty())).await;
    assert_eq!(pod_field(&fake, &pod, "/status/phase"), "Failed");
    let waiting = pod_field(&fake, &pod, "/status/containerStatuses/0/state/waiting");
    assert_eq!(waiting["reason"], "RunContainerError");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .contains("\"/usr/bin/python3\""),
        "{waiting}"
    );
}

#[tokio::test]
async fn kubelet_waits_for_a_missing_secret_with_a_config_error() {
    let root = tempfile::tempdir().unwrap();
    let fake = FakeKube::start().await;
    fake.run_pods(kubelet(root.path()));
    let env =
        json!({"env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]});
    let pod = create(&fake, sh_job("c1", "echo token=$TOKEN", &env, &json!({}))).await;
    let waiting = "/status/containerStatuses/0/state/waiting";
    let message = |fake: &FakeKube| pod_field(fake, &pod, &format!("{waiting}/message"));
    within(fake.wait_until(|fake| message(fake) == "secret \"later\" not found")).await;
    assert_eq!(
        pod_field(&fake, &pod, &format!("{waiting}/reason")),
        "CreateContainerConfigError"
    );
    assert_eq!(pod_field(&fake, &pod, "/status/phase"), "Pending");

    // The kubelet retries: first the key is missing, then it is there and the container runs.
    let secrets: Api<Secret> = Api::namespaced(fake.client(), NS);
    let secret = json!({"metadata": {"name": "later"}, "stringData": {"other": "x"}});
    secrets
        .create(&PostParams::default(), &serde_json::from_value(secret).unwrap())
        .await
        .unwrap();
    within(fake.wait_until(|fake| message(fake) == "couldn't find key token in Secret agents/later")).await;
    let add = json!({"stringData": {"token": "late"}});
    secrets
        .patch("later", &PatchParams::default(), &Patch::Merge(&add))
        .await
        .unwrap();
    within(fake.wait_until(|fake| pod_field(fake, &pod, "/status/phase") == "Succeeded")).await;
    assert_eq!(fake.logs_of(NS, &pod), ["token=late"]);
}

#[tokio::test]
async fn kubelet_terminates_a_deleted_pod_that_lingers_with_its_final_status() {
    let root = tempfile::tempdir().unwrap();
    let fake = FakeKube::start().await;
    fake.run_pods(kubelet(root.path()));
    let script = "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 1; done";
    let mut job = sh_job("d1", script, &json!({}), &json!({}));
    job["spec"]["template"]["metadata"]["finalizers"] = json!(["agentfarm.dev/archive"]);
    let pod = create(&fake, job).await;
    within(fake.wait_until(|fake| fake.logs_of(NS, &pod) == ["ready"])).await;

    let pods: Api<Pod> = Api::namespaced(fake.client(), NS);
    pods.delete(&pod, &DeleteParams::default()).await.unwrap();
    let exit_code = format!("{TERMINATED}/exitCode");
    within(fake.wait_until(|fake| pod_field(fake, &pod, &exit_code) == 7)).await;
    let lingering = pods.get(&pod).await.unwrap();
    assert!(lingering.metadata.deletion_timestamp.is_some());
    assert_eq!(lingering.metadata.deletion_grace_period_seconds, Some(30));
    assert_eq!(lingering.status.unwrap().phase.as_deref(), Some("Failed"));
    // (The shell may also report its `sleep` as "Terminated".)
    let log = pods.logs(&pod, &LogParams::default()).await.unwrap();
    assert!(
        log.starts_with("ready\n") && log.ends_with("got TERM\n"),
        "{log:?}"
    );

    let remove = json!({"metadata": {"finalizers": null}});
    pods.patch(&pod, &PatchParams::default(), &Patch::Merge(&remove))
        .await
        .unwrap();
    assert!(pods.get_opt(&pod).await.unwrap().is_none());
    assert!(fake.logs_of(NS, &pod).is_empty());
}

#[tokio::test]
async fn kubelet_kills_a_seeded_pod_that_ignores_sigterm_after_its_grace_period() {
    let root = tempfile::tempdir().unwrap();
    let fake = FakeKube::start().await;
    fake.run_pods(kubelet(root.path()));
    let script = "trap '' TERM; echo ready; while true; do sleep 1; done";
    fake.seed(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "k1", "namespace": NS, "finalizers": ["agentfarm.dev/archive"]},
        "spec": {"containers": [{"name": "agent", "image": "agent:1", "command": ["sh", "-c", script]}]},
    }));
    within(fake.wait_until(|fake| fake.logs_of(NS, "k1") == ["ready"])).await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), NS);
    let delete = DeleteParams {
        grace_period_seconds: Some(1),
        ..DeleteParams::default()
    };
    pods.delete("k1", &delete).await.unwrap();
    let exit_code = format!("{TERMINATED}/exitCode");
    within(fake.wait_until(|fake| pod_field(fake, "k1", &exit_code) == 128 + 9)).await;
    assert_eq!(pod_field(&fake, "k1", "/metadata/deletionGracePeriodSeconds"), 1);
    assert_eq!(pod_field(&fake, "k1", "/status/phase"), "Failed");
}

#[tokio::test]
async fn kubelet_enforces_the_job_deadline() {
    let root = tempfile::tempdir().unwrap();
    let fake = FakeKube::start().await;
    fake.run_pods(kubelet(root.path()));
    let mut job = sh_job("t1", "echo started; sleep 30", &json!({}), &json!({}));
    job["spec"]["activeDeadlineSeconds"] = json!(1);
    job["spec"]["template"]["metadata"]["finalizers"] = json!(["agentfarm.dev/archive"]);
    let pod = create(&fake, job).await;
    let exit_code = format!("{TERMINATED}/exitCode");
    within(fake.wait_until(|fake| pod_field(fake, &pod, &exit_code) == 128 + 15)).await;
    assert_eq!(
        job_conditions(&fake, "t1"),
        [("Failed".to_owned(), "DeadlineExceeded".to_owned())]
    );
    let job = fake.object(Kind::Job, NS, "t1").unwrap();
    assert_eq!(
        job["status"]["conditions"][0]["message"],
        "Job was active longer than specified deadline"
    );
    assert!(pod_field(&fake, &pod, "/metadata/deletionTimestamp").is_string());
    assert_eq!(pod_field(&fake, &pod, "/status/phase"), "Failed");
}

#[tokio::test]
async fn dropping_the_fake_kills_the_whole_process_group() {
    let root = tempfile::tempdir().unwrap();
    let fifo = root.path().join("alive");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    // Reads EOF once every process holding the write end (the shell and its background child) is gone.
    let mut alive = tokio::net::unix::pipe::OpenOptions::new()
        .open_receiver(&fifo)
        .unwrap();
    let fake = FakeKube::start().await;
    fake.run_pods(kubelet(root.path()));
    let script = "exec 3>\"$FIFO\"; sleep 1000 & echo started; wait";
    let env = json!({"env": [{"name": "FIFO", "value": fifo.display().to_string()}]});
    let pod = create(&fake, sh_job("x1", script, &env, &json!({}))).await;
    within(fake.wait_until(|fake| fake.logs_of(NS, &pod) == ["started"])).await;
    drop(fake);
    let mut rest = Vec::new();
    assert_eq!(within(alive.read_to_end(&mut rest)).await.unwrap(), 0);
}

//! Following a run on the real cluster: its states through the app's own live stream, its stored log, its pod
//! through the Kubernetes API (the log the kubelet serves, the finalizer, the moment it goes).

use std::collections::BTreeSet;

use agentfarm_app_client::{App, PATIENCE, Socket, within};
use agentfarm_shared::log::LogPage;
use agentfarm_shared::run::{Run, RunState};
use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use reqwest::StatusCode;

use crate::suite::AGENTS;

/// The finalizer that keeps an agent's pod until its log is stored.
pub const ARCHIVE_FINALIZER: &str = "agentfarm.dev/archive-logs";

/// The run's label on its Job and pod.
pub fn selector(run_id: &str) -> String {
    format!("agentfarm.dev/run={run_id}")
}

/// Every line stored for run `id`, checking that their numbers run 1, 2, 3, … with no hole.
pub async fn stored_lines(app: &App, id: &str) -> Vec<String> {
    let (status, page) = app
        .get(&format!("/api/runs/{id}/logs?after_seq=0&limit=5000"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let page: LogPage = serde_json::from_value(page).expect("a log page");
    let numbers: Vec<u64> = page.lines.iter().map(|line| line.seq).collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as u64).collect::<Vec<_>>(),
        "contiguous, once each"
    );
    assert_eq!(page.gap, None);
    page.lines.into_iter().map(|line| line.text).collect()
}

/// Reads the stream until run `id` is in `state`; the run, and the states it passed through.
pub async fn until_state(socket: &mut Socket, id: &str, state: RunState) -> (Run, Vec<RunState>) {
    within(socket.until_state(id, state)).await
}

/// Reads the stream until run `id` has ended; the run.
pub async fn until_ended(socket: &mut Socket, id: &str) -> Run {
    within(socket.until_ended(id)).await
}

/// Run `id`'s pod, once `ready` holds for it (e.g. it exists, or its container started).
pub async fn pod_when(kube: &kube::Client, id: &str, ready: impl Fn(&Pod) -> bool) -> Pod {
    let pods: Api<Pod> = Api::namespaced(kube.clone(), AGENTS);
    let config = watcher::Config::default().labels(&selector(id));
    let stream = watcher::watcher(pods, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    within(async {
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) if ready(&pod) => {
                    return pod;
                }
                Ok(Some(_)) => {}
                Ok(None) => panic!("the pod watch ended"),
                Err(err) => panic!("watching pods: {err}"),
            }
        }
    })
    .await
}

/// Whether the pod's container has started (it runs, or ran and ended).
pub fn started(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|status| status.phase.as_deref());
    matches!(phase, Some("Running" | "Succeeded" | "Failed"))
}

/// What the kubelet serves as run `id`'s pod's log, followed to its end (`kubectl logs -f`).
pub async fn follow_log(kube: &kube::Client, id: &str) -> Vec<String> {
    let pod = pod_when(kube, id, started).await;
    let name = pod.metadata.name.unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(kube.clone(), AGENTS);
    let params = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let stream = pods.log_stream(&name, &params).await.expect("the pod's log");
    let mut lines = stream.lines();
    let mut read = Vec::new();
    while let Some(line) = tokio::time::timeout(PATIENCE, lines.next())
        .await
        .expect("the log stream went quiet")
    {
        read.push(line.expect("a log line"));
    }
    read
}

/// Waits until run `id`'s pod loses the archive finalizer (or is gone), then reads what the app has stored:
/// what was stored when the finalizer let the pod go.
pub async fn stored_when_released(kube: &kube::Client, app: &App, id: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(kube.clone(), AGENTS);
    let config = watcher::Config::default().labels(&selector(id));
    let stream = watcher::watcher(pods, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut held = false;
    within(async {
        loop {
            match stream.try_next().await.expect("watching pods") {
                Some(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    let finalizers = pod.metadata.finalizers.unwrap_or_default();
                    if finalizers.iter().any(|finalizer| finalizer == ARCHIVE_FINALIZER) {
                        held = true;
                    } else if held {
                        break;
                    }
                }
                Some(watcher::Event::Delete(_)) => break,
                Some(_) => {}
                None => panic!("the pod watch ended"),
            }
        }
    })
    .await;
    assert!(held, "the pod of run {id} never had the archive finalizer");
    stored_lines(app, id).await
}

/// Waits until no Job or pod of run `id` is left.
pub async fn until_gone(kube: &kube::Client, id: &str) {
    until_none(Api::<Job>::namespaced(kube.clone(), AGENTS), id).await;
    until_none(Api::<Pod>::namespaced(kube.clone(), AGENTS), id).await;
}

/// Waits until the watch of `api` for run `id`'s label has seen every such object go.
async fn until_none<K>(api: Api<K>, id: &str)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let config = watcher::Config::default().labels(&selector(id));
    let stream = watcher::watcher(api, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut present = BTreeSet::new();
    let mut listed = false;
    within(async {
        loop {
            match stream.try_next().await.expect("watching") {
                Some(watcher::Event::Init) => present.clear(),
                Some(watcher::Event::InitApply(object) | watcher::Event::Apply(object)) => {
                    present.insert(object.meta().name.clone().unwrap_or_default());
                }
                Some(watcher::Event::Delete(object)) => {
                    present.remove(&object.meta().name.clone().unwrap_or_default());
                }
                Some(watcher::Event::InitDone) => listed = true,
                None => panic!("the watch ended"),
            }
            if listed && present.is_empty() {
                return;
            }
        }
    })
    .await;
}

/// The lines of `lines` that occur more than once.
pub fn repeated(lines: &[String]) -> Vec<&String> {
    let mut seen = BTreeSet::new();
    lines.iter().filter(|line| !seen.insert(*line)).collect()
}

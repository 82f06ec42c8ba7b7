//! The Kubernetes runtime: each run is a Job in the agents namespace, its pod sandboxed by a RuntimeClass.
//!
//! - [`image`]: the agent image reference and the image a config's agent runs.
//! - [`job`]: the Job for a run (the `restricted` Pod Security profile, resources, Secrets, volumes), and the
//!   Secret with its capability.
//! - [`launch`]: creating both, repeatably.
//! - [`watch`]: two watchers (Jobs and pods with agentfarm's label) feed each run's tracker; a relist
//!   replaces what trackers know, so a deletion missed while disconnected is still noticed.
//! - [`agent`]: one tracker per run turns Job and pod states into run events, follows the log, attaches for
//!   follow-ups and stops.
//! - [`logs`]: the log follower, resuming without repeating a line.
//! - [`limit`]: a token bucket in front of Job creates.
//! - [`status`]: the mapping from Job and pod status to the run's terms.
//!
//! The Kubernetes objects are the truth about what runs; the store is the truth about history. A pod
//! finalizer keeps a finished pod, and so its log, until the server has stored the end of the run.

pub mod agent;
pub mod image;
pub mod job;
pub mod launch;
pub mod limit;
pub mod logs;
pub mod status;
mod watch;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentfarm_shared::api::RuntimeInfo;
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use self::agent::{Tracker, is_not_found};
use self::job::{ARCHIVE_FINALIZER, RUN_LABEL, capability_secret_name, job_name, managed_selector};
use self::launch::Agent;
use self::limit::CreateLimiter;
use self::logs::Position;
use super::{Adoptee, RunEvents, RunSpec, RunnerSite, Runtime, RuntimeError};
use crate::backoff::Backoff;

/// How long `/readyz` waits for the cluster's API before calling the runtime degraded: well inside the
/// kubelet's 3 s probe timeout (manifests/base/control-plane/deployment.yaml), or an API outage would make
/// the probe itself time out and take the app off its Service, the opposite of reporting it.
const TROUBLE_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The Kubernetes calls' retries: from half a second, doubling, at most 30 s.
const RETRY_FIRST: Duration = Duration::from_millis(500);
/// See [`RETRY_FIRST`].
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Attempts to delete a finished run's Job and free its pod: 15.5 s of waits between them with the backoff
/// (0.5 + 1 + 2 + 4 + 8 s).
const RELEASE_ATTEMPTS: u32 = 6;

/// What reaches a tracker, in order.
#[derive(Debug)]
pub enum Inbox {
    /// The run's Job as now known (`None`: there is none).
    Job(Option<Box<Job>>),
    /// The run's pod as now known (`None`: there is none).
    Pod(Option<Box<Pod>>),
    /// A pod was deleted.
    PodDeleted(String),
    /// A new line of the pod's log.
    Line {
        /// Its timestamp.
        at: DateTime<Utc>,
        /// The text.
        text: String,
        /// The read position after it.
        cursor: Option<String>,
    },
    /// The log has been read to its end.
    LogDone,
    /// A follow-up for the agent.
    Input(String, oneshot::Sender<Result<(), RuntimeError>>),
    /// The owner asked to stop.
    Stop(oneshot::Sender<Result<(), RuntimeError>>),
}

/// How the Kubernetes runtime makes and treats agents.
#[derive(Debug, Clone)]
pub struct KubeSettings {
    /// The agents' namespace.
    pub namespace: String,
    /// The agent image (`--agent-image`).
    pub image: self::image::ImageRef,
    /// The image tag for configs that name none.
    pub default_image_tag: String,
    /// The RuntimeClass for configs that name none.
    pub default_runtime_class: String,
    /// The Secret with the Claude token (key `token`).
    pub claude_token_secret: String,
    /// The Secret with the GitHub token (key `token`).
    pub github_token_secret: String,
    /// The RWX claim with the shared `~/.claude`, for configs in the opt-in `shared-volume` mode.
    pub claude_home_claim: Option<String>,
    /// Node labels agents must run on (e.g. keep them off the server node).
    pub node_selector: BTreeMap<String, String>,
    /// What every runner spec carries.
    pub runner: RunnerSite,
    /// Variables set for every agent.
    pub agent_env: Vec<(String, String)>,
    /// How long an idle agent waits for a follow-up (the runner enforces it: a pod's stdin stays open).
    pub idle_timeout: Duration,
    /// The grace period of a stop.
    pub stop_grace: Duration,
    /// How long a finished Job stays if the server never deletes it (a safety net).
    pub job_ttl: Duration,
    /// Ephemeral storage an agent may use (workspace size limit), a quantity such as `10Gi`.
    pub ephemeral_storage: String,
    /// When set, each workspace is a volume of this StorageClass (`ephemeral_storage` in size) that lives
    /// and dies with the pod, instead of an emptyDir.
    pub workspace_storage_class: Option<String>,
    /// Most Jobs created a minute (and at once); more wait.
    pub creates_per_minute: u32,
}

/// Runs agents as Jobs.
pub struct KubeRuntime {
    settings: Arc<KubeSettings>,
    jobs: Api<Job>,
    pods: Api<Pod>,
    secrets: Api<Secret>,
    registry: Arc<Mutex<watch::Registry>>,
    creates: Arc<CreateLimiter>,
    /// How often watching the agents broke and started over.
    watch_restarts: Counter,
}

impl KubeRuntime {
    /// A runtime on `client`; starts watching the agents namespace at once (with backoff while the API is
    /// unreachable).
    pub fn new(client: kube::Client, settings: KubeSettings) -> Self {
        let jobs: Api<Job> = Api::namespaced(client.clone(), &settings.namespace);
        let pods: Api<Pod> = Api::namespaced(client.clone(), &settings.namespace);
        let secrets: Api<Secret> = Api::namespaced(client, &settings.namespace);
        let registry = Arc::new(Mutex::new(watch::Registry::default()));
        let settings = Arc::new(settings);
        let watch_restarts = Counter::default();
        tokio::spawn(watch::run(
            jobs.clone(),
            pods.clone(),
            secrets.clone(),
            Arc::clone(&registry),
            Arc::clone(&settings),
            watch_restarts.clone(),
        ));
        Self {
            creates: Arc::new(CreateLimiter::new(settings.creates_per_minute)),
            settings,
            jobs,
            pods,
            secrets,
            registry,
            watch_restarts,
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, watch::Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a tracker for `run_id` and registers it; returns its events.
    fn track(&self, run_id: &str, position: Position, create: Option<Agent>, expect_job: bool) -> RunEvents {
        let (events_tx, events) = mpsc::channel(1024);
        let inbox = mpsc::unbounded_channel();
        let tracker = Tracker {
            run_id: run_id.to_owned(),
            jobs: self.jobs.clone(),
            pods: self.pods.clone(),
            secrets: self.secrets.clone(),
            events: events_tx,
            inbox: (inbox.0.clone(), inbox.1),
            position,
            create,
            creates: Arc::clone(&self.creates),
            expect_job,
            stop_grace: self.settings.stop_grace,
            follow_ups: !self.settings.idle_timeout.is_zero(),
        };
        self.registry().register(run_id, inbox.0);
        let registry = Arc::clone(&self.registry);
        let run_id = run_id.to_owned();
        // In the launching run's span (the service's), as is everything the tracker starts.
        let tracked = async move {
            tracker.run().await;
            registry
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .unregister(&run_id);
        };
        tokio::spawn(tracked.in_current_span());
        events
    }

    async fn launch_job(&self, spec: RunSpec) -> Result<RunEvents, RuntimeError> {
        let agent = Agent::new(&spec, &self.settings).map_err(|err| RuntimeError::Failed(err.to_string()))?;
        self.creates.acquire().await;
        agent
            .create(&self.jobs, &self.secrets)
            .await
            .map_err(|err| RuntimeError::Failed(format!("cannot create the agent's Job: {err}")))?;
        // Tracked from here: what the watchers saw meanwhile is in the registry, and reaches the tracker
        // first.
        Ok(self.track(&spec.run_id, Position::default(), None, true))
    }

    fn send(
        &self,
        run_id: &str,
        message: impl FnOnce(oneshot::Sender<Result<(), RuntimeError>>) -> Inbox,
    ) -> BoxFuture<'_, Result<(), RuntimeError>> {
        let (reply, answer) = oneshot::channel();
        let sent = self.registry().send(run_id, message(reply));
        let run_id = run_id.to_owned();
        async move {
            if !sent {
                return Err(RuntimeError::NotRunning(run_id));
            }
            answer.await.map_err(|_| RuntimeError::NotRunning(run_id))?
        }
        .boxed()
    }
}

impl Runtime for KubeRuntime {
    fn watch_restarts(&self) -> Option<Counter> {
        Some(self.watch_restarts.clone())
    }

    fn info(&self) -> RuntimeInfo {
        RuntimeInfo {
            kind: "kubernetes".into(),
            isolated: true,
            sandbox: "runtime-class".into(),
            description: format!(
                "Agents run as Jobs in namespace {}, sandboxed by RuntimeClass {} unless a config names another.",
                self.settings.namespace, self.settings.default_runtime_class
            ),
        }
    }

    fn trouble(&self) -> BoxFuture<'_, Option<String>> {
        async {
            // The cheapest read that needs the API and the agents namespace: one Job's metadata.
            let one = ListParams::default().limit(1);
            match tokio::time::timeout(TROUBLE_PROBE_TIMEOUT, self.jobs.list_metadata(&one)).await {
                Ok(Ok(_)) => None,
                Ok(Err(err)) => Some(format!("the cluster's API refuses: {err}")),
                Err(_) => Some(format!(
                    "the cluster's API did not answer within {} s",
                    TROUBLE_PROBE_TIMEOUT.as_secs()
                )),
            }
        }
        .boxed()
    }

    fn launch(&self, spec: RunSpec) -> BoxFuture<'_, Result<RunEvents, RuntimeError>> {
        self.launch_job(spec).boxed()
    }

    fn stop(&self, run_id: &str) -> BoxFuture<'_, Result<(), RuntimeError>> {
        self.send(run_id, Inbox::Stop)
    }

    fn send_input(&self, run_id: &str, text: String) -> BoxFuture<'_, Result<(), RuntimeError>> {
        self.send(run_id, |reply| Inbox::Input(text, reply))
    }

    fn release(&self, run_id: &str) -> BoxFuture<'_, ()> {
        let (jobs, pods, secrets) = (self.jobs.clone(), self.pods.clone(), self.secrets.clone());
        let run_id = run_id.to_owned();
        // In the background, retried for a while: the API may be down just now. The Job's TTL and the next
        // start's sweep catch what is left after that.
        tokio::spawn(async move {
            let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
            for attempt in 1..=RELEASE_ATTEMPTS {
                match release(&jobs, &pods, &secrets, &run_id).await {
                    Ok(()) => return,
                    Err(err) if attempt == RELEASE_ATTEMPTS => {
                        tracing::warn!(run_id, %err, "cannot let go of the agent's Job and pod");
                    }
                    Err(_) => backoff.wait().await,
                }
            }
        });
        async {}.boxed()
    }

    fn remove(&self, run_id: &str) -> BoxFuture<'_, Result<(), RuntimeError>> {
        let run_id = run_id.to_owned();
        async move {
            release(&self.jobs, &self.pods, &self.secrets, &run_id)
                .await
                .map_err(|err| RuntimeError::Failed(format!("cannot delete the agent's Job: {err}")))
        }
        .boxed()
    }

    fn adopt(&self, runs: Vec<Adoptee>) -> BoxFuture<'_, Vec<(String, RunEvents)>> {
        let mut adopted = Vec::with_capacity(runs.len());
        let mut known = HashSet::new();
        for run in runs {
            let create = match run.relaunch.as_ref().map(|spec| Agent::new(spec, &self.settings)) {
                Some(Ok(agent)) => Some(agent),
                Some(Err(err)) => {
                    tracing::warn!(run_id = run.run_id, %err, "cannot make the Job of a run that was starting");
                    None
                }
                None => None,
            };
            let position = Position::from_cursor(run.cursor.as_deref());
            known.insert(run.run_id.clone());
            adopted.push((
                run.run_id.clone(),
                self.track(&run.run_id, position, create, false),
            ));
        }
        // Jobs of no active run are swept: now if the first listings are complete, else when they are.
        let strays = self.registry().adopted(known);
        watch::sweep(&self.jobs, &self.pods, &self.secrets, strays);
        async move { adopted }.boxed()
    }
}

/// Deletes run `run_id`'s Job and its capability's Secret (which the cluster would also delete with the Job,
/// its owner), and removes the archive finalizer from its pods, so they go.
async fn release(
    jobs: &Api<Job>,
    pods: &Api<Pod>,
    secrets: &Api<Secret>,
    run_id: &str,
) -> Result<(), kube::Error> {
    let params = kube::api::DeleteParams {
        propagation_policy: Some(kube::api::PropagationPolicy::Background),
        ..kube::api::DeleteParams::default()
    };
    match jobs.delete(&job_name(run_id), &params).await {
        Err(err) if !is_not_found(&err) => return Err(err),
        _ => {}
    }
    match secrets
        .delete(
            &capability_secret_name(run_id),
            &kube::api::DeleteParams::default(),
        )
        .await
    {
        Err(err) if !is_not_found(&err) => return Err(err),
        _ => {}
    }
    let selector = format!("{},{RUN_LABEL}={run_id}", managed_selector());
    for pod in pods.list(&ListParams::default().labels(&selector)).await?.items {
        let (Some(name), Some(finalizers)) = (pod.metadata.name, pod.metadata.finalizers) else {
            continue;
        };
        let Some(index) = finalizers.iter().position(|f| f == ARCHIVE_FINALIZER) else {
            continue;
        };
        let patch = remove_finalizer(index).map_err(kube::Error::SerdeError)?;
        match pods
            .patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
        {
            Err(err) if !is_not_found(&err) => return Err(err),
            _ => {}
        }
    }
    Ok(())
}

/// A JSON patch that removes the archive finalizer at `index` if it is still there (test, then remove):
/// other finalizers, such as the Job controller's, stay.
fn remove_finalizer(index: usize) -> Result<json_patch::Patch, serde_json::Error> {
    let path = format!("/metadata/finalizers/{index}");
    serde_json::from_value(serde_json::json!([
        {"op": "test", "path": path, "value": ARCHIVE_FINALIZER},
        {"op": "remove", "path": path},
    ]))
}

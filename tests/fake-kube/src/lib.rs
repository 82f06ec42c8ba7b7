//! An in-process fake Kubernetes API server over real HTTP, so the unmodified `kube::Client` (typed `Api`,
//! `runtime::watcher`, `log_stream`, `attach`) runs against it in tests.
//!
//! Served (errors are real `Status` objects with `reason`, e.g. `NotFound`, `AlreadyExists`, `Conflict`):
//!
//! - `batch/v1` Jobs, `v1` Pods, Secrets, PersistentVolumeClaims (namespaced) and `node.k8s.io/v1`
//!   RuntimeClasses (cluster-scoped): list (namespaced and cluster-wide, `labelSelector`, `fieldSelector`,
//!   `limit`/`continue`), get, create, replace (`PUT`), patch (merge; strategic-merge and apply treated as
//!   merge; JSON patch), delete (finalizers honoured; Jobs cascade to their Pods with `Background` or
//!   `Foreground` propagation only; a Pod's `deletionGracePeriodSeconds` from `gracePeriodSeconds`, else its
//!   `terminationGracePeriodSeconds`, else 30), and `/status`.
//! - Creating a Job creates its Pod (`{job}-xxxxx`, `Pending`) and marks the Job active; the test then
//!   drives phases and conditions ([`FakeKube::set_pod_phase`], [`FakeKube::set_job_condition`]), or turns
//!   on the process kubelet.
//! - The process kubelet ([`FakeKube::run_pods`], [`Kubelet`]; opt-in): each Pod created from then on runs
//!   its first container as a local child process in its own process group (programs mapped by
//!   `command[0]`, env from `value`/Secrets, volume mounts as host directories), goes `Running`, gets its
//!   stdout and stderr as its log and attach stdin as its stdin, and ends `Succeeded`/`Failed` with the exit
//!   code, completing or failing its Job; a missing Secret gives `CreateContainerConfigError`, an unknown
//!   program `RunContainerError`. Deleting the Pod sends `SIGTERM`, then `SIGKILL` after the grace period;
//!   a Job's `activeDeadlineSeconds` fails it (`DeadlineExceeded`) and deletes its Pod. No process outlives
//!   the [`FakeKube`].
//! - Watches (`?watch=true`) replay retained events newer than `resourceVersion`, then go live; a version
//!   older than the retained window gets an `ERROR` event with a `410 Expired` Status (as the real server
//!   sends it, inside a `200` stream: that is what makes kube's watcher re-list).
//! - `pods/{name}/log` (`follow`, `timestamps`, `sinceTime`, `sinceSeconds`, `tailLines`) and
//!   `pods/{name}/attach` (WebSocket; stdin is collected, see [`FakeKube::stdin_of`], and the process
//!   kubelet writes it to the container). [`FakeKube::logs_of`] reads a log directly.
//! - `POST authorization.k8s.io/v1 selfsubjectaccessreviews` (see [`FakeKube::set_access_rules`]),
//!   `/version`, `/api`, `/apis`.
//!
//! Every request is recorded with its arrival time ([`FakeKube::requests`]); fault switches inject 5xx, 410,
//! dropped watches, duplicate events and silent deletions.

mod api;
mod attach;
mod controller;
mod kind;
mod kubelet;
mod logs;
mod patch;
mod select;
mod server;
mod status;
mod store;
mod watch;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use agentfarm_local_server::{LocalServer, Port};
use serde_json::Value;

pub use crate::kind::Kind;
pub use crate::kubelet::Kubelet;
use crate::server::Shared;

/// A pod phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// Not yet running (logs and attach are refused).
    Pending,
    /// Running.
    Running,
    /// All containers exited 0.
    Succeeded,
    /// A container failed.
    Failed,
}

impl PodPhase {
    /// The `status.phase` string.
    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
        }
    }
}

/// The state of a pod's (first) container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Waiting, e.g. `ContainerCreating`, `ImagePullBackOff`.
    Waiting {
        /// Why.
        reason: String,
    },
    /// Running.
    Running,
    /// Exited.
    Terminated {
        /// Exit code (137 for `OOMKilled`).
        exit_code: i32,
        /// `Completed`, `Error`, `OOMKilled`, …
        reason: String,
    },
}

/// A terminal Job condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCondition {
    /// `Complete` (`succeeded: 1`).
    Complete,
    /// `Failed` (`failed: 1`).
    Failed {
        /// E.g. `DeadlineExceeded`, `BackoffLimitExceeded`.
        reason: String,
        /// Human-readable message.
        message: String,
    },
}

/// An object created through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creation {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace (empty when cluster-scoped).
    pub namespace: String,
    /// Its name (the generated one for a `generateName`).
    pub name: String,
    /// When it was stored (e.g. to time a client's path to its create call).
    pub at: Instant,
}

/// One HTTP request received by the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path and query, e.g. `/api/v1/namespaces/a/pods?watch=true&resourceVersion=3`.
    pub path: String,
    /// When it arrived (e.g. to check that a client backs off between failing requests).
    pub at: Instant,
}

impl RecordedRequest {
    /// Whether this is a watch request.
    pub fn is_watch(&self) -> bool {
        self.path.contains("watch=true") || self.path.contains("watch=1")
    }
}

/// A SelfSubjectAccessReview rule: `None` fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRule {
    /// Verb, e.g. `create`.
    pub verb: Option<String>,
    /// API group (`""` for core).
    pub group: Option<String>,
    /// Resource plural, e.g. `pods`.
    pub resource: Option<String>,
    /// Subresource, e.g. `attach`.
    pub subresource: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// The answer when this rule is the first to match.
    pub allowed: bool,
}

/// A running fake API server on `127.0.0.1:<random port>`; stops when dropped (and kills every process
/// [`FakeKube::run_pods`] started).
pub struct FakeKube {
    shared: Arc<Shared>,
    server: LocalServer,
    /// The runtime it was started in (where the kubelet runs).
    runtime: tokio::runtime::Handle,
    /// The process kubelet, once [`FakeKube::run_pods`] turned it on.
    kubelet: Mutex<Option<kubelet::Runner>>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        // Cutting the feed ends the kubelet (its pod tasks kill their processes); the processes are killed
        // right away too, in case the runtime goes down with this handle.
        self.shared.lock().kubelet = None;
        if let Some(runner) = self
            .kubelet
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            runner.kill_all();
        }
    }
}

impl FakeKube {
    /// Starts the server on `127.0.0.1:0` in the current tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound (test support: a test cannot go on without its server).
    pub async fn start() -> FakeKube {
        let shared = Arc::new(Shared::new());
        let server = Port::bind("fake kube")
            .await
            .serve("fake kube", server::router(Arc::clone(&shared)));
        FakeKube {
            shared,
            server,
            runtime: tokio::runtime::Handle::current(),
            kubelet: Mutex::new(None),
        }
    }

    /// Turns on the process kubelet for Pods created from now on: each one's first container runs as a local
    /// child process (see [`Kubelet`] for what it does). Calling it again replaces the configuration for
    /// Pods created afterwards.
    pub fn run_pods(&self, kubelet: Kubelet) {
        let mut runner = self.kubelet.lock().unwrap_or_else(PoisonError::into_inner);
        match runner.as_ref() {
            Some(running) => running.configure(kubelet),
            None => *runner = Some(kubelet::Runner::start(&self.shared, &self.runtime, kubelet)),
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// A `kube::Client` for this server (plain HTTP, no auth, default namespace `default`).
    ///
    /// # Panics
    /// If kube rejects the configuration (test support).
    #[allow(clippy::expect_used)] // test support; see "Panics"
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url().parse().expect("fake kube: URL"));
        kube::Client::try_from(config).expect("fake kube: client")
    }

    /// Stores an object (`apiVersion` and `kind` select the resource; `metadata.namespace` the namespace)
    /// as if created through the API (an `ADDED` event; a Job gets its Pod). Returns the stored object.
    ///
    /// # Panics
    /// On an unknown kind or a duplicate (test support: the test's setup is wrong).
    #[allow(clippy::panic)] // test support; see "Panics"
    pub fn seed(&self, object: Value) -> Value {
        let text = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let Some(kind) = Kind::from_type(&text("apiVersion"), &text("kind")) else {
            panic!("fake kube: cannot seed {}/{}", text("apiVersion"), text("kind"));
        };
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned();
        let result = self.shared.with(|store| {
            let created = store.create(kind, &namespace, object)?;
            if kind == Kind::Job {
                controller::job_created(store, &created)?;
            }
            Ok::<_, status::ApiError>(created)
        });
        result.unwrap_or_else(|error| panic!("fake kube: seeding failed: {}", error.message))
    }

    /// Every stored object of `kind`, ordered by namespace and name.
    pub fn objects(&self, kind: Kind) -> Vec<Value> {
        let store = self.shared.lock();
        store
            .objects
            .iter()
            .filter(|((object_kind, _, _), _)| *object_kind == kind)
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// One stored object (`namespace` is ignored for cluster-scoped kinds).
    pub fn object(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        let namespace = if kind.namespaced() { namespace } else { "" };
        self.shared.lock().get(kind, namespace, name).ok().cloned()
    }

    /// The names of the Pods Job `job` created.
    pub fn pods_of_job(&self, namespace: &str, job: &str) -> Vec<String> {
        self.objects(Kind::Pod)
            .iter()
            .filter(|pod| {
                pod.pointer("/metadata/namespace").and_then(Value::as_str) == Some(namespace)
                    && pod.pointer("/metadata/labels/job-name").and_then(Value::as_str) == Some(job)
            })
            .filter_map(|pod| {
                pod.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    }

    /// Sets a Pod's phase and its container's state (a `MODIFIED` event). Returns whether the pod exists.
    pub fn set_pod_phase(
        &self,
        namespace: &str,
        pod: &str,
        phase: PodPhase,
        container: &ContainerState,
    ) -> bool {
        self.shared
            .with(|store| controller::set_pod_phase(store, namespace, pod, phase, container))
            .is_ok()
    }

    /// Adds a terminal condition to a Job (a `MODIFIED` event). Returns whether the Job exists.
    pub fn set_job_condition(&self, namespace: &str, job: &str, condition: &JobCondition) -> bool {
        self.shared
            .with(|store| controller::set_job_condition(store, namespace, job, condition))
            .is_ok()
    }

    /// Appends a line (without newline) to a pod's log, timestamped now; follow streams receive it.
    pub fn append_log(&self, namespace: &str, pod: &str, line: &str) {
        self.shared
            .with(|store| store.append_log(namespace, pod, line.to_owned()));
    }

    /// A pod's log lines (without newlines), oldest first; empty once the pod is gone.
    pub fn logs_of(&self, namespace: &str, pod: &str) -> Vec<String> {
        self.shared
            .lock()
            .logs
            .get(&(namespace.to_owned(), pod.to_owned()))
            .map(|lines| lines.iter().map(|line| line.text.clone()).collect())
            .unwrap_or_default()
    }

    /// Everything attach sessions delivered on stdin to the pod, in order.
    pub fn stdin_of(&self, namespace: &str, pod: &str) -> Vec<u8> {
        self.shared
            .lock()
            .stdin
            .get(&(namespace.to_owned(), pod.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `condition` holds, re-checking after every change (request, object, log line, stdin).
    /// Wrap it in a timeout: it waits forever otherwise.
    pub async fn wait_until(&self, mut condition: impl FnMut(&FakeKube) -> bool) {
        let mut tick = self.shared.tick.subscribe();
        loop {
            tick.borrow_and_update();
            if condition(self) || tick.changed().await.is_err() {
                return;
            }
        }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Every object created through the API so far, in order.
    pub fn creations(&self) -> Vec<Creation> {
        self.shared.lock().creations.clone()
    }

    /// SelfSubjectAccessReview rules (first match wins; no match, or no rules, allows).
    pub fn set_access_rules(&self, rules: Vec<AccessRule>) {
        self.shared.lock().access_rules = rules;
    }

    /// Answers the next `count` requests (of any kind) with a `Status` of HTTP `code` (e.g. 500, 503).
    pub fn fail_next(&self, count: u32, code: u16) {
        let mut store = self.shared.lock();
        store.faults.fail_next = count;
        store.faults.fail_code = code;
    }

    /// Answers every request with a `Status` of HTTP `code` until [`FakeKube::recover`].
    pub fn fail_until_recovered(&self, code: u16) {
        let mut store = self.shared.lock();
        store.faults.failing = true;
        store.faults.fail_code = code;
    }

    /// Ends [`FakeKube::fail_until_recovered`] and [`FakeKube::fail_next`].
    pub fn recover(&self) {
        let mut store = self.shared.lock();
        store.faults.failing = false;
        store.faults.fail_next = 0;
    }

    /// Answers the next watch request with a `410 Expired` `ERROR` event.
    pub fn gone_next_watch(&self) {
        self.shared.lock().faults.gone_watches += 1;
    }

    /// Drops every open watch connection (the client sees a body error and re-watches).
    pub fn reset_watches(&self) {
        self.shared.resets.send_modify(|count| *count += 1);
    }

    /// Sends every live watch event twice while `on`.
    pub fn duplicate_events(&self, on: bool) {
        self.shared.lock().faults.duplicate_events = on;
    }

    /// Removes an object without a `DELETED` event (a missed event). Returns whether it existed.
    pub fn delete_without_event(&self, namespace: &str, kind: Kind, name: &str) -> bool {
        let namespace = if kind.namespaced() { namespace } else { "" };
        self.shared
            .with(|store| store.remove(kind, namespace, name, false))
            .is_ok()
    }

    /// Forgets every retained event: a watch resuming from any earlier resourceVersion gets 410.
    pub fn compact(&self) {
        self.shared.lock().compact();
    }

    /// The current (last handed out) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }
}

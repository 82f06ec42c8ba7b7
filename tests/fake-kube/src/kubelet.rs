//! The opt-in process kubelet: runs each created Pod's first container as a local child process (env from
//! Secrets, volumes as host directories, stdout/stderr into the pod log, attach stdin into its stdin), reports
//! its state and exit the way the kubelet and the Job controller do, and stops it when the Pod is deleted.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::controller;
use crate::kind::Kind;
use crate::server::Shared;
use crate::store::{Event, Store, name_of, termination_grace, timestamp};
use crate::{JobCondition, PodPhase};

/// Longest log line kept whole; a longer one is cut into pieces of this size.
const MAX_LINE: usize = 1024 * 1024;

/// How long the log readers may still take after the container ended (only a process that left the
/// container's process group can hold its pipes open that long).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The address pods "get" (their processes run on this host).
const POD_IP: &str = "127.0.0.1";

/// How the fake kubelet runs containers as local processes (see [`crate::FakeKube::run_pods`]).
///
/// For each Pod created while it is on (by the API, by a Job, or seeded) and still `Pending`, the first
/// container runs as a child process:
///
/// - The program is `command[0]` looked up in [`Kubelet::programs`] (exactly, else by its file name), with
///   `command[1..]` and `args` as arguments; a container without a command runs its image's entrypoint: the
///   program registered under the image's name without tag or digest (e.g. `registry.example/agent`). An
///   unknown one fails to start (Waiting `RunContainerError`, pod `Failed`).
/// - Its environment is cleared, then gets `HOSTNAME`, the container's `envFrom` (`secretRef`) and `env`
///   (`value`, `valueFrom.secretKeyRef`, `valueFrom.fieldRef`), then [`Kubelet::extra_env`] (which wins).
///   `$(VAR)` references in env values, command and args are expanded as Kubernetes does. A missing Secret
///   or key (unless `optional`) leaves the pod `Pending` with Waiting `CreateContainerConfigError`; it is
///   retried whenever the store changes, so creating the Secret later starts the container.
/// - Every `volumeMounts[].mountPath` is the host directory `<root>/<namespace>/<pod>/<volume>[/<subPath>]`
///   (mode 0700, left in place afterwards); `secret` volumes are filled with the Secret's keys (a missing
///   Secret leaves the container Waiting `ContainerCreating`). Env values, `workingDir` and arguments
///   (whole, or the value of `--flag=value`) that are a mount path or lie under one become the host path
///   (longest mount path wins). The working directory defaults to `<root>/<namespace>/<pod>` and is created
///   if missing.
/// - The process runs in its own process group, with stdin, stdout and stderr piped. stdout and stderr lines
///   go to the pod log (merged, each timestamped when read; lines over 1 MiB are cut); bytes attach sessions
///   send on stdin are written to its stdin, in order, which stays open across sessions.
/// - Once it exited (the rest of its process group is then killed, as a container's are) and its output is
///   drained: the container is `Terminated` (`exitCode`, 128 + n for signal n; reason `Completed` or
///   `Error`), the pod `Succeeded` or `Failed`, and its Job, if not finished yet, `Complete` or `Failed`
///   (`BackoffLimitExceeded`: retries are not modelled).
/// - Deleting the Pod (or its Job with cascading) sends `SIGTERM` to the process group and `SIGKILL` after
///   the grace period (the delete's `gracePeriodSeconds`, else `spec.terminationGracePeriodSeconds`, else
///   30). A Pod held by finalizers still gets its final status; its log stays readable until it is gone.
/// - A Job's `spec.activeDeadlineSeconds` (from its `status.startTime`): when it passes before the Job
///   finished, the Job gets `Failed` (`DeadlineExceeded`) and its Pod is deleted with its grace period.
#[derive(Debug, Clone)]
pub struct Kubelet {
    /// Container `command[0]`, or an image name for containers without a command → the host program to run
    /// instead (e.g. `"agentfarm-runner"` → `/path/to/target/debug/agentfarm-runner`). A command not in the map: the container fails to start
    /// (Waiting reason `RunContainerError`, pod phase `Failed`, like a missing binary in an image).
    pub programs: Vec<(String, PathBuf)>,
    /// Where pod volumes are made on the host: `<root>/<namespace>/<pod>/<volume name>/`.
    pub root: PathBuf,
    /// Variables added to every container's environment (e.g. `PATH`, or test-only endpoints); they override
    /// the container's own.
    pub extra_env: Vec<(String, String)>,
}

/// The process groups of running containers, so they can all be killed when the fake goes away.
#[derive(Default)]
struct Groups(Mutex<HashSet<i32>>);

impl Groups {
    /// The live process group ids.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i32>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A container's process group, `SIGKILL`ed and forgotten when dropped (the container's end).
struct Group {
    /// Process group id (the container process's pid).
    pgid: i32,
    /// Where it is registered.
    groups: Arc<Groups>,
}

impl Group {
    /// Registers the group of `child` (`None` if it has no pid any more).
    fn of(child: &Child, groups: &Arc<Groups>) -> Option<Group> {
        let pgid = i32::try_from(child.id()?).ok()?;
        groups.lock().insert(pgid);
        Some(Group {
            pgid,
            groups: Arc::clone(groups),
        })
    }

    /// Sends `signal` to every process of the group.
    fn signal(&self, signal: Signal) {
        signal_group(self.pgid, signal);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
        self.groups.lock().remove(&self.pgid);
    }
}

/// Sends `signal` to process group `pgid` (a group already gone is fine).
fn signal_group(pgid: i32, signal: Signal) {
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(error) => tracing::debug!(pgid, %signal, %error, "fake kubelet: killpg failed"),
    }
}

/// The running kubelet of a [`crate::FakeKube`].
pub(crate) struct Runner {
    /// The configuration for pods created from now on.
    config: Arc<Mutex<Arc<Kubelet>>>,
    /// Live process groups.
    groups: Arc<Groups>,
}

impl Runner {
    /// Starts the kubelet on `runtime`: from now on every Pod event of the store reaches it.
    pub(crate) fn start(shared: &Arc<Shared>, runtime: &Handle, kubelet: Kubelet) -> Runner {
        let runner = Runner {
            config: Arc::new(Mutex::new(Arc::new(kubelet))),
            groups: Arc::default(),
        };
        let (sender, events) = mpsc::unbounded_channel();
        shared.lock().kubelet = Some(sender);
        runtime.spawn(dispatch(
            Arc::clone(shared),
            Arc::clone(&runner.config),
            Arc::clone(&runner.groups),
            events,
        ));
        runner
    }

    /// Replaces the configuration (for pods created from now on).
    pub(crate) fn configure(&self, kubelet: Kubelet) {
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(kubelet);
    }

    /// Kills every container's process group now (the kubelet's feed must already be cut).
    pub(crate) fn kill_all(&self) {
        for pgid in self.groups.lock().iter() {
            signal_group(*pgid, Signal::SIGKILL);
        }
    }
}

/// Starts a pod task for every Pod added and tells it when its Pod is being deleted. Ends (and with it,
/// killing their processes, every pod task) when the store drops its feed.
async fn dispatch(
    shared: Arc<Shared>,
    config: Arc<Mutex<Arc<Kubelet>>>,
    groups: Arc<Groups>,
    mut events: mpsc::UnboundedReceiver<Arc<Event>>,
) {
    // (namespace, name) → (uid, the pod task's stop channel carrying grace periods).
    let mut pods: HashMap<(String, String), (Value, mpsc::UnboundedSender<i64>)> = HashMap::new();
    while let Some(event) = events.recv().await {
        let key = name_of(&event.object);
        let uid = event
            .object
            .pointer("/metadata/uid")
            .cloned()
            .unwrap_or(Value::Null);
        if event.kind_of_change == "ADDED" {
            pods.retain(|_, (_, stop)| !stop.is_closed());
            if !matches!(crate::logs::phase(&event.object), "Pending") {
                continue;
            }
            let (stop, stopped) = mpsc::unbounded_channel();
            pods.insert(key.clone(), (uid.clone(), stop));
            let pod = PodRun {
                shared: Arc::clone(&shared),
                config: Arc::clone(&config.lock().unwrap_or_else(PoisonError::into_inner)),
                groups: Arc::clone(&groups),
                namespace: key.0,
                name: key.1,
                uid,
                pod: event.object.clone(),
            };
            tokio::spawn(pod.run(stopped));
            continue;
        }
        let gone = event.kind_of_change == "DELETED";
        if !gone && event.object.pointer("/metadata/deletionTimestamp").is_none() {
            continue;
        }
        let grace = event
            .object
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| termination_grace(&event.object));
        if let Some((known, stop)) = pods.get(&key)
            && *known == uid
        {
            // A finished pod task no longer listens: fine.
            let _ = stop.send(grace);
            if gone {
                pods.remove(&key);
            }
        }
    }
}

/// What a container is started with.
struct Launch {
    /// Environment, in order (later entries win).
    env: Vec<(String, String)>,
    /// Files of `secret` volumes: (volume name, path in the volume, content).
    files: Vec<(String, String, Vec<u8>)>,
}

/// Why a container cannot be started yet.
enum NotReady {
    /// Env refers to something missing: Waiting `CreateContainerConfigError`.
    Config(String),
    /// A volume's source is missing: Waiting `ContainerCreating`.
    Mount(String),
}

/// A started container.
struct Started {
    /// The process.
    child: Child,
    /// `startedAt`.
    started_at: String,
}

/// One Pod's container, from creation to its end.
struct PodRun {
    /// The server state.
    shared: Arc<Shared>,
    /// The kubelet configuration when the Pod was created.
    config: Arc<Kubelet>,
    /// Live process groups.
    groups: Arc<Groups>,
    /// Namespace.
    namespace: String,
    /// Pod name.
    name: String,
    /// Pod uid (a Pod recreated under the same name is another Pod).
    uid: Value,
    /// The Pod as created.
    pod: Value,
}

impl PodRun {
    /// Runs the container until it exits or the Pod is deleted (`stop` carries grace periods; it closing
    /// means the fake is going away).
    async fn run(self, mut stop: mpsc::UnboundedReceiver<i64>) {
        let mut deadline = self.job_deadline();
        let Some(launch) = self.wait_for_config(&mut stop, &mut deadline).await else {
            return;
        };
        if stop.try_recv().is_ok() || stop.is_closed() {
            return;
        }
        let mut started = match self.start(launch).await {
            Ok(started) => started,
            Err(message) => {
                self.update(|store, pod| {
                    controller::set_container_state(
                        store,
                        &self.namespace,
                        &self.name,
                        PodPhase::Failed,
                        &json!({"waiting": {"reason": "RunContainerError", "message": message}}),
                        &[],
                    )?;
                    controller::pod_ended(store, pod, &backoff_limit_exceeded())
                });
                return;
            }
        };
        let group = Group::of(&started.child, &self.groups);
        self.update(|store, pod| {
            controller::set_container_state(
                store,
                &self.namespace,
                &self.name,
                PodPhase::Running,
                &json!({"running": {"startedAt": started.started_at}}),
                &[
                    ("podIP", json!(POD_IP)),
                    ("podIPs", json!([{"ip": POD_IP}])),
                    ("hostIP", json!(POD_IP)),
                    ("hostIPs", json!([{"ip": POD_IP}])),
                ],
            )?;
            controller::pod_ready(store, pod, true)
        });
        let mut readers = Vec::new();
        if let Some(stdout) = started.child.stdout.take() {
            readers.push(tokio::spawn(self.read_log(stdout)));
        }
        if let Some(stderr) = started.child.stderr.take() {
            readers.push(tokio::spawn(self.read_log(stderr)));
        }
        let writer = started
            .child
            .stdin
            .take()
            .map(|stdin| tokio::spawn(self.write_stdin(stdin)));

        let status = self
            .supervise(&mut started.child, group.as_ref(), &mut stop, &mut deadline)
            .await;
        // The container's end: whatever else runs in it goes too, then its output is drained.
        drop(group);
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            for reader in &mut readers {
                let _ = reader.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(pod = self.name, "fake kubelet: output not drained in time");
            readers.iter().for_each(JoinHandle::abort);
        }
        if let Some(writer) = writer {
            writer.abort();
        }

        let exit_code = match status {
            Ok(status) => exit_code(status),
            Err(error) => {
                tracing::warn!(pod = self.name, %error, "fake kubelet: waiting for the container failed");
                128 + Signal::SIGKILL as i32
            }
        };
        let succeeded = exit_code == 0;
        let state = json!({"terminated": {
            "exitCode": exit_code,
            "reason": if succeeded { "Completed" } else { "Error" },
            "startedAt": started.started_at,
            "finishedAt": timestamp(),
        }});
        self.update(|store, pod| {
            let phase = if succeeded {
                PodPhase::Succeeded
            } else {
                PodPhase::Failed
            };
            controller::set_container_state(store, &self.namespace, &self.name, phase, &state, &[])?;
            let condition = if succeeded {
                JobCondition::Complete
            } else {
                backoff_limit_exceeded()
            };
            controller::pod_ended(store, pod, &condition)
        });
    }

    /// Resolves the container's env and secret volumes, waiting (and retrying on every change) while
    /// something is missing. `None` if the Pod was deleted meanwhile.
    async fn wait_for_config(
        &self,
        stop: &mut mpsc::UnboundedReceiver<i64>,
        deadline: &mut Option<Instant>,
    ) -> Option<Launch> {
        let mut tick = self.shared.tick.subscribe();
        let mut reported: Option<String> = None;
        loop {
            tick.borrow_and_update();
            let resolved = resolve(&self.shared.lock(), &self.pod);
            let (reason, message) = match resolved {
                Ok(launch) => return Some(launch),
                Err(NotReady::Config(message)) => ("CreateContainerConfigError", message),
                Err(NotReady::Mount(message)) => ("ContainerCreating", message),
            };
            if reported.as_deref() != Some(message.as_str()) {
                self.update(|store, _| {
                    controller::set_container_state(
                        store,
                        &self.namespace,
                        &self.name,
                        PodPhase::Pending,
                        &json!({"waiting": {"reason": reason, "message": message}}),
                        &[],
                    )
                    .map(drop)
                });
                reported = Some(message);
            }
            tokio::select! {
                changed = tick.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = stop.recv() => return None,
                () = sleep_until(*deadline), if deadline.is_some() => {
                    *deadline = None;
                    self.deadline_exceeded();
                }
            }
        }
    }

    /// Makes the volume directories and starts the process.
    async fn start(&self, launch: Launch) -> Result<Started, String> {
        let container = self
            .pod
            .pointer("/spec/containers/0")
            .ok_or("fake kubelet: the pod has no containers")?;
        let pod_dir = self.config.root.join(&self.namespace).join(&self.name);
        make_dir(&pod_dir).await?;
        let mounts = mounts(container, &pod_dir);
        for (_, host) in &mounts {
            make_dir(host).await?;
        }
        for (volume, path, content) in &launch.files {
            let file = pod_dir.join(volume).join(path);
            if let Some(parent) = file.parent() {
                make_dir(parent).await?;
            }
            tokio::fs::write(&file, content)
                .await
                .map_err(|error| format!("fake kubelet: writing {}: {error}", file.display()))?;
        }
        let strings = |key: &str| -> Vec<String> {
            container
                .get(key)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|item| expand(item.as_str().unwrap_or_default(), &launch.env))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut command = strings("command");
        if command.is_empty() {
            // The image's entrypoint: the program registered under the image's name (without tag or digest).
            let image = container.get("image").and_then(Value::as_str).unwrap_or_default();
            command.push(image_repository(image).to_owned());
        }
        command.extend(strings("args"));
        let Some(first) = command.first().filter(|first| !first.is_empty()) else {
            return Err("fake kubelet: the container has neither a command nor an image".to_owned());
        };
        let program = self.program(first).ok_or_else(|| {
            format!(
                "failed to create containerd task: failed to create shim task: OCI runtime create failed: \
                 runc create failed: unable to start container process: exec: \"{first}\": executable file \
                 not found in $PATH: unknown"
            )
        })?;
        let working_dir = container
            .get("workingDir")
            .and_then(Value::as_str)
            .filter(|dir| !dir.is_empty())
            .map_or_else(|| pod_dir.clone(), |dir| PathBuf::from(translate(dir, &mounts)));
        // As runc does: a missing working directory is created.
        make_dir(&working_dir).await?;
        let mut process = Command::new(program);
        process
            .args(command.iter().skip(1).map(|arg| translate_arg(arg, &mounts)))
            .env_clear()
            .envs(
                launch
                    .env
                    .iter()
                    .map(|(name, value)| (name, translate(value, &mounts))),
            )
            .envs(self.config.extra_env.iter().cloned())
            .current_dir(&working_dir)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = process.spawn().map_err(|error| {
            format!(
                "failed to create containerd task: failed to create shim task: OCI runtime create failed: \
                 exec {first:?} (as {program:?}, in {working_dir:?}): {error}: unknown"
            )
        })?;
        Ok(Started {
            child,
            started_at: timestamp(),
        })
    }

    /// The host program for `command[0]` (or the image name): by the exact name, else by file name.
    fn program(&self, command: &str) -> Option<&Path> {
        let programs = &self.config.programs;
        let file_name = Path::new(command).file_name().and_then(|name| name.to_str());
        programs
            .iter()
            .find(|(name, _)| name == command)
            .or_else(|| programs.iter().find(|(name, _)| Some(name.as_str()) == file_name))
            .map(|(_, path)| path.as_path())
    }

    /// Waits for the process to exit, passing on deletions (`SIGTERM`, `SIGKILL` after the grace period) and
    /// the Job's deadline.
    async fn supervise(
        &self,
        child: &mut Child,
        group: Option<&Group>,
        stop: &mut mpsc::UnboundedReceiver<i64>,
        deadline: &mut Option<Instant>,
    ) -> std::io::Result<ExitStatus> {
        let signal = |signal: Signal| match group {
            Some(group) => group.signal(signal),
            None => tracing::debug!(pod = self.name, "fake kubelet: no process group to signal"),
        };
        let mut kill_at: Option<Instant> = None;
        let mut listening = true;
        loop {
            tokio::select! {
                status = child.wait() => return status,
                grace = stop.recv(), if listening => match grace {
                    Some(grace) => {
                        if kill_at.is_none() {
                            signal(Signal::SIGTERM);
                        }
                        let at = Instant::now() + Duration::from_secs(u64::try_from(grace).unwrap_or(0));
                        kill_at = Some(kill_at.map_or(at, |earlier| earlier.min(at)));
                    }
                    None => {
                        // The fake is going away.
                        listening = false;
                        signal(Signal::SIGKILL);
                    }
                },
                () = sleep_until(kill_at), if kill_at.is_some() => {
                    kill_at = None;
                    signal(Signal::SIGKILL);
                }
                () = sleep_until(*deadline), if deadline.is_some() => {
                    *deadline = None;
                    self.deadline_exceeded();
                }
            }
        }
    }

    /// Appends the lines of `output` to the pod log while the Pod exists.
    fn read_log<R>(&self, output: R) -> impl Future<Output = ()> + use<R>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let (namespace, name, uid) = (self.namespace.clone(), self.name.clone(), self.uid.clone());
        async move {
            let append = |line: &[u8]| {
                let text = String::from_utf8_lossy(line).into_owned();
                shared.with(|store| {
                    if is_pod(store, &namespace, &name, &uid) {
                        store.append_log(&namespace, &name, text);
                    }
                });
            };
            let mut reader = BufReader::new(output);
            let mut line: Vec<u8> = Vec::new();
            loop {
                let available = match reader.fill_buf().await {
                    Ok(available) => available,
                    Err(error) => {
                        tracing::debug!(pod = name, %error, "fake kubelet: reading output failed");
                        break;
                    }
                };
                if available.is_empty() {
                    break;
                }
                let window = &available[..available.len().min(MAX_LINE - line.len())];
                let (taken, complete) = match window.iter().position(|byte| *byte == b'\n') {
                    Some(end) => {
                        line.extend_from_slice(&window[..end]);
                        (end + 1, true)
                    }
                    None => {
                        line.extend_from_slice(window);
                        (window.len(), line.len() >= MAX_LINE)
                    }
                };
                reader.consume(taken);
                if complete {
                    append(&line);
                    line.clear();
                }
            }
            if !line.is_empty() {
                append(&line);
            }
        }
    }

    /// Writes what attach sessions deliver on stdin (from now on) to the process.
    fn write_stdin(&self, mut stdin: ChildStdin) -> impl Future<Output = ()> + use<> {
        let shared = Arc::clone(&self.shared);
        let key = (self.namespace.clone(), self.name.clone());
        async move {
            let mut tick = shared.tick.subscribe();
            let mut offset = shared.lock().stdin.get(&key).map_or(0, Vec::len);
            loop {
                tick.borrow_and_update();
                let chunk = shared
                    .lock()
                    .stdin
                    .get(&key)
                    .and_then(|bytes| bytes.get(offset..))
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                if chunk.is_empty() {
                    if tick.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                offset += chunk.len();
                if stdin.write_all(&chunk).await.is_err() || stdin.flush().await.is_err() {
                    return;
                }
            }
        }
    }

    /// When the Job's deadline passes, the Job controller fails the Job and deletes its Pod.
    fn deadline_exceeded(&self) {
        self.shared.with(|store| {
            let Some(job) = controller::controlling_job(store, &self.pod) else {
                return;
            };
            if controller::job_finished(job) {
                return;
            }
            let (namespace, job) = name_of(job);
            let condition = JobCondition::Failed {
                reason: "DeadlineExceeded".to_owned(),
                message: "Job was active longer than specified deadline".to_owned(),
            };
            if let Err(error) = controller::set_job_condition(store, &namespace, &job, &condition) {
                tracing::debug!(job, error = error.message, "fake kubelet: failing the job");
            }
            let deleting = store
                .get(Kind::Pod, &self.namespace, &self.name)
                .is_ok_and(|pod| pod.pointer("/metadata/deletionTimestamp").is_some());
            if is_pod(store, &self.namespace, &self.name, &self.uid)
                && !deleting
                && let Err(error) = store.delete(Kind::Pod, &self.namespace, &self.name, false, None)
            {
                tracing::debug!(
                    pod = self.name,
                    error = error.message,
                    "fake kubelet: deleting the pod"
                );
            }
        });
    }

    /// When the Job's `activeDeadlineSeconds` passes (counted from its `status.startTime`).
    fn job_deadline(&self) -> Option<Instant> {
        let store = self.shared.lock();
        let job = controller::controlling_job(&store, &self.pod)?;
        let seconds = job
            .pointer("/spec/activeDeadlineSeconds")
            .and_then(Value::as_i64)?;
        let limit = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
        let elapsed = job
            .pointer("/status/startTime")
            .and_then(Value::as_str)
            .and_then(|time| chrono::DateTime::parse_from_rfc3339(time).ok())
            .and_then(|start| (crate::store::now() - start.to_utc()).to_std().ok())
            .unwrap_or_default();
        Some(Instant::now() + limit.saturating_sub(elapsed))
    }

    /// Runs `change` on the store with the current Pod, if it still exists.
    fn update(&self, change: impl FnOnce(&mut Store, &Value) -> Result<(), crate::status::ApiError>) {
        self.shared.with(|store| {
            let Ok(pod) = store.get(Kind::Pod, &self.namespace, &self.name) else {
                return;
            };
            if pod.pointer("/metadata/uid") != Some(&self.uid) {
                return;
            }
            let pod = pod.clone();
            if let Err(error) = change(store, &pod) {
                tracing::debug!(
                    pod = self.name,
                    error = error.message,
                    "fake kubelet: status update failed"
                );
            }
        });
    }
}

/// Whether the Pod `namespace/name` exists and has `uid`.
fn is_pod(store: &Store, namespace: &str, name: &str, uid: &Value) -> bool {
    store
        .get(Kind::Pod, namespace, name)
        .is_ok_and(|pod| pod.pointer("/metadata/uid") == Some(uid))
}

/// The Job condition of a failed pod (retries are not modelled).
fn backoff_limit_exceeded() -> JobCondition {
    JobCondition::Failed {
        reason: "BackoffLimitExceeded".to_owned(),
        message: "Job has reached the specified backoff limit".to_owned(),
    }
}

/// The exit code as Kubernetes reports it: 128 + n for signal n.
fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(128)
}

/// Sleeps until `at` (forever for `None`).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Creates a directory (and its parents) with mode 0700.
async fn make_dir(path: &Path) -> Result<(), String> {
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .await
        .map_err(|error| format!("fake kubelet: creating {}: {error}", path.display()))
}

/// The container's mounts: (mount path without trailing `/`, host directory), longest mount path first.
fn mounts(container: &Value, pod_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut mounts: Vec<(String, PathBuf)> = container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .map(|mounts| {
            mounts
                .iter()
                .filter_map(|mount| {
                    let path = mount.get("mountPath").and_then(Value::as_str)?;
                    let volume = mount.get("name").and_then(Value::as_str)?;
                    let mut host = pod_dir.join(volume);
                    if let Some(sub) = mount
                        .get("subPath")
                        .and_then(Value::as_str)
                        .filter(|sub| !sub.is_empty())
                    {
                        host.push(sub.trim_start_matches('/'));
                    }
                    let path = path.trim_end_matches('/');
                    Some((if path.is_empty() { "/" } else { path }.to_owned(), host))
                })
                .collect()
        })
        .unwrap_or_default();
    mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    mounts
}

/// `value` with a leading mount path replaced by its host directory (if it is one or lies under one).
fn translate(value: &str, mounts: &[(String, PathBuf)]) -> String {
    for (path, host) in mounts {
        let rest = if path == "/" {
            value.strip_prefix('/')
        } else {
            value.strip_prefix(path.as_str()).and_then(|rest| {
                if rest.is_empty() {
                    Some(rest)
                } else {
                    rest.strip_prefix('/')
                }
            })
        };
        if let Some(rest) = rest {
            return if rest.is_empty() {
                host.display().to_string()
            } else {
                host.join(rest).display().to_string()
            };
        }
    }
    value.to_owned()
}

/// An argument translated as a whole, or as the value of `--flag=value`.
fn translate_arg(arg: &str, mounts: &[(String, PathBuf)]) -> String {
    if let Some((flag, value)) = arg.split_once('=')
        && flag.starts_with('-')
    {
        return format!("{flag}={}", translate(value, mounts));
    }
    translate(arg, mounts)
}

/// Expands `$(VAR)` references to variables defined in `env` (unknown ones stay as written; `$$` is `$`).
fn expand(input: &str, env: &[(String, String)]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match lookup(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The container's env and the files of its `secret` volumes, or what is missing.
fn resolve(store: &Store, pod: &Value) -> Result<Launch, NotReady> {
    let (namespace, name) = name_of(pod);
    let container = pod.pointer("/spec/containers/0").unwrap_or(&Value::Null);
    let mut env: Vec<(String, String)> = vec![("HOSTNAME".to_owned(), name)];
    for source in container
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let prefix = source.get("prefix").and_then(Value::as_str).unwrap_or_default();
        if let Some(reference) = source.get("secretRef") {
            let secret_name = reference.get("name").and_then(Value::as_str).unwrap_or_default();
            match store.get(Kind::Secret, &namespace, secret_name) {
                Ok(secret) => env.extend(
                    secret_data(secret)
                        .into_iter()
                        .map(|(key, value)| (format!("{prefix}{key}"), lossy(value))),
                ),
                Err(_) if optional(reference) => {}
                Err(_) => return Err(NotReady::Config(format!("secret \"{secret_name}\" not found"))),
            }
        } else if let Some(reference) = source.get("configMapRef")
            && !optional(reference)
        {
            let map = reference.get("name").and_then(Value::as_str).unwrap_or_default();
            return Err(NotReady::Config(format!("configmap \"{map}\" not found")));
        }
    }
    for variable in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(key) = variable.get("name").and_then(Value::as_str) else {
            continue;
        };
        let value = if let Some(value) = variable.get("value").and_then(Value::as_str) {
            Some(expand(value, &env))
        } else if let Some(from) = variable.get("valueFrom") {
            value_from(store, pod, &namespace, from)?
        } else {
            Some(String::new())
        };
        if let Some(value) = value {
            env.push((key.to_owned(), value));
        }
    }
    let mut files = Vec::new();
    for volume in pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(volume_name), Some(source)) =
            (volume.get("name").and_then(Value::as_str), volume.get("secret"))
        else {
            continue;
        };
        let secret_name = source
            .get("secretName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Ok(secret) = store.get(Kind::Secret, &namespace, secret_name) else {
            if optional(source) {
                continue;
            }
            return Err(NotReady::Mount(format!(
                "MountVolume.SetUp failed for volume \"{volume_name}\" : secret \"{secret_name}\" not found"
            )));
        };
        let data = secret_data(secret);
        match source.get("items").and_then(Value::as_array) {
            Some(items) => {
                for item in items {
                    let key = item.get("key").and_then(Value::as_str).unwrap_or_default();
                    let path = item.get("path").and_then(Value::as_str).unwrap_or(key);
                    let Some((_, content)) = data.iter().find(|(name, _)| name == key) else {
                        return Err(NotReady::Mount(format!(
                            "MountVolume.SetUp failed for volume \"{volume_name}\" : references non-existent \
                             secret key: {key}"
                        )));
                    };
                    files.push((volume_name.to_owned(), path.to_owned(), content.clone()));
                }
            }
            None => files.extend(
                data.into_iter()
                    .map(|(key, content)| (volume_name.to_owned(), key, content)),
            ),
        }
    }
    Ok(Launch { env, files })
}

/// An env `valueFrom`: `Some(value)`, `None` for an optional reference to something missing.
fn value_from(store: &Store, pod: &Value, namespace: &str, from: &Value) -> Result<Option<String>, NotReady> {
    if let Some(reference) = from.get("secretKeyRef") {
        let secret_name = reference.get("name").and_then(Value::as_str).unwrap_or_default();
        let key = reference.get("key").and_then(Value::as_str).unwrap_or_default();
        let Ok(secret) = store.get(Kind::Secret, namespace, secret_name) else {
            if optional(reference) {
                return Ok(None);
            }
            return Err(NotReady::Config(format!("secret \"{secret_name}\" not found")));
        };
        return match secret_data(secret).into_iter().find(|(name, _)| name == key) {
            Some((_, value)) => Ok(Some(lossy(value))),
            None if optional(reference) => Ok(None),
            None => Err(NotReady::Config(format!(
                "couldn't find key {key} in Secret {namespace}/{secret_name}"
            ))),
        };
    }
    if let Some(reference) = from.get("configMapKeyRef") {
        if optional(reference) {
            return Ok(None);
        }
        let map = reference.get("name").and_then(Value::as_str).unwrap_or_default();
        return Err(NotReady::Config(format!("configmap \"{map}\" not found")));
    }
    if let Some(path) = from.pointer("/fieldRef/fieldPath").and_then(Value::as_str) {
        return Ok(Some(field(pod, path)));
    }
    Ok(Some(String::new()))
}

/// A `fieldRef` value.
fn field(pod: &Value, path: &str) -> String {
    let text = |pointer: &str| {
        pod.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let entry = |map: &str, rest: &str| {
        let key = rest
            .trim_start_matches("['")
            .trim_end_matches("']")
            .replace('~', "~0")
            .replace('/', "~1");
        text(&format!("/metadata/{map}/{key}"))
    };
    match path {
        "metadata.name" => text("/metadata/name"),
        "metadata.namespace" => text("/metadata/namespace"),
        "metadata.uid" => text("/metadata/uid"),
        "spec.nodeName" => text("/spec/nodeName"),
        "spec.serviceAccountName" => text("/spec/serviceAccountName"),
        "status.podIP" | "status.hostIP" => POD_IP.to_owned(),
        _ => match (
            path.strip_prefix("metadata.labels"),
            path.strip_prefix("metadata.annotations"),
        ) {
            (Some(rest), _) => entry("labels", rest),
            (_, Some(rest)) => entry("annotations", rest),
            _ => String::new(),
        },
    }
}

/// Whether a reference is `optional: true`.
fn optional(reference: &Value) -> bool {
    reference.get("optional").and_then(Value::as_bool) == Some(true)
}

/// A Secret's keys and values: `data` (base64, decoded) and `stringData` (as stored).
fn secret_data(secret: &Value) -> Vec<(String, Vec<u8>)> {
    let mut data: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(map) = secret.get("data").and_then(Value::as_object) {
        for (key, value) in map {
            let text = value.as_str().unwrap_or_default();
            let bytes = STANDARD.decode(text).unwrap_or_else(|_| text.as_bytes().to_vec());
            data.push((key.clone(), bytes));
        }
    }
    if let Some(map) = secret.get("stringData").and_then(Value::as_object) {
        for (key, value) in map {
            let bytes = value.as_str().unwrap_or_default().as_bytes().to_vec();
            data.retain(|(existing, _)| existing != key);
            data.push((key.clone(), bytes));
        }
    }
    data
}

/// Bytes as text (invalid UTF-8 replaced).
fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// `registry.example:5000/agent:1.2@sha256:…` → `registry.example:5000/agent`.
fn image_repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or_default();
    match image.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_references_like_kubernetes() {
        let env = vec![("A".to_owned(), "x".to_owned())];
        assert_eq!(expand("$(A)/$(B)/$$(A)/$$/$", &env), "x/$(B)/$(A)/$/$");
    }

    #[test]
    fn translates_paths_under_the_longest_mount() {
        let mounts = mounts(
            &json!({"volumeMounts": [
                {"name": "work", "mountPath": "/work"},
                {"name": "cache", "mountPath": "/work/.cache/", "subPath": "c"},
            ]}),
            Path::new("/r/ns/p"),
        );
        assert_eq!(translate("/work", &mounts), "/r/ns/p/work");
        assert_eq!(translate("/work/a/b", &mounts), "/r/ns/p/work/a/b");
        assert_eq!(translate("/work/.cache/x", &mounts), "/r/ns/p/cache/c/x");
        assert_eq!(translate("/workshop", &mounts), "/workshop");
        assert_eq!(translate_arg("--dir=/work/x", &mounts), "--dir=/r/ns/p/work/x");
    }
}

//! One run's tracker: a task that owns what is known of the run's Job and pod, follows the pod's log, takes
//! follow-ups and stops, and reports the run's [`RunEvent`]s in order — ending with exactly one `Exited`.

use std::sync::Arc;
use std::time::Duration;

use agentfarm_shared::claude::{ClaudeEvent, interrupt_line, user_message_line};
use agentfarm_shared::log::LogStream;
use agentfarm_shared::turns::{Activity, TurnTracker};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{AttachParams, DeleteParams, PropagationPolicy};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::Inbox;
use super::job::CONTAINER;
use super::launch::Agent;
use super::limit::CreateLimiter;
use super::logs::{self, Position};
use super::status::{Known, Phase, phase};
use crate::runtime::{ExitOutcome, RunEvent, RuntimeError};

/// Longest an attach session may take to deliver one message.
const ATTACH_PATIENCE: Duration = Duration::from_secs(10);

/// Everything a tracker starts with.
pub struct Tracker {
    /// The run.
    pub run_id: String,
    /// Jobs in the agents namespace.
    pub jobs: Api<Job>,
    /// Pods in the agents namespace.
    pub pods: Api<Pod>,
    /// The agents namespace's Secrets (a run's capability).
    pub secrets: Api<Secret>,
    /// Where the run's events go.
    pub events: mpsc::Sender<RunEvent>,
    /// Its own inbox, and a sender for the log follower.
    pub inbox: (mpsc::UnboundedSender<Inbox>, mpsc::UnboundedReceiver<Inbox>),
    /// Where the log reading resumes.
    pub position: Position,
    /// The agent to create should the first listing show neither Job nor pod (a run that was `starting`).
    pub create: Option<Agent>,
    /// The runtime's limit on Job creates, which that create waits for too.
    pub creates: Arc<CreateLimiter>,
    /// True when the Job was just created: its absence in a listing is not yet news.
    pub expect_job: bool,
    /// Grace period of a stop.
    pub stop_grace: Duration,
    /// Whether an idle agent waits for follow-ups (a non-zero idle timeout); if not, it ends at once.
    pub follow_ups: bool,
}

/// The tracker's running state.
struct State {
    job: Known<Job>,
    pod: Known<Pod>,
    /// The pod whose log is followed.
    following: Option<String>,
    log_done: bool,
    working: bool,
    waiting_for_input: bool,
    note: Option<String>,
    turns: TurnTracker,
    stopping: bool,
}

impl Tracker {
    /// Tracks the run until its agent has ended and everything it wrote is reported.
    pub async fn run(mut self) {
        let mut state = State {
            job: Known::Unknown,
            pod: Known::Unknown,
            following: None,
            log_done: false,
            working: false,
            waiting_for_input: false,
            note: None,
            turns: TurnTracker::default(),
            stopping: false,
        };
        while let Some(message) = self.inbox.1.recv().await {
            match message {
                Inbox::Job(job) => {
                    if job.is_some() {
                        self.expect_job = false;
                    }
                    state.job = job.map_or(Known::Absent, |job| Known::Present(*job));
                }
                Inbox::Pod(pod) => state.pod = pod.map_or(Known::Absent, |pod| Known::Present(*pod)),
                Inbox::PodDeleted(name) => {
                    if state.pod.present().and_then(|pod| pod.metadata.name.as_deref()) == Some(name.as_str())
                    {
                        state.pod = Known::Absent;
                    }
                }
                Inbox::Line { at, text, cursor } => self.line(&mut state, at, text, cursor).await,
                Inbox::LogDone => state.log_done = true,
                Inbox::Input(text, reply) => {
                    let result = self.input(&mut state, &text).await;
                    let _ = reply.send(result);
                }
                Inbox::Stop(reply) => {
                    let _ = reply.send(self.stop(&mut state).await);
                }
            }
            if let Some(outcome) = self.advance(&mut state).await {
                let _ = self.events.send(RunEvent::Exited(outcome)).await;
                return;
            }
        }
    }

    async fn emit(&self, event: RunEvent) {
        // The service stopped listening (shutting down): keep tracking anyway.
        let _ = self.events.send(event).await;
    }

    /// Acts on what is now known; returns the outcome once the run is over.
    async fn advance(&mut self, state: &mut State) -> Option<ExitOutcome> {
        match phase(&state.job, &state.pod) {
            Phase::Unknown => None,
            Phase::Waiting(note) => {
                if note.is_some() && note != state.note {
                    state.note.clone_from(&note);
                    self.emit(RunEvent::Pending(note.unwrap_or_default())).await;
                }
                None
            }
            Phase::Unstartable(why) => {
                // It would wait until the deadline for nothing: end it now.
                self.delete(Duration::ZERO).await;
                Some(ExitOutcome {
                    error: Some(format!("the agent could not start: {why}")),
                    ..ExitOutcome::default()
                })
            }
            Phase::Running => {
                self.follow(state);
                if !state.working {
                    state.working = true;
                    self.emit(RunEvent::Working).await;
                }
                None
            }
            Phase::Ended { outcome, has_log } => {
                if has_log {
                    self.follow(state);
                    // Everything it wrote comes first.
                    state.log_done.then_some(outcome)
                } else {
                    Some(outcome)
                }
            }
            Phase::Vanished if self.expect_job => None,
            Phase::Vanished => match self.create.take() {
                Some(agent) => {
                    // The server stopped between storing `starting` and creating the Job: create it now.
                    self.creates.acquire().await;
                    match agent.create(&self.jobs, &self.secrets).await {
                        Ok(()) => {
                            self.expect_job = true;
                            None
                        }
                        Err(err) => Some(ExitOutcome {
                            error: Some(format!("cannot create the agent's Job: {err}")),
                            ..ExitOutcome::default()
                        }),
                    }
                }
                None => Some(ExitOutcome {
                    error: Some(
                        "the agent's Job and pod were deleted outside agentfarm; how it ended is unknown"
                            .into(),
                    ),
                    vanished: true,
                    ..ExitOutcome::default()
                }),
            },
        }
    }

    /// Starts following the current pod's log, once.
    fn follow(&self, state: &mut State) {
        let Some(name) = state.pod.present().and_then(|pod| pod.metadata.name.clone()) else {
            return;
        };
        if state.following.as_deref() == Some(name.as_str()) {
            return;
        }
        state.following = Some(name.clone());
        state.log_done = false;
        tokio::spawn(
            logs::follow(
                self.pods.clone(),
                name,
                self.position.clone(),
                self.inbox.0.clone(),
            )
            .in_current_span(),
        );
    }

    async fn line(&mut self, state: &mut State, at: DateTime<Utc>, text: String, cursor: Option<String>) {
        // The runner prints JSON objects on stdout and plain diagnostics on stderr; the pod log merges them.
        let stream = if text.starts_with('{') {
            LogStream::Stdout
        } else {
            LogStream::Stderr
        };
        let activity = match ClaudeEvent::parse(&text) {
            Some(event) if stream == LogStream::Stdout => state.turns.observe(&event),
            _ => None,
        };
        self.emit(RunEvent::Line {
            ts: at,
            stream,
            text,
            cursor,
        })
        .await;
        if activity == Some(Activity::Idle) && self.follow_ups && !state.stopping && !state.waiting_for_input
        {
            state.waiting_for_input = true;
            self.emit(RunEvent::WaitingForInput).await;
        }
    }

    async fn input(&mut self, state: &mut State, text: &str) -> Result<(), RuntimeError> {
        let run_id = self.run_id.clone();
        if state.stopping || !matches!(phase(&state.job, &state.pod), Phase::Running) {
            return Err(RuntimeError::NotAccepting(run_id));
        }
        let uuid = uuid::Uuid::new_v4().to_string();
        self.attach_write(state, &user_message_line(text, &uuid)).await?;
        state.turns.sent(&uuid);
        if state.waiting_for_input {
            state.waiting_for_input = false;
            self.emit(RunEvent::Working).await;
        }
        Ok(())
    }

    /// Interrupts the agent (best effort), then deletes its Job and pod with the grace period: the pod's
    /// finalizer keeps it, and its log, until the end is stored.
    async fn stop(&mut self, state: &mut State) -> Result<(), RuntimeError> {
        if state.stopping {
            return Ok(());
        }
        state.stopping = true;
        if matches!(phase(&state.job, &state.pod), Phase::Running) {
            let line = interrupt_line(&format!("stop-{}", self.run_id));
            if let Err(err) = self.attach_write(state, &line).await {
                tracing::info!(run_id = self.run_id, %err, "could not interrupt the agent; deleting it anyway");
            }
        }
        self.delete(self.stop_grace).await;
        Ok(())
    }

    /// Deletes the Job and its pod, giving the agent `grace` to finish (it pushes its work on SIGTERM).
    async fn delete(&self, grace: Duration) {
        let grace = u32::try_from(grace.as_secs()).unwrap_or(u32::MAX);
        let params = DeleteParams {
            grace_period_seconds: Some(grace),
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        let job = super::job::job_name(&self.run_id);
        if let Err(err) = self.jobs.delete(&job, &params).await
            && !is_not_found(&err)
        {
            tracing::warn!(run_id = self.run_id, %err, "cannot delete the agent's Job");
        }
        // The pod goes with the Job, but with the Job's default grace: delete it with ours.
        let pods = self
            .pods
            .list(&kube::api::ListParams::default().labels(&format!(
                "{}={}",
                super::job::RUN_LABEL,
                self.run_id
            )))
            .await;
        for pod in pods.map(|list| list.items).unwrap_or_default() {
            if let Some(name) = pod.metadata.name
                && let Err(err) = self.pods.delete(&name, &params).await
                && !is_not_found(&err)
            {
                tracing::warn!(run_id = self.run_id, %err, "cannot delete the agent's pod");
            }
        }
    }

    /// Writes one line to the agent's stdin through `pods/attach`.
    async fn attach_write(&self, state: &State, line: &str) -> Result<(), RuntimeError> {
        let not_accepting = |why: String| {
            tracing::warn!(run_id = self.run_id, why, "cannot reach the agent's stdin");
            RuntimeError::NotAccepting(self.run_id.clone())
        };
        let Some(pod) = state.pod.present().and_then(|pod| pod.metadata.name.clone()) else {
            return Err(RuntimeError::NotAccepting(self.run_id.clone()));
        };
        let params = AttachParams::default()
            .container(CONTAINER)
            .stdin(true)
            .stdout(false)
            .stderr(false);
        let mut attached = self
            .pods
            .attach(&pod, &params)
            .await
            .map_err(|err| not_accepting(err.to_string()))?;
        // Held here: kube fails the session if nobody is there to take the closing status.
        let status = attached.take_status();
        let mut stdin = attached
            .stdin()
            .ok_or_else(|| not_accepting("no stdin stream".into()))?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|err| not_accepting(err.to_string()))?;
        // Closing our end of stdin ends the session (the container's stdin stays open); joining waits until
        // the bytes are sent.
        stdin
            .shutdown()
            .await
            .map_err(|err| not_accepting(err.to_string()))?;
        drop(stdin);
        match tokio::time::timeout(ATTACH_PATIENCE, attached.join()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(not_accepting(err.to_string())),
            Err(_) => return Err(not_accepting("the attach session did not finish".into())),
        }
        match status {
            Some(status) => match status.await {
                Some(status) if status.status.as_deref() == Some("Failure") => {
                    Err(not_accepting(status.message.unwrap_or_default()))
                }
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }
}

/// Whether a kube error is a 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

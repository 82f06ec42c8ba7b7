//! The runtime seam: where agents actually run. The service asks a [`Runtime`] to launch, stop, talk to and
//! remove agents; each launched agent reports back through its own ordered stream of [`RunEvent`]s (state
//! changes, output lines, exit), which the service validates, stores and publishes.
//!
//! - [`local::LocalRuntime`] runs each agent as a child process (the embedded default, not isolated), or in a
//!   gVisor sandbox of its own on this machine (`--sandbox gvisor`).
//! - [`kube::KubeRuntime`] runs each agent as a Kubernetes Job in a sandboxed RuntimeClass.

pub mod kube;
mod lines;
pub mod local;

use std::sync::Arc;

use agentfarm_shared::api::RuntimeInfo;
use agentfarm_shared::config::ConfigSpec;
use agentfarm_shared::log::LogStream;
use agentfarm_shared::runner::RunnerSpec;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use crate::capability::Capability;

/// Everything a runtime needs to start one run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The run's id (an RFC 1123 label).
    pub run_id: String,
    /// The config it launches.
    pub config_id: String,
    /// The config version it launches.
    pub config_version: u32,
    /// That version's content.
    pub config: ConfigSpec,
    /// The task prompt for this run.
    pub prompt: String,
    /// The Claude Code session id to use (a UUID).
    pub session_id: String,
    /// The git branch the agent works on.
    pub branch: String,
    /// The run's capability: the one credential its agent gets.
    pub capability: Capability,
}

/// Deployment facts every runner spec carries, and where agents reach the model and git.
#[derive(Debug, Clone)]
pub struct RunnerSite {
    /// The Claude Code program the runner starts.
    pub claude_command: String,
    /// Base URL of git remotes: the control plane's git proxy (GitHub itself in the direct mode).
    pub git_url: String,
    /// Where agents reach the control plane.
    pub control_url: String,
    /// What agents get as `ANTHROPIC_BASE_URL`: the control plane's model proxy (the API itself in the direct
    /// mode).
    pub model_url: String,
    /// The debugging mode: agents get the owner's tokens themselves (`--direct-credentials`).
    pub direct: bool,
}

impl RunnerSite {
    /// The runner's spec for `spec`. `idle_timeout`: when the runner itself should end a conversation nobody
    /// follows up on (for agents whose stdin never closes).
    pub fn spec(&self, spec: &RunSpec, idle_timeout: Option<std::time::Duration>) -> RunnerSpec {
        RunnerSpec {
            run_id: spec.run_id.clone(),
            title: spec.config.name.clone(),
            session_id: spec.session_id.clone(),
            prompt: spec.prompt.clone(),
            system_prompt: spec.config.system_prompt.clone(),
            model: spec.config.model.clone(),
            max_turns: spec.config.max_turns,
            budget_usd: spec.config.budget_usd,
            repos: spec.config.repos.clone(),
            branch: spec.branch.clone(),
            git_url: self.git_url.clone(),
            control_url: self.control_url.clone(),
            claude_command: self.claude_command.clone(),
            idle_timeout_secs: idle_timeout.map(|timeout| timeout.as_secs()),
        }
    }
}

/// How an agent ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitOutcome {
    /// Its exit code, when it exited normally.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// True when the runtime ended it for running past the config's timeout.
    pub timed_out: bool,
    /// Why it failed, when the runtime knows better than the exit code (it could not be started, it ran
    /// out of memory, it was evicted).
    pub error: Option<String>,
    /// True when the agent disappeared without a trace of how it ended (its Job and pod were deleted
    /// behind the server's back): the run is `lost`, with `error` as the reason.
    pub vanished: bool,
}

/// What a running agent reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// The agent is working (started, or took a follow-up).
    Working,
    /// The agent finished a turn and waits for a follow-up.
    WaitingForInput,
    /// The agent has not started yet, and this is why (e.g. waiting for a node, pulling the image).
    Pending(String),
    /// A line of output.
    Line {
        /// When it was read.
        ts: DateTime<Utc>,
        /// Where it came from.
        stream: LogStream,
        /// The line, without its newline.
        text: String,
        /// Where reading would resume after this line, stored with it: after a restart the runtime picks
        /// up from there without repeating a line ([`Adoptee::cursor`]). `None`: the runtime cannot resume.
        cursor: Option<String>,
    },
    /// The agent ended; nothing follows.
    Exited(ExitOutcome),
}

/// A launched agent's events. The runtime closes it after [`RunEvent::Exited`].
pub type RunEvents = mpsc::Receiver<RunEvent>;

/// What a runtime can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime has no agent for this run.
    #[error("no agent is running for run {0}")]
    NotRunning(String),
    /// The agent cannot take input now (it is finishing or stopping).
    #[error("the agent of run {0} is not taking input")]
    NotAccepting(String),
    /// The runtime could not do what was asked.
    #[error("{0}")]
    Failed(String),
}

/// A run the store believes active, handed to [`Runtime::adopt`] after a restart.
#[derive(Debug, Clone)]
pub struct Adoptee {
    /// The run.
    pub run_id: String,
    /// The last [`RunEvent::Line::cursor`] stored.
    pub cursor: Option<String>,
    /// For a run that was `starting`: its spec, so an agent the server never got to create is created now
    /// (idempotently: never a second agent for one run).
    pub relaunch: Option<RunSpec>,
}

/// Where agents run.
pub trait Runtime: Send + Sync {
    /// What this runtime is, for `/api/info` and the settings screen.
    fn info(&self) -> RuntimeInfo;

    /// Why the runtime cannot do its job right now (e.g. the cluster's API does not answer), if it cannot.
    fn trouble(&self) -> BoxFuture<'_, Option<String>> {
        Box::pin(std::future::ready(None))
    }

    /// Starts an agent for `spec`; its events follow on the returned stream.
    fn launch(&self, spec: RunSpec) -> BoxFuture<'_, Result<RunEvents, RuntimeError>>;

    /// Asks the agent of `run_id` to stop: interrupt, then terminate, then kill after the grace period. Its
    /// stream ends with [`RunEvent::Exited`].
    fn stop(&self, run_id: &str) -> BoxFuture<'_, Result<(), RuntimeError>>;

    /// Sends a follow-up message to the agent of `run_id`.
    fn send_input(&self, run_id: &str, text: String) -> BoxFuture<'_, Result<(), RuntimeError>>;

    /// The end of run `run_id` and all its output are stored: the runtime may let go of what it kept for
    /// them (a Kubernetes runtime lets the pod go).
    fn release(&self, run_id: &str) -> BoxFuture<'_, ()>;

    /// Frees what is left of a finished run (work dir, Job).
    fn remove(&self, run_id: &str) -> BoxFuture<'_, Result<(), RuntimeError>>;

    /// After a restart, once, before any launch: these are every run the store believes active. Returns the
    /// ones the runtime follows from here, with their events (from their cursors on); the others are gone.
    /// Agents the runtime finds that are not among them are cleaned up.
    fn adopt(&self, runs: Vec<Adoptee>) -> BoxFuture<'_, Vec<(String, RunEvents)>>;

    /// How often the runtime's watch of its agents failed and started over, for `/metrics`; `None` for a
    /// runtime that watches nothing (its agents report to it directly).
    fn watch_restarts(&self) -> Option<Counter> {
        None
    }

    /// When the server stops: removes what the runtime set up on this machine (the local sandboxes' network).
    fn shut_down(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// A shared runtime.
pub type SharedRuntime = Arc<dyn Runtime>;

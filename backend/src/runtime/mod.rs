//! The runtime seam: where agents actually run. The service asks a [`Runtime`] to launch, stop, talk to and
//! remove agents; each launched agent reports back through its own ordered stream of [`RunEvent`]s (state
//! changes, output lines, exit), which the service validates, stores and publishes.
//!
//! [`local::LocalRuntime`] runs each agent as a child process (the embedded default, not isolated).

pub mod local;

use std::sync::Arc;

use agentfarm_shared::api::RuntimeInfo;
use agentfarm_shared::config::ConfigSpec;
use agentfarm_shared::log::LogStream;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

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
}

/// How an agent's process ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitOutcome {
    /// Its exit code, when it exited normally.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// True when the runtime ended it for running past the config's timeout.
    pub timed_out: bool,
    /// Set when the agent could not be run at all.
    pub error: Option<String>,
}

/// What a running agent reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// The agent is working (started, or took a follow-up).
    Working,
    /// The agent finished a turn and waits for a follow-up.
    WaitingForInput,
    /// A line of output.
    Line {
        /// When it was read.
        ts: DateTime<Utc>,
        /// Where it came from.
        stream: LogStream,
        /// The line, without its newline.
        text: String,
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

/// Where agents run.
pub trait Runtime: Send + Sync {
    /// What this runtime is, for `/api/info` and the settings screen.
    fn info(&self) -> RuntimeInfo;

    /// Starts an agent for `spec`; its events follow on the returned stream.
    fn launch(&self, spec: RunSpec) -> BoxFuture<'_, Result<RunEvents, RuntimeError>>;

    /// Asks the agent of `run_id` to stop: interrupt, then terminate, then kill after the grace period. Its
    /// stream ends with [`RunEvent::Exited`].
    fn stop(&self, run_id: &str) -> BoxFuture<'_, Result<(), RuntimeError>>;

    /// Sends a follow-up message to the agent of `run_id`.
    fn send_input(&self, run_id: &str, text: String) -> BoxFuture<'_, Result<(), RuntimeError>>;

    /// Frees what is left of a finished run (work dir, pod).
    fn remove(&self, run_id: &str) -> BoxFuture<'_, Result<(), RuntimeError>>;

    /// After a restart: for each run the store believes active, re-attach to its agent if it still exists.
    /// Returns the runs it re-attached (with their events); the others are gone.
    fn adopt(&self, run_ids: Vec<String>) -> BoxFuture<'_, Vec<(String, RunEvents)>>;
}

/// A shared runtime.
pub type SharedRuntime = Arc<dyn Runtime>;

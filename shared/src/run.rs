//! Runs: one launch of one config version, and the state machine every run follows.
//!
//! ```text
//! queued → starting → running ⇄ waiting_for_input → succeeded | failed | stopped | lost
//! ```
//! Any non-terminal state may also end early (`failed`, `stopped`, `lost`). A terminal state never changes.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Accepted, waiting for a free slot (`max_running`).
    Queued,
    /// The runtime is starting the agent.
    Starting,
    /// The agent is working.
    Running,
    /// The agent finished a turn and is waiting for a follow-up message.
    WaitingForInput,
    /// The agent ended and reported success.
    Succeeded,
    /// The agent ended with an error (see the run's reason and last error).
    Failed,
    /// The owner stopped it.
    Stopped,
    /// The control plane lost track of it (e.g. the server restarted under a local agent).
    Lost,
}

impl RunState {
    /// Every state, in lifecycle order.
    pub const ALL: [RunState; 8] = [
        RunState::Queued,
        RunState::Starting,
        RunState::Running,
        RunState::WaitingForInput,
        RunState::Succeeded,
        RunState::Failed,
        RunState::Stopped,
        RunState::Lost,
    ];

    /// The wire name (`waiting_for_input`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::WaitingForInput => "waiting_for_input",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Stopped => "stopped",
            RunState::Lost => "lost",
        }
    }

    /// True once the run has ended for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Stopped | RunState::Lost
        )
    }

    /// True while an agent process (or pod) exists for the run: it counts against `max_running`.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RunState::Starting | RunState::Running | RunState::WaitingForInput
        )
    }

    /// Whether a run in this state may move to `next`. Staying in the same state is not a transition.
    pub fn can_become(self, next: RunState) -> bool {
        use RunState::*;
        match (self, next) {
            (from, _) if from.is_terminal() => false,
            (from, to) if from == to => false,
            (_, Failed | Stopped | Lost) => true,
            (Queued, Starting) => true,
            (Starting, Running | Succeeded) => true,
            (Running, WaitingForInput | Succeeded) => true,
            (WaitingForInput, Running | Succeeded) => true,
            _ => false,
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = RunState::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown run state {s:?}; one of {}", names.join(", "))
            })
    }
}

/// A run as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Lowercase ULID: sortable by creation time, a valid RFC 1123 label.
    pub id: String,
    /// The config it was launched from.
    pub config_id: String,
    /// The config version it was launched from.
    pub config_version: u32,
    /// The task prompt it was given (the config's, or the launch's override).
    pub prompt: String,
    /// Where it is in its life.
    pub state: RunState,
    /// When it was launched.
    #[serde(deserialize_with = "crate::stamp::de")]
    pub created_at: DateTime<Utc>,
    /// When the runtime started it.
    #[serde(default, deserialize_with = "crate::stamp::de_opt")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state.
    #[serde(default, deserialize_with = "crate::stamp::de_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    /// When anything about it last changed.
    #[serde(deserialize_with = "crate::stamp::de")]
    pub updated_at: DateTime<Utc>,
    /// The agent's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Why it is in its current state, in words (e.g. "exited with code 1", "stopped by the owner").
    pub reason: Option<String>,
    /// Claude Code's session id.
    pub session_id: Option<String>,
    /// Agentic turns Claude reported so far, over every message of the run.
    pub turns: Option<u32>,
    /// Cost Claude reported so far, in US dollars (its session total).
    pub cost_usd: Option<f64>,
    /// The git branch the agent works on.
    pub branch: Option<String>,
    /// The pull request it opened.
    pub pr_url: Option<String>,
    /// The last error Claude or the agent reported.
    pub last_error: Option<String>,
    /// The size of the agent's changes against the base branch (summed over its repositories).
    pub diff: Option<DiffSummary>,
    /// When the subscription's usage limit that stopped the agent resets.
    #[serde(default, deserialize_with = "crate::stamp::de_opt")]
    pub limit_resets_at: Option<DateTime<Utc>>,
    /// Sequence number of the newest stored log line (0 when none).
    pub last_seq: u64,
    /// What its agent asked of the model, as the control plane's model proxy counted it.
    #[serde(default)]
    pub usage: RunUsage,
}

/// How much a run's branch changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffSummary {
    /// Files changed.
    pub files: u64,
    /// Lines added.
    pub added: u64,
    /// Lines removed.
    pub removed: u64,
}

/// What a run's agent asked of the model, counted by the control plane's model proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunUsage {
    /// Requests to the Messages API.
    pub requests: u64,
    /// Input tokens (not cached).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
}

/// The task of a run that continues one the subscription's usage limit stopped ("Resume after reset", or by
/// itself when its config says so).
pub const RESUME_PROMPT: &str =
    "The subscription's usage limit stopped you earlier. Continue the task where you left off.";

/// Body of `POST /api/runs`: launch a run of a config's current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    /// The config to launch.
    pub config_id: String,
    /// Replaces the config's task prompt for this run.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Continue the branch (and so the pull request) of this earlier run of the same config.
    #[serde(default)]
    pub continue_run: Option<String>,
}

/// Body of `POST /api/runs/{id}/messages`: a follow-up message to a working agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    /// What to tell the agent.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::RunState::{self, *};

    #[test]
    fn terminal_states_never_change() {
        for from in RunState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in RunState::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn the_happy_path_and_the_loop() {
        let path = [
            Queued,
            Starting,
            Running,
            WaitingForInput,
            Running,
            WaitingForInput,
            Succeeded,
        ];
        for pair in path.windows(2) {
            assert!(pair[0].can_become(pair[1]), "{} -> {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn no_going_back() {
        assert!(!Running.can_become(Queued));
        assert!(!Running.can_become(Starting));
        assert!(!Queued.can_become(Running));
        assert!(!Queued.can_become(Succeeded));
        assert!(!Running.can_become(Running));
    }

    #[test]
    fn wire_names_round_trip() {
        for state in RunState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(state.as_str().parse::<RunState>(), Ok(state));
        }
        assert!("done".parse::<RunState>().is_err());
    }
}

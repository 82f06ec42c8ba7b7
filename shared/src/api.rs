//! The REST API's routes, query shapes, server facts (including the doctor report) and its one error shape:
//! `{"error": {"code", "message", "field"?, "fields"?}}`.

use serde::{Deserialize, Serialize};

use crate::run::RunState;
use crate::validate::FieldError;

/// Route paths, shared so the two ends cannot drift.
pub mod routes {
    /// Liveness: the process serves HTTP.
    pub const HEALTHZ: &str = "/healthz";
    /// Readiness: the store and the runtime answer.
    pub const READYZ: &str = "/readyz";
    /// Facts about this server (version, runtime).
    pub const INFO: &str = "/api/info";
    /// Configs: list (GET), create (POST).
    pub const CONFIGS: &str = "/api/configs";
    /// One config: get, update (PUT, makes a new version), delete.
    pub const CONFIG: &str = "/api/configs/{id}";
    /// A config's versions, newest first.
    pub const CONFIG_VERSIONS: &str = "/api/configs/{id}/versions";
    /// Runs: list (GET, `?state=`), launch (POST).
    pub const RUNS: &str = "/api/runs";
    /// One run: get, delete (only when terminal).
    pub const RUN: &str = "/api/runs/{id}";
    /// Stop a run (POST).
    pub const RUN_STOP: &str = "/api/runs/{id}/stop";
    /// Send a follow-up message (POST).
    pub const RUN_MESSAGES: &str = "/api/runs/{id}/messages";
    /// Page through a run's log (`?after_seq=&limit=`).
    pub const RUN_LOGS: &str = "/api/runs/{id}/logs";
    /// The VAPID public key (GET).
    pub const PUSH_KEY: &str = "/api/push/key";
    /// Push subscriptions: list (GET), subscribe or confirm (POST).
    pub const PUSH_SUBSCRIPTIONS: &str = "/api/push/subscriptions";
    /// One subscription: remove (DELETE).
    pub const PUSH_SUBSCRIPTION: &str = "/api/push/subscriptions/{id}";
    /// Send a test notification to one subscription (POST).
    pub const PUSH_TEST: &str = "/api/push/subscriptions/{id}/test";
    /// The cluster checks of `agentfarm doctor` (GET).
    pub const DOCTOR: &str = "/api/doctor";
    /// `GET`: the subscription's usage window as the model last stated it (`null` before any).
    pub const USAGE: &str = "/api/usage";
    /// `GET`: how runs ended, day by day, and what they cost ([`super::RunHistory`]).
    pub const HISTORY: &str = "/api/history";
    /// The live WebSocket stream.
    pub const WS: &str = "/api/ws";
    /// Where the agents' proxies (model API, git, pull requests) live; never a page of the web app.
    pub const PROXIES: &str = "/proxy";
    /// The server's Prometheus metrics: served on the metrics listener alone, never on the app's port.
    pub const METRICS: &str = "/metrics";

    /// Fills an `{id}` route with a concrete id.
    pub fn with_id(route: &str, id: &str) -> String {
        route.replace("{id}", id)
    }
}

/// Body of `GET /api/history`: the last [`HISTORY_DAYS`] days (UTC), oldest first, every day present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHistory {
    /// One entry a day.
    pub days: Vec<DayRuns>,
}

/// How many days `GET /api/history` covers, today included.
pub const HISTORY_DAYS: u32 = 14;

/// The runs that ended on one day, by how they ended, and their cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayRuns {
    /// The day, `YYYY-MM-DD` in UTC.
    pub day: String,
    /// Runs that succeeded.
    pub succeeded: u32,
    /// Runs that failed.
    pub failed: u32,
    /// Runs the owner stopped, and runs lost to a restart.
    pub stopped: u32,
    /// What they cost, in US dollars, as Claude reported it.
    pub cost_usd: f64,
}

impl DayRuns {
    /// Every run of the day.
    pub fn total(&self) -> u32 {
        self.succeeded + self.failed + self.stopped
    }
}

/// Query of `GET /api/runs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// Only runs in this state.
    #[serde(default)]
    pub state: Option<RunState>,
    /// Only runs of this config.
    #[serde(default)]
    pub config_id: Option<String>,
    /// At most this many (default 100, at most 500), newest first.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Query of `GET /api/runs/{id}/logs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Return lines after this sequence number (default 0: from the start).
    #[serde(default)]
    pub after_seq: u64,
    /// At most this many lines (default 500, at most 5,000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Which runtime runs the agents, as `GET /api/info` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// `local` or `kubernetes`.
    pub kind: String,
    /// False for the local runtime without a sandbox: agents run as plain processes of the server's user.
    pub isolated: bool,
    /// What keeps an agent in: `none`, `gvisor` (the local runtime's sandbox), or `runtime-class` (each
    /// config's RuntimeClass on the cluster).
    #[serde(default)]
    pub sandbox: String,
    /// A sentence for the settings screen.
    pub description: String,
}

/// Body of `GET /api/info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// agentfarm's version.
    pub version: String,
    /// The runtime in use.
    pub runtime: RuntimeInfo,
    /// Most runs active at once; more wait as `queued`.
    pub max_running: u32,
    /// The debugging mode is on: agents get the owner's Claude and GitHub tokens themselves instead of their
    /// run's capability.
    #[serde(default)]
    pub direct_credentials: bool,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ApiError,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable: `invalid`, `not_found`, `conflict`, `unsupported_media_type`, `forbidden`, …
    pub code: String,
    /// For people.
    pub message: String,
    /// The (first) field at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every field at fault, when validation failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// The outcome of one [`Check`] of `agentfarm doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Ready as configured.
    Pass,
    /// Works, but worth a look (e.g. a weaker setting, or a fact the check could not read).
    Warn,
    /// The runtime will not work until this is fixed.
    Fail,
}

impl CheckStatus {
    /// `PASS`, `WARN` or `FAIL`, for tables.
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Pass => "PASS",
            CheckStatus::Warn => "WARN",
            CheckStatus::Fail => "FAIL",
        }
    }
}

/// One row of a [`DoctorReport`]: a fact the Kubernetes runtime depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked, e.g. `API server`, `RuntimeClass gvisor`.
    pub name: String,
    /// The outcome.
    pub status: CheckStatus,
    /// What was found (never a secret's value).
    pub detail: String,
    /// How to fix a failure or warning (a command or the file to apply), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Everything `agentfarm doctor` checked, in order; the Settings screen shows the same rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// The rows, in the order they were checked.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// Whether any check failed (warnings do not count).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|check| check.status == CheckStatus::Fail)
    }
}

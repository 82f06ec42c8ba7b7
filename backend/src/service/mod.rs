//! The service: the one place that decides. Requests and runtime events come in; it validates them, stores
//! the result, then publishes it on the hub. Sockets read from the hub and the store, never from the runtime.
//!
//! - [`configs`]: create, edit (a new version each time), delete.
//! - [`runs`]: launch, stop, follow-ups, delete, and the scheduler that keeps at most `max_running` agents.
//! - [`pump`]: turns one agent's events into stored log lines and state transitions, credentials masked.
//! - [`meta`]: what Claude's output says about a run (session, turns, cost, errors).
//! - [`metrics`]: what the service measures for `/metrics`.

mod configs;
mod meta;
pub mod metrics;
mod pump;
mod runs;

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use agentfarm_shared::redact::Redactor;
use agentfarm_shared::validate::Violations;
use tokio::sync::Notify;

use self::metrics::ServiceMetrics;
use crate::hub::Hub;
use crate::runtime::SharedRuntime;
use crate::store::Store;

/// Limits the service enforces.
#[derive(Debug, Clone, Copy)]
pub struct FarmLimits {
    /// Most runs with an agent at once; more wait as `queued`.
    pub max_running: u32,
    /// Log lines kept per run.
    pub log_retention: u64,
}

/// The service. Shared as `Arc<Farm>`.
pub struct Farm {
    store: Store,
    runtime: SharedRuntime,
    hub: Hub,
    limits: FarmLimits,
    /// Wakes the scheduler: a run was queued or ended.
    wake: Notify,
    /// Wakes the scheduler when the subscription's usage limit resets, while queued runs wait for it.
    resume_timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Runs the owner asked to stop whose agent has not exited yet.
    stopping: Mutex<HashSet<String>>,
    /// Run ids: ULIDs, monotonic so that runs queued in the same millisecond keep their order.
    ids: Mutex<ulid::Generator>,
    /// Masks credentials in whatever an agent says before it is stored or sent anywhere.
    redactor: Redactor,
    /// What it measures for `/metrics`.
    metrics: ServiceMetrics,
}

impl Farm {
    /// A service over this store, runtime and hub, masking what `redactor` knows in agent output. Call
    /// [`Farm::start`] before serving.
    pub fn new(
        store: Store,
        runtime: SharedRuntime,
        hub: Hub,
        limits: FarmLimits,
        redactor: Redactor,
    ) -> Arc<Farm> {
        Arc::new(Farm {
            store,
            runtime,
            hub,
            limits,
            wake: Notify::new(),
            resume_timer: Mutex::default(),
            stopping: Mutex::default(),
            ids: Mutex::new(ulid::Generator::new()),
            redactor,
            metrics: ServiceMetrics::default(),
        })
    }

    /// Refuses owner text that holds a credential (a token shape, or a value agents are given): credentials
    /// reach agents from the server's environment or the cluster's Secrets, never through a config, a prompt
    /// or a message, where they would be stored, shown and sent to the model.
    fn refuse_credentials(&self, v: &mut Violations, fields: &[(&str, &str)]) {
        for (field, text) in fields {
            if matches!(self.redactor.redact(text), Cow::Owned(_)) {
                v.push(
                    *field,
                    "looks like it holds a credential (a token); give agents credentials through the server's \
                     environment or the cluster's Secrets, never in a config, prompt or message",
                );
            }
        }
    }

    /// Why the runtime cannot do its job right now, if it cannot.
    pub async fn runtime_trouble(&self) -> Option<String> {
        self.runtime.trouble().await
    }

    /// The store (read-only uses: sockets catching up, health checks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The runtime.
    pub fn runtime(&self) -> &SharedRuntime {
        &self.runtime
    }

    /// What it measures for `/metrics`.
    pub fn metrics(&self) -> &ServiceMetrics {
        &self.metrics
    }

    /// The limits in force.
    pub fn limits(&self) -> FarmLimits {
        self.limits
    }

    fn stop_requested(&self, run_id: &str) -> bool {
        self.stopping
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(run_id)
    }

    fn set_stop_requested(&self, run_id: &str, requested: bool) {
        let mut stopping = self.stopping.lock().unwrap_or_else(PoisonError::into_inner);
        if requested {
            stopping.insert(run_id.to_owned());
        } else {
            stopping.remove(run_id);
        }
    }
}

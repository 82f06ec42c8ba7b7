//! `/metrics`: the server's Prometheus metrics in the Prometheus text format, served on a listener of their
//! own (`--metrics-listen`), never on the app's port and so never through the proxy in front of it.
//!
//! Each part keeps its own instruments (the service, the store, Web Push, the model proxy, the runtime);
//! [`Metrics::new`] names and registers them all here, so that this file lists every metric. Labels take only
//! a few known values (a run state, a delivery outcome, a token kind): never a run id, a prompt or anything
//! an owner or an agent writes, so that a scrape carries no secret and the number of series stays bounded.
//! For that reason the listener has no Host or identity check: what it serves is counts, readable by whoever
//! the network lets reach it (loopback, or on a cluster the monitoring namespace).

use std::sync::Arc;

use agentfarm_shared::api::routes;
use agentfarm_shared::run::RunState;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::error::AppError;
use crate::push::Push;
use crate::service::Farm;

/// A counter per value of one label whose values are a known few, each series there from the start.
#[derive(Debug, Clone)]
pub struct LabeledCounter {
    label: &'static str,
    family: Family<[(&'static str, &'static str); 1], Counter>,
}

impl LabeledCounter {
    /// A counter labeled `label`, at 0 for each of `values`.
    pub fn with_values(label: &'static str, values: &[&'static str]) -> LabeledCounter {
        let counter = LabeledCounter {
            label,
            family: Family::default(),
        };
        for value in values {
            // Creates the series at 0.
            let _ = counter.family.get_or_create(&[(label, *value)]);
        }
        counter
    }

    /// Adds `by` to the series of `value`.
    pub fn inc_by(&self, value: &'static str, by: u64) {
        self.family.get_or_create(&[(self.label, value)]).inc_by(by);
    }

    /// The count of `value` so far.
    pub fn get(&self, value: &'static str) -> u64 {
        self.family.get_or_create(&[(self.label, value)]).get()
    }
}

/// Every metric of one server, and the store to count runs in at each scrape.
pub struct Metrics {
    registry: Registry,
    farm: Arc<Farm>,
    /// Set from the store at each scrape, so it never drifts from what the API shows.
    runs: Family<[(&'static str, &'static str); 1], Gauge>,
}

impl Metrics {
    /// Registers the instruments of `farm` (the service, its store and runtime), `push` and the model proxy's
    /// `model_tokens`.
    pub fn new(farm: Arc<Farm>, push: &Push, model_tokens: &LabeledCounter) -> Metrics {
        let mut registry = Registry::with_prefix("agentfarm");
        let runs = Family::<[(&'static str, &'static str); 1], Gauge>::default();
        registry.register("runs", "Runs in each state", runs.clone());
        let service = farm.metrics();
        registry.register(
            "launches",
            "Runs launched (by the owner, or queued again after a usage limit)",
            service.launches.clone(),
        );
        registry.register_with_unit(
            "launch_to_running",
            "Time from a run's launch to its agent first working (queueing included)",
            Unit::Seconds,
            service.launch_to_running.clone(),
        );
        registry.register_with_unit(
            "run_duration",
            "Time from a run's agent first working to its end",
            Unit::Seconds,
            service.run_duration.clone(),
        );
        registry.register(
            "run_model_tokens",
            "Model tokens each run used through the model proxy (input, output and cache), when it ended",
            service.run_tokens.clone(),
        );
        registry.register(
            "log_lines_stored",
            "Agent log lines stored",
            service.log_lines.clone(),
        );
        registry.register(
            "websocket_clients",
            "Live WebSocket sessions",
            service.sockets.clone(),
        );
        registry.register_with_unit(
            "store_commit",
            "Time each database commit takes (one commit may hold several writes)",
            Unit::Seconds,
            farm.store().commit_seconds().clone(),
        );
        registry.register(
            "push_deliveries",
            "Web Push delivery attempts by outcome (sent, gone, dropped, retried)",
            push.deliveries().family.clone(),
        );
        registry.register(
            "kube_watch_restarts",
            "Times watching the agents' Jobs and pods failed and started over (0 on the local runtime)",
            farm.runtime().watch_restarts().unwrap_or_default(),
        );
        registry.register(
            "model_tokens",
            "Model tokens the agents used through the model proxy, by kind (input, output, cache_creation, \
             cache_read), over all runs",
            model_tokens.family.clone(),
        );
        Metrics { registry, farm, runs }
    }

    /// The metrics as they are now, in the Prometheus text format.
    pub async fn render(&self) -> Result<String, AppError> {
        let counts = self.farm.store().count_by_state().await?;
        for state in RunState::ALL {
            let count = counts
                .iter()
                .find(|(counted, _)| *counted == state)
                .map_or(0, |(_, count)| *count);
            self.runs
                .get_or_create(&[("state", state.as_str())])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Only the writer can fail, and writing into a String cannot.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        Ok(text)
    }
}

/// The metrics listener's routes: `GET /metrics`, and the API's JSON 404 for anything else.
pub fn router(metrics: Arc<Metrics>) -> Router {
    let router = Router::new()
        .route(routes::METRICS, get(scrape))
        .fallback(crate::api::health::not_found);
    crate::api::trace::traced(router).with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Result<impl IntoResponse, AppError> {
    let text = metrics.render().await?;
    Ok(([(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], text))
}

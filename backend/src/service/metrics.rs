//! What the service measures for `/metrics`: launches, how long a launched run takes to get an agent working,
//! how long agents work, log lines stored, and the live sockets open.

use agentfarm_shared::run::Run;
use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// The service's instruments; cheap to clone (each is shared).
#[derive(Debug, Clone)]
pub struct ServiceMetrics {
    /// Runs launched (by the owner, or queued again after a usage limit).
    pub launches: Counter,
    /// Seconds from a run's launch (queued) to its agent first working: queueing, scheduling, starting.
    pub launch_to_running: Histogram,
    /// Seconds from a run's agent first working to its end, for runs whose agent ended.
    pub run_duration: Histogram,
    /// Model tokens each run used through the model proxy (input, output and cache, summed), observed when it
    /// ends: tokens per run without a label per run.
    pub run_tokens: Histogram,
    /// Log lines stored.
    pub log_lines: Counter,
    /// Live WebSocket sessions.
    pub sockets: Gauge,
}

impl Default for ServiceMetrics {
    fn default() -> Self {
        ServiceMetrics {
            launches: Counter::default(),
            // From a tenth of a second (a local agent on an idle server) to about 7 hours (a long queue).
            launch_to_running: Histogram::new(exponential_buckets(0.1, 2.0, 18)),
            // From a second to about 18 hours.
            run_duration: Histogram::new(exponential_buckets(1.0, 2.0, 17)),
            // From a thousand tokens (a one-line answer) to about half a billion.
            run_tokens: Histogram::new(exponential_buckets(1_000.0, 2.0, 20)),
            log_lines: Counter::default(),
            sockets: Gauge::default(),
        }
    }
}

impl ServiceMetrics {
    /// Notes that `run` has just moved to `running` or `waiting_for_input` at `at`; times only its agent's
    /// first start, which the store records as `started_at` (a later move leaves `started_at` before `at`).
    pub(super) fn moved_on(&self, run: &Run, at: DateTime<Utc>) {
        let Some(started) = run.started_at else { return };
        if started.timestamp_millis() == at.timestamp_millis() {
            self.launch_to_running
                .observe(seconds_between(run.created_at, started));
        }
    }

    /// Notes that `run`'s agent has ended: how long it worked, and the tokens it used if it asked the model.
    pub(super) fn ended(&self, run: &Run) {
        if let (Some(started), Some(finished)) = (run.started_at, run.finished_at) {
            self.run_duration.observe(seconds_between(started, finished));
        }
        let usage = &run.usage;
        if usage.requests > 0 {
            let tokens = usage.input_tokens
                + usage.output_tokens
                + usage.cache_creation_tokens
                + usage.cache_read_tokens;
            // Exact below 2^53 tokens, far beyond any run.
            self.run_tokens.observe(tokens as f64);
        }
    }

    /// Counts a live socket until the returned guard is dropped.
    pub fn socket_opened(&self) -> OpenSocket {
        self.sockets.inc();
        OpenSocket(self.sockets.clone())
    }
}

/// A live socket, counted in [`ServiceMetrics::sockets`] while it exists.
#[derive(Debug)]
pub struct OpenSocket(Gauge);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Seconds from `from` to `to`, never negative (clocks can step back).
fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).to_std().unwrap_or_default().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentfarm_shared::run::RunState;

    fn run(created: i64, started: Option<i64>, finished: Option<i64>) -> Run {
        let at = |millis: i64| DateTime::from_timestamp_millis(millis).unwrap();
        let mut run: Run = serde_json::from_value(serde_json::json!({
            "id": "r", "config_id": "c", "config_version": 1, "prompt": "p", "state": RunState::Running,
            "created_at": at(created), "updated_at": at(created), "last_seq": 0,
        }))
        .unwrap();
        run.started_at = started.map(at);
        run.finished_at = finished.map(at);
        run
    }

    #[test]
    fn only_the_first_start_is_timed_and_only_started_runs_have_a_duration() {
        let metrics = ServiceMetrics::default();
        let first = run(1_000, Some(3_500), None);
        metrics.moved_on(&first, first.started_at.unwrap());
        // Back from waiting for input: the first start stays.
        metrics.moved_on(&first, DateTime::from_timestamp_millis(9_000).unwrap());
        assert_eq!(metrics.launch_to_running.count(), 1);
        assert!((metrics.launch_to_running.sum() - 2.5).abs() < 1e-9);

        metrics.ended(&run(1_000, None, Some(2_000)));
        assert_eq!(metrics.run_duration.count(), 0);
        metrics.ended(&run(1_000, Some(3_000), Some(63_000)));
        assert_eq!(metrics.run_duration.count(), 1);
        assert!((metrics.run_duration.sum() - 60.0).abs() < 1e-9);
        assert_eq!(
            metrics.run_tokens.count(),
            0,
            "no request to the model, no tokens to count"
        );
        let mut asked = run(1_000, Some(3_000), Some(4_000));
        asked.usage.requests = 2;
        asked.usage.input_tokens = 1_000;
        asked.usage.output_tokens = 200;
        asked.usage.cache_read_tokens = 34;
        metrics.ended(&asked);
        assert_eq!(metrics.run_tokens.count(), 1);
        assert!((metrics.run_tokens.sum() - 1_234.0).abs() < 1e-9);
    }

    #[test]
    fn a_socket_counts_while_it_is_open() {
        let metrics = ServiceMetrics::default();
        let open = metrics.socket_opened();
        let second = metrics.socket_opened();
        assert_eq!(metrics.sockets.get(), 2);
        drop(open);
        drop(second);
        assert_eq!(metrics.sockets.get(), 0);
    }
}

//! The hub: fans out what the service has stored (run changes, log lines) to the sockets that care.
//!
//! Run changes go to every socket on one broadcast channel. Log lines go on a channel of their run, which
//! exists only while some socket follows that run, so a socket wakes only for the runs it follows: with
//! fifty runs printing, a socket that follows one is not woken fifty times as often. Each channel has a
//! bounded buffer per receiver: a producer never waits for a slow socket. A socket that falls behind learns
//! it (`Lagged`) and catches up from the store instead.
//!
//! The service publishes a run's lines before any change of the run they lead to, each on its channel as soon
//! as it is stored; a socket drains the run's channel before it passes a change of that run on (see
//! `api::ws`), so its client still sees the lines first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use agentfarm_shared::log::LogLine;
use agentfarm_shared::run::Run;
use tokio::sync::{broadcast, watch};

/// One change of the runs. Cheap to clone: every socket gets the same allocation.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A run was created or changed.
    Changed(Arc<Run>),
    /// A run was deleted.
    Removed(Arc<str>),
}

/// New log lines of one run, already stored: contiguous, in order. Shared by every socket following the run.
pub type LogBatch = Arc<[LogLine]>;

/// The publishing end; clone it freely.
#[derive(Clone)]
pub struct Hub {
    runs: broadcast::Sender<RunEvent>,
    /// The log channel of each run some socket follows (or followed: one with no receiver left is dropped at
    /// the next publish or subscribe).
    logs: Arc<Mutex<HashMap<Arc<str>, broadcast::Sender<LogBatch>>>>,
    capacity: usize,
    closing: watch::Sender<bool>,
}

impl Hub {
    /// A hub whose receivers may fall `capacity` events behind (on each channel) before they must resync.
    pub fn new(capacity: usize) -> Self {
        Self {
            runs: broadcast::channel(capacity).0,
            logs: Arc::default(),
            capacity,
            closing: watch::channel(false).0,
        }
    }

    /// Tells every socket that the server is going away.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves when [`Hub::close`] has been called (at once if it already was).
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            // An error means the hub is gone, which is a close too.
            let _ = closing.wait_for(|closing| *closing).await;
        }
    }

    /// Publishes a run's new state to every socket.
    pub fn run_changed(&self, run: Run) {
        let _ = self.runs.send(RunEvent::Changed(Arc::new(run)));
    }

    /// Publishes a run's deletion to every socket; its log channel closes.
    pub fn run_removed(&self, run_id: &str) {
        self.channels().remove(run_id);
        let _ = self.runs.send(RunEvent::Removed(run_id.into()));
    }

    /// Publishes stored lines of `run_id` to the sockets following it (none is fine).
    pub fn log_stored(&self, run_id: &str, lines: LogBatch) {
        let mut channels = self.channels();
        let Some(channel) = channels.get(run_id) else {
            return;
        };
        if channel.send(lines).is_err() {
            // Nobody follows the run any more.
            channels.remove(run_id);
        }
    }

    /// A receiver of every run change published from now on.
    pub fn subscribe_runs(&self) -> broadcast::Receiver<RunEvent> {
        self.runs.subscribe()
    }

    /// A receiver of the lines of `run_id` published from now on.
    pub fn subscribe_log(&self, run_id: &str) -> broadcast::Receiver<LogBatch> {
        let mut channels = self.channels();
        channels.retain(|_, channel| channel.receiver_count() > 0);
        channels
            .entry(run_id.into())
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// The log channels. A panic while the lock was held cannot leave the map half-changed (each use is one
    /// map operation), so a poisoned lock is still sound to use.
    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, broadcast::Sender<LogBatch>>> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use agentfarm_shared::log::LogStream;
    use chrono::Utc;
    use tokio::sync::broadcast::error::TryRecvError;

    use super::*;

    fn batch(seq: u64) -> LogBatch {
        Arc::from(vec![LogLine {
            seq,
            ts: Utc::now(),
            stream: LogStream::Stdout,
            text: format!("line {seq}"),
            truncated: false,
        }])
    }

    #[test]
    fn a_follower_gets_only_its_runs_lines_and_an_unfollowed_run_keeps_no_channel() {
        let hub = Hub::new(8);
        let mut one = hub.subscribe_log("one");
        hub.log_stored("two", batch(1));
        hub.log_stored("one", batch(1));
        assert_eq!(one.try_recv().map(|lines| lines[0].seq), Ok(1));
        assert_eq!(one.try_recv().err(), Some(TryRecvError::Empty));
        assert!(!hub.channels().contains_key("two"), "nobody follows two");

        drop(one);
        hub.log_stored("one", batch(2));
        assert!(hub.channels().is_empty(), "the last follower of one left");
    }

    #[test]
    fn removing_a_run_closes_its_log_channel_after_what_was_published() {
        let hub = Hub::new(8);
        let mut runs = hub.subscribe_runs();
        let mut log = hub.subscribe_log("gone");
        hub.log_stored("gone", batch(1));
        hub.run_removed("gone");
        assert_eq!(log.try_recv().map(|lines| lines[0].seq), Ok(1));
        assert_eq!(log.try_recv().err(), Some(TryRecvError::Closed));
        assert!(matches!(runs.try_recv(), Ok(RunEvent::Removed(id)) if &*id == "gone"));
    }
}

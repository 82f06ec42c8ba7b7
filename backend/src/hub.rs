//! The hub: fans out what the service has stored (run changes, log lines) to every connected socket.
//!
//! A broadcast channel with a bounded buffer per receiver: a producer never waits for a slow socket. A socket
//! that falls behind learns it (`Lagged`) and catches up from the store instead.

use std::sync::Arc;

use agentfarm_shared::log::LogLine;
use agentfarm_shared::run::Run;
use tokio::sync::{broadcast, watch};

/// One published change. Cheap to clone: every socket gets the same allocation.
#[derive(Debug, Clone)]
pub enum HubEvent {
    /// A run was created or changed.
    Run(Arc<Run>),
    /// A run was deleted.
    RunRemoved(Arc<str>),
    /// New log lines of a run, contiguous, in order.
    Log {
        /// The run.
        run_id: Arc<str>,
        /// The lines, already stored.
        lines: Arc<[LogLine]>,
    },
}

/// The publishing end; clone it freely.
#[derive(Clone)]
pub struct Hub {
    sender: broadcast::Sender<HubEvent>,
    closing: watch::Sender<bool>,
}

impl Hub {
    /// A hub whose receivers may fall `capacity` events behind before they must resync.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity).0,
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

    /// Publishes an event to every current subscriber (none is fine).
    pub fn publish(&self, event: HubEvent) {
        let _ = self.sender.send(event);
    }

    /// Publishes a run's new state.
    pub fn run_changed(&self, run: Run) {
        self.publish(HubEvent::Run(Arc::new(run)));
    }

    /// A receiver of everything published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.sender.subscribe()
    }
}

//! Named gates that hold `[[wait:NAME]]` requests until a test releases them.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

/// What is known about one gate.
#[derive(Default)]
struct Gate {
    /// Set by `release`; stays set, so later arrivals pass straight through.
    open: bool,
    /// How many requests have reached the gate (parked, or passed an open gate).
    arrived: usize,
}

/// All gates of one fake server. Any change bumps a watch channel that every waiter listens to.
pub(crate) struct Gates {
    gates: Mutex<HashMap<String, Gate>>,
    changed: watch::Sender<()>,
    closed: Mutex<bool>,
}

impl Default for Gates {
    fn default() -> Self {
        Self {
            gates: Mutex::new(HashMap::new()),
            changed: watch::Sender::new(()),
            closed: Mutex::new(false),
        }
    }
}

/// How a wait on a gate ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Passed {
    /// The gate was (or became) open.
    Released,
    /// The server is shutting down.
    Closed,
}

impl Gates {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Gate>> {
        self.gates.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_closed(&self) -> bool {
        *self.closed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens `name` for good, releasing whatever is parked on it.
    pub(crate) fn release(&self, name: &str) {
        self.lock().entry(name.to_owned()).or_default().open = true;
        self.changed.send_replace(());
    }

    /// Releases every waiter with [`Passed::Closed`] (used when the server stops).
    pub(crate) fn close(&self) {
        *self.closed.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.send_replace(());
    }

    /// Waits until `name` is open (counting this request as arrived).
    pub(crate) async fn pass(&self, name: &str) -> Passed {
        let mut rx = self.changed.subscribe();
        self.lock().entry(name.to_owned()).or_default().arrived += 1;
        self.changed.send_replace(());
        loop {
            if self.is_closed() {
                return Passed::Closed;
            }
            if self.lock().get(name).is_some_and(|gate| gate.open) {
                return Passed::Released;
            }
            if rx.changed().await.is_err() {
                return Passed::Closed;
            }
        }
    }

    /// Resolves once at least one request has reached `name`.
    pub(crate) async fn arrived(&self, name: &str) {
        let mut rx = self.changed.subscribe();
        loop {
            if self.lock().get(name).is_some_and(|gate| gate.arrived > 0) {
                return;
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as `self`; this cannot happen while we borrow it.
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn release_before_arrival_keeps_the_gate_open() {
        let gates = Gates::default();
        gates.release("g");
        assert_eq!(gates.pass("g").await, Passed::Released);
        gates.arrived("g").await;
    }

    #[tokio::test]
    async fn parked_request_waits_for_release() {
        let gates = Arc::new(Gates::default());
        let waiter = tokio::spawn({
            let gates = Arc::clone(&gates);
            async move { gates.pass("g").await }
        });
        gates.arrived("g").await;
        assert!(!waiter.is_finished());
        gates.release("g");
        assert_eq!(waiter.await.unwrap(), Passed::Released);
    }

    #[tokio::test]
    async fn close_frees_parked_requests() {
        let gates = Arc::new(Gates::default());
        let waiter = tokio::spawn({
            let gates = Arc::clone(&gates);
            async move { gates.pass("g").await }
        });
        gates.arrived("g").await;
        gates.close();
        assert_eq!(waiter.await.unwrap(), Passed::Closed);
    }
}

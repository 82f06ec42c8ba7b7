//! Which device has which run open: a device's live connection (named by its push subscription, from a
//! cookie) watching a run means the owner is looking at it, so pushes about that run skip that device.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The runs each device has open, counted per connection.
#[derive(Debug, Default)]
pub struct Foreground {
    open: Mutex<HashMap<(String, String), usize>>,
}

impl Foreground {
    /// Whether `device` has `run_id` open on a live connection.
    pub fn is_open(&self, device: &str, run_id: &str) -> bool {
        self.lock()
            .get(&(device.to_owned(), run_id.to_owned()))
            .is_some_and(|count| *count > 0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), usize>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connection's view: what it watches is open until it unwatches or the connection ends (drop).
#[derive(Debug)]
pub struct Viewer {
    foreground: Arc<Foreground>,
    device: String,
    watching: Vec<String>,
}

impl Viewer {
    /// A connection of `device`.
    pub fn new(foreground: Arc<Foreground>, device: String) -> Self {
        Self {
            foreground,
            device,
            watching: Vec::new(),
        }
    }

    /// The connection shows `run_id`.
    pub fn watch(&mut self, run_id: &str) {
        if self.watching.iter().any(|r| r == run_id) {
            return;
        }
        self.watching.push(run_id.to_owned());
        *self
            .foreground
            .lock()
            .entry((self.device.clone(), run_id.to_owned()))
            .or_default() += 1;
    }

    /// The connection no longer shows `run_id`.
    pub fn unwatch(&mut self, run_id: &str) {
        if let Some(index) = self.watching.iter().position(|r| r == run_id) {
            self.watching.swap_remove(index);
            self.release(run_id);
        }
    }

    fn release(&self, run_id: &str) {
        let mut open = self.foreground.lock();
        let key = (self.device.clone(), run_id.to_owned());
        if let Some(count) = open.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&key);
            }
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        for run_id in std::mem::take(&mut self.watching) {
            self.release(&run_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_while_any_connection_of_the_device_watches() {
        let foreground = Arc::new(Foreground::default());
        let mut phone = Viewer::new(Arc::clone(&foreground), "phone".into());
        let mut phone_again = Viewer::new(Arc::clone(&foreground), "phone".into());
        phone.watch("r1");
        phone_again.watch("r1");
        assert!(foreground.is_open("phone", "r1"));
        assert!(!foreground.is_open("laptop", "r1"));
        phone.unwatch("r1");
        assert!(foreground.is_open("phone", "r1"));
        drop(phone_again);
        assert!(!foreground.is_open("phone", "r1"));
    }
}

//! Exponential backoff: a first delay that doubles up to a ceiling, shared by the Kubernetes runtime's
//! retries and the Web Push sender's.

use std::time::Duration;

/// Delays that start at `first` and double, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Delays from `first`, doubling, at most `max`.
    pub const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay before retry number `attempt` (0: the first retry), for callers that keep the count
    /// themselves (e.g. in the store).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.first.saturating_mul(1 << attempt.min(16)).min(self.max)
    }

    /// Waits the next delay, then doubles it.
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = self.next.saturating_mul(2).min(self.max);
    }

    /// Back to the first delay, once things work again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_ceiling() {
        let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let delays: Vec<u128> = (0..8).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(30), "no overflow");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_lengthens_the_next_wait_and_reset_shortens_it() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(3));
        let start = tokio::time::Instant::now();
        backoff.wait().await;
        backoff.wait().await;
        backoff.wait().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1 + 2 + 3));
        backoff.reset();
        let again = tokio::time::Instant::now();
        backoff.wait().await;
        assert_eq!(again.elapsed(), Duration::from_secs(1));
    }
}

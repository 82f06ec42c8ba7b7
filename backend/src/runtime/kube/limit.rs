//! A token bucket in front of Job creates, so that no bug in launching or reconciling can flood the cluster
//! with Jobs: creates beyond the bucket wait their turn.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Job creates allowed: a burst, then a steady rate.
#[derive(Debug)]
pub struct CreateLimiter {
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Most creates at once (the bucket's size).
    burst: f64,
    /// Creates the bucket regains per second.
    per_second: f64,
    /// Creates available now.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl Bucket {
    /// Takes one create at `now`, or says how long until one is free.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_second))
        }
    }
}

impl CreateLimiter {
    /// At most `per_minute` creates a minute after a first burst of as many (at least one).
    pub fn new(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        Self {
            bucket: Mutex::new(Bucket {
                burst: per_minute,
                per_second: per_minute / 60.0,
                tokens: per_minute,
                at: Instant::now(),
            }),
        }
    }

    /// Waits until a create is allowed, and takes it.
    pub async fn acquire(&self) {
        loop {
            let wait = self.take(Instant::now());
            match wait {
                Ok(()) => return,
                Err(wait) => {
                    tracing::warn!(?wait, "Job creates are being throttled");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn take(&self, now: Instant) -> Result<(), Duration> {
        self.bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI-18, the create-rate limiter: a reconcile bug asking for a Job every 10 ms for ten minutes of
    /// virtual time gets the first burst, then the steady rate, never more; a pause refills the burst.
    #[test]
    fn ci_18_job_creates_are_rate_limited() {
        let limiter = CreateLimiter::new(20);
        let start = Instant::now();
        let granted_by = |limiter: &CreateLimiter, from: Duration, until: Duration| {
            let mut granted = 0;
            let mut at = from;
            while at < until {
                if limiter.take(start + at).is_ok() {
                    granted += 1;
                }
                at += Duration::from_millis(10);
            }
            granted
        };
        assert_eq!(
            granted_by(&limiter, Duration::ZERO, Duration::from_secs(1)),
            20,
            "the burst"
        );
        let steady = granted_by(&limiter, Duration::from_secs(1), Duration::from_secs(601));
        assert!(
            (199..=201).contains(&steady),
            "20 a minute for ten minutes, not {steady}"
        );
        assert!(limiter.take(start + Duration::from_secs(601)).is_err());
        let wait = limiter.take(start + Duration::from_secs(601)).unwrap_err();
        assert!(
            wait <= Duration::from_secs(3),
            "the next one is at most 3 s away, not {wait:?}"
        );
        assert_eq!(
            granted_by(&limiter, Duration::from_secs(1000), Duration::from_secs(1001)),
            20,
            "a quiet spell refills the burst"
        );
    }
}

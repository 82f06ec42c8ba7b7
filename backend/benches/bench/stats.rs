//! Percentiles and the way figures are written in the table.

use std::time::Duration;

/// The `p`th percentile (0–100) of `samples` (nanoseconds), by nearest rank.
pub fn percentile(samples: &mut [u64], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    Duration::from_nanos(samples[rank.clamp(1, samples.len()) - 1])
}

/// `1.23 ms`.
pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// `measured / floor` as `1.23×`.
pub fn ratio(measured: Duration, floor: Duration) -> String {
    if floor.is_zero() {
        return "–".into();
    }
    format!("{:.2}×", measured.as_secs_f64() / floor.as_secs_f64())
}

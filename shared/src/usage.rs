//! The subscription's usage window, as the model's answers state it in their `anthropic-ratelimit-unified-*`
//! headers: whether requests are allowed, when the limit resets, and how much of the five-hour and seven-day
//! windows is used.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// One of the windows (five hours, seven days).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowPart {
    /// `allowed`, `allowed_warning` or `rejected`.
    pub status: Option<String>,
    /// When it resets.
    pub resets_at: Option<DateTime<Utc>>,
    /// The share used, 0 to 1.
    pub utilization: Option<f64>,
}

/// The window as last stated (`GET /api/usage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageWindow {
    /// `allowed`, `allowed_warning` or `rejected` (the subscription refuses requests until `resets_at`).
    pub status: String,
    /// When the limit in force resets.
    pub resets_at: Option<DateTime<Utc>>,
    /// Which window decides (`five_hour`, `seven_day`, …).
    pub representative_claim: Option<String>,
    /// The five-hour window.
    pub five_hour: WindowPart,
    /// The seven-day window.
    pub seven_day: WindowPart,
    /// When the model's answer said so.
    pub observed_at: DateTime<Utc>,
}

impl UsageWindow {
    /// The window the headers state (names without the `anthropic-ratelimit-unified-` prefix), read at
    /// `observed_at`; `None` without a `status`.
    pub fn from_headers(headers: &[(String, String)], observed_at: DateTime<Utc>) -> Option<UsageWindow> {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim())
        };
        let time = |name: &str| {
            get(name)
                .and_then(|secs| secs.parse::<i64>().ok())
                .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
        };
        let part = |prefix: &str| WindowPart {
            status: get(&format!("{prefix}-status")).map(str::to_owned),
            resets_at: time(&format!("{prefix}-reset")),
            utilization: get(&format!("{prefix}-utilization")).and_then(|share| share.parse().ok()),
        };
        Some(UsageWindow {
            status: get("status")?.to_owned(),
            resets_at: time("reset"),
            representative_claim: get("representative-claim").map(str::to_owned),
            five_hour: part("5h"),
            seven_day: part("7d"),
            observed_at,
        })
    }

    /// When the subscription accepts requests again, if it refuses them at `now`.
    pub fn exhausted_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let until = self.resets_at?;
        (self.status == "rejected" && until > now).then_some(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn a_rejection_holds_until_its_reset() {
        let now = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let window = UsageWindow::from_headers(
            &headers(&[
                ("status", "rejected"),
                ("reset", "1800000600"),
                ("representative-claim", "five_hour"),
                ("5h-status", "rejected"),
                ("5h-utilization", "1.0"),
                ("5h-reset", "1800000600"),
            ]),
            now,
        )
        .unwrap();
        let reset = Utc.timestamp_opt(1_800_000_600, 0).unwrap();
        assert_eq!(window.exhausted_until(now), Some(reset));
        assert_eq!(window.exhausted_until(reset), None);
        assert_eq!(window.five_hour.utilization, Some(1.0));
        assert_eq!(window.seven_day, WindowPart::default());
        assert_eq!(window.representative_claim.as_deref(), Some("five_hour"));
    }

    #[test]
    fn a_warning_is_no_hold_and_no_status_is_no_window() {
        let now = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let warning = UsageWindow::from_headers(
            &headers(&[
                ("status", "allowed_warning"),
                ("reset", "1800000600"),
                ("7d-utilization", "0.35"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(warning.exhausted_until(now), None);
        assert_eq!(warning.seven_day.utilization, Some(0.35));
        assert_eq!(UsageWindow::from_headers(&headers(&[("reset", "1")]), now), None);
    }
}

//! The subscription's usage window at a glance (`#usage-window`): the share of the five-hour window used and
//! the time to its reset, or, while the limit refuses requests, when queued work resumes
//! (`#usage-window.limited`). A plain function: the agents screen fetches the window and ticks the clock.

use agentfarm_shared::usage::UsageWindow;
use chrono::{DateTime, Utc};
use yew::prelude::*;

use crate::time;

/// The bar for `window` at `now`; nothing before the model ever stated a window.
pub fn usage_bar(window: Option<&UsageWindow>, now: DateTime<Utc>) -> Html {
    let Some(window) = window else {
        return Html::default();
    };
    if let Some(reset) = window.exhausted_until(now) {
        return html! {
            <p id="usage-window" class="usage-window limited" role="status">
                { format!(
                    "Usage limit reached · queued work resumes at {} ({})",
                    time::local(reset),
                    time::countdown(reset, now)
                ) }
            </p>
        };
    }
    let part = &window.five_hour;
    let mut text = match part.utilization {
        Some(share) => format!("{}% of the 5-hour window used", percent(share)),
        None => format!("Usage: {}", window.status),
    };
    if let Some(reset) = part.resets_at.or(window.resets_at).filter(|at| *at > now) {
        text.push_str(&format!(" · resets {}", time::countdown(reset, now)));
    }
    html! { <p id="usage-window" class="usage-window" role="status">{ text }</p> }
}

/// A share (0 to 1) as a whole percentage, formatted as an integer: formatting the float itself would bring the
/// float formatting machinery into the first load.
fn percent(share: f64) -> i64 {
    // A saturating cast: NaN gives 0, absurd shares their bound.
    (share * 100.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn shares_are_whole_percentages() {
        assert_eq!(percent(0.91), 91);
        assert_eq!(percent(0.005), 1);
        assert_eq!(percent(1.0), 100);
        assert_eq!(percent(f64::NAN), 0);
    }
}

//! Small hooks shared by pages.

use chrono::{DateTime, Utc};
use gloo_timers::callback::Interval;
use yew::prelude::*;

use crate::time;

/// The current time, refreshed every `period_ms` milliseconds (for durations and countdowns).
#[hook]
pub fn use_now(period_ms: u32) -> DateTime<Utc> {
    let now = use_state(time::now);
    {
        let now = now.clone();
        use_effect_with(period_ms, move |&period| {
            let interval = Interval::new(period, move || now.set(time::now()));
            move || drop(interval)
        });
    }
    *now
}

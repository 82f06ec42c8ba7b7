//! Small hooks shared by pages (the current time), and whether the window is wide enough for the desktop
//! layout.

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

/// The width from which the app shows its desktop layout (style.css's media queries use the same).
const WIDE: &str = "(min-width: 1024px)";

/// True while the window is at least 1024 px wide. Read when the frame renders (a navigation, a change in the
/// store); style.css lays out whatever is rendered for the width it has at once.
pub fn is_wide() -> bool {
    web_sys::window()
        .and_then(|window| window.match_media(WIDE).ok().flatten())
        .is_some_and(|query| query.matches())
}

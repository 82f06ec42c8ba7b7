//! A live countdown to a time ("in 3m 05s"), ticking by itself so its parent does not re-render.

use chrono::{DateTime, Utc};
use yew::prelude::*;

use crate::hooks::use_now;
use crate::time;

/// Props of [`Countdown`].
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The moment counted down to.
    pub at: DateTime<Utc>,
}

/// The countdown, with the local time as a tooltip.
#[component]
pub fn Countdown(props: &Props) -> Html {
    let now = use_now(1_000);
    html! {
        <time class="countdown" datetime={props.at.to_rfc3339()} title={time::local(props.at)}>
            { time::countdown(props.at, now) }
        </time>
    }
}

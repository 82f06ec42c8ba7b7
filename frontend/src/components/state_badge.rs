//! A run state as a coloured badge (`span.badge.state-<state>[data-state]`).

use agentfarm_shared::run::RunState;
use yew::prelude::*;

/// A state for people.
pub fn label(state: RunState) -> &'static str {
    match state {
        RunState::Queued => "queued",
        RunState::Starting => "starting",
        RunState::Running => "running",
        RunState::WaitingForInput => "waiting for input",
        RunState::Succeeded => "succeeded",
        RunState::Failed => "failed",
        RunState::Stopped => "stopped",
        RunState::Lost => "lost",
    }
}

/// The badge: the state shown, true while a stop request is pending (shows "stopping…"), and an element
/// id when the page needs one.
#[inline(never)]
pub fn state_badge(state: RunState, stopping: bool, id: Option<&'static str>) -> Html {
    let name = state.as_str();
    let text = if stopping { "stopping…" } else { label(state) };
    html! {
        <span id={id} class={badge_class(name, stopping)} data-state={name}>
            { text }
        </span>
    }
}

/// The classes of a badge: `badge state-<state>`, plus `stopping`.
fn badge_class(state: &str, stopping: bool) -> String {
    let mut class = String::from("badge state-");
    class.push_str(state);
    if stopping {
        class.push_str(" stopping");
    }
    class
}

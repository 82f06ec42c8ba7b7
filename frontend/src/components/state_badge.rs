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

/// Props of [`StateBadge`].
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The state shown.
    pub state: RunState,
    /// True while a stop request is pending (shows "stopping…").
    #[prop_or_default]
    pub stopping: bool,
    /// An element id, when the page needs one.
    #[prop_or_default]
    pub id: Option<AttrValue>,
}

/// The badge.
#[component]
pub fn StateBadge(props: &Props) -> Html {
    let state = props.state.as_str();
    let text = if props.stopping {
        "stopping…"
    } else {
        label(props.state)
    };
    html! {
        <span id={props.id.clone()} class={badge_class(state, props.stopping)}
              data-state={state}>
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

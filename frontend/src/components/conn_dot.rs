//! The live connection's state as a dot in the top bar (`#connection-state[data-state]`).

use yew::prelude::*;

use crate::state::use_store;

/// The dot, with its state as text for screen readers and a tooltip.
#[component]
pub fn ConnDot() -> Html {
    let store = use_store();
    let conn = store.state.conn;
    html! {
        <span id="connection-state" class="conn" data-state={conn.as_str()} title={conn.label()} role="status">
            <span class="conn-dot" aria-hidden="true"></span>
            <span class="visually-hidden">{ conn.label() }</span>
        </span>
    }
}

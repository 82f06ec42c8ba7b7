//! The live connection's state as a dot in the top bar (`#connection-state[data-state]`).

use yew::prelude::*;

use crate::state::ConnState;

/// The dot, with its state as text for screen readers and a tooltip.
#[inline(never)]
pub fn conn_dot(conn: ConnState) -> Html {
    html! {
        <span id="connection-state" class="conn" data-state={conn.as_str()} title={conn.label()} role="status">
            <span class="conn-dot" aria-hidden="true"></span>
            <span class="visually-hidden">{ conn.label() }</span>
        </span>
    }
}

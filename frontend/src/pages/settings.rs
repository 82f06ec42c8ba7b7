//! Settings (`/settings`): the server's runtime (`#runtime-kind`; `#not-isolated` when agents are plain
//! processes), `#max-running`, `#server-version`, the live connection (`#connection-state-text`) and a
//! placeholder for notifications.

use agentfarm_shared::api::ServerInfo;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api;
use crate::state::use_store;

/// The settings screen.
#[component]
pub fn Settings() -> Html {
    let store = use_store();
    let info = use_state(|| None::<Result<ServerInfo, String>>);
    {
        let info = info.clone();
        use_effect_with((), move |_| {
            spawn_local(async move {
                info.set(Some(api::info().await.map_err(|f| f.to_string())));
            });
        });
    }
    let conn = store.state.conn;
    html! {
        <section class="page settings">
            <section class="card">
                <h2 class="section-title">{ "Server" }</h2>
                { match &*info {
                    None => html! { <p class="muted">{ "Loading…" }</p> },
                    Some(Err(error)) => html! { <p class="load-error" role="alert">{ format!("Could not load server info: {error}") }</p> },
                    Some(Ok(info)) => html! {
                        <>
                            <dl class="facts">
                                <div><dt>{ "Runtime" }</dt><dd id="runtime-kind" class="mono">{ &info.runtime.kind }</dd></div>
                                <div><dt>{ "Isolated" }</dt><dd id="runtime-isolated">{ if info.runtime.isolated { "yes" } else { "no" } }</dd></div>
                                <div><dt>{ "Max running" }</dt><dd id="max-running">{ info.max_running }</dd></div>
                                <div><dt>{ "Version" }</dt><dd id="server-version" class="mono">{ &info.version }</dd></div>
                            </dl>
                            <p class="muted">{ &info.runtime.description }</p>
                            if !info.runtime.isolated {
                                <div id="not-isolated" class="warning-box" role="note">
                                    <strong>{ "Not isolated." }</strong>
                                    { " Agents run as plain processes of the server's user, with access to everything \
                                       that user can read and write. Only run configs and repositories you trust." }
                                </div>
                            }
                        </>
                    },
                } }
            </section>
            <section class="card">
                <h2 class="section-title">{ "Live connection" }</h2>
                <p><span id="connection-state-text" data-state={conn.as_str()}>{ conn.label() }</span></p>
            </section>
            <section id="notifications" class="card">
                <h2 class="section-title">{ "Notifications" }</h2>
                <p class="muted">{ "Arrives with push notifications: you will be told when an agent needs input or finishes." }</p>
            </section>
        </section>
    }
}

//! Settings (`/settings`): the server's runtime (`#runtime-kind`, `#runtime-sandbox`; `#not-isolated` when
//! agents are plain processes; `#direct-credentials` when agents hold the owner's tokens), `#max-running`,
//! `#server-version`, the checks (`#cluster`, titled "This machine" for the gVisor sandbox: one
//! `li.check[data-status]` per row of `GET /api/doctor`, `#check-again`), the runs of the last two weeks
//! (`#history`), the live connection (`#connection-state-text`) and
//! notifications (`#notifications`), drawn by `frontend/push.js`: a plain script added with the section, so
//! it is fetched only when Settings opens (never in the first load); it draws the section's content each time
//! it is added.

use agentfarm_shared::api::{Check, CheckStatus, DoctorReport, ServerInfo};
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api;
use crate::components::run_history::RunHistory;
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
    // `None` while the checks run: on opening the screen and on "Check again".
    let checks = use_state(|| None::<Result<DoctorReport, String>>);
    {
        let checks = checks.clone();
        use_effect_with((), move |_| run_checks(checks));
    }
    let check_again = {
        let checks = checks.clone();
        Callback::from(move |_: MouseEvent| run_checks(checks.clone()))
    };
    let conn = store.state.conn;
    // The checks are the cluster's, or this machine's when agents run in its gVisor sandbox.
    let checks_title = match &*info {
        Some(Ok(info)) if info.runtime.sandbox == "gvisor" => "This machine",
        _ => "Cluster",
    };
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
                                <div><dt>{ "Sandbox" }</dt><dd id="runtime-sandbox" class="mono">{ &info.runtime.sandbox }</dd></div>
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
                            if info.direct_credentials {
                                <div id="direct-credentials" class="warning-box" role="alert">
                                    <strong>{ "Agents hold your tokens." }</strong>
                                    { " The server runs with --direct-credentials, a debugging mode: every agent gets \
                                       your Claude and GitHub tokens, and any agent can leak them. Turn it off." }
                                </div>
                            }
                        </>
                    },
                } }
            </section>
            <section id="cluster" class="card">
                <div class="section-bar">
                    <h2 class="section-title">{ checks_title }</h2>
                    <button id="check-again" class="btn btn-small" disabled={checks.is_none()} onclick={check_again}>
                        { "Check again" }
                    </button>
                </div>
                { match &*checks {
                    None => html! { <p class="muted">{ "Checking…" }</p> },
                    Some(Err(error)) => html! {
                        <p class="load-error" role="alert">{ format!("Could not run the cluster checks: {error}") }</p>
                    },
                    Some(Ok(report)) => html! {
                        <ul id="checks" class="plain-list">{ for report.checks.iter().map(check_row) }</ul>
                    },
                } }
            </section>
            <RunHistory />
            <section class="card">
                <h2 class="section-title">{ "Live connection" }</h2>
                <p><span id="connection-state-text" data-state={conn.as_str()}>{ conn.label() }</span></p>
            </section>
            <section id="notifications" class="card">
                <h2 class="section-title">{ "Notifications" }</h2>
                <script src="/push.js"></script>
            </section>
        </section>
    }
}

/// Runs the cluster checks (`GET /api/doctor`) into `checks`, showing "Checking…" meanwhile.
fn run_checks(checks: UseStateHandle<Option<Result<DoctorReport, String>>>) {
    checks.set(None);
    spawn_local(async move {
        checks.set(Some(api::doctor().await.map_err(|f| f.to_string())));
    });
}

/// One check (`li.check[data-status]`): its status as text in a coloured badge (`.check-status`), its name,
/// what was found and, unless it passed, how to fix it (`.check-fix`).
fn check_row(check: &Check) -> Html {
    let (status, badge) = match check.status {
        CheckStatus::Pass => ("pass", "badge check-status check-pass"),
        CheckStatus::Warn => ("warn", "badge check-status check-warn"),
        CheckStatus::Fail => ("fail", "badge check-status check-fail"),
    };
    html! {
        <li class="check" data-status={status}>
            <span class={badge}>{ check.status.label() }</span>{ " " }
            <strong class="check-name">{ &check.name }</strong>
            <p class="check-detail">{ &check.detail }</p>
            if let (Some(fix), false) = (&check.fix, check.status == CheckStatus::Pass) {
                <p class="check-fix">{ "Fix: " }<span class="mono">{ fix }</span></p>
            }
        </li>
    }
}

//! One run in the agents list (`li.run-item[data-run-id][data-state] > a.run-link`, `aria-current` on the
//! one open beside the list): config, state, times, the last line, and a quick Stop for active runs.

use agentfarm_shared::run::Run;
use yew::prelude::*;

use crate::actions;
use crate::components::state_badge::state_badge;
use crate::router::{Link, Route};
use crate::state::StoreCtx;
use crate::time;

/// What [`run_item`] shows.
pub struct Props {
    /// The run.
    pub run: Run,
    /// Its config's name, when known.
    pub config_name: Option<AttrValue>,
    /// A summary of its newest log line, when the client has it.
    pub last_line: Option<AttrValue>,
    /// True while a stop request is pending.
    pub stopping: bool,
    /// True while it is open beside the list.
    pub selected: bool,
    /// The current time, for the duration.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The list item.
#[inline(never)]
pub fn run_item(store: &StoreCtx, props: &Props) -> Html {
    let run = &props.run;
    let started = run.started_at.unwrap_or(run.created_at);
    let ended = run.finished_at.unwrap_or(props.now);
    let duration = time::duration(time::secs_between(started, ended));
    let last = props
        .last_line
        .clone()
        .or_else(|| {
            run.last_error
                .clone()
                .or_else(|| run.reason.clone())
                .map(AttrValue::from)
        })
        .unwrap_or_else(|| {
            AttrValue::from(crate::transcript::shorten(
                crate::transcript::first_line(&run.prompt),
                140,
            ))
        });
    let title = props
        .config_name
        .clone()
        .unwrap_or_else(|| AttrValue::from(run.config_id.clone()));
    let stop = {
        let store = store.clone();
        let id = run.id.clone();
        Callback::from(move |_: MouseEvent| actions::stop_run(&store, &id))
    };
    html! {
        <li key={run.id.clone()} class={if run.state.is_terminal() { "run-item card ended" } else { "run-item card" }}
            data-run-id={run.id.clone()} data-state={run.state.as_str()}>
            <Link to={Route::Run { id: run.id.clone() }} classes="run-link" current={props.selected}>
                <div class="run-head">
                    <span class="run-title">{ title }</span>
                    { state_badge(run.state, props.stopping, None) }
                </div>
                <div class="run-meta muted">
                    <span class="run-config-id">{ &run.config_id }</span>
                    { " · " }
                    <time datetime={run.created_at.to_rfc3339()}>{ time::local(run.created_at) }</time>
                    { " · " }
                    <span class="run-duration">{ duration }</span>
                </div>
                <div class="run-last">{ last }</div>
            </Link>
            if !run.state.is_terminal() {
                <button class="stop-button btn btn-danger-outline" data-run-id={run.id.clone()}
                        disabled={props.stopping} onclick={stop}>
                    { if props.stopping { "Stopping…" } else { "Stop" } }
                </button>
            }
        </li>
    }
}

//! Agents (`/`): the usage window (`#usage-window`), active runs first, then recent ones (`#runs >
//! li.run-item`, the one open beside the list with `aria-current`), or an empty state pointing to the configs
//! (`#agents-empty`).

use agentfarm_shared::usage::UsageWindow;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api;
use crate::components::run_item::{Props as RunItemProps, run_item};
use crate::components::usage_window::usage_bar;
use crate::hooks::use_now;
use crate::router::{Link, Route, use_navigator};
use crate::state::{Action, use_store};

/// How many recent runs are fetched besides the live snapshot.
const RECENT: u32 = 100;

/// The agents screen (on a wide screen also beside the run open).
#[component]
pub fn Agents() -> Html {
    let store = use_store();
    let open = use_navigator().and_then(|navigator| match navigator.route {
        Route::Run { id } => Some(id),
        _ => None,
    });
    let now = use_now(1_000);
    let error = use_state(|| None::<String>);
    let loaded = use_state(|| false);
    {
        let store = store.clone();
        let error = error.clone();
        let loaded = loaded.clone();
        use_effect_with((), move |_| {
            spawn_local(async move {
                match api::runs(RECENT).await {
                    Ok(runs) => {
                        store.dispatch.emit(Action::UpsertMany(runs));
                        error.set(None);
                    }
                    Err(failure) => error.set(Some(format!("Could not load runs: {failure}"))),
                }
                loaded.set(true);
                if store.state.configs.is_none()
                    && let Ok(configs) = api::configs().await
                {
                    store.dispatch.emit(Action::Configs(configs));
                }
            });
        });
    }
    let state = &store.state;
    let runs = state.ordered_runs();
    let active = runs.iter().filter(|r| !r.state.is_terminal()).count();
    // The usage window: fetched when the screen opens and whenever a run ends.
    let window = use_state(|| None::<UsageWindow>);
    {
        let window = window.clone();
        use_effect_with(runs.len() - active, move |_| {
            spawn_local(async move {
                if let Ok(found) = api::usage().await {
                    window.set(found);
                }
            });
        });
    }
    html! {
        <section class="page agents">
            { usage_bar(window.as_ref(), now) }
            if let Some(error) = &*error {
                <p class="load-error" role="alert">{ error }</p>
            }
            if runs.is_empty() {
                if *loaded {
                    <div id="agents-empty" class="empty card">
                        <p>{ "No agents yet. Launch one from a config." }</p>
                        <Link to={Route::Configs} classes="btn btn-primary">{ "Go to configs" }</Link>
                    </div>
                } else {
                    <p class="muted">{ "Loading…" }</p>
                }
            } else {
                <p class="list-caption muted">
                    { format!("{active} active · {} recent", runs.len() - active) }
                </p>
                <ul id="runs" class="run-list">
                    { for runs.iter().map(|run| run_item(&store, &RunItemProps {
                        run: (*run).clone(),
                        config_name: state.config_name(&run.config_id).map(|n| AttrValue::from(n.to_owned())),
                        last_line: state.logs.get(&run.id).and_then(|l| l.summary()).map(AttrValue::from),
                        stopping: state.is_stopping(run),
                        selected: open.as_ref() == Some(&run.id),
                        now,
                    })) }
                </ul>
            }
        </section>
    }
}

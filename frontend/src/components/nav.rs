//! The sections' navigation, both rendered and one shown by style.css: the phone's bottom tab bar
//! (`nav.tabbar > a.tab`) and, from 1024 px wide, the sidebar (`nav.sidebar > a.side-link`, the active runs
//! and their states under Agents in `#side-runs > li[data-run-id] > a.side-run`). The current one has
//! `aria-current="page"`.

use yew::prelude::*;

use crate::components::icon::{AGENTS, CONFIGS, SETTINGS, icon};
use crate::components::state_badge::state_badge;
use crate::router::{Link, Route};
use crate::state::Store;

/// The sections: route, label, icon.
fn sections() -> [(Route, &'static str, &'static str); 3] {
    [
        (Route::Agents, "Agents", AGENTS),
        (Route::Configs, "Configs", CONFIGS),
        (Route::Settings, "Settings", SETTINGS),
    ]
}

/// The bottom tab bar.
pub fn tabbar(route: &Route) -> Html {
    sections_nav(route, None)
}

/// The sidebar: the sections, and the active runs under Agents.
pub fn sidebar(route: &Route, store: &Store) -> Html {
    sections_nav(route, Some(store))
}

/// The sections' links: the tab bar, or with the store the sidebar.
#[inline(never)]
fn sections_nav(route: &Route, store: Option<&Store>) -> Html {
    let tab = route.tab();
    html! {
        <nav class={if store.is_some() { "sidebar" } else { "tabbar" }} aria-label="Sections">
            { for sections().into_iter().map(|(target, label, path)| {
                let current = tab.as_ref() == Some(&target);
                let classes = match (store.is_some(), current) {
                    (true, true) => "side-link active",
                    (true, false) => "side-link",
                    (false, true) => "tab active",
                    (false, false) => "tab",
                };
                let runs = store.filter(|_| target == Route::Agents).map(|store| active_runs(route, store));
                html! { <>
                    <Link to={target} classes={classes} current={current}>
                        { icon(path) }
                        <span class="tab-label">{ label }</span>
                    </Link>
                    { runs.unwrap_or_default() }
                </> }
            }) }
        </nav>
    }
}

/// The active runs and their states, the open one current.
fn active_runs(route: &Route, store: &Store) -> Html {
    let active: Vec<_> = store
        .ordered_runs()
        .into_iter()
        .filter(|run| !run.state.is_terminal())
        .collect();
    if active.is_empty() {
        return Html::default();
    }
    html! {
        <ul id="side-runs" class="side-runs" aria-label="Active runs">
            { for active.iter().map(|run| {
                let selected = matches!(route, Route::Run { id } if *id == run.id);
                html! {
                    <li key={run.id.clone()} data-run-id={run.id.clone()}>
                        <Link to={Route::Run { id: run.id.clone() }} classes="side-run" current={selected}>
                            <span class="side-run-name">
                                { store.config_name(&run.config_id).unwrap_or(&run.config_id) }
                            </span>
                            { state_badge(run.state, store.is_stopping(run), None) }
                        </Link>
                    </li>
                }
            }) }
        </ul>
    }
}

//! The app's frame: the store and live connection contexts, the top bar (title and connection
//! dot), the sections' navigation (tab bar or sidebar), the page and toasts; from 1024 px wide the agents
//! list and a run side by side (`.panes > .pane-list + .pane-detail`).

use std::rc::Rc;

use yew::prelude::*;

use crate::components::conn_dot::conn_dot;
use crate::components::nav::{sidebar, tabbar};
use crate::components::toasts::toasts;
use crate::hooks::is_wide;
use crate::pages::agents::Agents;
use crate::pages::config_editor::ConfigEditor;
use crate::pages::configs::Configs;
use crate::pages::run::RunPage;
use crate::pages::settings::Settings;
use crate::router::{Link, Route, Router, use_navigator};
use crate::state::{Root, StoreCtx, use_store};
use crate::ws::LiveClient;

fn switch(route: Route) -> Html {
    match route {
        Route::Agents => html! { <Agents /> },
        Route::Run { id } => {
            let page = AttrValue::from(id.clone());
            html! { <RunPage key={id} id={page} /> }
        }
        Route::Configs => html! { <Configs /> },
        Route::NewConfig => html! { <ConfigEditor /> },
        Route::EditConfig { id } => html! { <ConfigEditor key={id} id={AttrValue::from(id.clone())} /> },
        Route::Settings => html! { <Settings /> },
        Route::NotFound => html! {
            <section class="page empty card">
                <p>{ "Nothing here." }</p>
                <Link to={Route::Agents} classes="btn">{ "Go to agents" }</Link>
            </section>
        },
    }
}

/// The root: store, live connection, router.
#[component]
pub fn App() -> Html {
    let root = use_reducer(Root::default);
    let ctx = StoreCtx {
        state: Rc::clone(&root.0),
        dispatch: root.dispatcher().to_callback(),
    };
    let live = {
        let dispatch = ctx.dispatch.clone();
        use_memo((), move |_| LiveClient::start(dispatch))
    };
    html! {
        <ContextProvider<StoreCtx> context={ctx}>
            <ContextProvider<LiveClient> context={(*live).clone()}>
                <Router>
                    <Layout />
                </Router>
            </ContextProvider<LiveClient>>
        </ContextProvider<StoreCtx>>
    }
}

/// Top bar, navigation, page.
#[component]
fn Layout() -> Html {
    let store = use_store();
    let route = use_navigator().map_or(Route::NotFound, |n| n.route);
    let split = is_wide() && matches!(route, Route::Agents | Route::Run { .. });
    html! {
        <div class="app">
            <header class="topbar">
                <span class="brand">{ "agentfarm" }</span>
                <span class="topbar-title" id="page-title">{ route.title() }</span>
                { conn_dot(store.state.conn) }
            </header>
            { sidebar(&route, &store.state) }
            <main id="main" class={if split { "content split" } else { "content" }}>
                if split { { panes(&route) } } else { { switch(route.clone()) } }
            </main>
            { tabbar(&route) }
            { toasts(&store.state.toasts) }
        </div>
    }
}

/// The desktop's two panes: the agents list, and the selected run.
fn panes(route: &Route) -> Html {
    html! {
        <div class="panes">
            <div class="pane pane-list"><Agents /></div>
            <div class="pane pane-detail">
                if let Route::Run { .. } = route {
                    { switch(route.clone()) }
                } else {
                    <p class="pane-empty muted">{ "Select a run." }</p>
                }
            </div>
        </div>
    }
}

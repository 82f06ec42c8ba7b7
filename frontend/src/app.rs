//! The app's frame: the store and live connection contexts, the top bar (title and connection
//! dot), the page, the bottom tab bar (`nav.tabbar > a.tab`) and toasts.

use std::rc::Rc;

use yew::prelude::*;

use crate::components::conn_dot::conn_dot;
use crate::components::toasts::toasts;
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
        Route::Run { id } => html! { <RunPage id={AttrValue::from(id)} /> },
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

/// Top bar, page, tab bar.
#[component]
fn Layout() -> Html {
    let store = use_store();
    let route = use_navigator().map_or(Route::NotFound, |n| n.route);
    let tab = route.tab();
    let tabs = [
        (Route::Agents, "Agents", "◉"),
        (Route::Configs, "Configs", "☰"),
        (Route::Settings, "Settings", "⚙"),
    ];
    html! {
        <div class="app">
            <header class="topbar">
                <span class="brand">{ "agentfarm" }</span>
                <span class="topbar-title" id="page-title">{ route.title() }</span>
                { conn_dot(store.state.conn) }
            </header>
            <main id="main" class="content">
                { switch(route.clone()) }
            </main>
            <nav class="tabbar" aria-label="Sections">
                { for tabs.into_iter().map(|(target, label, icon)| {
                    let current = tab.as_ref() == Some(&target);
                    html! {
                        <Link to={target} classes={if current { "tab active" } else { "tab" }} current={current}>
                            <span class="tab-icon" aria-hidden="true">{ icon }</span>
                            <span class="tab-label">{ label }</span>
                        </Link>
                    }
                }) }
            </nav>
            { toasts(&store.state.toasts) }
        </div>
    }
}

//! Configs (`/configs`): every config (`#configs > li.config-item[data-config-id]`) with a Launch button
//! (`button.launch-button[data-config-id]`, which opens the launch sheet) and an edit link (`a.edit-link`);
//! "New config" (`#new-config`).

use agentfarm_shared::config::AgentConfig;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api;
use crate::components::icon::{PLUS, icon};
use crate::components::launch_sheet::LaunchSheet;
use crate::router::{Link, Route, use_navigator};
use crate::state::{Action, use_store};

/// The configs screen.
#[component]
pub fn Configs() -> Html {
    let store = use_store();
    let error = use_state(|| None::<String>);
    let launching = use_state(|| None::<String>);
    {
        let store = store.clone();
        let error = error.clone();
        use_effect_with((), move |_| {
            spawn_local(async move {
                match api::configs().await {
                    Ok(configs) => store.dispatch.emit(Action::Configs(configs)),
                    Err(failure) => error.set(Some(format!("Could not load configs: {failure}"))),
                }
            });
        });
    }
    let navigator = use_navigator();
    let new_config = Callback::from(move |_: MouseEvent| {
        if let Some(navigator) = &navigator {
            navigator.push(&Route::NewConfig);
        }
    });
    let launch = {
        let launching = launching.clone();
        Callback::from(move |id: String| launching.set(Some(id)))
    };
    let sheet = launching.as_ref().and_then(|id| {
        let config = store.state.configs.as_ref()?.iter().find(|c| &c.id == id)?;
        let launching = launching.clone();
        Some(html! {
            <LaunchSheet config_id={config.id.clone()} task={config.spec.task_prompt.clone()}
                         name={config.spec.name.clone()}
                         on_close={Callback::from(move |()| launching.set(None))} />
        })
    });

    html! {
        <section class="page configs">
            <div class="page-actions">
                <button id="new-config" class="btn btn-primary" onclick={new_config}>
                    { icon(PLUS) }{ "New config" }
                </button>
            </div>
            if let Some(error) = &*error {
                <p class="load-error" role="alert">{ error }</p>
            }
            { match &store.state.configs {
                None => html! { <p class="muted">{ "Loading…" }</p> },
                Some(configs) if configs.is_empty() => html! {
                    <div id="configs-empty" class="empty card">
                        <p>{ "No configs yet. A config says which repos, which prompt and which model an agent gets." }</p>
                    </div>
                },
                Some(configs) => html! {
                    <ul id="configs" class="config-list">
                        { for configs.iter().map(|c| config_item(c, &launch)) }
                    </ul>
                },
            } }
            { sheet.unwrap_or_default() }
        </section>
    }
}

fn config_item(config: &AgentConfig, launch: &Callback<String>) -> Html {
    let spec = &config.spec;
    let onclick = {
        let id = config.id.clone();
        launch.reform(move |_: MouseEvent| id.clone())
    };
    let repos = match spec.repos.len() {
        0 => "no repos".to_owned(),
        1 => "1 repo".to_owned(),
        n => format!("{n} repos"),
    };
    html! {
        <li key={config.id.clone()} class="config-item card" data-config-id={config.id.clone()}>
            <div class="config-head">
                <span class="config-name">{ &spec.name }</span>
                <span class="muted mono">{ format!("v{}", config.version) }</span>
            </div>
            if !spec.description.is_empty() {
                <p class="config-description">{ &spec.description }</p>
            }
            <p class="config-meta muted">
                <span class="config-repos">{ repos }</span>{ " · " }
                <span class="config-model">{ &spec.model }</span>{ " · " }
                <span>{ format!("{} CPU, {}", spec.cpu, spec.memory) }</span>
            </p>
            <div class="actions">
                <button class="launch-button btn btn-primary" data-config-id={config.id.clone()} {onclick}>
                    { "Launch" }
                </button>
                <Link to={Route::EditConfig { id: config.id.clone() }} classes="edit-link btn">
                    { "Edit" }
                </Link>
            </div>
        </li>
    }
}

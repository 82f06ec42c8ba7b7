//! The config editor (`/configs/new`, `/configs/:id`): every field of a config, each input's `id` and `name`
//! equal to its wire name (`name`, `repos`, `cpu`, …) and its error in `p.field-error[data-field=<field>]`
//! (repository chips: `data-field="repos[<i>]"`); other errors in `#form-errors`. Saves with
//! `#save-config`; for an existing config also Launch (`button.launch-button`, which opens the launch sheet
//! with its saved task), Delete (`#delete-config`) and its version history (`#versions >
//! details.version[data-version]`).

mod cards;
mod fields;
mod model;
mod versions;

use yew::prelude::*;

use crate::components::launch_sheet::LaunchSheet;
use crate::router::{Link, Route};
use fields::Fields;
use model::{Change, use_editor};
use versions::versions_view;

/// Props of [`ConfigEditor`].
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The config edited; `None` for a new one.
    #[prop_or_default]
    pub id: Option<AttrValue>,
}

/// The editor screen.
#[component]
pub fn ConfigEditor(props: &Props) -> Html {
    let id = props.id.as_ref().map(|id| id.to_string());
    let editor = use_editor(id.clone());
    let launching = use_state(|| false);
    let state = &*editor.state;
    let edit = editor.state.dispatcher();
    let on_field = {
        let edit = edit.clone();
        Callback::from(move |(field, value): (&'static str, String)| edit.dispatch(Change::Set(field, value)))
    };
    let launch = {
        let launching = launching.clone();
        Callback::from(move |_: MouseEvent| launching.set(true))
    };

    if let Some(error) = &state.load_error {
        return html! {
            <section class="page editor">
                <p class="load-error" role="alert">{ error }</p>
                <Link to={Route::Configs} classes="btn">{ "Back to configs" }</Link>
            </section>
        };
    }
    if id.is_some() && state.current.is_none() {
        return html! { <section class="page editor"><p class="muted">{ "Loading…" }</p></section> };
    }

    let f = &state.form;
    let errs = &state.errors;
    let fields = Fields {
        errors: errs,
        on_field: &on_field,
    };
    html! {
        <section class="page editor">
            <h1 class="page-heading">
                { match &state.current {
                    Some(config) => format!("Edit {} · v{}", config.spec.name, config.version),
                    None => "New config".to_owned(),
                } }
            </h1>
            <form id="config-form" class="config-form" novalidate=true onsubmit={editor.save}>
                if state.summary.is_some() || !errs.other.is_empty() {
                    <div id="form-errors" class="form-errors error-box" role="alert">
                        if let Some(summary) = &state.summary { <p>{ summary }</p> }
                        if !errs.other.is_empty() {
                            <ul>{ for errs.other.iter().map(|e| html! { <li>{ e }</li> }) }</ul>
                        }
                    </div>
                }

                { cards::about(f, &fields) }
                { cards::repositories(f, &fields, &edit) }
                { cards::prompts(f, &fields) }
                { cards::model(f, &fields) }
                { cards::resources(f, &fields, &edit) }
                { cards::sandbox(f, &fields) }
                { cards::limits(f, &fields) }
                { cards::credentials(f, &fields) }

                <div class="actions sticky-actions">
                    <button id="save-config" type="submit" class="btn btn-primary" disabled={state.saving}>
                        { if state.saving { "Saving…" } else if id.is_some() { "Save new version" } else { "Create config" } }
                    </button>
                    if let Some(id) = &id {
                        <button type="button" class="launch-button btn" data-config-id={id.clone()} onclick={launch}>
                            { "Launch" }
                        </button>
                        <button id="delete-config" type="button" class="btn btn-danger-outline" onclick={editor.delete.clone()}>
                            { "Delete" }
                        </button>
                    }
                </div>
            </form>
            if let Some(versions) = &state.versions {
                { versions_view(versions) }
            }
            if let Some(config) = state.current.as_ref().filter(|_| *launching) {
                <LaunchSheet config_id={config.id.clone()} task={config.spec.task_prompt.clone()}
                             name={config.spec.name.clone()}
                             on_close={Callback::from(move |()| launching.set(false))} />
            }
        </section>
    }
}

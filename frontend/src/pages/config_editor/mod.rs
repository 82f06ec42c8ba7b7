//! The config editor (`/configs/new`, `/configs/:id`): every field of a config, each input's `id` and `name`
//! equal to its wire name (`name`, `repos`, `cpu`, …) and its error in `p.field-error[data-field=<field>]`
//! (repository chips: `data-field="repos[<i>]"`); other errors in `#form-errors`. Saves with
//! `#save-config`; for an existing config also Launch (`button.launch-button`, which opens the launch sheet
//! with its saved task), Delete (`#delete-config`) and its version history (`#versions > details.version[data-version]`).

mod fields;
mod model;
mod versions;

use agentfarm_shared::config::{CredentialMode, Egress};
use yew::prelude::*;

use crate::components::launch_sheet::LaunchSheet;
use crate::config_form::{MODELS, PRESETS, RUNTIME_CLASSES};
use crate::router::{Link, Route};
use fields::{Fields, Kind, TextField, card, change_cb, input_cb, repo_chips};
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

                { card("About", html! { <>
                    { fields.text(TextField { field: "name", label: "Name", kind: Kind::Words, required: true, placeholder: "Fix flaky tests" }, &f.name) }
                    { fields.text(TextField { field: "description", label: "Description", kind: Kind::Lines(2), required: false, placeholder: "What this agent is for" }, &f.description) }
                </> }) }

                { card("Repositories", html! { <>
                    { repo_chips(&f.repos, &f.repo_draft, errs, &on_field, &edit) }
                </> }) }

                { card("Prompts", html! { <>
                    { fields.text(TextField { field: "task_prompt", label: "Task prompt", kind: Kind::Lines(6), required: true, placeholder: "What the agent should do" }, &f.task_prompt) }
                    { fields.text(TextField { field: "system_prompt", label: "System prompt (appended to Claude's)", kind: Kind::Lines(3), required: false, placeholder: "Optional" }, &f.system_prompt) }
                </> }) }

                { card("Model", html! { <>
                    <div class="field">
                        <label for="model">{ "Model" }</label>
                        <input id="model" name="model" type="text" list="model-suggestions" autocapitalize="off"
                               autocomplete="off" spellcheck="false" value={f.model.clone()}
                               aria-invalid={errs.get("model").is_some().then_some("true")}
                               oninput={input_cb(&on_field, "model")} />
                        <datalist id="model-suggestions">
                            { for MODELS.iter().map(|m| html! { <option value={*m}></option> }) }
                        </datalist>
                        <p class="hint muted">{ "An alias (sonnet, opus, haiku) or a full model name." }</p>
                        { fields.error("model") }
                    </div>
                </> }) }

                { card("Resources", html! { <>
                    <div class="presets" role="group" aria-label="Resource presets">
                        { for PRESETS.iter().map(|(name, cpu, memory)| {
                            let edit = edit.clone();
                            let name: &'static str = name;
                            let pressed = f.current_preset() == Some(name);
                            html! {
                                <button type="button" class={if pressed { "preset btn selected" } else { "preset btn" }}
                                        data-preset={name.to_ascii_lowercase()} aria-pressed={pressed.to_string()}
                                        onclick={Callback::from(move |_: MouseEvent| edit.dispatch(Change::Preset(name)))}>
                                    <span class="preset-name">{ name }</span>
                                    <span class="preset-size">{ format!("{cpu} CPU · {memory}") }</span>
                                </button>
                            }
                        }) }
                    </div>
                    <div class="row">
                        { fields.text(TextField { field: "cpu", label: "CPU", kind: Kind::Code, required: false, placeholder: "1, 2 or 500m" }, &f.cpu) }
                        { fields.text(TextField { field: "memory", label: "Memory", kind: Kind::Code, required: false, placeholder: "2Gi" }, &f.memory) }
                    </div>
                </> }) }

                { card("Sandbox", html! { <>
                    <div class="field">
                        <label for="runtime_class">{ "Runtime class" }</label>
                        <select id="runtime_class" name="runtime_class" onchange={change_cb(&on_field, "runtime_class")}
                                aria-invalid={errs.get("runtime_class").is_some().then_some("true")}>
                            { for RUNTIME_CLASSES.iter().map(|(value, label)| html! {
                                <option value={*value} selected={f.runtime_class == *value}>{ *label }</option>
                            }) }
                            if !f.runtime_class.is_empty() && !RUNTIME_CLASSES.iter().any(|(v, _)| *v == f.runtime_class) {
                                <option value={f.runtime_class.clone()} selected=true>{ f.runtime_class.clone() }</option>
                            }
                        </select>
                        <p class="hint muted">
                            { "gVisor works on any node. Kata runs each agent in a small VM and needs nodes with KVM \
                               (bare metal or nested virtualisation)." }
                        </p>
                        { fields.error("runtime_class") }
                    </div>
                    { fields.text(TextField { field: "image_tag", label: "Agent image tag", kind: Kind::Code, required: false, placeholder: "Server default" }, &f.image_tag) }
                </> }) }

                { card("Limits", html! { <>
                    <div class="row">
                        { fields.text(TextField { field: "max_turns", label: "Max turns", kind: Kind::Number("numeric"), required: false, placeholder: "100" }, &f.max_turns) }
                        { fields.text(TextField { field: "timeout_minutes", label: "Timeout (minutes)", kind: Kind::Number("numeric"), required: false, placeholder: "120" }, &f.timeout_minutes) }
                    </div>
                    { fields.text(TextField { field: "budget_usd", label: "Budget (US dollars)", kind: Kind::Number("decimal"), required: false, placeholder: "No limit" }, &f.budget_usd) }
                </> }) }

                { card("Claude credentials", html! { <>
                    { fields.choice("credential_mode", "Credential mode", CREDENTIAL_MODES, credential_mode(f.credential_mode),
                        (f.credential_mode == CredentialMode::SharedVolume).then(|| html! {
                            <p id="shared-volume-warning" class="warning-box" role="note">
                                { "Every shared-volume agent uses one Claude login. Claude rotates refresh tokens, so \
                                   agents can log each other out, and one agent can plant hooks or settings that run \
                                   in the others. The server must offer it (--shared-claude-dir, or --claude-home-claim on Kubernetes)." }
                            </p>
                        })) }
                    { fields.choice("egress", "Network", EGRESS, f.egress.as_str(),
                        (f.egress == Egress::ProxyOnly).then(|| html! {
                            <p id="proxy-only-note" class="muted">
                                { "No package registry either, unless your cluster runs a mirror its policy lets \
                                   agents reach. Enforced on Kubernetes; the local runtime cannot enforce it." }
                            </p>
                        })) }
                    { fields.choice("auto_resume", "After the usage limit", AUTO_RESUME,
                        if f.auto_resume { "automatic" } else { "offer" }, None) }
                </> }) }

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
                             title={format!("Launch {}", config.spec.name)}
                             on_close={Callback::from(move |()| launching.set(false))} />
            }
        </section>
    }
}

/// The credential modes the editor offers: wire name, label.
const CREDENTIAL_MODES: &[(&str, &str)] = &[
    ("token", "Token (private config per agent)"),
    ("shared-volume", "Shared volume (risky)"),
];

/// The egress levels the editor offers.
const EGRESS: &[(&str, &str)] = &[
    ("open", "Open: public HTTPS and the control plane"),
    (
        "proxy-only",
        "Proxies only: the model and git through the control plane",
    ),
];

/// What happens after the usage limit stops a run.
const AUTO_RESUME: &[(&str, &str)] = &[
    ("offer", "Offer “Resume after reset”"),
    ("automatic", "Resume automatically after reset"),
];

fn credential_mode(mode: CredentialMode) -> &'static str {
    match mode {
        CredentialMode::Token => "token",
        CredentialMode::SharedVolume => "shared-volume",
    }
}

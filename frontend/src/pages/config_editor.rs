//! The config editor (`/configs/new`, `/configs/:id`): every field of a config, each input's `id` and `name`
//! equal to its wire name (`name`, `repos`, `cpu`, …) and its error in `p.field-error[data-field=<field>]`
//! (repository chips: `data-field="repos[<i>]"`); other errors in `#form-errors`. Saves with
//! `#save-config`; for an existing config also Launch (`button.launch-button`), Delete (`#delete-config`)
//! and its version history (`#versions > details.version[data-version]`).

use std::rc::Rc;

use agentfarm_shared::config::{AgentConfig, ConfigSpec, ConfigVersion, CredentialMode, Egress};
use wasm_bindgen::JsCast;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::actions;
use crate::api;
use crate::config_form::{FieldErrors, Form, MODELS, PRESETS, RUNTIME_CLASSES};
use crate::router::{Link, Route, use_navigator};
use crate::state::{Action, use_store};
use crate::time;

/// Props of [`ConfigEditor`].
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The config edited; `None` for a new one.
    #[prop_or_default]
    pub id: Option<AttrValue>,
}

/// The form's reducer state.
#[derive(Default, PartialEq)]
struct FormState(Form);

/// Every change to the form.
enum Edit {
    Set(&'static str, String),
    AddRepo,
    RemoveRepo(usize),
    Preset(&'static str),
    Load(Box<Form>),
}

impl Reducible for FormState {
    type Action = Edit;

    fn reduce(self: Rc<Self>, edit: Edit) -> Rc<Self> {
        let mut form = self.0.clone();
        match edit {
            Edit::Set(field, value) => form.set(field, value),
            Edit::AddRepo => {
                form.add_repo();
            }
            Edit::RemoveRepo(index) => form.remove_repo(index),
            Edit::Preset(name) => form.preset(name),
            Edit::Load(loaded) => form = *loaded,
        }
        Rc::new(FormState(form))
    }
}

/// The editor screen.
#[component]
pub fn ConfigEditor(props: &Props) -> Html {
    let store = use_store();
    let navigator = use_navigator();
    let form = use_reducer(FormState::default);
    let errors = use_state(FieldErrors::default);
    let summary = use_state(|| None::<String>);
    let saving = use_state(|| false);
    let launching = use_state(|| false);
    let current = use_state(|| None::<AgentConfig>);
    let versions = use_state(|| None::<Vec<ConfigVersion>>);
    let load_error = use_state(|| None::<String>);
    let id = props.id.as_ref().map(|id| id.to_string());

    {
        let form = form.dispatcher();
        let (current, versions, load_error, errors, summary) = (
            current.clone(),
            versions.clone(),
            load_error.clone(),
            errors.clone(),
            summary.clone(),
        );
        use_effect_with(id.clone(), move |id| {
            errors.set(FieldErrors::default());
            summary.set(None);
            load_error.set(None);
            match id.clone() {
                None => {
                    current.set(None);
                    versions.set(None);
                    form.dispatch(Edit::Load(Box::default()));
                }
                Some(id) => spawn_local(async move {
                    match api::config(&id).await {
                        Ok(config) => {
                            form.dispatch(Edit::Load(Box::new(Form::from_spec(&config.spec))));
                            current.set(Some(config));
                        }
                        Err(failure) => load_error.set(Some(format!("Could not load the config: {failure}"))),
                    }
                    reload_versions(&id, versions).await;
                }),
            }
        });
    }

    let on_field = {
        let form = form.dispatcher();
        Callback::from(move |(field, value): (&'static str, String)| form.dispatch(Edit::Set(field, value)))
    };

    let onsubmit = {
        let form = form.clone();
        let (errors, summary, saving, current, versions) = (
            errors.clone(),
            summary.clone(),
            saving.clone(),
            current.clone(),
            versions.clone(),
        );
        let store = store.clone();
        let navigator = navigator.clone();
        let id = id.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if *saving {
                return;
            }
            let spec = match form.0.to_spec() {
                Ok(spec) => spec,
                Err(field_errors) => {
                    errors.set(FieldErrors::new(&field_errors));
                    summary.set(Some(
                        "Some fields need fixing; see the messages below them.".into(),
                    ));
                    focus_first_error();
                    return;
                }
            };
            errors.set(FieldErrors::default());
            summary.set(None);
            saving.set(true);
            let (form, errors, summary, saving, current, versions, store, navigator, id) = (
                form.dispatcher(),
                errors.clone(),
                summary.clone(),
                saving.clone(),
                current.clone(),
                versions.clone(),
                store.clone(),
                navigator.clone(),
                id.clone(),
            );
            spawn_local(async move {
                let result = match &id {
                    Some(id) => api::update_config(id, &spec).await,
                    None => api::create_config(&spec).await,
                };
                saving.set(false);
                match result {
                    Ok(config) => {
                        store.dispatch.emit(Action::UpsertConfig(config.clone()));
                        store.info(format!("Saved {} (version {})", config.spec.name, config.version));
                        match id {
                            Some(id) => {
                                form.dispatch(Edit::Load(Box::new(Form::from_spec(&config.spec))));
                                current.set(Some(config));
                                reload_versions(&id, versions).await;
                            }
                            None => {
                                if let Some(navigator) = navigator {
                                    navigator.replace(&Route::EditConfig { id: config.id });
                                }
                            }
                        }
                    }
                    Err(failure) => {
                        let mut fields = failure.error.fields.clone();
                        // A new config whose name gives an id already taken: the name is at fault.
                        if fields.is_empty() && id.is_none() && failure.error.code == "conflict" {
                            fields.push(agentfarm_shared::validate::FieldError {
                                field: "name".to_owned(),
                                message: failure.error.message.clone(),
                            });
                        }
                        if fields.is_empty()
                            && let Some(field) = failure.error.field.clone()
                        {
                            fields.push(agentfarm_shared::validate::FieldError {
                                field,
                                message: failure.error.message.clone(),
                            });
                        }
                        let sorted = FieldErrors::new(&fields);
                        let has_fields = !sorted.by_field.is_empty();
                        errors.set(sorted);
                        summary.set(Some(failure.error.message));
                        if has_fields {
                            focus_first_error();
                        }
                    }
                }
            });
        })
    };

    let launch = {
        let store = store.clone();
        let navigator = navigator.clone();
        let launching = launching.clone();
        let id = id.clone();
        Callback::from(move |_: MouseEvent| {
            let Some(id) = &id else { return };
            launching.set(true);
            let launching = launching.clone();
            actions::launch(
                &store,
                navigator.clone(),
                id,
                Callback::from(move |()| launching.set(false)),
            );
        })
    };
    let delete = {
        let store = store;
        let navigator = navigator;
        let id = id.clone();
        Callback::from(move |_: MouseEvent| {
            let Some(id) = id.clone() else { return };
            let sure = web_sys::window()
                .and_then(|w| {
                    w.confirm_with_message("Delete this config and its versions?")
                        .ok()
                })
                .unwrap_or(false);
            if !sure {
                return;
            }
            let (store, navigator) = (store.clone(), navigator.clone());
            spawn_local(async move {
                match api::delete_config(&id).await {
                    Ok(()) => {
                        store.dispatch.emit(Action::RemoveConfig(id));
                        store.info("Config deleted");
                        if let Some(navigator) = navigator {
                            navigator.push(&Route::Configs);
                        }
                    }
                    Err(failure) => store.error(format!("Could not delete the config: {failure}")),
                }
            });
        })
    };

    if let Some(error) = &*load_error {
        return html! {
            <section class="page editor">
                <p class="load-error" role="alert">{ error }</p>
                <Link to={Route::Configs} classes="btn">{ "Back to configs" }</Link>
            </section>
        };
    }
    if id.is_some() && current.is_none() {
        return html! { <section class="page editor"><p class="muted">{ "Loading…" }</p></section> };
    }

    let f = &form.0;
    let errs = &*errors;
    html! {
        <section class="page editor">
            <h1 class="page-heading">
                { match &*current {
                    Some(config) => format!("Edit {} · v{}", config.spec.name, config.version),
                    None => "New config".to_owned(),
                } }
            </h1>
            <form id="config-form" class="config-form" novalidate=true onsubmit={onsubmit}>
                if summary.is_some() || !errs.other.is_empty() {
                    <div id="form-errors" class="form-errors error-box" role="alert">
                        if let Some(summary) = &*summary { <p>{ summary }</p> }
                        if !errs.other.is_empty() {
                            <ul>{ for errs.other.iter().map(|e| html! { <li>{ e }</li> }) }</ul>
                        }
                    </div>
                }

                { card("About", html! { <>
                    { text_input("name", "Name", &f.name, errs, &on_field, InputKind::Text { required: true, placeholder: "Fix flaky tests" }) }
                    { textarea("description", "Description", &f.description, errs, &on_field, 2, "What this agent is for") }
                </> }) }

                { card("Repositories", html! { <>
                    { repo_chips(&f.repos, &f.repo_draft, errs, &on_field, &form.dispatcher()) }
                </> }) }

                { card("Prompts", html! { <>
                    { textarea("task_prompt", "Task prompt", &f.task_prompt, errs, &on_field, 6, "What the agent should do") }
                    { textarea("system_prompt", "System prompt (appended to Claude's)", &f.system_prompt, errs, &on_field, 3, "Optional") }
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
                        { field_error(errs, "model") }
                    </div>
                </> }) }

                { card("Resources", html! { <>
                    <div class="presets" role="group" aria-label="Resource presets">
                        { for PRESETS.iter().map(|(name, cpu, memory)| {
                            let edit = form.dispatcher();
                            let name: &'static str = name;
                            let pressed = f.current_preset() == Some(name);
                            html! {
                                <button type="button" class={if pressed { "preset btn selected" } else { "preset btn" }}
                                        data-preset={name.to_ascii_lowercase()} aria-pressed={pressed.to_string()}
                                        onclick={Callback::from(move |_: MouseEvent| edit.dispatch(Edit::Preset(name)))}>
                                    <span class="preset-name">{ name }</span>
                                    <span class="preset-size">{ format!("{cpu} CPU · {memory}") }</span>
                                </button>
                            }
                        }) }
                    </div>
                    <div class="row">
                        { text_input("cpu", "CPU", &f.cpu, errs, &on_field, InputKind::Code("1, 2 or 500m")) }
                        { text_input("memory", "Memory", &f.memory, errs, &on_field, InputKind::Code("2Gi")) }
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
                        { field_error(errs, "runtime_class") }
                    </div>
                    { text_input("image_tag", "Agent image tag", &f.image_tag, errs, &on_field, InputKind::Code("Server default")) }
                </> }) }

                { card("Limits", html! { <>
                    <div class="row">
                        { text_input("max_turns", "Max turns", &f.max_turns, errs, &on_field, InputKind::Number("numeric", "100")) }
                        { text_input("timeout_minutes", "Timeout (minutes)", &f.timeout_minutes, errs, &on_field, InputKind::Number("numeric", "120")) }
                    </div>
                    { text_input("budget_usd", "Budget (US dollars)", &f.budget_usd, errs, &on_field, InputKind::Number("decimal", "No limit")) }
                </> }) }

                { card("Claude credentials", html! { <>
                    { choice("credential_mode", "Credential mode", CREDENTIAL_MODES, credential_mode(f.credential_mode), errs, &on_field,
                        (f.credential_mode == CredentialMode::SharedVolume).then(|| html! {
                            <p id="shared-volume-warning" class="warning-box" role="note">
                                { "Every shared-volume agent uses one Claude login. Claude rotates refresh tokens, so \
                                   agents can log each other out, and one agent can plant hooks or settings that run \
                                   in the others. The server must offer it (--shared-claude-dir, or --claude-home-claim on Kubernetes)." }
                            </p>
                        })) }
                    { choice("egress", "Network", EGRESS, f.egress.as_str(), errs, &on_field,
                        (f.egress == Egress::ProxyOnly).then(|| html! {
                            <p id="proxy-only-note" class="muted">
                                { "No package registry either, unless your cluster runs a mirror its policy lets \
                                   agents reach. Enforced on Kubernetes; the local runtime cannot enforce it." }
                            </p>
                        })) }
                    { choice("auto_resume", "After the usage limit", AUTO_RESUME,
                        if f.auto_resume { "automatic" } else { "offer" }, errs, &on_field, None) }
                </> }) }

                <div class="actions sticky-actions">
                    <button id="save-config" type="submit" class="btn btn-primary" disabled={*saving}>
                        { if *saving { "Saving…" } else if id.is_some() { "Save new version" } else { "Create config" } }
                    </button>
                    if let Some(id) = &id {
                        <button type="button" class="launch-button btn" data-config-id={id.clone()}
                                disabled={*launching} onclick={launch}>
                            { if *launching { "Launching…" } else { "Launch" } }
                        </button>
                        <button id="delete-config" type="button" class="btn btn-danger-outline" onclick={delete}>
                            { "Delete" }
                        </button>
                    }
                </div>
            </form>
            if let Some(versions) = &*versions {
                { versions_view(versions) }
            }
        </section>
    }
}

async fn reload_versions(id: &str, versions: UseStateHandle<Option<Vec<ConfigVersion>>>) {
    if let Ok(list) = api::config_versions(id).await {
        versions.set(Some(list));
    }
}

/// Moves focus to the first field with an error, so keyboard and screen-reader users land on it.
fn focus_first_error() {
    // After the errors render.
    gloo_timers::callback::Timeout::new(0, || {
        let target = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.query_selector("[aria-invalid=\"true\"]").ok().flatten())
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
        if let Some(element) = target {
            let _ = element.focus();
        }
    })
    .forget();
}

/// A `fieldset.card` with its legend.
#[inline(never)]
fn card(legend: &'static str, body: Html) -> Html {
    html! {
        <fieldset class="card">
            <legend>{ legend }</legend>
            { body }
        </fieldset>
    }
}

/// How a text input looks.
#[derive(Clone, Copy)]
enum InputKind {
    Text {
        required: bool,
        placeholder: &'static str,
    },
    Code(&'static str),
    Number(&'static str, &'static str),
}

#[inline(never)]
fn input_cb(on_field: &Callback<(&'static str, String)>, field: &'static str) -> Callback<InputEvent> {
    on_field.reform(move |e: InputEvent| (field, event_value(&e)))
}

#[inline(never)]
fn change_cb(on_field: &Callback<(&'static str, String)>, field: &'static str) -> Callback<Event> {
    on_field.reform(move |e: Event| (field, event_value(&e)))
}

/// The value of the input, textarea or select an event came from.
fn event_value(e: &Event) -> String {
    let Some(target) = e.target() else {
        return String::new();
    };
    if let Some(input) = target.dyn_ref::<web_sys::HtmlInputElement>() {
        input.value()
    } else if let Some(area) = target.dyn_ref::<web_sys::HtmlTextAreaElement>() {
        area.value()
    } else if let Some(select) = target.dyn_ref::<web_sys::HtmlSelectElement>() {
        select.value()
    } else {
        String::new()
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

/// A labelled select of fixed `options` (value, label) for `field`, `selected` chosen, with `note` under it.
fn choice(
    field: &'static str,
    label: &'static str,
    options: &'static [(&'static str, &'static str)],
    selected: &str,
    errs: &FieldErrors,
    on_field: &Callback<(&'static str, String)>,
    note: Option<Html>,
) -> Html {
    html! {
        <div class="field">
            <label for={field}>{ label }</label>
            <select id={field} name={field} onchange={change_cb(on_field, field)}>
                { for options.iter().map(|(value, text)| html! {
                    <option value={*value} selected={*value == selected}>{ *text }</option>
                }) }
            </select>
            { note.unwrap_or_default() }
            { field_error(errs, field) }
        </div>
    }
}

#[inline(never)]
fn field_error(errors: &FieldErrors, field: &str) -> Html {
    match errors.get(field) {
        Some(message) => html! {
            <p id={format!("{field}-error")} class="field-error" data-field={field.to_owned()}>{ message }</p>
        },
        None => html! {},
    }
}

#[inline(never)]
fn text_input(
    field: &'static str,
    label: &'static str,
    value: &str,
    errors: &FieldErrors,
    on_field: &Callback<(&'static str, String)>,
    kind: InputKind,
) -> Html {
    let invalid = errors.get(field).is_some();
    let (required, placeholder, inputmode, code) = match kind {
        InputKind::Text {
            required,
            placeholder,
        } => (required, placeholder, None, false),
        InputKind::Code(placeholder) => (false, placeholder, None, true),
        InputKind::Number(mode, placeholder) => (false, placeholder, Some(mode), true),
    };
    html! {
        <div class="field">
            <label for={field}>{ label }{ if required { " *" } else { "" } }</label>
            <input id={field} name={field} type="text" value={value.to_owned()} placeholder={placeholder}
                   class={code.then_some("mono")} inputmode={inputmode} required={required}
                   autocapitalize={code.then_some("off")} spellcheck={code.then_some("false")}
                   aria-invalid={invalid.then_some("true")}
                   aria-describedby={invalid.then(|| format!("{field}-error"))}
                   oninput={input_cb(on_field, field)} />
            { field_error(errors, field) }
        </div>
    }
}

#[inline(never)]
fn textarea(
    field: &'static str,
    label: &'static str,
    value: &str,
    errors: &FieldErrors,
    on_field: &Callback<(&'static str, String)>,
    rows: u32,
    placeholder: &'static str,
) -> Html {
    let invalid = errors.get(field).is_some();
    html! {
        <div class="field">
            <label for={field}>{ label }{ if field == "task_prompt" { " *" } else { "" } }</label>
            <textarea id={field} name={field} rows={rows.to_string()} value={value.to_owned()} placeholder={placeholder}
                      aria-invalid={invalid.then_some("true")}
                      aria-describedby={invalid.then(|| format!("{field}-error"))}
                      oninput={input_cb(on_field, field)} />
            { field_error(errors, field) }
        </div>
    }
}

/// Repositories as chips (`#repo-chips > li.chip[data-index]`), typed into `#repos` and added with Enter
/// or `#add-repo`.
#[inline(never)]
fn repo_chips(
    repos: &[String],
    draft: &str,
    errors: &FieldErrors,
    on_field: &Callback<(&'static str, String)>,
    edit: &UseReducerDispatcher<FormState>,
) -> Html {
    let add = {
        let edit = edit.clone();
        Callback::from(move |_: MouseEvent| edit.dispatch(Edit::AddRepo))
    };
    let onkeydown = {
        let edit = edit.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Enter" || e.key() == "," {
                e.prevent_default();
                edit.dispatch(Edit::AddRepo);
            }
        })
    };
    let invalid = errors.get("repos").is_some() || !errors.repo_errors().is_empty();
    html! {
        <div class="field">
            if !repos.is_empty() {
                <ul id="repo-chips" class="chips">
                    { for repos.iter().enumerate().map(|(i, repo)| {
                        let edit = edit.clone();
                        let bad = errors.get(&format!("repos[{i}]")).is_some();
                        html! {
                            <li class={if bad { "chip invalid" } else { "chip" }} data-index={i.to_string()}>
                                <span class="mono">{ repo }</span>
                                <button type="button" class="chip-remove" aria-label={format!("Remove {repo}")}
                                        onclick={Callback::from(move |_: MouseEvent| edit.dispatch(Edit::RemoveRepo(i)))}>
                                    { "×" }
                                </button>
                            </li>
                        }
                    }) }
                </ul>
            }
            <label for="repos">{ "Add a repository" }</label>
            <div class="input-with-button">
                <input id="repos" name="repos" type="text" class="mono" value={draft.to_owned()}
                       placeholder="owner/repo or owner/repo@branch" autocapitalize="off" autocomplete="off"
                       spellcheck="false" enterkeyhint="done" aria-invalid={invalid.then_some("true")}
                       oninput={input_cb(on_field, "repos")} {onkeydown} />
                <button id="add-repo" type="button" class="btn" onclick={add}>{ "Add" }</button>
            </div>
            <p class="hint muted">{ "Agents clone each one and push their work to a branch with a pull request." }</p>
            { field_error(errors, "repos") }
            { for errors.repo_errors().into_iter().map(|(field, message)| {
                let repo = field
                    .trim_start_matches("repos[")
                    .trim_end_matches(']')
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| repos.get(i).cloned().or_else(|| Some(draft.to_owned())))
                    .unwrap_or_default();
                html! {
                    <p class="field-error" data-field={field.to_owned()}>
                        { if repo.is_empty() { message.to_owned() } else { format!("{repo}: {message}") } }
                    </p>
                }
            }) }
        </div>
    }
}

/// The version history, newest first, each expandable to its content.
#[inline(never)]
fn versions_view(versions: &[ConfigVersion]) -> Html {
    let mut versions = versions.to_vec();
    crate::util::sort_by(&mut versions, |a, b| b.version.cmp(&a.version));
    html! {
        <section id="versions" class="versions card">
            <h2 class="section-title">{ "Version history" }</h2>
            <ul class="plain-list">
                { for versions.iter().map(|v| html! {
                    <li key={v.version}>
                        <details class="version" data-version={v.version.to_string()}>
                            <summary>
                                <span class="mono">{ format!("v{}", v.version) }</span>
                                { " · " }
                                <time datetime={v.created_at.to_rfc3339()}>{ time::local(v.created_at) }</time>
                            </summary>
                            { spec_view(&v.spec) }
                        </details>
                    </li>
                }) }
            </ul>
        </section>
    }
}

#[inline(never)]
fn spec_view(spec: &ConfigSpec) -> Html {
    let none = || "default".to_owned();
    let rows: Vec<(&str, String)> = vec![
        ("Name", spec.name.clone()),
        ("Description", spec.description.clone()),
        ("Repositories", spec.repos.join(", ")),
        ("Task prompt", spec.task_prompt.clone()),
        ("System prompt", spec.system_prompt.clone()),
        ("Model", spec.model.clone()),
        ("Resources", format!("{} CPU, {}", spec.cpu, spec.memory)),
        ("Runtime class", spec.runtime_class.clone().unwrap_or_else(none)),
        ("Image tag", spec.image_tag.clone().unwrap_or_else(none)),
        ("Max turns", spec.max_turns.to_string()),
        (
            "Budget",
            spec.budget_usd.map_or_else(|| "none".to_owned(), time::usd),
        ),
        ("Timeout", format!("{} min", spec.timeout_minutes)),
        (
            "Credentials",
            match spec.credential_mode {
                CredentialMode::Token => "token".to_owned(),
                CredentialMode::SharedVolume => "shared volume".to_owned(),
            },
        ),
        ("Network", spec.egress.as_str().to_owned()),
        (
            "After the usage limit",
            if spec.auto_resume {
                "resume automatically"
            } else {
                "offer to resume"
            }
            .to_owned(),
        ),
    ];
    html! {
        <dl class="spec">
            { for rows.into_iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| html! {
                <><dt>{ k }</dt><dd class="pre-wrap">{ v }</dd></>
            }) }
        </dl>
    }
}

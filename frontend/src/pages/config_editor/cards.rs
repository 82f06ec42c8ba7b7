//! The editor's cards, one per part of a config: About, Repositories, Prompts, Model, Resources, Sandbox,
//! Limits, Claude credentials.

use agentfarm_shared::config::{CredentialMode, Egress};
use yew::prelude::*;

use super::fields::{Fields, Kind, TextField, card, change_cb, input_cb, repo_chips};
use super::model::{Change, Editor};
use crate::config_form::{Form, MODELS, PRESETS, RUNTIME_CLASSES};

/// Name and description.
pub fn about(f: &Form, fields: &Fields) -> Html {
    card(
        "About",
        html! { <>
            { fields.text(TextField { field: "name", label: "Name", kind: Kind::Words, required: true, placeholder: "Fix flaky tests" }, &f.name) }
            { fields.text(TextField { field: "description", label: "Description", kind: Kind::Lines(2), required: false, placeholder: "What this agent is for" }, &f.description) }
        </> },
    )
}

/// The repositories, as chips.
pub fn repositories(f: &Form, fields: &Fields, edit: &UseReducerDispatcher<Editor>) -> Html {
    card(
        "Repositories",
        repo_chips(&f.repos, &f.repo_draft, fields.errors, fields.on_field, edit),
    )
}

/// The task and the system prompt.
pub fn prompts(f: &Form, fields: &Fields) -> Html {
    card(
        "Prompts",
        html! { <>
            { fields.text(TextField { field: "task_prompt", label: "Task prompt", kind: Kind::Lines(6), required: true, placeholder: "What the agent should do" }, &f.task_prompt) }
            { fields.text(TextField { field: "system_prompt", label: "System prompt (appended to Claude's)", kind: Kind::Lines(3), required: false, placeholder: "Optional" }, &f.system_prompt) }
        </> },
    )
}

/// The model, an alias or a full name, with suggestions.
pub fn model(f: &Form, fields: &Fields) -> Html {
    card(
        "Model",
        html! { <>
            <div class="field">
                <label for="model">{ "Model" }</label>
                <input id="model" name="model" type="text" list="model-suggestions" autocapitalize="off"
                       autocomplete="off" spellcheck="false" value={f.model.clone()}
                       aria-invalid={fields.errors.get("model").is_some().then_some("true")}
                       oninput={input_cb(fields.on_field, "model")} />
                <datalist id="model-suggestions">
                    { for MODELS.iter().map(|m| html! { <option value={*m}></option> }) }
                </datalist>
                <p class="hint muted">{ "An alias (sonnet, opus, haiku) or a full model name." }</p>
                { fields.error("model") }
            </div>
        </> },
    )
}

/// CPU and memory, with presets.
pub fn resources(f: &Form, fields: &Fields, edit: &UseReducerDispatcher<Editor>) -> Html {
    card(
        "Resources",
        html! { <>
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
        </> },
    )
}

/// The runtime class and the agent image.
pub fn sandbox(f: &Form, fields: &Fields) -> Html {
    card(
        "Sandbox",
        html! { <>
            <div class="field">
                <label for="runtime_class">{ "Runtime class" }</label>
                <select id="runtime_class" name="runtime_class" onchange={change_cb(fields.on_field, "runtime_class")}
                        aria-invalid={fields.errors.get("runtime_class").is_some().then_some("true")}>
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
        </> },
    )
}

/// Turns, time and money.
pub fn limits(f: &Form, fields: &Fields) -> Html {
    card(
        "Limits",
        html! { <>
            <div class="row">
                { fields.text(TextField { field: "max_turns", label: "Max turns", kind: Kind::Number("numeric"), required: false, placeholder: "100" }, &f.max_turns) }
                { fields.text(TextField { field: "timeout_minutes", label: "Timeout (minutes)", kind: Kind::Number("numeric"), required: false, placeholder: "120" }, &f.timeout_minutes) }
            </div>
            { fields.text(TextField { field: "budget_usd", label: "Budget (US dollars)", kind: Kind::Number("decimal"), required: false, placeholder: "No limit" }, &f.budget_usd) }
        </> },
    )
}

/// How the agent signs in to Claude, where it may connect, and what happens after the usage limit.
pub fn credentials(f: &Form, fields: &Fields) -> Html {
    card(
        "Claude credentials",
        html! { <>
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
        </> },
    )
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

//! The editor's version history (`#versions > details.version[data-version]`): every version of the config,
//! newest first, each expandable to its content.

use agentfarm_shared::config::{ConfigSpec, ConfigVersion, CredentialMode};
use yew::prelude::*;

use crate::time;

/// The version history, each expandable to its content, in the API's order (newest first).
#[inline(never)]
pub fn versions_view(versions: &[ConfigVersion]) -> Html {
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

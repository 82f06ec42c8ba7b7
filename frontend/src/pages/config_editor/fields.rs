//! The editor's field views: labelled text fields (an input or a textarea; required ones marked), selects of
//! fixed options, the error under a field (`p.field-error[data-field]`), cards, and the repository chips.

use wasm_bindgen::JsCast;
use yew::prelude::*;

use super::model::{Change, Editor};
use crate::config_form::FieldErrors;

/// A `fieldset.card` with its legend.
#[inline(never)]
pub fn card(legend: &'static str, body: Html) -> Html {
    html! {
        <fieldset class="card">
            <legend>{ legend }</legend>
            { body }
        </fieldset>
    }
}

/// How a text field is typed.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Words: one line.
    Words,
    /// Code, such as a quantity or a tag: one line, monospace, no autocorrection.
    Code,
    /// A number, with the `inputmode` of its keyboard (`numeric`, `decimal`).
    Number(&'static str),
    /// Free text over several lines: a textarea of this many rows.
    Lines(u32),
}

/// A text field: its wire name (its `id` and `name`), label, kind, whether it is required, and placeholder.
#[derive(Clone, Copy)]
pub struct TextField {
    /// The wire name.
    pub field: &'static str,
    /// The label.
    pub label: &'static str,
    /// How it is typed.
    pub kind: Kind,
    /// Marked with `*` and `required`.
    pub required: bool,
    /// Shown while it is empty.
    pub placeholder: &'static str,
}

/// The fields' errors and where every edit goes, as (field, value).
pub struct Fields<'a> {
    /// The errors shown.
    pub errors: &'a FieldErrors,
    /// Told of every edit.
    pub on_field: &'a Callback<(&'static str, String)>,
}

impl Fields<'_> {
    /// A labelled text field holding `value`, with its error under it.
    #[inline(never)]
    pub fn text(&self, spec: TextField, value: &str) -> Html {
        let TextField {
            field,
            label,
            kind,
            required,
            placeholder,
        } = spec;
        let invalid = self.errors.get(field).is_some();
        let aria_invalid = invalid.then_some("true");
        let described = invalid.then(|| format!("{field}-error"));
        let oninput = input_cb(self.on_field, field);
        let value = value.to_owned();
        let control = match kind {
            Kind::Lines(rows) => html! {
                <textarea id={field} name={field} rows={rows.to_string()} {value} {placeholder} {required}
                          aria-invalid={aria_invalid} aria-describedby={described} {oninput} />
            },
            Kind::Words | Kind::Code | Kind::Number(_) => {
                let code = !matches!(kind, Kind::Words);
                let inputmode = match kind {
                    Kind::Number(mode) => Some(mode),
                    _ => None,
                };
                html! {
                    <input id={field} name={field} type="text" {value} {placeholder} {required}
                           class={code.then_some("mono")} {inputmode}
                           autocapitalize={code.then_some("off")} spellcheck={code.then_some("false")}
                           aria-invalid={aria_invalid} aria-describedby={described} {oninput} />
                }
            }
        };
        html! {
            <div class="field">
                <label for={field}>{ label }{ if required { " *" } else { "" } }</label>
                { control }
                { self.error(field) }
            </div>
        }
    }

    /// A labelled select of fixed `options` (value, label) for `field`, `selected` chosen, with `note` under it.
    pub fn choice(
        &self,
        field: &'static str,
        label: &'static str,
        options: &'static [(&'static str, &'static str)],
        selected: &str,
        note: Option<Html>,
    ) -> Html {
        html! {
            <div class="field">
                <label for={field}>{ label }</label>
                <select id={field} name={field} onchange={change_cb(self.on_field, field)}>
                    { for options.iter().map(|(value, text)| html! {
                        <option value={*value} selected={*value == selected}>{ *text }</option>
                    }) }
                </select>
                { note.unwrap_or_default() }
                { self.error(field) }
            </div>
        }
    }

    /// The error under `field`, if any.
    pub fn error(&self, field: &str) -> Html {
        field_error(self.errors, field)
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

/// Reports what is typed into `field`.
#[inline(never)]
pub fn input_cb(on_field: &Callback<(&'static str, String)>, field: &'static str) -> Callback<InputEvent> {
    on_field.reform(move |e: InputEvent| (field, event_value(&e)))
}

/// Reports what is chosen in `field`.
#[inline(never)]
pub fn change_cb(on_field: &Callback<(&'static str, String)>, field: &'static str) -> Callback<Event> {
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

/// Repositories as chips (`#repo-chips > li.chip[data-index]`), typed into `#repos` and added with Enter
/// or `#add-repo`.
#[inline(never)]
pub fn repo_chips(
    repos: &[String],
    draft: &str,
    errors: &FieldErrors,
    on_field: &Callback<(&'static str, String)>,
    edit: &UseReducerDispatcher<Editor>,
) -> Html {
    let add = {
        let edit = edit.clone();
        Callback::from(move |_: MouseEvent| edit.dispatch(Change::AddRepo))
    };
    let onkeydown = {
        let edit = edit.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Enter" || e.key() == "," {
                e.prevent_default();
                edit.dispatch(Change::AddRepo);
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
                                        onclick={Callback::from(move |_: MouseEvent| edit.dispatch(Change::RemoveRepo(i)))}>
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

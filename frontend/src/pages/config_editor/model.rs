//! The editor's state and commands: one reducer for the form, its errors, the saved config and its versions,
//! and the hook that loads the config, saves it (a new config, or a new version) and deletes it.

use std::rc::Rc;

use agentfarm_shared::config::{AgentConfig, ConfigVersion};
use agentfarm_shared::validate::FieldError;
use wasm_bindgen::JsCast;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api;
use crate::config_form::{FieldErrors, Form};
use crate::router::{Route, use_navigator};
use crate::state::{Action, use_store};

/// Everything the editor shows.
#[derive(Clone, Default, PartialEq)]
pub struct Editor {
    /// The form as typed.
    pub form: Form,
    /// Errors under the fields, and those of no field.
    pub errors: FieldErrors,
    /// What went wrong, above the form.
    pub summary: Option<String>,
    /// True while a save is pending.
    pub saving: bool,
    /// The config as saved (`None` for a new one, or while it loads).
    pub current: Option<Rc<AgentConfig>>,
    /// Its versions, once loaded (shared: an edit of the form does not copy them).
    pub versions: Option<Rc<[ConfigVersion]>>,
    /// Why the config could not be loaded.
    pub load_error: Option<String>,
}

/// Every change to the editor.
pub enum Change {
    /// A field typed into (by wire name).
    Set(&'static str, String),
    /// The typed repository becomes a chip.
    AddRepo,
    /// A repository chip removed.
    RemoveRepo(usize),
    /// A resource preset chosen.
    Preset(&'static str),
    /// The config as saved: the form shows it, errors go.
    Loaded(Box<AgentConfig>),
    /// Its versions.
    Versions(Vec<ConfigVersion>),
    /// The config could not be loaded.
    LoadFailed(String),
    /// A save started.
    Saving,
    /// The form or the server refused the config: errors by field and a summary.
    Refused(FieldErrors, String),
}

impl Reducible for Editor {
    type Action = Change;

    fn reduce(self: Rc<Self>, change: Change) -> Rc<Self> {
        let mut next = (*self).clone();
        match change {
            Change::Set(field, value) => next.form.set(field, value),
            Change::AddRepo => {
                next.form.add_repo();
            }
            Change::RemoveRepo(index) => next.form.remove_repo(index),
            Change::Preset(name) => next.form.preset(name),
            Change::Loaded(config) => {
                next.form = Form::from_spec(&config.spec);
                next.current = Some(Rc::from(config));
                next.errors = FieldErrors::default();
                next.summary = None;
                next.saving = false;
            }
            Change::Versions(versions) => next.versions = Some(Rc::from(versions)),
            Change::LoadFailed(message) => next.load_error = Some(message),
            Change::Saving => {
                next.errors = FieldErrors::default();
                next.summary = None;
                next.saving = true;
            }
            Change::Refused(errors, summary) => {
                next.errors = errors;
                next.summary = Some(summary);
                next.saving = false;
            }
        }
        Rc::new(next)
    }
}

/// The editor of config `id` (`None`: a new one): its state, and Save and Delete.
pub struct EditorHandle {
    /// The state.
    pub state: UseReducerHandle<Editor>,
    /// Saves the form (the form's submit).
    pub save: Callback<SubmitEvent>,
    /// Deletes the config, after asking.
    pub delete: Callback<MouseEvent>,
}

/// Loads config `id` (when given) and offers saving and deleting it.
#[hook]
pub fn use_editor(id: Option<String>) -> EditorHandle {
    let store = use_store();
    let navigator = use_navigator();
    let state = use_reducer(Editor::default);
    {
        let edit = state.dispatcher();
        use_effect_with(id.clone(), move |id| {
            if let Some(id) = id.clone() {
                spawn_local(async move {
                    match api::config(&id).await {
                        Ok(config) => edit.dispatch(Change::Loaded(Box::new(config))),
                        Err(failure) => {
                            edit.dispatch(Change::LoadFailed(format!(
                                "Could not load the config: {failure}"
                            )));
                        }
                    }
                    reload_versions(&id, &edit).await;
                });
            }
        });
    }

    let save = {
        let (state, store, navigator, id) = (state.clone(), store.clone(), navigator.clone(), id.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if state.saving {
                return;
            }
            let edit = state.dispatcher();
            let spec = match state.form.to_spec() {
                Ok(spec) => spec,
                Err(field_errors) => {
                    edit.dispatch(Change::Refused(
                        FieldErrors::new(&field_errors),
                        "Some fields need fixing; see the messages below them.".into(),
                    ));
                    focus_first_error();
                    return;
                }
            };
            edit.dispatch(Change::Saving);
            let (store, navigator, id) = (store.clone(), navigator.clone(), id.clone());
            spawn_local(async move {
                let result = match &id {
                    Some(id) => api::update_config(id, &spec).await,
                    None => api::create_config(&spec).await,
                };
                match result {
                    Ok(config) => {
                        store.dispatch.emit(Action::UpsertConfig(config.clone()));
                        store.info(format!("Saved {} (version {})", config.spec.name, config.version));
                        match id {
                            Some(id) => {
                                edit.dispatch(Change::Loaded(Box::new(config)));
                                reload_versions(&id, &edit).await;
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
                            fields.push(FieldError {
                                field: "name".to_owned(),
                                message: failure.error.message.clone(),
                            });
                        }
                        if fields.is_empty()
                            && let Some(field) = failure.error.field.clone()
                        {
                            fields.push(FieldError {
                                field,
                                message: failure.error.message.clone(),
                            });
                        }
                        let sorted = FieldErrors::new(&fields);
                        let has_fields = !sorted.by_field.is_empty();
                        edit.dispatch(Change::Refused(sorted, failure.error.message));
                        if has_fields {
                            focus_first_error();
                        }
                    }
                }
            });
        })
    };

    let delete = Callback::from(move |_: MouseEvent| {
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
    });

    EditorHandle { state, save, delete }
}

async fn reload_versions(id: &str, edit: &UseReducerDispatcher<Editor>) {
    if let Ok(list) = api::config_versions(id).await {
        edit.dispatch(Change::Versions(list));
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

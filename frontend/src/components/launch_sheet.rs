//! The launch sheet (`dialog#launch-sheet`, a bottom sheet on the phone and a dialog on wider screens): the
//! task (`#launch-task`), Launch or Continue (`#launch-confirm`) and Cancel (`#launch-cancel`). It launches a
//! config with its task or a one-off one, or continues an earlier run on its branch with a new instruction.

use agentfarm_shared::run::LaunchRequest;
use yew::prelude::*;

use crate::actions;
use crate::router::use_navigator;
use crate::state::use_store;
use crate::util::join;

/// Props of [`LaunchSheet`].
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The config launched.
    pub config_id: AttrValue,
    /// The run continued (its branch and pull request), when continuing.
    #[prop_or_default]
    pub continue_run: Option<AttrValue>,
    /// The task the field starts with: the config's (empty when continuing).
    #[prop_or_default]
    pub task: AttrValue,
    /// The config's name, for the heading of a launch.
    #[prop_or_default]
    pub name: AttrValue,
    /// Told when the sheet closes (cancelled, or launched).
    pub on_close: Callback<()>,
}

/// The sheet, open while it is rendered.
#[component]
pub fn LaunchSheet(props: &Props) -> Html {
    let store = use_store();
    let navigator = use_navigator();
    let dialog = use_node_ref();
    let text = use_state(|| props.task.to_string());
    let sending = use_state(|| false);
    {
        let dialog = dialog.clone();
        use_effect_with((), move |_| {
            if let Some(dialog) = dialog.cast::<web_sys::HtmlDialogElement>() {
                let _ = dialog.show_modal();
            }
        });
    }

    let onsubmit = {
        let (text, sending) = (text.clone(), sending.clone());
        let (config_id, continue_run, task) = (
            props.config_id.to_string(),
            props.continue_run.as_ref().map(AttrValue::to_string),
            props.task.clone(),
        );
        let on_close = props.on_close.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let prompt = text.trim();
            if prompt.is_empty() || *sending {
                return;
            }
            sending.set(true);
            // The config's own task is not sent: the run then gets the config's current version's task,
            // even when the config changed since this screen loaded.
            let request = LaunchRequest {
                config_id: config_id.clone(),
                prompt: (prompt != task.trim()).then(|| prompt.to_owned()),
                continue_run: continue_run.clone(),
            };
            let (sending, on_close) = (sending.clone(), on_close.clone());
            let done = Callback::from(move |launched: bool| {
                sending.set(false);
                if launched {
                    on_close.emit(());
                }
            });
            actions::launch(&store, navigator.clone(), request, done);
        })
    };
    let oninput = {
        let text = text.clone();
        Callback::from(move |e: InputEvent| {
            text.set(e.target_unchecked_into::<web_sys::HtmlTextAreaElement>().value());
        })
    };
    // Esc closes the dialog; so does a tap on the backdrop (the dialog itself, outside its form).
    let onclose = props.on_close.reform(|_: Event| ());
    let onclick = {
        let on_close = props.on_close.clone();
        Callback::from(move |e: MouseEvent| {
            if e.target() == e.current_target() {
                on_close.emit(());
            }
        })
    };
    let cancel = props.on_close.reform(|_: MouseEvent| ());
    let (title, label, hint, action) = if props.continue_run.is_some() {
        (
            AttrValue::from("Continue on this run's branch"),
            "New instruction",
            "Same branch and pull request as this run.",
            "Continue",
        )
    } else {
        (
            AttrValue::from(join("Launch ", &props.name)),
            "Task",
            "For this run only: the config keeps its task.",
            "Launch",
        )
    };
    html! {
        <dialog ref={dialog} id="launch-sheet" class="sheet" aria-labelledby="launch-title" {onclose} {onclick}>
            <form class="sheet-form" {onsubmit}>
                <h2 id="launch-title" class="section-title">{ title }</h2>
                <label for="launch-task">{ label }</label>
                <textarea id="launch-task" name="prompt" rows="6" value={(*text).clone()} {oninput}
                          maxlength={agentfarm_shared::config::limits::PROMPT.to_string()} />
                <p class="hint muted">{ hint }</p>
                <div class="actions">
                    <button id="launch-confirm" type="submit" class="btn btn-primary"
                            disabled={*sending || text.trim().is_empty()}>
                        { if *sending { "Launching…" } else { action } }
                    </button>
                    <button id="launch-cancel" type="button" class="btn" onclick={cancel}>{ "Cancel" }</button>
                </div>
            </form>
        </dialog>
    }
}

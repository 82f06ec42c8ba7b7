//! Run (`/runs/:id`): the run's facts (`#run-state`, `#run-cost`, …), its live transcript with a raw-log
//! toggle (`#raw-toggle`) and autoscroll (`#jump-latest`), the follow-up composer (`#follow-up`,
//! `#send-follow-up`), and Stop (`#stop-run`) / Delete (`#delete-run`); on an ended run Continue
//! (`#continue-run`, a new instruction in the launch sheet for a new run on its branch), and on a run the
//! usage limit stopped `#resume-after-reset`.

use std::rc::Rc;

use agentfarm_shared::run::{Run, RunState};
use chrono::{DateTime, Utc};
use gloo_events::EventListener;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::actions;
use crate::api;
use crate::components::countdown::Countdown;
use crate::components::icon::{DOWN, icon};
use crate::components::launch_sheet::LaunchSheet;
use crate::components::state_badge::state_badge;
use crate::components::transcript::{Transcript, added_removed};
use crate::hooks::use_now;
use crate::markdown;
use crate::router::{Link, Navigator, Route, use_navigator};
use crate::state::{Action, StoreCtx, use_store};
use crate::time;
use crate::transcript::files;
use crate::util::join;
use crate::ws::use_live;

/// Distance from the bottom, in pixels, that still counts as "at the bottom".
const NEAR_BOTTOM_PX: f64 = 80.0;

/// Props of [`RunPage`].
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The run's id.
    pub id: AttrValue,
}

/// The run screen.
#[component]
pub fn RunPage(props: &Props) -> Html {
    let store = use_store();
    let live = use_live();
    let navigator = use_navigator();
    let now = use_now(1_000);
    let missing = use_state(|| None::<String>);
    let raw = use_state(|| false);
    let continuing = use_state(|| false);
    let id = props.id.to_string();

    // Fresh facts on open (the socket then keeps them current), and the log while the page is shown.
    {
        let store = store.clone();
        let missing = missing.clone();
        use_effect_with(id.clone(), move |id| {
            let id = id.clone();
            missing.set(None);
            spawn_local(async move {
                match api::run(&id).await {
                    Ok(run) => store.dispatch.emit(Action::Upsert(run)),
                    Err(failure) if failure.status == 404 => {
                        missing.set(Some("This run does not exist (it may have been deleted).".into()));
                    }
                    Err(failure) => store.error(format!("Could not load the run: {failure}")),
                }
                if store.state.configs.is_none()
                    && let Ok(configs) = api::configs().await
                {
                    store.dispatch.emit(Action::Configs(configs));
                }
            });
        });
    }
    {
        use_effect_with(id.clone(), move |id| {
            let id = id.clone();
            if let Some(live) = &live {
                live.subscribe(&id);
            }
            move || {
                if let Some(live) = live {
                    live.unsubscribe(&id);
                }
            }
        });
    }

    let log = store.state.logs.get(&id).cloned().unwrap_or_default();
    let follow = use_follow(log.lines.len() + log.gaps.len());

    let Some(run) = store.state.runs.get(&id).cloned() else {
        return html! {
            <section class="page run">
                if let Some(message) = &*missing {
                    <div class="empty card">
                        <p id="run-missing">{ message }</p>
                        <Link to={Route::Agents} classes="btn">{ "Back to agents" }</Link>
                    </div>
                } else {
                    <p class="muted">{ "Loading…" }</p>
                }
            </section>
        };
    };

    let toggle_raw = {
        let raw = raw.clone();
        Callback::from(move |_: MouseEvent| raw.set(!*raw))
    };
    let continue_run = {
        let continuing = continuing.clone();
        Callback::from(move |_: MouseEvent| continuing.set(true))
    };
    html! {
        <section class="page run" data-run-id={run.id.clone()} data-state={run.state.as_str()}>
            { run_header(
                &run,
                store.state.is_stopping(&run),
                AttrValue::from(store.state.config_name(&run.config_id).unwrap_or(&run.config_id).to_owned()),
                store.clone(),
                navigator,
                now,
                continue_run,
            ) }
            <div class="transcript-bar">
                <h2 class="section-title">{ if *raw { "Raw log" } else { "Transcript" } }</h2>
                <button id="raw-toggle" class="btn btn-small" aria-pressed={(*raw).to_string()} onclick={toggle_raw}>
                    { if *raw { "Show transcript" } else { "Show raw log" } }
                </button>
            </div>
            <Transcript log={Rc::clone(&log)} raw={*raw} />
            if !run.state.is_terminal() {
                <Composer run_id={run.id.clone()} state={run.state} />
            }
            if follow.show_jump {
                <button id="jump-latest" class="jump-latest btn btn-primary" onclick={follow.jump}>
                    { icon(DOWN) }{ "Jump to latest" }
                </button>
            }
            if *continuing {
                <LaunchSheet config_id={run.config_id.clone()} continue_run={AttrValue::from(run.id.clone())}
                             on_close={Callback::from(move |()| continuing.set(false))} />
            }
        </section>
    }
}

/// What the autoscroll hook gives the page.
struct Follow {
    show_jump: bool,
    jump: Callback<MouseEvent>,
}

/// Follows new lines by scrolling to the bottom, unless the owner scrolled up; then offers a jump back.
#[hook]
fn use_follow(count: usize) -> Follow {
    let following = use_mut_ref(|| true);
    let show_jump = use_state(|| false);
    {
        let following = following.clone();
        let show_jump = show_jump.clone();
        use_effect_with((), move |_| {
            let listener = web_sys::window().map(|window| {
                // Passive by default: scrolling is never held up.
                EventListener::new(&window, "scroll", move |_| {
                    let at_bottom = near_bottom();
                    let was = *following.borrow();
                    if was != at_bottom {
                        *following.borrow_mut() = at_bottom;
                        show_jump.set(!at_bottom);
                    }
                })
            });
            move || drop(listener)
        });
    }
    {
        let following = following.clone();
        use_effect_with(count, move |_| {
            if *following.borrow() {
                scroll_to_bottom();
            }
        });
    }
    let jump = {
        let show_jump = show_jump.clone();
        Callback::from(move |_: MouseEvent| {
            *following.borrow_mut() = true;
            show_jump.set(false);
            scroll_to_bottom();
        })
    };
    Follow {
        show_jump: *show_jump,
        jump,
    }
}

fn near_bottom() -> bool {
    let Some(window) = web_sys::window() else {
        return true;
    };
    let Some(root) = window.document().and_then(|d| d.document_element()) else {
        return true;
    };
    let scrolled = window.scroll_y().unwrap_or(0.0);
    let height = window.inner_height().ok().and_then(|h| h.as_f64()).unwrap_or(0.0);
    scrolled + height >= f64::from(root.scroll_height()) - NEAR_BOTTOM_PX
}

fn scroll_to_bottom() {
    if let Some(window) = web_sys::window()
        && let Some(root) = window.document().and_then(|d| d.document_element())
    {
        window.scroll_to_with_x_and_y(0.0, f64::from(root.scroll_height()));
    }
}

/// The run's facts and its Stop / Delete buttons, Continue on an ended run and "Resume after reset" on a run
/// the usage limit stopped.
#[inline(never)]
fn run_header(
    run: &Run,
    stopping: bool,
    title: AttrValue,
    store: StoreCtx,
    navigator: Option<Navigator>,
    now: DateTime<Utc>,
    continue_run: Callback<MouseEvent>,
) -> Html {
    let started = run.started_at.unwrap_or(run.created_at);
    let duration = time::duration(time::secs_between(started, run.finished_at.unwrap_or(now)));

    let stop = {
        let store = store.clone();
        let id = run.id.clone();
        Callback::from(move |_: MouseEvent| actions::stop_run(&store, &id))
    };
    let resume = {
        let (store, navigator, run) = (store.clone(), navigator.clone(), run.clone());
        Callback::from(move |_: MouseEvent| {
            actions::resume_after_reset(&store, navigator.clone(), &run, Callback::noop());
        })
    };
    let delete = {
        let store = store;
        let id = run.id.clone();
        Callback::from(move |_: MouseEvent| {
            let sure = web_sys::window()
                .and_then(|w| w.confirm_with_message("Delete this run and its log?").ok())
                .unwrap_or(false);
            if !sure {
                return;
            }
            let store = store.clone();
            let id = id.clone();
            let navigator = navigator.clone();
            spawn_local(async move {
                match api::delete_run(&id).await {
                    Ok(()) => {
                        if let Some(navigator) = navigator {
                            navigator.push(&Route::Agents);
                        }
                        store.dispatch.emit(Action::Remove(id));
                        store.info("Run deleted");
                    }
                    Err(failure) => store.error(format!("Could not delete the run: {failure}")),
                }
            });
        })
    };

    html! {
        <header class="run-header card">
            <div class="run-head">
                <h1 class="run-title">
                    <Link to={Route::EditConfig { id: run.config_id.clone() }}>{ title }</Link>
                    <span class="muted">{ join(" v", &run.config_version.to_string()) }</span>
                </h1>
                { state_badge(run.state, stopping, Some("run-state")) }
            </div>
            <dl class="run-stats">
                { fact("Started", Some("run-started"), false, false, Html::from(time::local(started))) }
                { fact("Duration", Some("run-duration"), false, false, Html::from(duration)) }
                { fact("Turns", Some("run-turns"), false, false, Html::from(run.turns.map_or("–".to_owned(), |t| t.to_string()))) }
                { fact("Cost", Some("run-cost"), false, false, Html::from(run.cost_usd.map_or("–".to_owned(), time::usd))) }
                if let Some(branch) = &run.branch {
                    { fact("Branch", Some("run-branch"), true, true, Html::from(branch.clone())) }
                }
                if let Some(diff) = &run.diff {
                    { fact("Diff", Some("run-diff"), false, false, html! { <>
                        { files(diff.files) }{ " " }
                        { added_removed(diff.added, diff.removed) }
                    </> }) }
                }
                if let Some(url) = run.pr_url.as_ref().filter(|u| markdown::is_web_url(u)) {
                    { fact("Pull request", None, true, false, html! {
                        <a id="run-pr" href={url.clone()} target="_blank" rel="noopener noreferrer">{ url }</a>
                    }) }
                }
                if let Some(at) = run.limit_resets_at {
                    { fact("Usage limit resets", Some("run-limit"), true, false, html! { <Countdown at={at} /> }) }
                }
                if let Some(code) = run.exit_code {
                    { fact("Exit code", Some("run-exit"), false, false, Html::from(code.to_string())) }
                }
            </dl>
            if let Some(reason) = &run.reason {
                <p id="run-reason" class="muted">{ reason }</p>
            }
            if let Some(error) = &run.last_error {
                <p id="run-error" class="error-box" role="alert">{ error }</p>
            }
            <details class="run-prompt">
                <summary>{ "Prompt" }</summary>
                <div class="pre-wrap">{ &run.prompt }</div>
            </details>
            <div class="actions">
                if !run.state.is_terminal() {
                    <button id="stop-run" class="btn btn-danger" disabled={stopping} onclick={stop}>
                        { if stopping { "Stopping…" } else { "Stop" } }
                    </button>
                } else {
                    if run.state == RunState::Failed && run.limit_resets_at.is_some() {
                        <button id="resume-after-reset" class="btn btn-primary" onclick={resume}>
                            { "Resume after reset" }
                        </button>
                    }
                    <button id="continue-run" class="btn btn-primary" onclick={continue_run}>{ "Continue" }</button>
                    <button id="delete-run" class="btn btn-danger-outline" onclick={delete}>{ "Delete" }</button>
                }
            </div>
        </header>
    }
}

/// One of the run's facts: `div > dt + dd#id`.
#[inline(never)]
fn fact(label: &'static str, id: Option<&'static str>, wide: bool, mono: bool, value: Html) -> Html {
    html! {
        <div class={wide.then_some("wide")}>
            <dt>{ label }</dt>
            <dd id={id} class={mono.then_some("mono")}>{ value }</dd>
        </div>
    }
}

/// Props of [`Composer`].
#[derive(Properties, PartialEq)]
struct ComposerProps {
    run_id: String,
    state: RunState,
}

/// The follow-up composer: enabled while the agent is running or waiting for input.
#[component]
fn Composer(props: &ComposerProps) -> Html {
    let store = use_store();
    let text = use_state(String::new);
    let sending = use_state(|| false);
    let error = use_state(|| None::<String>);
    let accepts = matches!(props.state, RunState::Running | RunState::WaitingForInput);

    let send = {
        let text = text.clone();
        let sending = sending.clone();
        let error = error.clone();
        let id = props.run_id.clone();
        let store = store;
        Callback::from(move |()| {
            let message = (*text).trim().to_owned();
            if message.is_empty() || *sending {
                return;
            }
            sending.set(true);
            error.set(None);
            let (text, sending, error, id, store) = (
                text.clone(),
                sending.clone(),
                error.clone(),
                id.clone(),
                store.clone(),
            );
            spawn_local(async move {
                match api::send_message(&id, &message).await {
                    Ok(run) => {
                        text.set(String::new());
                        store.dispatch.emit(Action::Upsert(run));
                    }
                    Err(failure) => error.set(Some(failure.to_string())),
                }
                sending.set(false);
            });
        })
    };
    let oninput = {
        let text = text.clone();
        Callback::from(move |e: InputEvent| {
            text.set(e.target_unchecked_into::<web_sys::HtmlTextAreaElement>().value());
        })
    };
    let onkeydown = {
        let send = send.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Enter" && (e.meta_key() || e.ctrl_key()) {
                e.prevent_default();
                send.emit(());
            }
        })
    };
    let onsubmit = {
        let send = send;
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            send.emit(());
        })
    };
    let hint = match props.state {
        RunState::Queued | RunState::Starting => "The agent is not running yet.",
        RunState::Running => "The agent is working; a message joins its current turn.",
        _ => "The agent waits for your message.",
    };
    html! {
        <form id="composer" class="composer card" onsubmit={onsubmit}>
            <label for="follow-up">{ "Follow-up message" }</label>
            <textarea id="follow-up" name="text" rows="3" value={(*text).clone()} disabled={!accepts}
                      placeholder="Tell the agent what to do next…" {oninput} {onkeydown}
                      maxlength={agentfarm_shared::config::limits::PROMPT.to_string()} />
            <p class="hint muted">{ hint }</p>
            if let Some(error) = &*error {
                <p class="composer-error field-error" data-field="text" role="alert">{ error }</p>
            }
            <button id="send-follow-up" type="submit" class="btn btn-primary"
                    disabled={!accepts || *sending || text.trim().is_empty()}>
                { if *sending { "Sending…" } else { "Send" } }
            </button>
        </form>
    }
}

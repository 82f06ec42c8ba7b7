//! Commands several screens share: stopping a run (optimistically), launching a config (or continuing a
//! run), resuming a run the usage limit stopped.

use agentfarm_shared::run::{LaunchRequest, RESUME_PROMPT, Run};
use yew::platform::spawn_local;

use crate::router::Navigator;

use crate::api;
use crate::router::Route;
use crate::state::{Action, StoreCtx};

/// Stops a run: shows "stopping…" at once and rolls back with an error toast if the request fails.
pub fn stop_run(store: &StoreCtx, run_id: &str) {
    let store = store.clone();
    let id = run_id.to_owned();
    store.dispatch.emit(Action::Stopping(id.clone(), true));
    spawn_local(async move {
        match api::stop(&id).await {
            Ok(run) => store.dispatch.emit(Action::Upsert(run)),
            Err(failure) => {
                store.dispatch.emit(Action::Stopping(id, false));
                store.error(format!("Could not stop the run: {failure}"));
            }
        }
    });
}

/// Continues `run`, which the usage limit stopped, on its branch: the new run waits in the queue until the
/// limit resets, then starts; it opens at once.
pub fn resume_after_reset(
    store: &StoreCtx,
    navigator: Option<Navigator>,
    run: &Run,
    done: yew::Callback<bool>,
) {
    let request = LaunchRequest {
        config_id: run.config_id.clone(),
        prompt: Some(RESUME_PROMPT.to_owned()),
        continue_run: Some(run.id.clone()),
    };
    launch(store, navigator, request, done);
}

/// Sends a launch (of a config's current version, or a continuation) and opens the new run; `done` is told
/// whether it was launched, before the new run opens.
pub fn launch(
    store: &StoreCtx,
    navigator: Option<Navigator>,
    request: LaunchRequest,
    done: yew::Callback<bool>,
) {
    let store = store.clone();
    spawn_local(async move {
        match api::launch(&request).await {
            Ok(run) => {
                let run_id = run.id.clone();
                store.dispatch.emit(Action::Upsert(run));
                done.emit(true);
                if let Some(navigator) = navigator {
                    navigator.push(&Route::Run { id: run_id });
                }
            }
            Err(failure) => {
                done.emit(false);
                store.error(format!("Could not launch {}: {failure}", request.config_id));
            }
        }
    });
}

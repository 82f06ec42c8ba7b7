//! Commands several screens share: stopping a run (optimistically), launching a config.

use crate::router::Navigator;
use yew::platform::spawn_local;

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

/// Launches a config's current version and opens the new run; `done` is told when the request ends.
pub fn launch(store: &StoreCtx, navigator: Option<Navigator>, config_id: &str, done: yew::Callback<()>) {
    let store = store.clone();
    let id = config_id.to_owned();
    spawn_local(async move {
        match api::launch(&id).await {
            Ok(run) => {
                let run_id = run.id.clone();
                store.dispatch.emit(Action::Upsert(run));
                done.emit(());
                if let Some(navigator) = navigator {
                    navigator.push(&Route::Run { id: run_id });
                }
            }
            Err(failure) => {
                done.emit(());
                store.error(format!("Could not launch {id}: {failure}"));
            }
        }
    });
}

//! Toasts at the bottom of the screen (`.toasts > .toast.toast-error|toast-info`), each gone after a while
//! or on tap.

use gloo_timers::callback::Timeout;
use yew::prelude::*;

use crate::state::{Action, Toast, ToastKind, use_store};

/// Every toast in the store.
#[inline(never)]
pub fn toasts(toasts: &[Toast]) -> Html {
    html! {
        <div class="toasts" aria-live="polite">
            { for toasts.iter().map(|t| html! { <ToastView key={t.id} toast={t.clone()} /> }) }
        </div>
    }
}

/// Props of [`ToastView`].
#[derive(Properties, PartialEq)]
pub struct ToastProps {
    /// The toast.
    pub toast: Toast,
}

/// One toast.
#[component]
pub fn ToastView(props: &ToastProps) -> Html {
    let store = use_store();
    let id = props.toast.id;
    let error = props.toast.kind == ToastKind::Error;
    {
        let dispatch = store.dispatch.clone();
        use_effect_with(id, move |&id| {
            let timeout = Timeout::new(if error { 8_000 } else { 4_000 }, move || {
                dispatch.emit(Action::Dismiss(id));
            });
            move || drop(timeout)
        });
    }
    let dismiss = store.dispatch.reform(move |_| Action::Dismiss(id));
    html! {
        <div class={if error { "toast toast-error" } else { "toast toast-info" }}
             role={if error { "alert" } else { "status" }}>
            <span>{ props.toast.text.clone() }</span>
            <button class="toast-close" aria-label="Dismiss" onclick={dismiss}>{ "×" }</button>
        </div>
    }
}

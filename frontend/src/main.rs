//! The agentfarm web app: an iPhone-first home-screen PWA for one person's fleet of Claude Code agents.
//!
//! # Layout
//! - [`app`]: the frame (top bar, tab bar or sidebar, the desktop's two panes); [`router`]: routes on the History
//!   API; [`pages`]: one module per screen; [`components`]: shared pieces (state badge, transcript, launch
//!   sheet, navigation, icons, toasts, …).
//! - [`state`]: the store (runs, logs, configs, connection) in a reducer shared through a context.
//! - [`api`]: the typed REST client; [`ws`]: the live socket (pure session logic + browser driver).
//! - [`transcript`]: what each log line shows; [`markdown`]: a small, HTML-free Markdown renderer;
//!   [`config_form`]: the config editor's model; [`time`], [`hooks`], [`actions`]: helpers.
//!
//! The pure modules (`state`, `ws::session`, `transcript`, `markdown`, `config_form`, `api` decoding,
//! `time` formatting) are unit-tested on the host with `cargo test -p agentfarm-frontend`.

mod actions;
mod api;
mod app;
mod components;
mod config_form;
mod hooks;
mod json;
mod markdown;
mod pages;
mod router;
mod state;
mod time;
mod transcript;
mod util;
mod ws;

fn main() {
    yew::Renderer::<app::App>::new().render();
}

//! The live client of `/api/ws`: one socket per app. [`session`] is the logic (pure, tested on the host);
//! [`client`] drives a browser `WebSocket` with it.

pub mod client;
pub mod session;

pub use client::LiveClient;

use yew::prelude::*;

/// The app's live connection from the context, when there is one.
#[hook]
pub fn use_live() -> Option<LiveClient> {
    use_context::<LiveClient>()
}

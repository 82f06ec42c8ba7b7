//! The vocabulary of agentfarm, shared by the backend and the web app (this crate compiles to wasm).
//!
//! # Layout
//! - [`config`]: an agent **config** (the template the owner edits) and its immutable versions.
//! - [`run`]: a **run** (one launch of a config version) and its state machine.
//! - [`validate`]: field-by-field validation with errors that name the field.
//! - [`log`]: one line of a run's output, with its per-run sequence number.
//! - [`claude`]: typed reading of Claude Code's `stream-json` events (unknown ones pass through).
//! - [`runner`]: the in-pod runner's spec and its own events.
//! - [`turns`]: whether Claude is working or waiting, from its message lifecycle events.
//! - [`ws`]: the WebSocket protocol, one tagged enum per direction.
//! - [`push`]: Web Push keys, subscriptions and the notification payload.
//! - [`redact`]: masking of credentials (known values and token-shaped strings) in agent output.
//! - [`usage`]: the subscription's usage window, from the model's rate-limit headers.
//! - [`api`]: route constants, request/response bodies and the one error shape of the REST API.
//! - [`stamp`]: reading RFC 3339 timestamps, small enough for the web app.
//!
//! Words used everywhere: a **config** is the template; a **run** is one launch of a config version; an
//! **agent** is what the owner sees working, i.e. a run that is not yet in a terminal state.

pub mod api;
pub mod claude;
pub mod config;
pub mod log;
pub mod push;
pub mod redact;
pub mod run;
pub mod runner;
pub mod stamp;
mod tagged;
pub mod turns;
pub mod usage;
pub mod validate;
pub mod ws;

//! The agentfarm server: stores agent configs, launches runs of them through a runtime, and streams their
//! state and output live over a WebSocket.
//!
//! # Layout
//! - [`settings`]: flags and environment.
//! - [`server`]: wiring and serving.
//! - [`api`]: routes, the request guard, extractors, the WebSocket session.
//! - [`service`]: the one place that decides: validates, stores, then publishes.
//! - [`store`]: SQLite (configs, versions, runs, logs) on one thread.
//! - [`runtime`]: where agents run: [`runtime::local`] as child processes, [`runtime::kube`] as Jobs.
//! - [`proxy`]: the model, git and pull request proxies agents use instead of credentials; [`capability`]:
//!   the per-run token they show; [`credentials`]: the owner's tokens, which only the server holds;
//!   [`github`]: the GitHub call it makes for a run.
//! - [`push`]: Web Push notifications to the owner's devices.
//! - [`retention`]: deletes runs that ended longer ago than the retention period.
//! - [`hub`]: fan-out of stored changes to sockets.
//! - [`backoff`]: the retry delays the Kubernetes runtime and Web Push share.
//! - [`doctor`]: checks everything the Kubernetes runtime (or the local sandbox) needs, with the fix for each
//!   failure.
//! - [`tailscale`]: tailscaled's whois, which confirms the login the identity check reads.
//! - [`metrics`]: `/metrics` for Prometheus, on a listener of its own.
//! - [`error`]: the one error type and its HTTP form.

pub mod api;
pub mod backoff;
pub mod capability;
pub mod credentials;
pub mod doctor;
pub mod error;
pub mod github;
pub mod hub;
pub mod metrics;
pub mod proxy;
pub mod push;
pub mod retention;
pub mod runtime;
pub mod server;
pub mod service;
pub mod settings;
pub mod store;
pub mod tailscale;

//! agentfarm's integration tests: real servers on port 0, real SQLite files, real child processes (the real
//! Claude Code CLI against the scripted fake model), real HTTP and WebSocket clients. One test binary; one
//! module per area.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bad_input;
mod browser;
mod chromium;
mod configs;
mod deploy;
mod doctor;
mod durability;
mod encoding;
mod harness;
mod hygiene;
mod identity;
mod images;
mod kube;
mod lifecycle;
mod metrics;
mod proxies;
mod pull_requests;
mod push;
mod push_ui;
mod queue;
mod restart;
mod sandbox;
mod security_suite;
#[cfg(feature = "soak")]
mod soak;
mod socket_session;
mod usage;
mod web_ui;

//! agentfarm's benchmarks: the real server binary (release build) on the local runtime, driven over real HTTP
//! and WebSockets, with the floor of each measure taken in the same run. Prints a Markdown table.
//!
//! `cargo xtask bench` runs the full set and adds the page weight; `cargo xtask bench --quick` (seconds,
//! small sizes) keeps the harness working in CI. The page-load rows drive headless Chromium through
//! chromedriver (Debian's `chromium` and `chromium-driver`) against the built web app (see [`page`]).
//!
//! This binary is also the stand-in agent the server runs: with `AGENTFARM_BENCH_AGENT` set it prints
//! timestamped lines at a given rate and exits (see [`agent`]).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent;
#[path = "../../tests/integration/chromium.rs"]
mod chromium;
mod client;
mod fanout;
mod kube;
mod page;
mod scale;
mod server;
mod stats;

use std::fmt::Write as _;

/// Sizes of one benchmark run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Runs printing at once in the fan-out.
    pub runs: usize,
    /// Lines per second each of them prints.
    pub rate: u64,
    /// WebSocket clients per run.
    pub clients: usize,
    /// How long they print.
    pub seconds: u64,
    /// Runs the scale measures track.
    pub tracked: usize,
    /// Clients connected in the scale measures.
    pub watchers: usize,
    /// Launches timed.
    pub launches: usize,
    /// Page loads timed, of each kind.
    pub page_loads: usize,
    /// The quick run inside `cargo xtask test`: a harness that cannot apply what a row needs reports that
    /// row as not measured instead of failing the test command (the full run refuses it).
    pub quick: bool,
}

impl Plan {
    const FULL: Plan = Plan {
        runs: 50,
        rate: 1_000,
        clients: 1,
        seconds: 20,
        tracked: 200,
        watchers: 50,
        launches: 100,
        page_loads: 10,
        quick: false,
    };
    const QUICK: Plan = Plan {
        runs: 4,
        rate: 200,
        clients: 2,
        seconds: 2,
        tracked: 20,
        watchers: 5,
        launches: 10,
        page_loads: 2,
        quick: true,
    };
}

/// One row of the table: what, the target, what was measured, and the floor with the ratio when there is one.
pub struct Row {
    pub measure: String,
    pub target: String,
    pub measured: String,
    pub floor: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os(agent::ROLE).is_some() {
        return agent::run();
    }
    // TLS is compiled into the HTTP client (for the runner's HTTPS calls), so a crypto provider must be chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let quick = std::env::args().any(|arg| arg == "--quick");
    let plan = if quick { Plan::QUICK } else { Plan::FULL };
    eprintln!("bench: {plan:?}");
    let mut rows = fanout::measure(plan).await?;
    rows.extend(scale::measure(plan).await?);
    rows.extend(kube::measure(plan).await?);
    rows.extend(page::measure(plan).await?);
    let mut table = String::from("| measure | target | measured | floor (ratio) |\n|---|---|---|---|\n");
    for row in rows {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} |",
            row.measure, row.target, row.measured, row.floor
        );
    }
    print!("{table}");
    Ok(())
}

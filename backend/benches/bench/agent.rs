//! The stand-in agent: prints `bench <wall-clock nanos> <n>` lines at a steady rate, in 10 ms ticks, then a
//! `bench-exit <nanos>` line and exits. The server runs it as its agent command (the local runtime's
//! arguments are ignored); the floor runs the same program with its stdout read directly.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Set (to anything) to make this binary the agent.
pub const ROLE: &str = "AGENTFARM_BENCH_AGENT";
/// Lines per second.
pub const RATE: &str = "AGENTFARM_BENCH_RATE";
/// Seconds of printing.
pub const SECONDS: &str = "AGENTFARM_BENCH_SECONDS";

/// Wall-clock nanoseconds: the agent and the clients are processes on one machine, so one clock.
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// The timestamp of a `bench …` or `bench-exit …` line.
pub fn stamp(line: &str) -> Option<u64> {
    line.split_whitespace().nth(1)?.parse().ok()
}

fn number(name: &str) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub fn run() -> anyhow::Result<()> {
    let rate = number(RATE);
    let seconds = number(SECONDS);
    let started = Instant::now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "bench-start {}", now_nanos())?;
    out.flush()?;
    let ticks = seconds * 100;
    let mut written = 0;
    for tick in 1..=ticks {
        // Lines due by the end of this tick, so the rate holds whatever the tick size rounds to.
        let due = rate * tick / 100;
        while written < due {
            written += 1;
            writeln!(out, "bench {} {written}", now_nanos())?;
        }
        out.flush()?;
        let next = started + Duration::from_millis(tick * 10);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    writeln!(out, "bench-exit {}", now_nanos())?;
    out.flush()?;
    Ok(())
}

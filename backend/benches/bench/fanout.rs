//! Log fan-out and status latency: `runs` agents printing `rate` lines a second to `clients` WebSocket
//! clients each; every line timed from its writing to its arrival, every run's end from the agent's last
//! line to the terminal frame. The floor: the same agents, in the same run, read straight from their pipes.
//! Then the same fan-out once more with one socket following every run, to show the per-socket cost.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::agent::{self, now_nanos, stamp};
use crate::client::{self, Seen};
use crate::server::{self, Server};
use crate::stats::{ms, percentile, ratio};
use crate::{Plan, Row};

/// What the floor saw: every line's latency, every agent's end (last line → exit observed), lines read.
struct Floor {
    line_latency: Vec<u64>,
    end_latency: Vec<u64>,
    lines: u64,
    wall: Duration,
}

/// The agents run directly, their stdout read here, as the server's local runtime reads it.
async fn floor(plan: Plan) -> anyhow::Result<Floor> {
    let started = Instant::now();
    let mut readers = Vec::new();
    for _ in 0..plan.runs {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .env(agent::ROLE, "1")
            .env(agent::RATE, plan.rate.to_string())
            .env(agent::SECONDS, plan.seconds.to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        readers.push(tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let (mut latency, mut count, mut exit) = (Vec::new(), 0_u64, None);
            while let Ok(Some(line)) = lines.next_line().await {
                let at = now_nanos();
                count += 1;
                if line.starts_with("bench ") {
                    latency.extend(stamp(&line).map(|written| at.saturating_sub(written)));
                } else if line.starts_with("bench-exit ") {
                    exit = stamp(&line);
                }
            }
            let _ = child.wait().await;
            let end = exit.map(|exit| now_nanos().saturating_sub(exit));
            (latency, count, end)
        }));
    }
    let mut floor = Floor {
        line_latency: Vec::new(),
        end_latency: Vec::new(),
        lines: 0,
        wall: Duration::ZERO,
    };
    for reader in readers {
        let (latency, count, end) = reader.await?;
        floor.line_latency.extend(latency);
        floor.lines += count;
        floor.end_latency.extend(end);
    }
    floor.wall = started.elapsed();
    Ok(floor)
}

/// CPU used so far, in seconds: by the machine, the server, its agents (its children, once reaped) and the
/// clients (this process); or, [`Cpu::since`] an earlier reading, in cores.
struct Cpu {
    machine: f64,
    server: f64,
    agents: f64,
    clients: f64,
}

impl Cpu {
    fn now(server: u32) -> Cpu {
        let (server, agents) = server::cpu_seconds(server);
        Cpu {
            machine: server::machine_busy_seconds(),
            server,
            agents,
            clients: server::cpu_seconds(std::process::id()).0,
        }
    }

    fn since(&self, before: &Cpu, wall: Duration) -> Cpu {
        let cores = |now: f64, then: f64| (now - then) / wall.as_secs_f64();
        Cpu {
            machine: cores(self.machine, before.machine),
            server: cores(self.server, before.server),
            agents: cores(self.agents, before.agents),
            clients: cores(self.clients, before.clients),
        }
    }
}

/// Who follows which runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sockets {
    /// `plan.clients` sockets per run, each following that run alone: the headline measure.
    PerRun,
    /// One socket following every run: the same lines with one socket to wake per batch instead of one per
    /// run, which shows what the per-socket cost adds to the latency.
    One,
}

/// What one fan-out saw, and what it cost.
struct FanOut {
    seen: Seen,
    wall: Duration,
    cpu: Cpu,
    peak_rss: f64,
    /// The store's commits, p50 and p99.
    commit: (Duration, Duration),
    /// The write-ahead log file's largest size, in bytes.
    peak_wal: u64,
}

/// Starts a server, launches `plan.runs` agents and follows them with `sockets` to their end.
async fn fan_out(plan: Plan, sockets: Sockets) -> anyhow::Result<FanOut> {
    let server = Server::start(plan.rate, plan.seconds, plan.runs).await?;
    let pid = server.pid();
    let config = server.config().await?;
    let mut runs = Vec::new();
    for _ in 0..plan.runs {
        runs.push(server.launch(&config).await?);
    }
    let cpu_before = Cpu::now(pid);
    let started = Instant::now();
    let followed: Vec<Vec<String>> = match sockets {
        Sockets::PerRun => runs
            .iter()
            .flat_map(|run| std::iter::repeat_n(vec![run.clone()], plan.clients))
            .collect(),
        Sockets::One => vec![runs],
    };
    let clients: Vec<_> = followed
        .into_iter()
        .map(|runs| tokio::spawn(client::follow(server.url.clone(), runs)))
        .collect();
    // Memory and the WAL's size twice a second while they print (the WAL file keeps its largest size until
    // it is emptied, once the store has been idle a while).
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = Arc::clone(&done);
        let wal = server.wal_path();
        tokio::spawn(async move {
            let (mut rss, mut wal_bytes): (f64, u64) = (0.0, 0);
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            while !done.load(Ordering::Relaxed) {
                tick.tick().await;
                rss = rss.max(server::rss_mib(pid));
                wal_bytes = wal_bytes.max(std::fs::metadata(&wal).map_or(0, |meta| meta.len()));
            }
            (rss, wal_bytes)
        })
    };
    let mut seen = Seen::default();
    for client in clients {
        let one = client.await??;
        seen.line_latency.extend(one.line_latency);
        seen.end_latency.extend(one.end_latency);
        seen.lines += one.lines;
    }
    let wall = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (peak_rss, peak_wal) = sampler.await?;
    Ok(FanOut {
        seen,
        wall,
        cpu: Cpu::now(pid).since(&cpu_before, wall),
        peak_rss,
        commit: (
            server.commit_percentile(50.0).await?,
            server.commit_percentile(99.0).await?,
        ),
        peak_wal,
    })
}

/// One synced 4 KiB write to a file beside the server's data, `count` times: what one commit that must
/// reach the disk costs at least. Nanoseconds each.
fn fsync_floor(dir: &std::path::Path, count: usize) -> anyhow::Result<Vec<u64>> {
    use std::io::Write as _;
    let path = dir.join("fsync-floor");
    let mut file = std::fs::File::create(&path)?;
    let page = [0_u8; 4096];
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        file.write_all(&page)?;
        file.sync_data()?;
        times.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    std::fs::remove_file(path)?;
    Ok(times)
}

pub async fn measure(plan: Plan) -> anyhow::Result<Vec<Row>> {
    let floor = floor(plan).await?;
    let FanOut {
        mut seen,
        wall,
        cpu,
        peak_rss,
        commit,
        peak_wal,
    } = fan_out(plan, Sockets::PerRun).await?;
    let mut fsync = fsync_floor(&std::env::temp_dir(), 200)?;
    let mut one_socket = fan_out(plan, Sockets::One).await?.seen.line_latency;

    let served = seen.lines as f64 / wall.as_secs_f64();
    let direct = floor.lines as f64 / floor.wall.as_secs_f64();
    let (p50, p99) = (
        percentile(&mut seen.line_latency, 50.0),
        percentile(&mut seen.line_latency, 99.0),
    );
    let mut floor_lines = floor.line_latency;
    let (floor50, floor99) = (
        percentile(&mut floor_lines, 50.0),
        percentile(&mut floor_lines, 99.0),
    );
    let (end50, end99) = (
        percentile(&mut seen.end_latency, 50.0),
        percentile(&mut seen.end_latency, 99.0),
    );
    let mut floor_end = floor.end_latency;
    let (floor_end50, floor_end99) = (percentile(&mut floor_end, 50.0), percentile(&mut floor_end, 99.0));
    let shape = format!(
        "{} runs × {} lines/s × {} client{}, {} s",
        plan.runs,
        plan.rate,
        plan.clients,
        if plan.clients == 1 { "" } else { "s" },
        plan.seconds
    );
    Ok(vec![
        Row {
            measure: format!("Log fan-out, delivered lines/s ({shape})"),
            target: "≥ 50,000 lines/s on 2 cores".into(),
            measured: format!("{served:.0} lines/s"),
            floor: format!(
                "{:.0} lines/s read from the pipes, once per client ({:.2}×)",
                direct * plan.clients as f64,
                served / (direct * plan.clients as f64)
            ),
        },
        Row {
            measure: "Log line latency, written → client, p50 / p99".into(),
            target: "p99 ≤ 10 ms".into(),
            measured: format!("{} / {}", ms(p50), ms(p99)),
            floor: format!(
                "{} / {} ({} at p99)",
                ms(floor50),
                ms(floor99),
                ratio(p99, floor99)
            ),
        },
        Row {
            measure: format!("The same, one socket following all {} runs", plan.runs),
            target: "–".into(),
            measured: format!(
                "{} / {}",
                ms(percentile(&mut one_socket, 50.0)),
                ms(percentile(&mut one_socket, 99.0))
            ),
            floor: format!("({} at p99)", ratio(percentile(&mut one_socket, 99.0), floor99)),
        },
        Row {
            measure: "Store commit during the fan-out, p50 / p99 (the `/metrics` histogram's bucket bounds)"
                .into(),
            target: "p99 ≤ 5 ms".into(),
            measured: format!("≤ {} / ≤ {}", ms(commit.0), ms(commit.1)),
            floor: format!(
                "{} / {} for one synced 4 KiB write ({} at p99)",
                ms(percentile(&mut fsync, 50.0)),
                ms(percentile(&mut fsync, 99.0)),
                ratio(commit.1, percentile(&mut fsync, 99.0))
            ),
        },
        Row {
            measure: "The write-ahead log's largest size during the fan-out".into(),
            target: "bounded (reported)".into(),
            measured: format!("{:.1} MiB", peak_wal as f64 / (1024.0 * 1024.0)),
            floor: "–".into(),
        },
        Row {
            measure: "Server during the fan-out: peak RSS, CPU".into(),
            target: "–".into(),
            measured: format!("{peak_rss:.0} MiB, {:.2} cores", cpu.server),
            floor: "–".into(),
        },
        Row {
            measure: "The machine during the fan-out: cores busy, of which the agents and the clients".into(),
            target: "–".into(),
            measured: format!(
                "{:.2} of {} cores: agents {:.2}, clients {:.2}",
                cpu.machine,
                std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
                cpu.agents,
                cpu.clients
            ),
            floor: "–".into(),
        },
        Row {
            measure: "Status latency, agent's last line → terminal frame, p50 / p99".into(),
            target: "p99 < 200 ms".into(),
            measured: format!("{} / {}", ms(end50), ms(end99)),
            floor: format!(
                "{} / {} to the exit seen by a parent ({} at p99)",
                ms(floor_end50),
                ms(floor_end99),
                ratio(end99, floor_end99)
            ),
        },
    ])
}

//! CI-16, the soak: many agents printing fast to many clients, for a minute, on the real server binary.
//! Behind the `soak` feature (it takes over a minute and both cores):
//! `cargo test -p agentfarm --features soak --test integration ci_16 -- --nocapture`.
//! `AGENTFARM_SOAK_SECONDS` shortens or lengthens the minute.

use std::time::Duration;

use agentfarm_shared::run::RunState;
use agentfarm_shared::ws::ServerFrame;
use serde_json::json;

use crate::harness::{ServerBinary, Socket, serve_command, within};

const AGENTS: usize = 50;
const LINES_PER_SECOND: usize = 200;
const CLIENTS_PER_AGENT: usize = 3;
/// Most resident memory the server may reach.
const RSS_LIMIT_MIB: u64 = 256;
/// How much the resident memory may still rise during the second half (allocator noise).
const SECOND_HALF_SLACK_MIB: u64 = 16;
/// How many more open files the server may hold once every client and agent is gone.
const FD_SLACK: usize = 5;

/// An agent printing `LINES_PER_SECOND` lines of about 100 bytes a second for `seconds`, in tenths of a
/// second: bash builtins only (a `read` that times out on a pipe nobody writes is the pause), so 50 of them
/// do not spend the machine on forks.
fn agent_script(seconds: u64) -> String {
    let per_tick = LINES_PER_SECOND / 10;
    format!(
        "#!/usr/bin/env bash\n\
         exec {{pause}}<> <(:)\n\
         n=0\n\
         for ((tick = 0; tick < {ticks}; tick++)); do\n\
           for ((i = 0; i < {per_tick}; i++)); do\n\
             n=$((n + 1))\n\
             printf 'line %08d the quick brown fox jumps over the lazy dog, again and again and again\\n' \"$n\"\n\
           done\n\
           read -r -t 0.1 -u \"$pause\" || true\n\
         done\n",
        ticks = seconds * 10,
    )
}

/// Resident memory and open files of process `pid`.
fn usage(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap();
    let files = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    (rss_kib / 1024, files)
}

/// Reads `socket` until run `run_id` has ended, checking every line arrives once and in order; returns the
/// number of lines.
async fn follow(mut socket: Socket, run_id: String) -> u64 {
    socket.subscribe(&run_id, 0).await;
    let mut next = 1;
    loop {
        match socket.next().await {
            ServerFrame::Log { run_id: id, lines } if id == run_id => {
                for line in lines {
                    assert_eq!(line.seq, next, "{run_id}: every line once, in order");
                    next += 1;
                }
            }
            ServerFrame::Run { run } if run.id == run_id && run.state.is_terminal() => {
                assert_eq!(run.state, RunState::Succeeded, "{run:?}");
                if next > run.last_seq {
                    return next - 1;
                }
            }
            ServerFrame::Gap { .. } => panic!("{run_id}: a gap although every line is kept"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_16_soak() {
    let seconds: u64 = std::env::var("AGENTFARM_SOAK_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let agent = dir.path().join("agent.sh");
    std::fs::write(&agent, agent_script(seconds)).unwrap();
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let lines_per_agent = seconds * LINES_PER_SECOND as u64;
    let mut command = serve_command(&dir.path().join("data"));
    command
        .arg("--agent-command")
        .arg(&agent)
        .args(["--agent-env-passthrough", "PATH", "--max-running"])
        .arg(AGENTS.to_string())
        .arg("--log-retention")
        .arg(lines_per_agent.to_string());
    let server = ServerBinary::spawn(command).await;
    let pid = server.pid();
    let (status, config) = server
        .send(
            reqwest::Method::POST,
            "/api/configs",
            json!({"name": "Soak", "task_prompt": "print"}),
        )
        .await;
    assert!(status.is_success(), "{config}");
    let (_, idle_files) = usage(pid);

    let mut followers = Vec::new();
    for _ in 0..AGENTS {
        let (status, run) = server
            .send(
                reqwest::Method::POST,
                "/api/runs",
                json!({"config_id": config["id"], "prompt": "print"}),
            )
            .await;
        assert!(status.is_success(), "{run}");
        let run_id = run["id"].as_str().unwrap().to_owned();
        for _ in 0..CLIENTS_PER_AGENT {
            let socket = Socket::connect(&server.url).await;
            followers.push(tokio::spawn(follow(socket, run_id.clone())));
        }
    }

    // One sample a second while the agents print.
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while followers.iter().any(|follower| !follower.is_finished()) {
        tick.tick().await;
        samples.push(usage(pid).0);
    }
    for follower in followers {
        assert_eq!(follower.await.unwrap(), lines_per_agent);
    }
    // The clients are gone; the server lets go of their sockets and the agents' pipes.
    let files_after = within(async {
        loop {
            let (_, files) = usage(pid);
            if files <= idle_files + FD_SLACK {
                return files;
            }
            tick.tick().await;
        }
    })
    .await;
    let peak = samples.iter().copied().max().unwrap_or_default();
    let half = samples.len() / 2;
    let first_half_peak = samples[..half].iter().copied().max().unwrap_or_default();
    let second_half_peak = samples[half..].iter().copied().max().unwrap_or_default();
    println!(
        "soak: {AGENTS} agents x {LINES_PER_SECOND} lines/s x {CLIENTS_PER_AGENT} clients for {seconds} s: \
         RSS peak {peak} MiB (first half {first_half_peak}, second half {second_half_peak}), \
         open files {idle_files} idle, {files_after} after; samples {samples:?}"
    );
    assert!(peak < RSS_LIMIT_MIB, "RSS peaked at {peak} MiB");
    assert!(
        second_half_peak <= first_half_peak + SECOND_HALF_SLACK_MIB,
        "RSS still growing: {first_half_peak} then {second_half_peak} MiB"
    );
}

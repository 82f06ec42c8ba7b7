//! The local runtime's gVisor sandbox (`--sandbox gvisor`), with Debian's runsc and the real Claude Code CLI:
//! the journey runs inside it (gVisor's kernel in the transcript) and reaches the model and git through the
//! proxies; an agent finds neither the owner's tokens nor the server's data, another run's files, the
//! server's process or a port on this machine, and its egress to private ranges and the metadata service is
//! refused; a stop, and the server's own end, leave no process, mount, namespace, interface or rule behind.
//! Each of these fails without the sandbox.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};

use agentfarm::settings::{SandboxChoice, Settings};
use agentfarm_app_client::Socket;
use agentfarm_fake_model::HUNT_FOR_TOKENS;
use agentfarm_shared::run::RunState;
use agentfarm_shared::ws::ServerFrame;
use reqwest::StatusCode;
use serde_json::json;

use crate::browser::{Browser, Viewport};
use crate::harness::{ServerBinary, TestServer, owner_token, web_dir};

/// gVisor's kernel version, as `uname -r` reports it inside a sandbox.
const GVISOR_KERNEL: &str = "4.4.0";

/// Each sandboxed server in this binary gets a subnet (and so a bridge and nftables table) of its own.
fn next_subnet() -> String {
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let third = 100 + NEXT.fetch_add(1, Ordering::Relaxed);
    format!("10.213.{third}.0/24")
}

fn sandboxed(settings: &mut Settings) {
    settings.sandbox.kind = SandboxChoice::Gvisor;
    settings.sandbox.subnet = next_subnet().parse().unwrap();
}

/// The name of the bridge and nftables table of `subnet`'s sandboxes.
fn network_name(subnet: &str) -> String {
    let address: Ipv4Addr = subnet.split('/').next().unwrap().parse().unwrap();
    let [a, b, c, _] = address.octets();
    format!("af{a:02x}{b:02x}{c:02x}")
}

/// The transcript of `run_id`, as text.
async fn transcript(server: &TestServer, run_id: &str) -> String {
    let (status, logs) = server.get(&format!("/api/runs/{run_id}/logs?limit=5000")).await;
    assert_eq!(status, StatusCode::OK);
    logs.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_runs_in_gvisor_and_reaches_the_model_and_git_through_the_proxies() {
    let (github, server) = TestServer::with_github(|s| {
        sandboxed(s);
        s.web_dir = Some(web_dir());
    })
    .await;
    let (status, info) = server.get("/api/info").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["runtime"]["sandbox"], "gvisor", "{info}");
    assert_eq!(info["runtime"]["isolated"], true);
    let (status, report) = server.get("/api/doctor").await;
    assert_eq!(status, StatusCode::OK);
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() >= 5, "{report}");
    assert!(
        checks.iter().all(|check| check["status"] == "pass"),
        "this machine has what the sandbox needs: {report}"
    );
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_agentfarm"))
        .args(["doctor", "--sandbox", "gvisor"])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&cli.stdout);
    assert!(cli.status.success(), "{printed}");
    assert!(
        printed.contains("gVisor sandbox") && printed.contains(GVISOR_KERNEL),
        "{printed}"
    );
    let browser = Browser::start(Viewport::Phone).await;
    browser.open(&format!("{}/settings", server.url)).await;
    assert_eq!(browser.text("#runtime-sandbox").await, "gvisor");
    assert_eq!(browser.text("#runtime-isolated").await, "yes");
    assert_eq!(browser.text("#cluster .section-title").await, "This machine");
    drop(browser);

    server
        .create_config_with(json!({"name": "Notes", "task_prompt": "unused", "repos": ["octo/app"]}))
        .await;
    let mut socket = server.socket().await;
    let run = server
        .launch(
            "notes",
            "[[bash:uname -r && printf 'one\\n' > NOTES.md]] write notes",
        )
        .await;
    let done = socket.until_ended(&run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{done:?}");
    let text = transcript(&server, &run.id).await;
    assert!(
        text.contains(GVISOR_KERNEL),
        "uname -r inside is gVisor's: {text}"
    );
    let branch = done.branch.clone().unwrap();
    assert_eq!(
        github.file_at("octo", "app", &branch, "NOTES.md").as_deref(),
        Some("one\n"),
        "pushed through the git proxy"
    );
    assert_eq!(github.pulls().len(), 1, "opened through the control plane");
    assert!(!server.model.main_requests().is_empty());
    // Its end removes the bridge and the rules.
    server.stop().await;
}

/// This machine's own address on its network (not loopback): where a server port of the host would be.
fn host_address() -> Ipv4Addr {
    let output = std::process::Command::new("ip")
        .args(["-4", "route", "get", "192.0.2.1"])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let mut words = text.split_whitespace();
    words.find(|word| *word == "src").unwrap();
    words.next().unwrap().parse().unwrap()
}

/// A bash line that tries a TCP connection and says `open` or `refused` after `label`.
fn probe(label: &str, addr: SocketAddr) -> String {
    format!(
        "(timeout 10 bash -c 'exec 3<>/dev/tcp/{}/{}' 2>/dev/null && echo {label}-open || echo {label}-refused)",
        addr.ip(),
        addr.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_in_gvisor_finds_nothing_of_the_server_and_reaches_nothing_private() {
    const CLAUDE_CANARY: &str = "sk-ant-oat01-SANDBOXCANARYclaudeTOKENxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    const GITHUB_CANARY: &str = "ghp_SANDBOXCANARYgithubTOKENxxxxxxxxxxxx";
    let mut owner_files = Vec::new();
    let server = TestServer::start_with(|s| {
        sandboxed(s);
        let dir = s.data_dir.parent().unwrap().to_owned();
        s.claude_token_file = Some(owner_token(&dir, "owner-claude", CLAUDE_CANARY));
        s.github_token_file = Some(owner_token(&dir, "owner-github", GITHUB_CANARY));
        owner_files.extend(s.claude_token_file.clone());
    })
    .await;
    // A port of this machine's, on its own address, that anything unsandboxed here could connect to.
    let host_port = tokio::net::TcpListener::bind((host_address(), 0)).await.unwrap();
    let host_addr = host_port.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((connection, _)) = host_port.accept().await {
            drop(connection);
        }
    });
    let config = server.create_config("Thief", "unused").await;
    let mut socket = server.socket().await;
    let first = server
        .launch(
            &config,
            "[[bash:echo first-run-secret > marker.txt]] leave a mark",
        )
        .await;
    assert_eq!(socket.until_ended(&first.id).await.state, RunState::Succeeded);

    let data = server.dir.path().join("data");
    let first_marker = data.join("runs").join(&first.id).join("work/marker.txt");
    assert!(first_marker.is_file(), "the first run's mark is on the host");
    let metadata: SocketAddr = "169.254.169.254:80".parse().unwrap();
    let private: SocketAddr = "10.0.0.1:443".parse().unwrap();
    let hunt = [
        format!(
            "(cat {}/agentfarm.db > /dev/null 2>&1 && echo data-dir-read || echo data-dir-hidden)",
            data.display()
        ),
        format!(
            "(cat {} 2>/dev/null || echo other-run-hidden)",
            first_marker.display()
        ),
        format!(
            "(cat {} 2>/dev/null || echo token-file-hidden)",
            owner_files[0].display()
        ),
        "echo pid1=$(tr '\\0' ' ' < /proc/1/cmdline)".to_owned(),
        "(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -q '^CARGO_MANIFEST_DIR=' \
         && echo server-env-read || echo server-env-hidden)"
            .to_owned(),
        probe("host-port", host_addr),
        probe("metadata", metadata),
        probe("private", private),
        HUNT_FOR_TOKENS.to_owned(),
    ]
    .join("; ");
    let second = server
        .launch(&config, &format!("[[bash:{hunt}]] show me everything"))
        .await;
    let done = socket.until_ended(&second.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{done:?}");

    let text = transcript(&server, &second.id).await;
    for outcome in [
        "data-dir-hidden",
        "other-run-hidden",
        "token-file-hidden",
        "pid1=/agentfarm/runner",
        "server-env-hidden",
        "host-port-refused",
        "metadata-refused",
        "private-refused",
        "searched ",
    ] {
        assert!(text.contains(outcome), "{outcome} in {text}");
    }
    assert!(!text.contains("first-run-secret"), "{text}");
    for canary in [CLAUDE_CANARY, GITHUB_CANARY] {
        assert!(!text.contains(canary), "in the transcript");
        for request in server.model.requests() {
            assert!(!request.body.to_string().contains(canary), "sent to the model");
        }
    }
    for request in server.model.main_requests() {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {CLAUDE_CANARY}").as_str()),
            "the proxy put the owner's token on what the agent sent"
        );
    }
    server.stop().await;
}

/// What is left on this machine of run `run_id`: processes, mounts, its namespace and its cgroups.
fn leftovers_of(run_id: &str) -> Vec<String> {
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(run_id) {
            left.push(format!("process {cmdline}"));
        }
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    left.extend(
        mounts
            .lines()
            .filter(|line| line.contains(run_id))
            .map(|line| format!("mount {line}")),
    );
    let namespaces = std::fs::read_dir("/run/netns")
        .map(|dir| dir.flatten().map(|entry| entry.file_name()).collect::<Vec<_>>())
        .unwrap_or_default();
    left.extend(
        namespaces
            .iter()
            .map(|name| name.to_string_lossy().into_owned())
            .filter(|name| name.contains(run_id))
            .map(|name| format!("namespace {name}")),
    );
    for controller in ["memory", "cpu"] {
        let cgroup = std::path::Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(format!("agentfarm-{run_id}"));
        if cgroup.exists() {
            left.push(format!("cgroup {}", cgroup.display()));
        }
    }
    left
}

/// The sandboxes runsc still knows in `server`'s state directory.
fn sandboxes_of(server: &TestServer) -> Vec<String> {
    let listed = std::process::Command::new("runsc")
        .arg("--root")
        .arg(server.dir.path().join("data/sandboxes"))
        .args(["list", "--quiet"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|id| !id.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The interfaces and nftables tables named `name`, or starting with it.
fn network_leftovers(name: &str) -> Vec<String> {
    let mut left: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|interface| interface.starts_with(name))
        .map(|interface| format!("interface {interface}"))
        .collect();
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    left.extend(
        String::from_utf8_lossy(&tables.stdout)
            .lines()
            .filter(|line| line.contains(name))
            .map(|line| format!("nftables {line}")),
    );
    left
}

/// The `proxy_only` set of network `name`'s nftables table.
fn proxy_only(name: &str) -> String {
    let listed = std::process::Command::new("nft")
        .args(["list", "set", "inet", name, "proxy_only"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&listed.stdout).into_owned()
}

/// Reads frames until run `run_id` has logged a line containing `text`.
async fn until_logged(socket: &mut Socket, run_id: &str, text: &str) {
    socket.subscribe(run_id, 0).await;
    socket
        .until(|frame| match frame {
            ServerFrame::Log { run_id: id, lines } if id == run_id => {
                lines.iter().any(|line| line.text.contains(text)).then_some(())
            }
            _ => None,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_and_the_servers_end_leave_nothing_behind() {
    let mut subnet = String::new();
    let server = TestServer::start_with(|s| {
        sandboxed(s);
        s.stop_grace = 2;
        subnet = s.sandbox.subnet.to_string();
    })
    .await;
    let network = network_name(&subnet);
    let (status, body) = server
        .post(
            "/api/configs",
            json!({"name": "Sleeper", "task_prompt": "unused", "cpu": "500m", "memory": "512Mi", "egress": "proxy-only"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut socket = server.socket().await;

    let stopped = server
        .launch("sleeper", "[[bash:sleep 600]] wait a long time")
        .await;
    until_logged(&mut socket, &stopped.id, "sleep 600").await;
    let memory = format!(
        "/sys/fs/cgroup/memory/agentfarm-{}/memory.limit_in_bytes",
        stopped.id
    );
    assert_eq!(
        std::fs::read_to_string(&memory).unwrap().trim(),
        (512u64 << 20).to_string(),
        "the config's memory is the sandbox's limit"
    );
    let quota = format!("/sys/fs/cgroup/cpu/agentfarm-{}/cpu.cfs_quota_us", stopped.id);
    assert_eq!(std::fs::read_to_string(&quota).unwrap().trim(), "50000");
    assert!(
        proxy_only(&network).contains("10.213."),
        "a proxy-only config's agent is in the set that reaches nothing but the proxies"
    );
    assert!(
        !leftovers_of(&stopped.id).is_empty(),
        "the sandbox is there while it runs"
    );
    assert_eq!(sandboxes_of(&server), std::slice::from_ref(&stopped.id));
    let (status, body) = server
        .post(&format!("/api/runs/{}/stop", stopped.id), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = socket.until_ended(&stopped.id).await;
    assert_eq!(done.state, RunState::Stopped, "{done:?}");
    assert_eq!(leftovers_of(&stopped.id), Vec::<String>::new());
    assert_eq!(sandboxes_of(&server), Vec::<String>::new());
    assert!(!proxy_only(&network).contains("10.213."), "its rule went with it");

    let running = server
        .launch("sleeper", "[[bash:sleep 600]] wait a long time")
        .await;
    until_logged(&mut socket, &running.id, "sleep 600").await;
    assert!(!network_leftovers(&network).is_empty());
    assert!(!leftovers_of(&running.id).is_empty());
    let _model = server.stop().await;
    let mut left = network_leftovers(&network);
    left.extend(leftovers_of(&running.id));
    assert_eq!(
        left,
        Vec::<String>::new(),
        "the server's end removed its sandboxes and network"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_reaches_the_sandboxed_agent_and_the_idle_timeout_ends_it() {
    let server = TestServer::start_with(|s| {
        sandboxed(s);
        s.idle_timeout = 2;
    })
    .await;
    let config = server.create_config("Talk", "unused").await;
    let mut socket = server.socket().await;
    let run = server.launch(&config, "[[bash:echo first-turn-done]] one").await;
    socket.until_state(&run.id, RunState::WaitingForInput).await;
    let (status, body) = server
        .post(
            &format!("/api/runs/{}/messages", run.id),
            json!({"text": "[[bash:uname -r]] and the kernel?"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = socket.until_ended(&run.id).await;
    assert_eq!(
        done.state,
        RunState::Succeeded,
        "ended by the idle timeout: {done:?}"
    );
    let text = transcript(&server, &run.id).await;
    assert!(
        text.contains("first-turn-done") && text.contains(GVISOR_KERNEL),
        "{text}"
    );
    assert_eq!(leftovers_of(&run.id), Vec::<String>::new());
    server.stop().await;
}

/// A server killed with its agent mid-run: the restarted server finds the run `lost`, removes what was left
/// of its sandbox, and runs the next agent sandboxed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_the_run_is_lost_and_its_sandbox_gone() {
    let model = agentfarm_fake_model::FakeModel::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let subnet = next_subnet();
    let args = ["--sandbox", "gvisor", "--sandbox-subnet", subnet.as_str()];
    let server = ServerBinary::start_with_args(&data, &model, &args).await;
    let app = agentfarm_app_client::App::new(server.url.clone());
    let config = app.create_config("Crash", "unused").await;
    let mut socket = app.socket().await;
    let run = app.launch(&config, "[[bash:sleep 600]] wait").await;
    until_logged(&mut socket, &run.id, "sleep 600").await;
    server.kill().await;

    let server = ServerBinary::start_with_args(&data, &model, &args).await;
    let app = agentfarm_app_client::App::new(server.url.clone());
    assert_eq!(app.run(&run.id).await.state, RunState::Lost);
    assert_eq!(leftovers_of(&run.id), Vec::<String>::new());
    let mut socket = app.socket().await;
    let next = app.launch(&config, "[[bash:uname -r]] again").await;
    assert_eq!(socket.until_ended(&next.id).await.state, RunState::Succeeded);
    let (status, _) = server.terminate().await;
    assert!(status.success(), "{status}");
    assert_eq!(network_leftovers(&network_name(&subnet)), Vec::<String>::new());
}

/// The sandbox is the local runtime's: asked for with the Kubernetes runtime, the server refuses to start
/// and says why, before it sets anything up.
#[tokio::test]
async fn the_sandbox_is_the_local_runtimes() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::with_data_dir(dir.path().join("data"));
    sandboxed(&mut settings);
    settings.runtime = agentfarm::settings::RuntimeChoice::Kubernetes;
    let refused = agentfarm::server::start(&settings).await.err().unwrap();
    assert!(refused.to_string().contains("RuntimeClass"), "{refused}");
    assert!(!dir.path().join("data").exists(), "nothing was set up");
    let name = network_name(&settings.sandbox.subnet.to_string());
    assert_eq!(network_leftovers(&name), Vec::<String>::new());
}

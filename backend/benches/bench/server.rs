//! The server under test: the release `agentfarm` binary on the local runtime, whose agent is this binary in
//! its agent role; and what `/proc` says about its memory and CPU.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::agent;

pub struct Server {
    child: Child,
    pub url: String,
    /// Its `/metrics`.
    pub metrics_url: String,
    pub http: reqwest::Client,
    data: tempfile::TempDir,
}

impl Server {
    /// A server on the local runtime whose agents print `rate` lines a second for `seconds`, with
    /// `max_running` at once.
    pub async fn start(rate: u64, seconds: u64, max_running: usize) -> anyhow::Result<Server> {
        Self::start_on(None, None, rate, seconds, max_running).await
    }

    /// [`Server::start`], on the Kubernetes runtime of the cluster `kubeconfig` names when given, serving the
    /// web app built in `web_dir` when given.
    pub async fn start_on(
        kubeconfig: Option<&Path>,
        web_dir: Option<&Path>,
        rate: u64,
        seconds: u64,
        max_running: usize,
    ) -> anyhow::Result<Server> {
        let data = tempfile::tempdir()?;
        let agent = std::env::current_exe()?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_agentfarm"));
        command.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--idle-timeout",
            "0",
            "--runtime",
        ]);
        match kubeconfig {
            Some(kubeconfig) => command.arg("kubernetes").env("KUBECONFIG", kubeconfig),
            None => command.arg("local"),
        };
        if let Some(web_dir) = web_dir {
            command.arg("--web-dir").arg(web_dir);
        }
        let mut child = command
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .arg("--agent-command")
            .arg(&agent)
            .args(["--agent-env-passthrough", "PATH", "--max-running"])
            .arg(max_running.to_string())
            .args(["--log-retention", "100000"])
            .arg("--agent-env")
            .arg(format!("{}=1", agent::ROLE))
            .arg("--agent-env")
            .arg(format!("{}={rate}", agent::RATE))
            .arg("--agent-env")
            .arg(format!("{}={seconds}", agent::SECONDS))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the server")?;
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        // `agentfarm is serving at URL`, then a few lines later `metrics: URL/metrics`.
        let (mut url, mut metrics_url) = (None, None);
        while metrics_url.is_none() {
            let Some(line) = lines.next_line().await? else {
                bail!("the server exited before printing its URLs");
            };
            if let Some(at) = line.find("http://") {
                let found = line[at..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if line.starts_with("metrics:") {
                    metrics_url = Some(found);
                } else {
                    url.get_or_insert(found);
                }
            }
        }
        let (url, metrics_url) = (url.context("no URL")?, metrics_url.unwrap_or_default());
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("origin", url.parse()?);
        let http = reqwest::Client::builder().default_headers(headers).build()?;
        Ok(Server {
            child,
            url,
            metrics_url,
            http,
            data,
        })
    }

    /// The database's write-ahead log file.
    pub fn wal_path(&self) -> std::path::PathBuf {
        self.data.path().join("data/agentfarm.db-wal")
    }

    /// The `p`th percentile (0–100) of the store's commit times so far, as the upper bound of the `/metrics`
    /// histogram bucket it falls in (buckets are √2 apart).
    pub async fn commit_percentile(&self, p: f64) -> anyhow::Result<Duration> {
        let text = self.http.get(&self.metrics_url).send().await?.text().await?;
        // `agentfarm_store_commit_seconds_bucket{le="0.0001"} 12`: cumulative counts, the last `+Inf`.
        let buckets: Vec<(f64, f64)> = text
            .lines()
            .filter_map(|line| line.strip_prefix("agentfarm_store_commit_seconds_bucket{le=\""))
            .filter_map(|rest| {
                let (le, count) = rest.split_once("\"} ")?;
                Some((le.parse().ok()?, count.trim().parse().ok()?))
            })
            .collect();
        let total = buckets.last().map_or(0.0, |(_, count)| *count);
        let bound = buckets
            .iter()
            .find(|(_, count)| *count >= total * p / 100.0)
            .map_or(0.0, |(le, _)| *le);
        Ok(Duration::from_secs_f64(if bound.is_finite() {
            bound
        } else {
            0.0
        }))
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {body}");
        }
        Ok(body)
    }

    /// A config to launch.
    pub async fn config(&self) -> anyhow::Result<String> {
        let config = self
            .post("/api/configs", json!({"name": "Bench", "task_prompt": "print"}))
            .await?;
        Ok(config["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Launches a run of `config`; returns its id.
    pub async fn launch(&self, config: &str) -> anyhow::Result<String> {
        let run = self.post("/api/runs", json!({"config_id": config})).await?;
        Ok(run["id"].as_str().unwrap_or_default().to_owned())
    }
}

/// Resident memory of process `pid`, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// CPU time used so far, in seconds: by process `pid` itself, and by its children it has reaped.
pub fn cpu_seconds(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state, field 3: utime and stime are
    // fields 14 and 15, cutime and cstime 16 and 17.
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|field| field.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    let ticks = |at: usize| fields.get(at).copied().unwrap_or(0) + fields.get(at + 1).copied().unwrap_or(0);
    (seconds_of_ticks(ticks(11)), seconds_of_ticks(ticks(13)))
}

/// CPU time the whole machine has spent busy (not idle, not waiting for I/O), in seconds over all cores.
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // `cpu  user nice system idle iowait irq softirq steal …`
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    seconds_of_ticks(ticks.iter().take(8).sum::<u64>() - idle)
}

/// USER_HZ is 100 on Linux.
fn seconds_of_ticks(ticks: u64) -> f64 {
    ticks as f64 / 100.0
}

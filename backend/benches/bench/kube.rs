//! The Kubernetes runtime against the fake API server (in this process, so its request times share this
//! process's clock): launch latency, `POST /api/runs` → the Job's create call, and status latency, the
//! agent's last line → the terminal frame. The fake kubelet runs each pod's container as this binary in its
//! agent role.

use std::time::Instant;

use agentfarm_fake_kube::{FakeKube, Kind, Kubelet};
use anyhow::Context;
use serde_json::json;

use crate::client;
use crate::server::Server;
use crate::stats::{ms, percentile};
use crate::{Plan, Row};

/// The agents' namespace and Secrets, as the server's defaults name them.
const NAMESPACE: &str = "agentfarm-agents";
const SECRETS: [&str; 2] = ["claude-token", "github-token"];
/// The server's default agent image, which the fake kubelet maps to this binary.
const AGENT_IMAGE: &str = "agentfarm.invalid/agentfarm-agent";

pub async fn measure(plan: Plan) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let fake = FakeKube::start().await;
    fake.run_pods(Kubelet {
        programs: vec![(AGENT_IMAGE.into(), std::env::current_exe()?)],
        root: dir.path().join("kubelet"),
        extra_env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())],
    });
    for name in SECRETS {
        fake.seed(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "data": {"token": "YmVuY2g="},
        }));
    }
    let kubeconfig = dir.path().join("kubeconfig");
    let config = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
current-context: fake
users:
- name: fake
  user: {{}}
",
        fake.url()
    );
    std::fs::write(&kubeconfig, config)?;
    // Agents that print ten lines over a second: long enough for the client to be there when they end.
    let server = Server::start_on(Some(&kubeconfig), None, 10, 1, plan.launches).await?;
    let config_id = server.config().await?;
    let mut asked = Vec::new();
    let mut runs = Vec::new();
    for _ in 0..plan.launches {
        asked.push(Instant::now());
        runs.push(server.launch(&config_id).await?);
    }
    let seen = client::follow(server.url.clone(), runs.clone()).await?;
    let creations = fake.creations();
    let mut launch = Vec::with_capacity(runs.len());
    for (run, asked) in runs.iter().zip(&asked) {
        // The server names each run's Job after the run.
        let created = creations
            .iter()
            .find(|creation| creation.kind == Kind::Job && creation.name.contains(run.as_str()))
            .with_context(|| format!("no Job was created for run {run}"))?;
        launch
            .push(u64::try_from(created.at.saturating_duration_since(*asked).as_nanos()).unwrap_or(u64::MAX));
    }
    let mut ends = seen.end_latency;
    Ok(vec![
        Row {
            measure: format!(
                "Launch on Kubernetes (fake API), `POST /api/runs` → the Job's create call, {} in a row, p50 / p99",
                plan.launches
            ),
            target: "≤ 50 ms p99".into(),
            measured: format!("{} / {}", ms(percentile(&mut launch, 50.0)), ms(percentile(&mut launch, 99.0))),
            floor: "–".into(),
        },
        Row {
            measure: "Status latency on Kubernetes (fake API and kubelet), agent's last line → terminal frame, p50 / p99"
                .into(),
            target: "p99 < 200 ms".into(),
            measured: format!(
                "{} / {} ({} runs)",
                ms(percentile(&mut ends, 50.0)),
                ms(percentile(&mut ends, 99.0)),
                ends.len()
            ),
            floor: "–".into(),
        },
    ])
}

//! Launch → pod running on the real cluster, under gVisor and under runc: `AGENTFARM_LAUNCHES` launches each
//! (20 unless set), one after the other, each timed from the `POST /api/runs` that creates the run to the
//! moment a watch sees its pod in phase `Running`; then the run is stopped and its Job and pod are gone before
//! the next, which starts at a different point of the kubelet's one-second relist. Prints p50, p95 and the slowest as a Markdown table. Needs the cluster up, as the suite does:
//! `cargo xtask cluster bench` brings it up, runs this and takes it down.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The bench shares the suite's set-up and run helpers; it uses a part of them.
#[allow(dead_code)]
#[path = "../tests/cluster/runs.rs"]
mod runs;
#[allow(dead_code)]
#[path = "../tests/cluster/suite.rs"]
mod suite;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use reqwest::StatusCode;
use serde_json::json;

use crate::runs::{pod_when, until_gone};
use crate::suite::suite;

/// The runtime classes measured.
const CLASSES: [&str; 2] = ["gvisor", "runc"];

fn running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|status| status.phase.as_deref()) == Some("Running")
}

/// The value below which `fraction` of `sorted` lies (nearest rank).
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `launches` launches of a config in RuntimeClass `class`: each one's launch → pod running, sorted.
async fn measure(class: &str, launches: usize) -> Vec<Duration> {
    let suite = suite();
    let kube = suite.kube().await;
    let app = suite.app();
    let config = app
        .create_config_with(json!({
            "name": suite.named(&format!("Bench {class}")),
            "runtime_class": class,
            "cpu": "250m",
            "memory": "512Mi",
            "task_prompt": "unused",
        }))
        .await;
    let mut times = Vec::with_capacity(launches);
    for launch in 0..launches {
        // The kubelet sees containers start and end at its relist, once a second, so a launch made as soon as
        // the last pod is gone starts in step with it, and every launch would measure the same. Launches are
        // spread over that second instead (golden-ratio steps, so no two land alike).
        let offset = (launch as f64 * 0.618_034).fract();
        tokio::time::sleep(Duration::from_secs_f64(offset)).await;
        // The model holds its answer, so the agent is still running when it is stopped.
        let launched = Instant::now();
        let run = app.launch(&config, "[[wait:never]] hold on").await;
        pod_when(&kube, &run.id, running).await;
        times.push(launched.elapsed());
        let (status, body) = app.post(&format!("/api/runs/{}/stop", run.id), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        until_gone(&kube, &run.id).await;
    }
    times.sort();
    times
}

fn main() {
    let launches = std::env::var("AGENTFARM_LAUNCHES").ok().map_or(20, |n| {
        n.parse().expect("AGENTFARM_LAUNCHES: a number of launches")
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    println!("| RuntimeClass | launches | p50 | p95 | slowest |");
    println!("|---|---|---|---|---|");
    for class in CLASSES {
        let times = runtime.block_on(measure(class, launches));
        let ms = |duration: Duration| format!("{:.0} ms", duration.as_secs_f64() * 1000.0);
        println!(
            "| {class} | {launches} | {} | {} | {} |",
            ms(percentile(&times, 0.50)),
            ms(percentile(&times, 0.95)),
            ms(times[times.len() - 1]),
        );
    }
}

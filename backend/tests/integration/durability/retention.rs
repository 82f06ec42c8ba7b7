//! CI-26, retention: a sweep at an injected "now" deletes the runs that ended longer ago than the retention
//! period, with their logs, and announces each to sockets; it keeps runs that have not ended, recent ones and
//! each config's newest. On Kubernetes a run goes only once its Job is deleted.

use std::collections::BTreeSet;
use std::sync::Arc;

use agentfarm::hub::Hub;
use agentfarm::retention::{keep_for, sweep};
use agentfarm::runtime::kube::KubeRuntime;
use agentfarm::runtime::kube::job::job_name;
use agentfarm::service::{Farm, FarmLimits};
use agentfarm::settings::Settings;
use agentfarm::store::{NewLine, NewRun, RunPatch, Store};
use agentfarm_fake_kube::{FakeKube, Kind};
use agentfarm_shared::config::ConfigSpec;
use agentfarm_shared::log::LogStream;
use agentfarm_shared::redact::Redactor;
use agentfarm_shared::run::RunState::{self, *};
use agentfarm_shared::ws::ServerFrame;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use crate::harness::{ChannelClient, bare_farm};

/// Runs as (id, config, the states it went through, days before "now" it got to the last). Config `c`
/// also has `r1`, queued just now (from `bare_farm`); `r9` and `s2` are their configs' newest.
const RUNS: &[(&str, &str, &[RunState], i64)] = &[
    ("r2", "c", &[Starting, Running, Succeeded], 40),
    ("r3", "c", &[Starting, Failed], 31),
    ("r4", "c", &[Stopped], 45),
    ("r5", "c", &[Starting, Lost], 60),
    ("r6", "c", &[Starting, Running], 90),
    ("r7", "c", &[Starting, Running, WaitingForInput], 90),
    ("r8", "c", &[Starting, Running, Succeeded], 29),
    ("r9", "c", &[], 100),
    ("s1", "d", &[Starting, Failed], 100),
    ("s2", "d", &[Starting, Succeeded], 50),
];

/// What a sweep with 30 days' retention deletes.
const EXPIRED: [&str; 5] = ["r2", "r3", "r4", "r5", "s1"];

/// Stores config `d` and [`RUNS`] as of `now`, with a log for `r2` and `r8`.
async fn seed(store: &Store, now: DateTime<Utc>) {
    store
        .create_config(
            "d".into(),
            ConfigSpec::new("d", "task"),
            now - TimeDelta::days(200),
        )
        .await
        .unwrap();
    for &(id, config, states, days) in RUNS {
        let at = now - TimeDelta::days(days);
        let run = NewRun {
            id: id.into(),
            config_id: config.into(),
            config_version: 1,
            prompt: "task".into(),
            branch: format!("agentfarm/{id}"),
        };
        store.insert_run(run, at).await.unwrap();
        for &state in states {
            store
                .transition(id.into(), state, RunPatch::default(), at)
                .await
                .unwrap();
        }
    }
    for id in ["r2", "r8"] {
        let line = NewLine {
            ts: now,
            stream: LogStream::Stdout,
            text: "done".into(),
            truncated: false,
        };
        store
            .append_logs(id.into(), vec![line], RunPatch::default(), 100, now)
            .await
            .unwrap();
    }
}

async fn run_ids(store: &Store) -> BTreeSet<String> {
    let runs = store.runs(None, None, 100).await.unwrap();
    runs.into_iter().map(|run| run.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_26_retention_gc() {
    let (farm, dir) = bare_farm(256, 1_000).await;
    let now = Utc::now();
    seed(farm.store(), now).await;
    let mut client = ChannelClient::connect(&farm);
    assert!(matches!(client.next().await, ServerFrame::Snapshot { .. }));
    let keep = keep_for(30).unwrap();

    let removed = sweep(&farm, keep, now).await.unwrap();
    assert_eq!(removed, EXPIRED);
    let left = run_ids(farm.store()).await;
    assert_eq!(
        left,
        ["r1", "r6", "r7", "r8", "r9", "s2"].map(String::from).into()
    );
    let db = rusqlite::Connection::open(dir.path().join("farm.db")).unwrap();
    let lines = |id: &str| -> i64 {
        db.query_row("SELECT COUNT(*) FROM log_lines WHERE run_id = ?1", [id], |row| {
            row.get(0)
        })
        .unwrap()
    };
    assert_eq!((lines("r2"), lines("r8")), (0, 1), "the log goes with its run");
    assert!(
        sweep(&farm, keep, now).await.unwrap().is_empty(),
        "a second sweep finds nothing"
    );

    // A year on, every ended run goes but each config's newest; runs that have not ended stay.
    let later = sweep(&farm, keep, now + TimeDelta::days(365)).await.unwrap();
    assert_eq!(later, ["r8"]);

    let mut announced = Vec::new();
    while announced.last().map(String::as_str) != Some("r8") {
        if let ServerFrame::RunRemoved { run_id } = client.next().await {
            announced.push(run_id);
        }
    }
    assert_eq!(announced, ["r2", "r3", "r4", "r5", "s1", "r8"]);
    assert_eq!(keep_for(0), None, "0 days: runs are kept forever");
}

/// On Kubernetes a run's row goes only after its Job is deleted: while the API fails, nothing goes; running
/// agents' Jobs are never deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_26_retention_gc_deletes_a_run_only_after_its_job() {
    let fake = FakeKube::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::with_data_dir(dir.path());
    let namespace = settings.kube.namespace.clone();
    let store = Store::open(&dir.path().join("farm.db")).unwrap();
    let now = Utc::now();
    store
        .create_config(
            "c".into(),
            ConfigSpec::new("c", "task"),
            now - TimeDelta::days(200),
        )
        .await
        .unwrap();
    seed(&store, now).await;
    for &(id, ..) in RUNS {
        // Without agentfarm's labels: the runtime's watchers leave them alone; only the sweep may delete them.
        fake.seed(json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": job_name(id), "namespace": namespace},
            "spec": {"template": {"spec": {"containers": [{"name": "agent", "image": "agent"}]}}},
        }));
    }
    let runtime = KubeRuntime::new(fake.client(), agentfarm::server::kube_settings(&settings));
    let limits = FarmLimits {
        max_running: 1,
        log_retention: 1_000,
    };
    let farm = Farm::new(store, Arc::new(runtime), Hub::new(64), limits, Redactor::new([]));
    let keep = keep_for(30).unwrap();

    // 500: the client retries 503s itself, for minutes.
    fake.fail_until_recovered(500);
    let removed = sweep(&farm, keep, now).await.unwrap();
    assert!(
        removed.is_empty(),
        "{removed:?} went while their Jobs could not be deleted"
    );
    assert_eq!(run_ids(farm.store()).await.len(), RUNS.len());

    fake.recover();
    assert_eq!(sweep(&farm, keep, now).await.unwrap(), EXPIRED);
    let expired_jobs: BTreeSet<String> = EXPIRED.iter().map(|id| job_name(id)).collect();
    let jobs_left: BTreeSet<String> = fake
        .objects(Kind::Job)
        .iter()
        .map(|job| job["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    let kept_jobs: BTreeSet<String> = RUNS
        .iter()
        .map(|(id, ..)| job_name(id))
        .filter(|job| !expired_jobs.contains(job))
        .collect();
    assert_eq!(jobs_left, kept_jobs);
    let deleted: BTreeSet<String> = fake
        .requests()
        .iter()
        .filter(|request| request.method == "DELETE")
        .filter_map(|request| request.path.split("/jobs/").nth(1))
        .map(|name| name.split('?').next().unwrap().to_owned())
        .collect();
    assert_eq!(deleted, expired_jobs, "only expired runs' Jobs were ever deleted");
}

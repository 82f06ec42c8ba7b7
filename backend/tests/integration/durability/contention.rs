//! CI-23: writers, readers and online backups at once. No request fails (no `SQLITE_BUSY`, no 5xx), and
//! each backup opens, passes `integrity_check` and holds every change acknowledged before it began. A fixed
//! amount of work, not a duration; latency targets belong to the benchmarks, not here.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Ledger, Recorder, integrity, without_agents};
use crate::harness::{ServerBinary, within};

const WRITERS: usize = 8;
/// Changes each writer makes after creating its config.
const WRITES_EACH: usize = 24;
const READERS: usize = 3;
const READS_EACH: usize = 40;
/// Backups taken while the writers write, evenly spread over their work.
const BACKUPS: usize = 3;

/// `agentfarm backup` of the data dir `data` to `dest`, with `extra` arguments.
fn backup_command(data: &Path, dest: &Path, extra: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentfarm"));
    command
        .arg("backup")
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .arg(dest)
        .kill_on_drop(true);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_23_sqlite_contention() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerBinary::spawn(without_agents(dir.path())).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let recorder = Recorder::new(&server, Arc::clone(&ledger));

    let mut tasks = JoinSet::new();
    for writer in 0..WRITERS {
        tasks.spawn(write(Arc::clone(&recorder), writer));
    }
    for _ in 0..READERS {
        tasks.spawn(read(Arc::clone(&recorder)));
    }
    tasks.spawn(back_up(data.clone(), Arc::clone(&ledger), recorder.acks()));
    // A task that fails ends the test at once.
    within(async {
        while let Some(task) = tasks.join_next().await {
            task.unwrap();
        }
    })
    .await;
    assert!(server.terminate().await.0.success());
    let db = agentfarm::store::db_path(&data);
    let missing = ledger.lock().unwrap().missing_in(&db);
    assert!(missing.is_empty(), "{missing:#?}");
}

/// Takes [`BACKUPS`] backups, evenly spread over the writers' work, each checked against what was
/// acknowledged before it began.
async fn back_up(data: PathBuf, ledger: Arc<Mutex<Ledger>>, mut acks: watch::Receiver<usize>) {
    let total = WRITERS * (WRITES_EACH + 1);
    for backup in 1..=BACKUPS {
        acks.wait_for(|n| *n >= backup * total / (BACKUPS + 1))
            .await
            .unwrap();
        let before = ledger.lock().unwrap().clone();
        let dest = data.with_file_name(format!("backup-{backup}.db"));
        let output = backup_command(&data, &dest, &[]).output().await.unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        assert!(output.status.success(), "backup {backup}: {stderr}");
        assert!(
            stdout.contains("integrity_check: ok"),
            "backup {backup}: {stdout}"
        );
        assert_eq!(integrity(&dest), "ok", "backup {backup}");
        let missing = before.missing_in(&dest);
        assert!(missing.is_empty(), "backup {backup} lacks {missing:#?}");
    }
}

/// Creates a config, then edits it, launches runs of it and stops them, in turn.
async fn write(recorder: Arc<Recorder>, writer: usize) {
    let name = format!("writer {writer}");
    let config = recorder.create_config(&name, "task 0").await.unwrap();
    let mut last_run = None;
    for n in 1..=WRITES_EACH {
        match (n % 3, &last_run) {
            (0, _) => drop(
                recorder
                    .update_config(&config.id, &name, &format!("task {n}"))
                    .await,
            ),
            (1, _) | (_, None) => last_run = recorder.launch(&config.id).await.map(|run| run.id),
            (_, Some(id)) => drop(recorder.stop(id).await),
        }
    }
}

/// Lists configs and runs and reads a log page, as the web app does; every answer is 200.
async fn read(recorder: Arc<Recorder>) {
    for n in 0..READS_EACH {
        let path = match n % 3 {
            0 => "/api/configs".to_owned(),
            1 => "/api/runs?limit=500".to_owned(),
            _ => {
                let (_, runs) = recorder
                    .request(Method::GET, "/api/runs?limit=1", None)
                    .await
                    .unwrap();
                match runs[0]["id"].as_str() {
                    Some(id) => format!("/api/runs/{id}/logs"),
                    None => "/api/info".to_owned(),
                }
            }
        };
        let (status, body) = recorder.request(Method::GET, &path, None).await.unwrap();
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    }
}

/// A backup never replaces a file unless asked, and a missing database is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_refuses_to_replace_a_file_and_names_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let dest = dir.path().join("backup.db");

    let output = within(backup_command(&data, &dest, &[]).output()).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no database at") && stderr.contains("agentfarm.db"),
        "{stderr}"
    );

    let server = ServerBinary::spawn(without_agents(dir.path())).await;
    let recorder = Recorder::new(&server, Arc::new(Mutex::new(Ledger::default())));
    recorder.create_config("Kept", "task").await.unwrap();
    std::fs::write(&dest, "not a backup").unwrap();

    let output = within(backup_command(&data, &dest, &[]).output()).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("backup.db already exists; pass --force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "not a backup");

    let output = within(backup_command(&data, &dest, &["--force"]).output())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let kept: String = rusqlite::Connection::open(&dest)
        .unwrap()
        .query_row("SELECT id FROM configs", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, "kept");
    assert!(server.terminate().await.0.success());
}

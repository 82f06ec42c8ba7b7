//! Restarts: SIGKILL the real server binary mid-run and start it again on the same data dir; shut down
//! gracefully.

use agentfarm_fake_model::FakeModel;
use agentfarm_shared::run::{Run, RunState};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{PATIENCE, ServerBinary, TestServer};

fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |row| row.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_loses_nothing_but_the_run() {
    let model = FakeModel::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let server = ServerBinary::start(&data, &model).await;
    let (status, _) = server
        .send(
            reqwest::Method::POST,
            "/api/configs",
            json!({"name": "Crash", "task_prompt": "v1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server
        .send(
            reqwest::Method::PUT,
            "/api/configs/crash",
            json!({"name": "Crash", "task_prompt": "v2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, run) = server
        .send(
            reqwest::Method::POST,
            "/api/runs",
            json!({"config_id": "crash", "prompt": "[[wait:crash]] go"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let run: Run = serde_json::from_value(run).unwrap();
    tokio::time::timeout(PATIENCE, model.parked("crash"))
        .await
        .unwrap();
    server.kill().await;

    let server = ServerBinary::start(&data, &model).await;
    let (status, after) = server.get(&format!("/api/runs/{}", run.id)).await;
    assert_eq!(status, StatusCode::OK);
    let after: Run = serde_json::from_value(after).unwrap();
    assert_eq!(after.state, RunState::Lost, "{after:?}");
    assert!(
        after.reason.as_deref().is_some_and(|r| r.contains("restarted")),
        "{after:?}"
    );
    assert_eq!(after.config_version, 2);

    let (_, versions) = server.get("/api/configs/crash/versions").await;
    let prompts: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["spec"]["task_prompt"].as_str().unwrap())
        .collect();
    assert_eq!(prompts, ["v2", "v1"]);

    let db = rusqlite::Connection::open(data.join("agentfarm.db")).unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM configs"), 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM config_versions"), 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs"), 1);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM schema_migrations"),
        count(&db, "SELECT MAX(version) FROM schema_migrations"),
        "each migration ran once"
    );
    let stored_lines = count(&db, "SELECT COUNT(*) FROM log_lines");
    assert_eq!(
        stored_lines,
        count(&db, "SELECT COALESCE(MAX(seq), 0) FROM log_lines"),
        "no holes, no duplicates"
    );
    server.kill().await;
}

/// Shutting down closes every socket with 1001 ("going away").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sockets_with_going_away() {
    let server = TestServer::start().await;
    let mut socket = server.socket().await;
    socket.next().await;
    let close = server.shutdown_and_read_close(socket).await;
    assert_eq!(close, 1001);
}

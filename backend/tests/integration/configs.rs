//! Configs through the API: versions on every edit, delete and re-create, and no delete under a live run.

use agentfarm_shared::config::{AgentConfig, ConfigVersion};
use agentfarm_shared::run::RunState;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{PATIENCE, TestServer, respond};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_make_versions_and_runs_record_theirs() {
    let server = TestServer::start().await;
    let id = server.create_config("Nightly Cleanup", "v1").await;
    assert_eq!(id, "nightly-cleanup", "ids are derived from names");
    let (status, _) = server
        .post(
            "/api/configs",
            json!({"name": "nightly cleanup", "task_prompt": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "same derived id");

    let put = |body| {
        respond(
            server
                .http
                .put(format!("{}/api/configs/{id}", server.url))
                .json(&body),
        )
    };
    let (status, body) = put(json!({"name": "Nightly Cleanup", "task_prompt": "v2", "cpu": "500m"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let updated: AgentConfig = serde_json::from_value(body).unwrap();
    assert_eq!((updated.version, updated.spec.cpu.as_str()), (2, "500m"));
    let (status, body) = put(json!({"name": "Nightly Cleanup", "task_prompt": "v3", "memory": "1Ti"})).await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("memory"))
    );

    let (_, versions) = server.get(&format!("/api/configs/{id}/versions")).await;
    let versions: Vec<ConfigVersion> = serde_json::from_value(versions).unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(versions[1].spec.task_prompt, "v1");

    let mut socket = server.socket().await;
    let run = server.launch(&id, "[[wait:busy]] work").await;
    assert_eq!(run.config_version, 2);
    tokio::time::timeout(PATIENCE, server.model.parked("busy"))
        .await
        .unwrap();
    let delete = || respond(server.http.delete(format!("{}/api/configs/{id}", server.url)));
    let (status, body) = delete().await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    server.model.release("busy");
    socket.until_state(&run.id, RunState::Succeeded).await;
    assert_eq!(delete().await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        server.get(&format!("/api/configs/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(server.get("/api/configs").await.1, json!([]));
    assert_eq!(
        server.run(&run.id).await.config_version,
        2,
        "history outlives the config"
    );

    // Re-creating it brings the history back under a new version.
    server.create_config("Nightly Cleanup", "v4").await;
    let (_, config) = server.get(&format!("/api/configs/{id}")).await;
    assert_eq!(config["version"], 3);
}

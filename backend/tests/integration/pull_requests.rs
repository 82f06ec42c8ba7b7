//! Runs with repositories, through the runner, against the fake GitHub: the run records its branch, pull
//! request and diff size; a continued run works on the same branch and updates the same pull request.

use agentfarm_shared::run::{DiffSummary, RunState};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{TEST_GITHUB_TOKEN, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_opens_a_pull_request_and_a_continued_run_updates_it() {
    let (github, server) = TestServer::with_github(|_| {}).await;
    server
        .create_config_with(json!({"name": "Notes", "task_prompt": "unused", "repos": ["octo/app"]}))
        .await;
    let mut socket = server.socket().await;

    let first = server
        .launch("notes", "[[bash:printf 'one\\ntwo\\n' > NOTES.md]] write notes")
        .await;
    assert_eq!(
        first.branch.as_deref(),
        Some(format!("agentfarm/{}", first.id).as_str())
    );
    let (done, _) = socket.until_state(&first.id, RunState::Succeeded).await;
    let pulls = github.pulls();
    assert_eq!(pulls.len(), 1);
    assert_eq!(done.pr_url.as_deref(), Some(pulls[0].html_url.as_str()));
    assert_eq!(
        done.diff,
        Some(DiffSummary {
            files: 1,
            added: 2,
            removed: 0
        })
    );
    let branch = done.branch.clone().unwrap();
    assert_eq!(
        github.file_at("octo", "app", &branch, "NOTES.md").as_deref(),
        Some("one\ntwo\n")
    );

    let (status, body) = server
        .post(
            "/api/runs",
            json!({"config_id": "notes", "prompt": "[[bash:echo three >> NOTES.md]] more", "continue_run": first.id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second: agentfarm_shared::run::Run = serde_json::from_value(body).unwrap();
    assert_eq!(second.branch.as_deref(), Some(branch.as_str()));
    let (done, _) = socket.until_state(&second.id, RunState::Succeeded).await;
    assert_eq!(
        done.diff,
        Some(DiffSummary {
            files: 1,
            added: 3,
            removed: 0
        })
    );
    let pulls = github.pulls();
    assert_eq!(
        (pulls.len(), pulls[0].updates),
        (1, 1),
        "the same pull request, updated"
    );
    assert_eq!(
        github.file_at("octo", "app", &branch, "NOTES.md").as_deref(),
        Some("one\ntwo\nthree\n")
    );

    // Nothing the API or the log returns carries the token.
    let (_, logs) = server
        .get(&format!("/api/runs/{}/logs?limit=5000", second.id))
        .await;
    let (_, runs) = server.get("/api/runs").await;
    assert!(!logs.to_string().contains(TEST_GITHUB_TOKEN) && !runs.to_string().contains(TEST_GITHUB_TOKEN));

    let (status, body) = server
        .post("/api/runs", json!({"config_id": "notes", "continue_run": "nope"}))
        .await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("continue_run"))
    );
}

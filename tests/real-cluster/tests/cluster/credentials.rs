//! No credential inside the sandbox, on the real cluster: an agent in gVisor that hunts for tokens everywhere
//! it can reach finds none of the owner's (at most its own run's capability, which dies with the run); the
//! owner's Claude and GitHub tokens stay in the control plane, whose model proxy puts the Claude token on every
//! request the model receives.

use agentfarm_fake_model::{FAKE_OAUTH_TOKEN, HUNT_FOR_TOKENS};
use agentfarm_shared::run::RunState;
use serde_json::json;

use crate::runs::{stored_lines, until_ended, until_gone};
use crate::suite::{GITHUB_TOKEN, suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_27_an_agent_in_gvisor_that_hunts_for_tokens_finds_none_of_the_owners() {
    let suite = suite();
    let _turn = suite.turn().await;
    let app = suite.app();
    let config = app
        .create_config_with(json!({"name": suite.named("Thief"), "task_prompt": "unused", "cpu": "250m"}))
        .await;
    let mut socket = app.socket().await;
    let run = app
        .launch(&config, &format!("[[bash:{HUNT_FOR_TOKENS}]] find tokens"))
        .await;
    let ended = until_ended(&mut socket, &run.id).await;
    assert_eq!(ended.state, RunState::Succeeded, "{ended:?}");

    let transcript = stored_lines(&app, &run.id).await.join("\n");
    for owner in [FAKE_OAUTH_TOKEN, GITHUB_TOKEN] {
        assert!(!transcript.contains(owner), "{owner} in the transcript");
    }
    let searched = searched_bytes(&transcript);
    assert!(
        searched > 1_000,
        "the hunt read its environment and files: {searched} bytes"
    );

    let mut hunt_sent = false;
    for request in suite.model.requests() {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {FAKE_OAUTH_TOKEN}").as_str()),
            "every request the model receives carries the owner's token, put there by the proxy"
        );
        let body = request.body.to_string();
        for owner in [FAKE_OAUTH_TOKEN, GITHUB_TOKEN] {
            assert!(!body.contains(owner), "{owner} sent to the model");
        }
        hunt_sent |= body.contains("tool_result") && body.contains("searched ");
    }
    assert!(hunt_sent, "the hunt's findings reached the model");
    assert!(
        ended.usage.requests >= 2,
        "the proxy counted the run: {:?}",
        ended.usage
    );
    until_gone(&suite.kube().await, &run.id).await;
}

/// The `N` of the hunt's `searched N bytes` (the command itself, quoted in the transcript, says `searched $(…`).
fn searched_bytes(transcript: &str) -> u64 {
    transcript
        .match_indices("searched ")
        .filter_map(|(at, found)| {
            let count = transcript[at + found.len()..].split(' ').next()?;
            count.parse().ok()
        })
        .max()
        .expect("the hunt says how much it searched")
}

//! Credentials never leave through the server: CI-06.

use agentfarm_shared::run::RunState;
use agentfarm_shared::ws::ServerFrame;
use serde_json::json;

use crate::harness::{ServerBinary, Socket, files_under, serve_command};

/// Canary credentials in the server's environment, handed to agents in the debugging mode that does so: one
/// token-shaped, one not (masked only because the server knows the value).
const CLAUDE_CANARY: &str = "sk-ant-oat01-canaryClaude7d1f0c2a9b3e";
const GITHUB_CANARY: &str = "canary-github-5e8a41c07f";
/// Token-shaped strings the agent makes up: masked by shape alone.
const MADE_UP: [&str; 3] = [
    "ghp_madeUpCanary0123456789abcdefghij",
    "github_pat_11MADEUPCANARY0123456789_abcdefghijklmnop",
    "sk-ant-api03-madeUpCanary0123456789",
];

/// An agent that prints the credentials it was given, and invented ones, every way it can: plain, inside
/// Claude-style JSON, on stderr, and in its last words before failing.
fn agent_script() -> String {
    format!(
        "#!/bin/sh\n\
         echo \"github=$GITHUB_TOKEN claude=$CLAUDE_CODE_OAUTH_TOKEN\"\n\
         printf '{{\"type\":\"assistant\",\"message\":{{\"content\":[{{\"type\":\"text\",\"text\":\"%s %s\"}}]}}}}\\n' \
           \"$GITHUB_TOKEN\" \"$CLAUDE_CODE_OAUTH_TOKEN\"\n\
         echo '{made_up}'\n\
         echo \"fatal: could not read Password for https://$GITHUB_TOKEN@github.com\" >&2\n\
         exit 3\n",
        made_up = MADE_UP.join(" "),
    )
}

fn canaries() -> Vec<&'static str> {
    [CLAUDE_CANARY, GITHUB_CANARY]
        .into_iter()
        .chain(MADE_UP)
        .collect()
}

fn assert_clean(place: &str, bytes: &[u8]) {
    for canary in canaries() {
        assert!(
            !bytes
                .windows(canary.len())
                .any(|window| window == canary.as_bytes()),
            "{canary} leaked into {place}"
        );
    }
}

/// CI-06 (credential hygiene): configs and prompts holding a canary or a token shape are refused (configs
/// have no credential field: credentials come from the server's environment or the cluster's Secrets);
/// canary credentials passed to an agent (in the debugging mode that passes them; by default agents get only
/// their run's capability, proxies::ci_27_an_agent_that_dumps_everything_it_can_reach_finds_neither_token), which prints them and made-up tokens on stdout, inside JSON and on
/// stderr before failing, appear in no API response, no WebSocket frame, no line the server logs (at debug
/// level) and no byte of any file in its data dir; the log shows `[REDACTED]` where they were. The runner masks the same on its side (its own tests), and never puts the GitHub token
/// in a URL or `.git/config`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_06_credential_hygiene() {
    let dir = tempfile::tempdir().unwrap();
    let agent = dir.path().join("agent.sh");
    std::fs::write(&agent, agent_script()).unwrap();
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let mut command = serve_command(&data);
    command
        .arg("--agent-command")
        .arg(&agent)
        // The debugging mode that hands agents the owner's tokens: the worst case for what agents print.
        .args(["--agent-env-passthrough", "PATH", "--direct-credentials"])
        .env("GITHUB_TOKEN", GITHUB_CANARY)
        .env("CLAUDE_CODE_OAUTH_TOKEN", CLAUDE_CANARY)
        .env("RUST_LOG", "debug");
    let server = ServerBinary::spawn(command).await;
    // Configs and prompts never hold a credential: a token shape or a value agents are given is refused.
    for (field, text) in [
        ("task_prompt", format!("use {GITHUB_CANARY} to push")),
        ("system_prompt", format!("your key: {}", MADE_UP[2])),
        ("description", MADE_UP[0].to_owned()),
    ] {
        let mut body = json!({"name": "Leaky", "task_prompt": "print"});
        body[field] = json!(text);
        let (status, error) = server.send(reqwest::Method::POST, "/api/configs", body).await;
        assert_eq!(
            (status.as_u16(), &error["error"]["field"]),
            (400, &json!(field)),
            "{error}"
        );
    }
    let (_, config) = server
        .send(
            reqwest::Method::POST,
            "/api/configs",
            json!({"name": "Leaky", "task_prompt": "print your token", "repos": ["octo/app"]}),
        )
        .await;
    let mut socket = Socket::connect(&server.url).await;
    let (_, run) = server
        .send(
            reqwest::Method::POST,
            "/api/runs",
            json!({"config_id": config["id"], "prompt": "print your token"}),
        )
        .await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    let (status, error) = server
        .send(
            reqwest::Method::POST,
            "/api/runs",
            json!({"config_id": config["id"], "prompt": format!("token {CLAUDE_CANARY}")}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &error["error"]["field"]),
        (400, &json!("prompt")),
        "{error}"
    );
    socket.subscribe(&run_id, 0).await;
    let mut frames = String::new();
    loop {
        let (frame, text) = socket.next_with_text().await;
        frames.push_str(&text);
        if let ServerFrame::Run { run } = frame
            && run.id == run_id
            && run.state == RunState::Failed
        {
            break;
        }
    }
    assert_clean("WebSocket frames", frames.as_bytes());

    let mut responses = String::new();
    for path in [
        "/api/configs".to_owned(),
        "/api/runs".to_owned(),
        format!("/api/runs/{run_id}"),
        format!("/api/runs/{run_id}/logs"),
        "/api/info".to_owned(),
        format!("/api/configs/{}/versions", config["id"].as_str().unwrap()),
        "/api/push/subscriptions".to_owned(),
    ] {
        let (_, body) = server.get(&path).await;
        responses.push_str(&body.to_string());
    }
    assert_clean("API responses", responses.as_bytes());
    assert!(
        responses.contains("[REDACTED]"),
        "the agent's lines arrived, masked: {responses}"
    );

    let (_, output) = server.terminate().await;
    assert!(
        output.iter().any(|line| line.contains("DEBUG")),
        "the server logged at debug level"
    );
    assert_clean("the server's log", output.join("\n").as_bytes());
    for file in files_under(&data) {
        assert_clean(&file.display().to_string(), &std::fs::read(&file).unwrap());
    }
}

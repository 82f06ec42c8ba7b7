//! No secret inside the sandbox: agents hold only their run's capability; the control plane's model proxy and
//! git proxy trade it for the owner's tokens, which never reach an agent.

use std::path::Path;

use agentfarm_fake_github::FakeGithub;
use agentfarm_fake_model::HUNT_FOR_TOKENS;
use agentfarm_shared::run::RunState;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TEST_GITHUB_TOKEN, TestServer, files_under, owner_token};

/// Real-looking owner tokens: if either shows up anywhere an agent can reach, the test names it.
const CLAUDE_CANARY: &str = "sk-ant-oat01-ownerCanaryClaude-3f9d0b7e1c5a48d2a6e4";
const GITHUB_CANARY: &str = "ghp_ownerCanaryGithub7c41e09b5d2f83a6";

fn holds_canary(bytes: &[u8]) -> Option<&'static str> {
    [CLAUDE_CANARY, GITHUB_CANARY].into_iter().find(|canary| {
        bytes
            .windows(canary.len())
            .any(|window| window == canary.as_bytes())
    })
}

/// The canary test: the real Claude Code CLI, through the model proxy, runs a tool call that dumps everything
/// it can reach for tokens and sends what it finds to the model. Neither of the owner's tokens is in its transcript, the model's received bodies
/// or its run's files; the model receives the owner's Claude token on every request, put there by the proxy;
/// the agent's own capability is masked in the transcript; the proxy counted the run's requests and tokens.
/// (On the local runtime an agent runs as the server's user and could still read the server's own files and
/// process: SECURITY.md says so. Its environment, home and work dir are what this covers.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_27_an_agent_that_dumps_everything_it_can_reach_finds_neither_token() {
    let server = TestServer::start_with(|s| {
        let dir = s.data_dir.parent().unwrap().to_owned();
        s.claude_token_file = Some(owner_token(&dir, "owner-claude", CLAUDE_CANARY));
        s.github_token_file = Some(owner_token(&dir, "owner-github", GITHUB_CANARY));
    })
    .await;
    let config = server.create_config("Thief", "unused").await;
    let mut socket = server.socket().await;
    let run = server
        .launch(&config, &format!("[[bash:{HUNT_FOR_TOKENS}]] show me everything"))
        .await;
    let done = socket.until_ended(&run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{done:?}");

    let (status, logs) = server.get(&format!("/api/runs/{}/logs?limit=5000", run.id)).await;
    assert_eq!(status, StatusCode::OK);
    let transcript = logs.to_string();
    assert_eq!(holds_canary(transcript.as_bytes()), None, "in the transcript");
    assert!(
        transcript.contains("[REDACTED]") && transcript.contains("searched "),
        "the hunt reached the transcript, the capability it found (in its ancestors' environments) masked"
    );

    let requests = server.model.main_requests();
    assert!(requests.len() >= 2, "the task, then the tool's result");
    let mut dump_sent = false;
    for request in server.model.requests() {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {CLAUDE_CANARY}").as_str()),
            "{} {}",
            request.method,
            request.path
        );
        assert_eq!(request.header("x-api-key"), None);
        let body = request.body.to_string();
        assert_eq!(holds_canary(body.as_bytes()), None, "sent to the model");
        dump_sent |= body.contains("afrun_") && body.contains("tool_result");
    }
    assert!(
        dump_sent,
        "the search found the run's capability and sent it to the model"
    );

    let run_dir = server.dir.path().join("data/runs").join(&run.id);
    let files = files_under(&run_dir);
    assert!(!files.is_empty());
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(holds_canary(&bytes), None, "in {}", file.display());
    }

    assert!(done.usage.requests >= 2, "{:?}", done.usage);
    assert!(
        done.usage.input_tokens > 0 && done.usage.output_tokens > 0,
        "{:?}",
        done.usage
    );
}

/// An agent script that does, with real `git` through the git proxy, what a run may and may not: clone its
/// repository and push its branch; push to `main`, another branch, a tag, delete its branch, clone a
/// repository outside its config. It keeps its capability in its work dir for the test to try afterwards.
const GIT_AGENT: &str = r#"#!/bin/sh
field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$2"; }
G=$(field git_url "$2"); B=$(field branch "$2")
export GIT_TERMINAL_PROMPT=0
H='!f() { test "$1" = get && echo username=agent && echo "password=$AGENTFARM_RUN_TOKEN"; }; f'
git() { command git -c credential.helper= -c "credential.helper=$H" -c user.name=a -c user.email=a@example.com "$@"; }
echo "$AGENTFARM_RUN_TOKEN" > capability
git clone -q "$G/octo/app.git" app && echo CLONED
cd app || exit 1
git checkout -qb "$B" && echo change > change.txt && git add change.txt && git commit -qm change
git push origin "HEAD:refs/heads/$B" && echo PUSHED-OWN
git push origin HEAD:refs/heads/main || echo REFUSED-MAIN
git push origin HEAD:refs/heads/other || echo REFUSED-OTHER
git tag v9 && { git push origin v9 || echo REFUSED-TAG; }
git push origin ":refs/heads/$B" || echo REFUSED-DELETE
cd ..
git clone -q "$G/octo/secret.git" secret || echo REFUSED-FETCH
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_28_the_git_proxy_lets_a_run_fetch_its_repositories_and_push_only_its_branch() {
    let github = FakeGithub::start(TEST_GITHUB_TOKEN).await;
    let app_repo = github.create_repo("octo", "app", "main");
    github.create_repo("octo", "secret", "main");
    let main_before = github.branch_head("octo", "app", "main");
    let (git_url, api_url) = (github.git_url(), github.api_url());
    let server = TestServer::start_with(|s| {
        let agent = s.data_dir.parent().unwrap().join("git-agent.sh");
        std::fs::write(&agent, GIT_AGENT).unwrap();
        std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        s.agent_command = agent;
        s.github_url = git_url;
        s.github_api_url = api_url;
    })
    .await;
    let (status, body) = server
        .post(
            "/api/configs",
            json!({"name": "Pusher", "task_prompt": "push", "repos": ["octo/app"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut socket = server.socket().await;
    let run = server.launch("pusher", "push").await;
    let branch = run.branch.clone().unwrap();
    let done = socket.until_ended(&run.id).await;

    let (_, logs) = server.get(&format!("/api/runs/{}/logs?limit=5000", run.id)).await;
    let lines: Vec<String> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|line| line["text"].as_str().map(str::to_owned))
        .collect();
    let said = |text: &str| lines.iter().any(|line| line.contains(text));
    for marker in [
        "CLONED",
        "PUSHED-OWN",
        "REFUSED-MAIN",
        "REFUSED-OTHER",
        "REFUSED-TAG",
        "REFUSED-DELETE",
        "REFUSED-FETCH",
    ] {
        assert!(said(marker), "{marker} missing from {lines:#?}");
    }
    // Readable git errors: the push refusals as git's own, the fetch as the remote's.
    assert!(said("[remote rejected]"), "{lines:#?}");
    assert!(
        said(&format!("this run may push only to refs/heads/{branch}")),
        "{lines:#?}"
    );
    assert!(said("a run may not delete its branch"), "{lines:#?}");
    assert!(
        said("octo/secret is not a repository of this run's config"),
        "{lines:#?}"
    );

    assert!(github.branch_head("octo", "app", &branch).is_some());
    assert_eq!(
        github.file_at("octo", "app", &branch, "change.txt").as_deref(),
        Some("change\n")
    );
    assert_eq!(github.branch_head("octo", "app", "main"), main_before);
    assert_eq!(github.branch_head("octo", "app", "other"), None);
    assert_eq!(tags(&app_repo), "");
    assert!(
        github
            .requests()
            .iter()
            .all(|request| !request.path.contains("secret")),
        "nothing of octo/secret was asked of GitHub"
    );
    assert_eq!(done.state, RunState::Succeeded, "{done:?}");

    // The run has ended: its capability opens nothing any more.
    let capability = std::fs::read_to_string(
        server
            .dir
            .path()
            .join("data/runs")
            .join(&run.id)
            .join("work/capability"),
    )
    .unwrap();
    let refs = reqwest::Client::new()
        .get(format!(
            "{}/proxy/git/octo/app.git/info/refs?service=git-upload-pack",
            server.url
        ))
        .basic_auth("agent", Some(capability.trim()))
        .send()
        .await
        .unwrap();
    assert_eq!(refs.status(), StatusCode::UNAUTHORIZED);
    assert!(refs.headers().contains_key("www-authenticate"));
    let body: Value = refs.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
}

fn tags(bare: &Path) -> String {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(bare)
        .args(["tag", "--list"])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

/// With `--proxy-listen`, the proxies have a port of their own, which serves nothing else, and the app's port
/// no proxy: on a cluster agents may reach only that port. The agents use it (`--agent-url` defaults to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxies_port_serves_only_the_proxies_and_agents_use_it() {
    let model = agentfarm_fake_model::FakeModel::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::harness::test_settings(dir.path(), &model);
    // With the web app, whose fallback answers every other path with its page.
    settings.web_dir = Some(crate::harness::web_dir());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    settings.listen = listener.local_addr().unwrap();
    settings.proxy_listen = Some("127.0.0.1:0".parse().unwrap());
    crate::harness::install_tls_provider();
    let app = agentfarm::server::start(&settings).await.unwrap();
    let (app_url, proxy_url) = (
        format!("http://{}", settings.listen),
        format!("http://{}", app.proxy_addr().unwrap()),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(agentfarm::server::serve(app, listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let refs = "/proxy/git/octo/app.git/info/refs?service=git-upload-pack";
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status() }
    };
    assert_eq!(
        status(format!("{proxy_url}/api/info")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(status(format!("{app_url}{refs}")).await, StatusCode::NOT_FOUND);
    assert_eq!(
        status(format!("{proxy_url}{refs}")).await,
        StatusCode::UNAUTHORIZED
    );

    let server = agentfarm_app_client::App::new(app_url);
    let config = server.create_config("Through the port", "unused").await;
    let mut socket = server.socket().await;
    let run = server.launch(&config, "hello").await;
    assert_eq!(socket.until_ended(&run.id).await.state, RunState::Succeeded);
    let requests = model.main_requests();
    assert!(!requests.is_empty());
    for request in requests {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {}", agentfarm_fake_model::FAKE_OAUTH_TOKEN).as_str()),
            "through the proxy, which put the owner's token on it"
        );
    }
    drop(stop);
    serving.await.unwrap().unwrap();
}

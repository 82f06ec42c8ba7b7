//! End-to-end checks of the fake with the real `git` binary and a real HTTP client.

// Test code: a failed unwrap is a failed test. (`allow-*-in-tests` does not cover helpers outside `#[test]`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Output;

use agentfarm_fake_github::FakeGithub;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

const TOKEN: &str = "ghs_fakeInstallationToken0123456789abcdef";

/// A git client with a private, empty configuration, its identity set, and never prompting.
struct Client {
    home: TempDir,
}

impl Client {
    fn new() -> Client {
        Client {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn work(&self) -> PathBuf {
        self.home.path().join("work")
    }

    /// Runs `git args…` in `dir`; with `token`, a credential helper (configured for this command only) answers
    /// `x-access-token` / the token from the environment.
    async fn git_in(&self, dir: &Path, token: Option<&str>, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new("git");
        command
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Agent")
            .env("GIT_AUTHOR_EMAIL", "agent@example.invalid")
            .env("GIT_COMMITTER_NAME", "Agent")
            .env("GIT_COMMITTER_EMAIL", "agent@example.invalid")
            .args(["-c", "credential.helper="]);
        if let Some(token) = token {
            command.env("FAKE_GITHUB_TOKEN", token).args([
                "-c",
                "credential.helper=!f() { echo username=x-access-token; echo \"password=$FAKE_GITHUB_TOKEN\"; }; f",
            ]);
        }
        command.args(args).output().await.unwrap()
    }

    /// `git_in` in the clone, which must succeed.
    async fn git(&self, args: &[&str]) -> String {
        let output = self.git_in(&self.work(), Some(TOKEN), args).await;
        assert_success(&output, args);
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// Clones `url` into [`Self::work`] with the right token.
    async fn clone(&self, url: &str) {
        let work = self.work();
        let args = ["clone", "--quiet", url, work.to_str().unwrap()];
        let output = self.git_in(self.home.path(), Some(TOKEN), &args).await;
        assert_success(&output, &args);
    }

    /// Writes `file`, commits it with `message`.
    async fn commit(&self, file: &str, content: &str, message: &str) {
        std::fs::write(self.work().join(file), content).unwrap();
        self.git(&["add", file]).await;
        self.git(&["commit", "--quiet", "-m", message]).await;
    }
}

fn assert_success(output: &Output, args: &[&str]) {
    assert!(
        output.status.success(),
        "git {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A reqwest client. The workspace builds reqwest with `rustls-no-provider`, so a crypto provider must be
/// installed first (plain HTTP never uses it).
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn clone_url(fake: &FakeGithub, owner: &str, repo: &str) -> String {
    format!("{}/{owner}/{repo}.git", fake.git_url())
}

/// Checks that the token never appeared in a request line.
fn assert_token_never_in_url(fake: &FakeGithub) {
    for request in fake.requests() {
        assert!(!request.path.contains(TOKEN), "token in URL: {}", request.path);
    }
}

#[tokio::test]
async fn clone_commit_push_new_and_existing_branch() {
    let fake = FakeGithub::start(TOKEN).await;
    fake.create_repo("octo", "demo", "main");
    let client = Client::new();
    client.clone(&clone_url(&fake, "octo", "demo")).await;
    assert_eq!(
        std::fs::read_to_string(client.work().join("README.md")).unwrap(),
        "# demo\n"
    );
    assert_eq!(client.git(&["rev-parse", "--abbrev-ref", "HEAD"]).await, "main");

    // A new branch.
    client.git(&["checkout", "--quiet", "-b", "agent/task-1"]).await;
    client.commit("hello.txt", "hello\n", "Add hello").await;
    client
        .git(&["push", "--quiet", "-u", "origin", "agent/task-1"])
        .await;
    let local_head = client.git(&["rev-parse", "HEAD"]).await;
    assert_eq!(fake.branch_head("octo", "demo", "agent/task-1"), Some(local_head));
    assert_eq!(
        fake.file_at("octo", "demo", "agent/task-1", "hello.txt")
            .as_deref(),
        Some("hello\n")
    );
    assert_eq!(fake.file_at("octo", "demo", "main", "hello.txt"), None);
    assert_eq!(
        fake.log("octo", "demo", "agent/task-1"),
        ["Add hello", "Initial commit"]
    );
    assert_eq!(fake.log("octo", "demo", "main"), ["Initial commit"]);

    // An existing branch moves forward.
    client
        .commit("hello.txt", "hello again\n", "Update hello\n\nWith a body.")
        .await;
    client.git(&["push", "--quiet"]).await;
    let local_head = client.git(&["rev-parse", "HEAD"]).await;
    assert_eq!(fake.branch_head("octo", "demo", "agent/task-1"), Some(local_head));
    assert_eq!(
        fake.log("octo", "demo", "agent/task-1"),
        ["Update hello\n\nWith a body.", "Add hello", "Initial commit"]
    );
    assert_eq!(fake.branch_head("octo", "demo", "nope"), None);
    assert_eq!(fake.branch_head("octo", "nope", "main"), None);

    // git asked first without credentials, got a 401 and then used the helper's.
    let requests = fake.requests();
    let first = &requests[0];
    assert_eq!(first.method, "GET");
    assert_eq!(first.path, "/octo/demo.git/info/refs?service=git-upload-pack");
    assert_eq!(first.header("authorization"), None);
    assert!(requests.iter().any(|request| {
        request.method == "POST"
            && request.path == "/octo/demo.git/git-receive-pack"
            && request
                .header("authorization")
                .is_some_and(|auth| auth.starts_with("Basic "))
    }));
    assert!(requests.iter().all(|request| {
        request
            .headers
            .iter()
            .all(|(name, _)| *name == name.to_lowercase())
    }));
    assert_token_never_in_url(&fake);

    // A fresh clone sees the branch (fetch over protocol v2).
    let other = Client::new();
    other.clone(&clone_url(&fake, "octo", "demo")).await;
    other.git(&["checkout", "--quiet", "agent/task-1"]).await;
    assert_eq!(
        std::fs::read_to_string(other.work().join("hello.txt")).unwrap(),
        "hello again\n"
    );
    assert!(
        fake.requests()
            .iter()
            .any(|request| request.header("git-protocol") == Some("version=2"))
    );
}

#[tokio::test]
async fn git_needs_the_token() {
    let fake = FakeGithub::start(TOKEN).await;
    fake.create_repo("octo", "demo", "main");
    let url = clone_url(&fake, "octo", "demo");
    let client = Client::new();
    let target = client.work();
    let target = target.to_str().unwrap();

    let output = client
        .git_in(client.home.path(), None, &["clone", &url, target])
        .await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("could not read Username"),
        "{}",
        stderr(&output)
    );

    let output = client
        .git_in(client.home.path(), Some("wrong"), &["clone", &url, target])
        .await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("Authentication failed"),
        "{}",
        stderr(&output)
    );

    let missing = clone_url(&fake, "octo", "missing");
    let output = client
        .git_in(client.home.path(), Some(TOKEN), &["clone", &missing, target])
        .await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("not found"), "{}", stderr(&output));

    // The same at the HTTP level.
    let http = http();
    let refs = format!("{url}/info/refs?service=git-upload-pack");
    let response = http.get(&refs).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Basic realm=\"GitHub\"");
    let response = http
        .get(&refs)
        .basic_auth("x-access-token", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = http
        .get(&refs)
        .basic_auth("anyone", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-git-upload-pack-advertisement"
    );
    let response = http
        .get(format!("{missing}/info/refs?service=git-upload-pack"))
        .basic_auth("x-access-token", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Receive-pack needs credentials too.
    let response = http
        .get(format!("{url}/info/refs?service=git-receive-pack"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_token_never_in_url(&fake);
}

#[tokio::test]
async fn gzipped_fetch_and_chunked_push() {
    let fake = FakeGithub::start(TOKEN).await;
    fake.create_repo("octo", "big", "main");
    let client = Client::new();
    client.clone(&clone_url(&fake, "octo", "big")).await;

    // A pack bigger than http.postBuffer (1 MiB) goes out chunked, without Content-Length.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: String = (0..3_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"0123456789abcdef"[(state % 16) as usize])
        })
        .collect();
    client.commit("noise.txt", &noise, "Add noise").await;
    // Many branches with distinct tips, so that the next clone's request (one `want` each) exceeds the 1 KiB
    // above which git gzips it.
    for index in 0..40 {
        client
            .git(&["checkout", "--quiet", "-b", &format!("topic-{index:02}"), "main"])
            .await;
        let message = format!("Topic {index}");
        client
            .git(&["commit", "--quiet", "--allow-empty", "-m", &message])
            .await;
    }
    client
        .git(&[
            "push",
            "--quiet",
            "origin",
            "main",
            "refs/heads/topic-*:refs/heads/topic-*",
        ])
        .await;
    assert_eq!(
        fake.file_at("octo", "big", "main", "noise.txt")
            .map(|text| text.len()),
        Some(3_000_000)
    );
    assert_eq!(
        fake.log("octo", "big", "topic-39"),
        ["Topic 39", "Add noise", "Initial commit"]
    );
    assert!(
        fake.requests()
            .iter()
            .any(|request| request.path.ends_with("/git-receive-pack")
                && request.header("transfer-encoding") == Some("chunked")
                && request.header("content-length").is_none()),
        "no chunked push"
    );

    let other = Client::new();
    other.clone(&clone_url(&fake, "octo", "big")).await;
    let branches = other.git(&["branch", "--remotes"]).await;
    assert_eq!(
        branches
            .lines()
            .filter(|line| line.contains("origin/topic-"))
            .count(),
        40
    );
    assert!(
        fake.requests()
            .iter()
            .any(|request| request.path.ends_with("/git-upload-pack")
                && request.header("content-encoding") == Some("gzip")),
        "no gzipped fetch"
    );
}

/// The REST client: JSON in and out, `Authorization: Bearer <token>`.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(fake: &FakeGithub) -> Api {
        Api {
            http: http(),
            base: fake.api_url(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("accept", "application/vnd.github+json");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        assert_eq!(
            response.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        (status, response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }
}

#[tokio::test]
async fn rest_needs_the_token() {
    let fake = FakeGithub::start(TOKEN).await;
    fake.create_repo("octo", "demo", "main");
    let http = http();
    let url = format!("{}/repos/octo/demo", fake.api_url());
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("token wrong"),
        Some("Basic eDp5"),
    ] {
        let mut request = http.get(&url);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["message"], "Bad credentials");
        assert!(body["documentation_url"].is_string());
    }
    let response = http
        .get(&url)
        .header("authorization", format!("token {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A token in the query is not a credential, and the request is on record.
    let response = http
        .get(format!("{url}?access_token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(fake.requests().iter().any(|request| request.path.contains(TOKEN)));
}

#[tokio::test]
async fn rest_pull_requests() {
    let fake = FakeGithub::start(TOKEN).await;
    fake.create_repo("octo", "demo", "main");
    let client = Client::new();
    client.clone(&clone_url(&fake, "octo", "demo")).await;
    client.git(&["checkout", "--quiet", "-b", "feature"]).await;
    client.commit("feature.txt", "feature\n", "Add feature").await;
    client.git(&["push", "--quiet", "-u", "origin", "feature"]).await;
    client
        .git(&["push", "--quiet", "origin", "main:same-as-main"])
        .await;
    let feature_sha = fake.branch_head("octo", "demo", "feature").unwrap();
    let api = Api::new(&fake);

    let (status, repo) = api.get("/repos/octo/demo").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(repo["full_name"], "octo/demo");
    assert_eq!(repo["name"], "demo");
    assert_eq!(repo["private"], true);
    assert_eq!(repo["default_branch"], "main");
    assert_eq!(repo["owner"]["login"], "octo");
    let (status, missing) = api.get("/repos/octo/missing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["message"], "Not Found");
    assert!(missing["documentation_url"].is_string());

    // Validation.
    let (status, error) = api
        .post(
            "/repos/octo/demo/pulls",
            json!({"head": "feature", "base": "main"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["message"], "Validation Failed");
    assert_eq!(error["errors"][0]["field"], "title");
    let (status, error) = api
        .post(
            "/repos/octo/demo/pulls",
            json!({"title": "T", "head": "octo:nope", "base": "main"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error["errors"][0],
        json!({"resource": "PullRequest", "field": "head", "code": "invalid"})
    );
    let (status, error) = api
        .post(
            "/repos/octo/demo/pulls",
            json!({"title": "T", "head": "same-as-main", "base": "main"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error["errors"][0]["message"],
        "No commits between main and same-as-main"
    );
    let response = api
        .http
        .post(format!("{}/repos/octo/demo/pulls", api.base))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Create.
    let (status, pull) = api
        .post(
            "/repos/octo/demo/pulls",
            json!({"title": "Add feature", "head": "octo:feature", "base": "main", "body": "Does it.", "draft": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pull}");
    assert_eq!(pull["number"], 1);
    assert_eq!(pull["state"], "open");
    assert_eq!(pull["title"], "Add feature");
    assert_eq!(pull["body"], "Does it.");
    assert_eq!(pull["draft"], false);
    assert_eq!(pull["html_url"], format!("{}/octo/demo/pull/1", fake.git_url()));
    assert_eq!(pull["url"], format!("{}/repos/octo/demo/pulls/1", fake.api_url()));
    assert_eq!(pull["head"]["ref"], "feature");
    assert_eq!(pull["head"]["label"], "octo:feature");
    assert_eq!(pull["head"]["sha"], feature_sha.as_str());
    assert_eq!(pull["base"]["ref"], "main");

    // The same head and base again.
    let (status, error) = api
        .post(
            "/repos/octo/demo/pulls",
            json!({"title": "Again", "head": "feature", "base": "main"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error["errors"][0],
        json!({"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for octo:feature."})
    );

    // List with filters.
    let (status, listed) = api
        .get("/repos/octo/demo/pulls?state=open&head=octo%3Afeature&base=main")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["number"], 1);
    for query in [
        "head=octo:other",
        "base=dev",
        "state=closed",
        "head=someone:feature",
    ] {
        let (status, listed) = api.get(&format!("/repos/octo/demo/pulls?{query}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed, json!([]), "{query}");
    }

    // Update.
    let (status, patched) = api
        .patch(
            "/repos/octo/demo/pulls/1",
            json!({"title": "Add feature (v2)", "body": "Does it better."}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["title"], "Add feature (v2)");
    assert_eq!(patched["body"], "Does it better.");
    let (status, error) = api.patch("/repos/octo/demo/pulls/9", json!({"title": "x"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["message"], "Not Found");
    let (status, error) = api
        .patch("/repos/octo/demo/pulls/1", json!({"state": "merged"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["errors"][0]["field"], "state");

    // A push to the head branch shows in the PR.
    client
        .commit("feature.txt", "feature v2\n", "Improve feature")
        .await;
    client.git(&["push", "--quiet"]).await;
    let (_, fetched) = api.get("/repos/octo/demo/pulls/1").await;
    assert_eq!(
        fetched["head"]["sha"],
        fake.branch_head("octo", "demo", "feature").unwrap().as_str()
    );

    // Closing frees the head for a new pull request.
    let (status, closed) = api
        .patch("/repos/octo/demo/pulls/1", json!({"state": "closed"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(closed["state"], "closed");
    let (_, listed) = api.get("/repos/octo/demo/pulls?head=octo:feature").await;
    assert_eq!(listed, json!([]));
    let (status, second) = api
        .post(
            "/repos/octo/demo/pulls",
            json!({"title": "Retry", "head": "feature", "base": "main", "draft": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(second["number"], 2);
    assert_eq!(second["draft"], true);
    assert_eq!(second["body"], Value::Null);
    let (_, listed) = api.get("/repos/octo/demo/pulls?state=all").await;
    let numbers: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|pull| pull["number"].clone())
        .collect();
    assert_eq!(numbers, [json!(2), json!(1)], "newest first by default");

    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 2);
    let first = &pulls[0];
    assert_eq!(
        (first.owner.as_str(), first.repo.as_str(), first.number),
        ("octo", "demo", 1)
    );
    assert_eq!(first.title, "Add feature (v2)");
    assert_eq!(first.body, "Does it better.");
    assert_eq!((first.head.as_str(), first.base.as_str()), ("feature", "main"));
    assert_eq!(first.state, "closed");
    assert_eq!(first.html_url, format!("{}/octo/demo/pull/1", fake.git_url()));
    assert_eq!(first.updates, 2);
    assert_eq!(
        (pulls[1].number, pulls[1].state.as_str(), pulls[1].updates),
        (2, "open", 0)
    );
    assert_token_never_in_url(&fake);
}

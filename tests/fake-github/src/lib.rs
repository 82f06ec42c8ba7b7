//! A local fake of GitHub for tests: real git smart HTTP for clone/fetch/push of bare repositories (bridged
//! to `git http-backend`), plus the REST subset an agent needs to open or update a pull request.
//!
//! Both speak the real protocols, errors included, so an unmodified `git` and HTTP client work against it:
//!
//! - git: `{git_url}/{owner}/{repo}.git` (`info/refs`, `git-upload-pack`, `git-receive-pack`). Every request
//!   needs HTTP Basic auth with the token as password (any username), else `401` with
//!   `WWW-Authenticate: Basic realm="GitHub"`, so git asks its credential helper. Unknown repository: `404`.
//! - REST, under `{api_url}` = `{git_url}/api/v3` (GitHub Enterprise's layout), with
//!   `Authorization: Bearer <token>` or `token <token>` (else `401 {"message":"Bad credentials"}`):
//!   `GET /repos/{o}/{r}`, `GET|POST /repos/{o}/{r}/pulls`, `GET|PATCH /repos/{o}/{r}/pulls/{n}`.
//!
//! Every request (both sides, including rejected ones) is recorded; see [`FakeGithub::requests`].
//!
//! The inspection helpers ([`FakeGithub::create_repo`], [`FakeGithub::branch_head`], …) run `git`
//! synchronously; they are quick, but a test must run its own `git` client asynchronously
//! (`tokio::process`) or on another thread, or the server cannot answer it.

mod api;
mod auth;
mod git;
mod pulls;
mod repos;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use agentfarm_local_server::{LocalServer, Port};
use tempfile::TempDir;

use crate::server::Shared;

/// A pull request as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Number, per repository from 1.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body (empty if none was given).
    pub body: String,
    /// Head branch name (without `owner:`).
    pub head: String,
    /// Base branch name.
    pub base: String,
    /// `open` or `closed`.
    pub state: String,
    /// `{git_url}/{owner}/{repo}/pull/{number}`.
    pub html_url: String,
    /// How many `PATCH`es were applied.
    pub updates: u32,
}

/// One HTTP request received by the fake (git or REST, accepted or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/octo/demo.git/info/refs?service=git-upload-pack`.
    pub path: String,
    /// All request headers, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        agentfarm_local_server::find_header(&self.headers, name)
    }
}

/// A running fake GitHub on `127.0.0.1:<random port>`, with its repositories in a temporary directory.
/// Stops (and deletes the repositories) when dropped.
pub struct FakeGithub {
    shared: Arc<Shared>,
    server: LocalServer,
    /// Declared after `server`: removed after the server was told to stop.
    _root: TempDir,
}

impl FakeGithub {
    /// Starts the server on `127.0.0.1:0` in the current tokio runtime. `token` is the only credential
    /// accepted (git: HTTP Basic password, any username; REST: `Authorization: Bearer <token>` or
    /// `token <token>`).
    ///
    /// # Panics
    /// If no loopback port can be bound or no temporary directory created (test support: a test cannot go on
    /// without its server).
    pub async fn start(token: &str) -> FakeGithub {
        FakeGithub::start_on(token, Port::bind("fake github").await)
    }

    /// [`FakeGithub::start`] on `port`, e.g. one bound where a test cluster's pods reach it.
    ///
    /// # Panics
    /// If no temporary directory can be created.
    #[allow(clippy::expect_used)] // test support; see "Panics"
    pub fn start_on(token: &str, port: Port) -> FakeGithub {
        let root = tempfile::Builder::new()
            .prefix("fake-github-")
            .tempdir()
            .expect("fake github: temporary directory");
        let git_url = format!("http://{}", port.addr());
        let shared = Arc::new(Shared {
            root: root.path().to_path_buf(),
            token: token.to_owned(),
            api_url: format!("{git_url}{}", server::API_PREFIX),
            git_url,
            requests: Mutex::new(Vec::new()),
            pulls: Mutex::new(Vec::new()),
        });
        let server = port.serve("fake github", server::router(Arc::clone(&shared)));
        FakeGithub {
            shared,
            server,
            _root: root,
        }
    }

    /// Base URL for git remotes, e.g. `http://127.0.0.1:41234`: the clone URL of owner/repo is
    /// `{git_url}/{owner}/{repo}.git`.
    pub fn git_url(&self) -> String {
        self.shared.git_url.clone()
    }

    /// Base URL of the REST API, e.g. `http://127.0.0.1:41234/api/v3`; paths below it are api.github.com's
    /// (`/repos/{owner}/{repo}/pulls`).
    pub fn api_url(&self) -> String {
        self.shared.api_url.clone()
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Creates bare repository owner/repo whose `default_branch` (its `HEAD`) holds one commit adding
    /// `README.md` with `# {repo}\n`. Returns its path (`<root>/<owner>/<repo>.git`).
    ///
    /// # Panics
    /// On an invalid owner, repository or branch name, if the repository exists, or if git fails (test
    /// support: the test's setup is wrong).
    #[allow(clippy::panic)] // test support; see "Panics"
    pub fn create_repo(&self, owner: &str, repo: &str, default_branch: &str) -> PathBuf {
        let Some(path) = repos::repo_path(&self.shared.root, owner, repo) else {
            panic!("fake github: invalid repository name {owner:?}/{repo:?}");
        };
        if let Err(error) = repos::create(&path, repo, default_branch) {
            panic!("fake github: creating {owner}/{repo}: {error}");
        }
        path
    }

    /// Commit sha of `branch` in owner/repo, if the repository and branch exist.
    pub fn branch_head(&self, owner: &str, repo: &str, branch: &str) -> Option<String> {
        let path = repos::existing_repo(&self.shared.root, owner, repo)?;
        repos::branch_head(&path, branch)
    }

    /// Content of `path` at `branch` of owner/repo, if it exists (lossy UTF-8).
    pub fn file_at(&self, owner: &str, repo: &str, branch: &str, path: &str) -> Option<String> {
        let repo_path = repos::existing_repo(&self.shared.root, owner, repo)?;
        repos::file_at(&repo_path, branch, path)
    }

    /// Full commit messages on `branch` (trailing newlines trimmed), newest first; empty if there is no such
    /// branch.
    pub fn log(&self, owner: &str, repo: &str, branch: &str) -> Vec<String> {
        repos::existing_repo(&self.shared.root, owner, repo)
            .map(|path| repos::log(&path, branch))
            .unwrap_or_default()
    }

    /// Every pull request, in creation order.
    pub fn pulls(&self) -> Vec<PullRequest> {
        self.shared
            .pulls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|stored| stored.pull.clone())
            .collect()
    }

    /// Every HTTP request received so far (git and REST, rejected ones too), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

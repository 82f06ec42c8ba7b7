//! A scripted fake of the Anthropic Messages API (HTTP + SSE), for running the real Claude Code CLI offline
//! in tests.
//!
//! Start a [`FakeModel`], run [`claude_bin`] with [`FakeModel::cli_env`], and steer the conversation with
//! markers in the user's text:
//!
//! | marker | answer |
//! | --- | --- |
//! | none | `Fake answer to: <user text, first 200 chars>`, `end_turn` |
//! | `[[write:/abs/path]]` | `Write` tool call, then `Bash` `cat` of the file, then `Done: wrote /abs/path` |
//! | `[[bash:COMMAND]]` | a `Bash` tool call running COMMAND in the agent's working directory, then `Ran: COMMAND` |
//! | `[[long:N]]` | a text streamed as N `text_delta` events (`word0 word1 …`) |
//! | `[[status:CODE]]` | HTTP CODE with an Anthropic error body (429 adds `retry-after: 0`) |
//! | `[[usage-limit]]` | 429 with the subscription's 5-hour-limit `anthropic-ratelimit-unified-*` headers, resetting in an hour |
//! | `[[usage-limit:SECS]]` | the same, resetting in SECS seconds |
//! | `[[rate-headers]]` | a normal answer plus `allowed_warning` rate-limit headers |
//! | `[[wait:NAME]]` | holds the answer until [`FakeModel::release`]`("NAME")`; combines with the others |
//!
//! The scenario comes from the most recent user message that has text (not just `tool_result` blocks);
//! requests that are not the main conversation (no tools, or `max_tokens` ≤ 1, like the CLI's `quota` probe)
//! get a short text and are never held. `POST /v1/messages/count_tokens` answers `{"input_tokens": N}`,
//! `HEAD /api/hello` (the CLI's connectivity check) answers 200, anything else 404; all are recorded.

mod gate;
mod scenario;
mod server;
mod sse;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use agentfarm_local_server::LocalServer;
pub use agentfarm_local_server::Port;
use serde_json::Value;

use crate::server::Shared;

/// A fake token in the shape of a Claude subscription (setup-token) OAuth token.
pub const FAKE_OAUTH_TOKEN: &str = "sk-ant-oat01-fake-token-for-agentfarm-tests-000000000000000000000000";

/// A shell command for `[[bash:…]]` that hunts for credentials the way a prompt-injected agent would: it
/// gathers its whole environment, its ancestors' up to PID 1 (read from `/proc`, where the sandbox allows) and
/// every file in its home and work dir, prints whatever in it is token-shaped, for Claude to send to the
/// model, and then `searched N bytes`, so that a hunt that found nothing shows it looked. The prefixes are
/// written as patterns that match them, so that a prompt holding the command holds no token shape (which the
/// server refuses).
pub const HUNT_FOR_TOKENS: &str = "h=$(mktemp -p /tmp); { env; p=$$; while [ \"$p\" -ge 1 ]; do \
     tr '\\0' '\\n' < /proc/$p/environ; p=$(cut -d' ' -f4 /proc/$p/stat); done; \
     find \"$HOME\" \"$PWD\" -type f -exec cat {} +; } > \"$h\" 2>/dev/null; \
     grep -a -o -E '(s[k]-ant-|g[h]p_|githu[b]_pat_|afru[n]_)[A-Za-z0-9_-]+' \"$h\" | sort -u; \
     echo \"searched $(wc -c < \"$h\") bytes\"; rm -f \"$h\"";

/// What a request to the fake was, as the fake understood it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `POST /v1/messages` of the main conversation: the one scenarios and gates apply to.
    Main,
    /// `POST /v1/messages` that is not the main conversation (no tools, or a `max_tokens` ≤ 1 probe).
    Side,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
    /// Anything else (answered 404), or a body that is not JSON.
    Other,
}

/// One request received by the fake.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// How the fake classified it.
    pub kind: RequestKind,
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// All request headers, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The parsed JSON body (`Null` if there was none or it was not JSON).
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        agentfarm_local_server::find_header(&self.headers, name)
    }

    /// The text of the last user message (without `<system-reminder>` sections), empty if none.
    pub fn last_user_text(&self) -> String {
        let messages = self.body.get("messages").and_then(Value::as_array);
        messages
            .and_then(|messages| {
                messages
                    .iter()
                    .rev()
                    .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            })
            .map(scenario::user_text)
            .unwrap_or_default()
    }
}

/// A running fake Messages API on `127.0.0.1:<random port>`. Stops when dropped (held requests are answered
/// with a 503).
pub struct FakeModel {
    shared: Arc<Shared>,
    server: LocalServer,
}

impl FakeModel {
    /// Starts the server on `127.0.0.1:0` in the current tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound (test support: there is nothing sensible to do then).
    pub async fn start() -> FakeModel {
        FakeModel::start_on(Port::bind("fake model").await)
    }

    /// [`FakeModel::start`] on `port`, e.g. one bound where a test cluster's pods reach it.
    pub fn start_on(port: Port) -> FakeModel {
        let shared = Arc::new(Shared::default());
        let server = port.serve("fake model", server::router(Arc::clone(&shared)));
        FakeModel { shared, server }
    }

    /// Base URL for `ANTHROPIC_BASE_URL`, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        self.server.url()
    }

    /// Everything the CLI needs to talk to this fake from the private home `home`: [`Self::model_env`] plus
    /// `HOME=<home>`, `CLAUDE_CONFIG_DIR=<home>/.claude` (settings, `.claude.json`, session transcripts under
    /// `projects/`) and `CLAUDE_CODE_TMPDIR=<home>/tmp` (the CLI's per-cwd scratch dirs and its
    /// `cc-socks/<pid>.sock` messaging socket, otherwise left behind in `/tmp`). The CLI creates all three.
    ///
    /// Run the CLI with a cleared environment plus `PATH` and these, so that nothing of the caller's
    /// (`ANTHROPIC_API_KEY`, `ANTHROPIC_MODEL`, `CLAUDE_CODE_USE_BEDROCK`, …) leaks in.
    pub fn cli_env(&self, home: &Path) -> Vec<(String, String)> {
        let mut env = vec![
            ("HOME".to_owned(), home.display().to_string()),
            (
                "CLAUDE_CONFIG_DIR".to_owned(),
                home.join(".claude").display().to_string(),
            ),
            (
                "CLAUDE_CODE_TMPDIR".to_owned(),
                home.join("tmp").display().to_string(),
            ),
        ];
        env.extend(self.model_env());
        env
    }

    /// The environment without `HOME`/`CLAUDE_CONFIG_DIR`, for a caller that sets those itself:
    ///
    /// - `ANTHROPIC_BASE_URL`: this fake; the CLI posts to `$ANTHROPIC_BASE_URL/v1/messages?beta=true`.
    /// - `CLAUDE_CODE_OAUTH_TOKEN`: [`FAKE_OAUTH_TOKEN`]; the CLI needs some credential and sends it as
    ///   `Authorization: Bearer …` (the path our backend uses for subscriptions).
    /// - `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`: no telemetry, feature-flag or update traffic (without it
    ///   the CLI also sends `HEAD /api/hello` to the base URL).
    /// - `DISABLE_UPDATES=1`: never self-update the pinned CLI.
    /// - `IS_SANDBOX=1`: as root, `--permission-mode bypassPermissions` otherwise exits 1 at once with
    ///   "--dangerously-skip-permissions cannot be used with root/sudo privileges" on stderr.
    /// - `CLAUDE_CODE_MAX_RETRIES=1`: a 5xx/429 is retried once after ~0.5 s (one `system/api_retry` event)
    ///   instead of ten times with exponential back-off (about three minutes; `retry-after: 0` does not
    ///   shorten it). `0` ends at once with no `api_retry` event. A usage-limit 429 is never retried.
    pub fn model_env(&self) -> Vec<(String, String)> {
        [
            ("ANTHROPIC_BASE_URL", self.base_url().as_str()),
            ("CLAUDE_CODE_OAUTH_TOKEN", FAKE_OAUTH_TOKEN),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
            ("DISABLE_UPDATES", "1"),
            ("IS_SANDBOX", "1"),
            ("CLAUDE_CODE_MAX_RETRIES", "1"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    /// Opens gate `gate` for good: requests held by `[[wait:gate]]` go on, and later ones pass straight
    /// through (so releasing before the request arrives works too).
    pub fn release(&self, gate: &str) {
        self.shared.gates.release(gate);
    }

    /// Resolves once at least one request has reached gate `gate` (and is parked there unless the gate was
    /// already released).
    pub async fn parked(&self, gate: &str) {
        self.shared.gates.arrived(gate).await;
    }

    /// Every request received so far, in arrival order (all paths; see [`RecordedRequest::kind`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The main-conversation `/v1/messages` requests received so far.
    pub fn main_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.kind == RequestKind::Main)
            .collect()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        // Held requests get their 503 now; the server stops when `server` is dropped right after.
        self.shared.gates.close();
    }
}

/// Absolute path of the pinned Claude Code CLI: `$AGENTFARM_CLAUDE_BIN` if set, else
/// `<workspace root>/node_modules/.bin/claude`.
///
/// # Panics
/// If that file does not exist: run `cargo xtask test`, which installs the pinned CLI.
#[allow(clippy::panic)] // test support: a test that needs the CLI cannot run without it
pub fn claude_bin() -> PathBuf {
    let path = match std::env::var_os("AGENTFARM_CLAUDE_BIN") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            if path.is_absolute() {
                path
            } else {
                std::env::current_dir().map(|dir| dir.join(&path)).unwrap_or(path)
            }
        }
        _ => workspace_root().join("node_modules").join(".bin").join("claude"),
    };
    if !path.is_file() {
        panic!(
            "the Claude Code CLI is missing at {}: run `cargo xtask test`, which installs the pinned CLI \
             (or set AGENTFARM_CLAUDE_BIN)",
            path.display()
        );
    }
    path
}

/// `CARGO_MANIFEST_DIR/../..`.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).unwrap_or(manifest).to_path_buf()
}

//! The agent runner's contract with the backend: the spec it is started with, and the events it prints.
//!
//! The runner prints every Claude stream-json event unchanged, one per line, and its own events in one
//! envelope, `{"type":"agentfarm","event":"<name>",…}`, so a reader tells them apart by `type` alone.

use serde::{Deserialize, Deserializer, Serialize};

use crate::tagged::{Fields, unknown};

/// What the runner needs to do one run. The backend writes it as JSON (a file, or `AGENTFARM_RUN_SPEC`).
/// Secrets are not in it: the run's capability comes from [`RUN_TOKEN_ENV`] (and is Claude Code's
/// `CLAUDE_CODE_OAUTH_TOKEN`); only in the debugging mode does the owner's `GITHUB_TOKEN` reach the runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerSpec {
    /// The run's id.
    pub run_id: String,
    /// Display name of the config (commit messages and the pull request title fall back to it).
    pub title: String,
    /// The Claude Code session id to use (a UUID).
    pub session_id: String,
    /// The task prompt: the first user message.
    pub prompt: String,
    /// Appended to Claude Code's system prompt (empty: none).
    #[serde(default)]
    pub system_prompt: String,
    /// Model name or alias.
    pub model: String,
    /// `--max-turns`.
    pub max_turns: u32,
    /// `--max-budget-usd`, if any.
    #[serde(default)]
    pub budget_usd: Option<f64>,
    /// Repositories to clone, `owner/repo` or `owner/repo@base-branch`.
    #[serde(default)]
    pub repos: Vec<String>,
    /// The branch to work on: created from the base, or continued when it already exists on the remote.
    pub branch: String,
    /// Base URL of git remotes: the control plane's git proxy, or `https://github.com` in the debugging mode
    /// that gives agents the owner's token.
    pub git_url: String,
    /// Where the runner reaches the control plane (for its pull request).
    pub control_url: String,
    /// The Claude Code program.
    pub claude_command: String,
    /// When set, the runner itself ends the conversation after Claude has waited this many seconds for a
    /// follow-up, as if its stdin had closed. For agents whose stdin never closes (a pod's stays open
    /// across attach sessions); without it, the conversation ends when stdin closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_secs: Option<u64>,
}

/// The runner's own events (the `event` field of the envelope). Decoded by hand (see [`crate::tagged`]), to
/// the same JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunnerEvent {
    /// Cloning a repository.
    Cloning {
        /// `owner/repo`.
        repo: String,
    },
    /// A repository is cloned and on the run's branch.
    Cloned {
        /// `owner/repo`.
        repo: String,
        /// The branch checked out.
        branch: String,
        /// The branch the pull request goes into.
        base: String,
        /// True when the branch already existed (a continued run).
        continued: bool,
        /// The commit checked out.
        commit: String,
    },
    /// Work was committed.
    Committed {
        /// `owner/repo`.
        repo: String,
        /// The new commit.
        commit: String,
        /// Its message's first line.
        message: String,
    },
    /// The branch was pushed.
    Pushed {
        /// `owner/repo`.
        repo: String,
        /// The branch.
        branch: String,
        /// The commit pushed.
        commit: String,
    },
    /// A pull request was opened, or the existing one updated.
    PrOpened {
        /// `owner/repo`.
        repo: String,
        /// Its number.
        number: u64,
        /// Its web address.
        url: String,
        /// True when an existing pull request was updated instead of a new one opened.
        updated: bool,
    },
    /// What the branch changes against its base.
    Diff {
        /// `owner/repo`.
        repo: String,
        /// Per file.
        files: Vec<FileDiff>,
        /// The unified diff, cut at a bound.
        patch: String,
        /// True when `patch` was cut.
        truncated: bool,
    },
    /// The subscription's usage limit stopped the agent.
    LimitHit {
        /// When the limit resets, seconds since the Unix epoch, when known.
        resets_at: Option<i64>,
        /// What Claude said.
        message: String,
    },
    /// Something failed.
    Error {
        /// What the runner was doing (`clone`, `claude`, `commit`, `push`, `pull_request`).
        stage: String,
        /// What went wrong.
        message: String,
    },
}

impl<'de> Deserialize<'de> for RunnerEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const TAGS: &[&str] = &[
            "cloning",
            "cloned",
            "committed",
            "pushed",
            "pr_opened",
            "diff",
            "limit_hit",
            "error",
        ];
        let f = Fields::read(deserializer)?;
        Ok(match f.tag("event") {
            Some("cloning") => RunnerEvent::Cloning { repo: f.req("repo")? },
            Some("cloned") => RunnerEvent::Cloned {
                repo: f.req("repo")?,
                branch: f.req("branch")?,
                base: f.req("base")?,
                continued: f.req("continued")?,
                commit: f.req("commit")?,
            },
            Some("committed") => RunnerEvent::Committed {
                repo: f.req("repo")?,
                commit: f.req("commit")?,
                message: f.req("message")?,
            },
            Some("pushed") => RunnerEvent::Pushed {
                repo: f.req("repo")?,
                branch: f.req("branch")?,
                commit: f.req("commit")?,
            },
            Some("pr_opened") => RunnerEvent::PrOpened {
                repo: f.req("repo")?,
                number: f.req("number")?,
                url: f.req("url")?,
                updated: f.req("updated")?,
            },
            Some("diff") => RunnerEvent::Diff {
                repo: f.req("repo")?,
                files: f.req("files")?,
                patch: f.req("patch")?,
                truncated: f.req("truncated")?,
            },
            Some("limit_hit") => RunnerEvent::LimitHit {
                resets_at: f.opt("resets_at")?,
                message: f.req("message")?,
            },
            Some("error") => RunnerEvent::Error {
                stage: f.req("stage")?,
                message: f.req("message")?,
            },
            tag => return Err(unknown(tag, TAGS)),
        })
    }
}

/// The runner's one call to the control plane (`POST` [`PULL_REQUEST_ROUTE`], with the run's capability): open
/// a pull request from the run's branch, or update the open one. The control plane makes the GitHub call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequestAsk {
    /// `owner/repo`, one of the run's config.
    pub repo: String,
    /// The branch the pull request goes into.
    pub base: String,
    /// Its title.
    pub title: String,
    /// Its body.
    pub body: String,
}

/// The control plane's answer to a [`PullRequestAsk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestAnswer {
    /// Its number.
    pub number: u64,
    /// Its web address.
    pub url: String,
    /// True when an open pull request was updated instead of a new one opened.
    pub updated: bool,
}

/// Where the runner asks for its pull request, under the control plane's URL.
pub const PULL_REQUEST_ROUTE: &str = "/proxy/github/pull-request";

/// The variable holding the run's capability, the one credential an agent gets.
pub const RUN_TOKEN_ENV: &str = "AGENTFARM_RUN_TOKEN";

/// Lines added and removed in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    /// The file's path in the repository.
    pub path: String,
    /// Lines added (`None` for a binary file).
    pub added: Option<u64>,
    /// Lines removed (`None` for a binary file).
    pub removed: Option<u64>,
}

/// The envelope's `type`.
pub const ENVELOPE_TYPE: &str = "agentfarm";

#[derive(Serialize)]
struct Envelope<T> {
    r#type: String,
    #[serde(flatten)]
    event: T,
}

impl RunnerEvent {
    /// The event as one line of JSON in its envelope.
    pub fn to_line(&self) -> String {
        let envelope = Envelope {
            r#type: ENVELOPE_TYPE.to_owned(),
            event: self,
        };
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(&envelope).unwrap_or_default()
    }

    /// Reads a line printed by the runner; `None` for anything else (Claude's events, plain text).
    pub fn parse(line: &str) -> Option<RunnerEvent> {
        if !line.contains(ENVELOPE_TYPE) {
            return None;
        }
        // Through a `Value` rather than a `#[serde(flatten)]` envelope (the same reading): flatten buffers
        // every field in serde's private `Content` tree, code the web app otherwise no longer needs.
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        if value.get("type")?.as_str()? != ENVELOPE_TYPE {
            return None;
        }
        RunnerEvent::deserialize(&value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip() {
        let event = RunnerEvent::PrOpened {
            repo: "o/r".into(),
            number: 7,
            url: "https://x/7".into(),
            updated: true,
        };
        let line = event.to_line();
        assert!(
            line.starts_with(r#"{"type":"agentfarm","event":"pr_opened""#),
            "{line}"
        );
        assert_eq!(RunnerEvent::parse(&line), Some(event));
        assert_eq!(
            RunnerEvent::parse(r#"{"type":"result","subtype":"success"}"#),
            None
        );
        assert_eq!(RunnerEvent::parse("agentfarm is great"), None);
    }

    /// Every event reads back as itself from its envelope line; the match makes a new variant fail to compile
    /// here until it is added to the list.
    #[test]
    fn every_runner_event_round_trips() {
        let repo = || "o/r".to_owned();
        let events = [
            RunnerEvent::Cloning { repo: repo() },
            RunnerEvent::Cloned {
                repo: repo(),
                branch: "agentfarm/x".into(),
                base: "main".into(),
                continued: true,
                commit: "abc".into(),
            },
            RunnerEvent::Committed {
                repo: repo(),
                commit: "def".into(),
                message: "m".into(),
            },
            RunnerEvent::Pushed {
                repo: repo(),
                branch: "agentfarm/x".into(),
                commit: "def".into(),
            },
            RunnerEvent::PrOpened {
                repo: repo(),
                number: 3,
                url: "https://x/3".into(),
                updated: false,
            },
            RunnerEvent::Diff {
                repo: repo(),
                files: vec![
                    FileDiff {
                        path: "a".into(),
                        added: Some(1),
                        removed: Some(2),
                    },
                    FileDiff {
                        path: "b.png".into(),
                        added: None,
                        removed: None,
                    },
                ],
                patch: "diff --git a/a b/a".into(),
                truncated: true,
            },
            RunnerEvent::LimitHit {
                resets_at: Some(1_800_000_000),
                message: "limit".into(),
            },
            RunnerEvent::LimitHit {
                resets_at: None,
                message: "limit".into(),
            },
            RunnerEvent::Error {
                stage: "push".into(),
                message: "refused".into(),
            },
        ];
        let mut seen = std::collections::BTreeSet::new();
        for event in &events {
            seen.insert(match event {
                RunnerEvent::Cloning { .. } => 0,
                RunnerEvent::Cloned { .. } => 1,
                RunnerEvent::Committed { .. } => 2,
                RunnerEvent::Pushed { .. } => 3,
                RunnerEvent::PrOpened { .. } => 4,
                RunnerEvent::Diff { .. } => 5,
                RunnerEvent::LimitHit { .. } => 6,
                RunnerEvent::Error { .. } => 7,
            });
            let line = event.to_line();
            assert_eq!(RunnerEvent::parse(&line).as_ref(), Some(event), "{line}");
        }
        assert_eq!(seen.len(), 8, "one of each variant");
        assert_eq!(
            RunnerEvent::parse(r#"{"type":"agentfarm","event":"pushed","repo":"o/r"}"#),
            None,
            "a missing field"
        );
    }
}

//! One run from start to end: clone, start Claude, relay (Claude → stdout, stdin → Claude), checkpoint the
//! repositories whenever Claude finishes a turn and once more at the end, then exit with a code that says
//! how it went.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use agentfarm_shared::claude::{ClaudeEvent, interrupt_line, user_message_line};
use agentfarm_shared::runner::{PullRequestAsk, RunnerEvent, RunnerSpec};
use agentfarm_shared::turns::{Activity, TurnTracker};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::ChildStdin;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, sleep_until};

use crate::control::Control;
use crate::git::Git;
use crate::output::Output;
use crate::repo::{self, Checkout, RepoRef};
use crate::{EXIT_PUBLISH, EXIT_SETUP, claude};

/// Longest pull request body taken from Claude's result, in bytes.
const MAX_BODY_BYTES: usize = 60_000;

/// The run's moving parts.
pub struct Session {
    spec: RunnerSpec,
    git: Git,
    control: Option<Control>,
    out: Output,
    checkouts: Vec<Checkout>,
    /// Set once any commit, push or pull request failed.
    publish_failed: bool,
}

impl Session {
    /// A session for `spec`: git authenticates with `git_token` (the run's capability, for the git proxy),
    /// and the pull request is asked of the control plane with `capability`.
    pub fn new(spec: RunnerSpec, git_token: Option<String>, capability: Option<String>, out: Output) -> Self {
        let control = capability.and_then(|capability| match Control::new(&spec.control_url, capability) {
            Ok(control) => Some(control),
            Err(err) => {
                out.note(&format!("cannot set up the control plane's client: {err}"));
                None
            }
        });
        Self {
            git: Git::new(git_token),
            control,
            out,
            spec,
            checkouts: Vec::new(),
            publish_failed: false,
        }
    }

    fn error(&self, stage: &str, message: impl Into<String>) {
        self.out.event(&RunnerEvent::Error {
            stage: stage.into(),
            message: message.into(),
        });
    }

    /// Runs everything in `workspace`; returns the process exit code.
    pub async fn run(mut self, workspace: &Path) -> i32 {
        if let Err(code) = self.clone_all(workspace).await {
            return code;
        }
        let dir = match self.checkouts.as_slice() {
            [only] => only.dir.clone(),
            _ => workspace.to_path_buf(),
        };
        let mut child = match claude::spawn(&self.spec, &dir) {
            Ok(child) => child,
            Err(err) => {
                self.error(
                    "claude",
                    format!("cannot start {}: {err}", self.spec.claude_command),
                );
                return EXIT_SETUP;
            }
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            self.error("claude", "Claude's pipes were not set up");
            return EXIT_SETUP;
        };
        let mut relay = Relay {
            claude_in: Some(stdin),
            turns: TurnTracker::default(),
            model_turns: BTreeSet::new(),
            last_result: None,
            idle_since: None,
            closing: false,
            stopping: false,
        };
        relay
            .send(&user_message_line(
                &self.spec.prompt,
                &uuid::Uuid::new_v4().to_string(),
            ))
            .await;

        let mut claude_out = BufReader::new(stdout).lines();
        let mut claude_err = BufReader::new(stderr).lines();
        let mut ours = BufReader::new(tokio::io::stdin()).lines();
        let (mut out_open, mut err_open, mut ours_open) = (true, true, true);
        let idle_timeout = self.spec.idle_timeout_secs.map(Duration::from_secs);
        let mut terminate = signal(SignalKind::terminate()).ok();
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        let status: std::io::Result<ExitStatus> = loop {
            tokio::select! {
                line = claude_out.next_line(), if out_open => match line {
                    Ok(Some(line)) => self.on_claude_line(&line, &mut relay).await,
                    _ => out_open = false,
                },
                line = claude_err.next_line(), if err_open => match line {
                    Ok(Some(line)) => self.out.note(&line),
                    _ => err_open = false,
                },
                line = ours.next_line(), if ours_open => match line {
                    Ok(Some(line)) => relay.forward(&line).await,
                    // The backend has nothing more to say: once Claude is idle, its stdin closes and it exits.
                    // (Until then it stays open, so the runner can still interrupt.)
                    _ => {
                        ours_open = false;
                        relay.closing = true;
                        if relay.turns.is_idle() {
                            relay.claude_in = None;
                        }
                    }
                },
                () = sleep_until(relay.idle_since.map_or_else(Instant::now, |since| since + idle_timeout.unwrap_or_default())),
                    if idle_timeout.is_some() && relay.idle_since.is_some() && !relay.closing =>
                {
                    // Nobody followed up in time: end the conversation as if the backend had closed stdin.
                    relay.closing = true;
                    relay.claude_in = None;
                }
                Some(()) = recv(&mut terminate) => relay.stop(&self.spec.run_id).await,
                Some(()) = recv(&mut interrupt) => relay.stop(&self.spec.run_id).await,
                status = child.wait() => break status,
            }
        };
        while out_open {
            match claude_out.next_line().await {
                Ok(Some(line)) => self.on_claude_line(&line, &mut relay).await,
                _ => out_open = false,
            }
        }
        self.checkpoint(relay.last_result.as_deref()).await;
        match status {
            Ok(status) if status.success() => {
                if self.publish_failed {
                    EXIT_PUBLISH
                } else {
                    0
                }
            }
            Ok(status) => status.code().unwrap_or(1).max(1),
            Err(err) => {
                self.error("claude", format!("lost track of Claude: {err}"));
                1
            }
        }
    }

    async fn clone_all(&mut self, workspace: &Path) -> Result<(), i32> {
        let refs: Vec<RepoRef> = self.spec.repos.iter().filter_map(|r| RepoRef::parse(r)).collect();
        if refs.len() != self.spec.repos.len() {
            self.error(
                "clone",
                "the spec holds a repository that is not owner/repo[@branch]",
            );
            return Err(EXIT_SETUP);
        }
        for repo in refs {
            let clash = self
                .spec
                .repos
                .iter()
                .filter(|r| r.split('@').next().and_then(|p| p.split('/').nth(1)) == Some(repo.name.as_str()))
                .count()
                > 1;
            let dir: PathBuf = workspace.join(if clash {
                format!("{}-{}", repo.owner, repo.name)
            } else {
                repo.name.clone()
            });
            self.out.event(&RunnerEvent::Cloning {
                repo: repo.full_name(),
            });
            match repo::clone(&self.git, &self.spec.git_url, repo, dir, &self.spec.branch).await {
                Ok((checkout, event)) => {
                    self.out.event(&event);
                    self.checkouts.push(checkout);
                }
                Err(err) => {
                    self.error("clone", err.to_string());
                    return Err(EXIT_SETUP);
                }
            }
        }
        Ok(())
    }

    async fn on_claude_line(&mut self, line: &str, relay: &mut Relay) {
        self.out.claude(line);
        let Some(event) = ClaudeEvent::parse(line) else {
            return;
        };
        match &event {
            ClaudeEvent::Result(result) => relay.last_result = result.result.clone(),
            ClaudeEvent::Assistant(message) => {
                // Every content block is its own event; one model turn is one message id.
                if let Some(id) = message.message.id.clone() {
                    relay.model_turns.insert(id);
                }
                if relay.model_turns.len() > self.spec.max_turns as usize && !relay.stopping {
                    self.error(
                        "claude",
                        format!(
                            "stopped after {} turns (the config's max_turns)",
                            self.spec.max_turns
                        ),
                    );
                    relay.stop(&self.spec.run_id).await;
                }
            }
            ClaudeEvent::RateLimit(limit) if limit.is_rejected() => {
                // A usage window (with its reset time), not a passing server throttle.
                if let Some(resets_at) = limit.rate_limit_info.as_ref().and_then(|i| i.resets_at) {
                    let message = "the subscription's usage limit was reached".to_owned();
                    self.out.event(&RunnerEvent::LimitHit {
                        resets_at: Some(resets_at),
                        message,
                    });
                }
            }
            _ => {}
        }
        let activity = relay.turns.observe(&event);
        if activity == Some(Activity::Busy) {
            relay.idle_since = None;
        }
        if activity == Some(Activity::Idle) {
            relay.idle_since = Some(Instant::now());
            relay.model_turns.clear();
            if relay.closing {
                // Nothing more will come: Claude exits, and the final checkpoint publishes.
                relay.claude_in = None;
            } else if relay.claude_in.is_some() {
                // Claude is idle: publish what it did so far while it waits for a follow-up.
                self.checkpoint(relay.last_result.as_deref()).await;
            }
        }
    }

    /// Commits, pushes and opens or updates a pull request in every repository.
    async fn checkpoint(&mut self, result: Option<&str>) {
        let title = summary(result, &self.spec.title);
        let message = format!("{title}\n\nagentfarm run {}", self.spec.run_id);
        let body = pull_request_body(result, &self.spec.run_id);
        for index in 0..self.checkouts.len() {
            let outcome = self.checkouts[index].checkpoint(&self.git, &message).await;
            let checkpoint = match outcome {
                Ok(checkpoint) => checkpoint,
                Err(err) => {
                    self.publish_failed = true;
                    self.error("push", err.to_string());
                    continue;
                }
            };
            for event in &checkpoint.events {
                self.out.event(event);
            }
            if checkpoint.publish {
                self.open_pull_request(index, &title, &body).await;
            }
        }
    }

    async fn open_pull_request(&mut self, index: usize, title: &str, body: &str) {
        let checkout = &self.checkouts[index];
        let Some(control) = &self.control else {
            self.publish_failed = true;
            self.error(
                "pull_request",
                "no capability for the control plane: the branch is pushed, but no pull request was opened",
            );
            return;
        };
        let repo = &checkout.repo;
        let ask = PullRequestAsk {
            repo: repo.full_name(),
            base: checkout.base.clone(),
            title: title.to_owned(),
            body: body.to_owned(),
        };
        match control.pull_request(&ask).await {
            Ok(pull) => self.out.event(&RunnerEvent::PrOpened {
                repo: repo.full_name(),
                number: pull.number,
                url: pull.url,
                updated: pull.updated,
            }),
            Err(err) => {
                self.publish_failed = true;
                self.error("pull_request", err.to_string());
            }
        }
    }
}

/// Claude's stdin, what Claude has in hand, and how many model turns the current message took.
struct Relay {
    claude_in: Option<ChildStdin>,
    turns: TurnTracker,
    /// Assistant messages since Claude last went idle (one per model turn).
    model_turns: BTreeSet<String>,
    last_result: Option<String>,
    /// When Claude last became idle, while it still is.
    idle_since: Option<Instant>,
    /// The backend closed the runner's stdin: end the conversation when Claude is idle.
    closing: bool,
    /// An interrupt was sent.
    stopping: bool,
}

impl Relay {
    /// Writes a line to Claude; a user message gets a `uuid` (if it has none) so its lifecycle can be
    /// followed. Control requests pass as they are.
    async fn send(&mut self, line: &str) {
        let mut line = line.to_owned();
        let mut uuid = None;
        if let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&line)
            && value["type"] == "user"
        {
            let id = match value["uuid"].as_str() {
                Some(id) => id.to_owned(),
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    value["uuid"] = id.clone().into();
                    line = value.to_string();
                    id
                }
            };
            uuid = Some(id);
        }
        let Some(stdin) = self.claude_in.as_mut() else {
            return;
        };
        if stdin.write_all(format!("{line}\n").as_bytes()).await.is_err() {
            self.claude_in = None;
        } else if let Some(uuid) = uuid {
            self.turns.sent(&uuid);
            self.idle_since = None;
        }
    }

    /// Passes a line from the backend to Claude.
    async fn forward(&mut self, line: &str) {
        if !line.trim().is_empty() {
            self.send(line).await;
        }
    }

    /// Interrupts Claude's turn and ends the conversation: Claude exits, then the runner publishes.
    async fn stop(&mut self, run_id: &str) {
        self.stopping = true;
        self.send(&interrupt_line(&format!("stop-{run_id}"))).await;
        self.claude_in = None;
    }
}

async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// A one-line summary: the first line of Claude's result, without Markdown decoration, at most 72
/// characters; `fallback` when there is none.
fn summary(result: Option<&str>, fallback: &str) -> String {
    let line = result
        .and_then(|text| {
            text.lines()
                .map(|l| l.trim_matches(|c: char| c == '#' || c == '*' || c.is_whitespace()))
                .find(|l| !l.is_empty())
        })
        .unwrap_or(fallback);
    let mut title: String = line.chars().take(72).collect();
    if title.len() < line.len() {
        title.pop();
        title.push('…');
    }
    title
}

fn pull_request_body(result: Option<&str>, run_id: &str) -> String {
    let mut text = result.unwrap_or("Claude did not report a result.").to_owned();
    if text.len() > MAX_BODY_BYTES {
        let mut end = MAX_BODY_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n\n…");
    }
    format!("{text}\n\n---\nOpened by agentfarm, run `{run_id}`.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        assert_eq!(summary(Some("## Fixed the bug\n\nDetails"), "x"), "Fixed the bug");
        assert_eq!(summary(Some("  \n"), "Fallback"), "Fallback");
        assert_eq!(summary(None, "Fallback"), "Fallback");
        let long = "a".repeat(100);
        assert_eq!(summary(Some(&long), "x").chars().count(), 72);
    }

    #[test]
    fn bodies_are_bounded() {
        let body = pull_request_body(Some(&"é".repeat(MAX_BODY_BYTES)), "r1");
        assert!(body.len() < MAX_BODY_BYTES + 100);
        assert!(body.ends_with("run `r1`."));
    }
}

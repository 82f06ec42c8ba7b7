//! The runner end to end, as a real process: the real Claude Code CLI against the fake model, real git through
//! the control plane's real git proxy to bare repositories served over HTTP by the fake GitHub, which also
//! takes the pull requests the control plane opens for the runner. The runner holds only its run's
//! capability; the owner's GitHub token stays with the control plane.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use std::sync::Arc;

use agentfarm::capability::Capability;
use agentfarm::credentials::{OwnerCredential, OwnerCredentials};
use agentfarm::proxy::{ProxyState, Upstream};
use agentfarm::store::{NewRun, Store};
use agentfarm_fake_github::FakeGithub;
use agentfarm_fake_model::{FakeModel, claude_bin};
use agentfarm_local_server::{LocalServer, Port};
use agentfarm_shared::claude::user_message_line;
use agentfarm_shared::config::ConfigSpec;
use agentfarm_shared::runner::{RUN_TOKEN_ENV, RunnerEvent, RunnerSpec};
use chrono::Utc;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

const TOKEN: &str = "ghp_runnerTestToken0123456789abcdefABCDEF";
const PATIENCE: Duration = Duration::from_secs(120);

struct Fixture {
    model: FakeModel,
    github: FakeGithub,
    control: ControlPlane,
    dir: TempDir,
}

/// The control plane's proxies over a store of its own, holding the owner's GitHub token ([`TOKEN`]).
struct ControlPlane {
    store: Store,
    server: LocalServer,
}

impl ControlPlane {
    async fn start(dir: &Path, github: &FakeGithub, model: &FakeModel) -> ControlPlane {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = Store::open(&dir.join("control.db")).unwrap();
        let token = dir.join("github-token");
        std::fs::write(&token, TOKEN).unwrap();
        let credential = |file| OwnerCredential::new("a token", file, "AGENTFARM_SURELY_UNSET");
        let upstream = Upstream {
            anthropic_url: model.base_url(),
            git_url: github.git_url(),
            api_url: github.api_url(),
            credentials: OwnerCredentials {
                claude: credential(None),
                github: credential(Some(token)),
            },
        };
        let router = agentfarm::proxy::router(ProxyState {
            store: store.clone(),
            upstream: Arc::new(upstream),
            http: reqwest::Client::new(),
            model_tokens: agentfarm::proxy::model::ModelTokens::default(),
        });
        ControlPlane {
            server: Port::bind("control plane").await.serve("control plane", router),
            store,
        }
    }

    /// Stores `spec`'s run as the server would at launch (its config with the spec's repositories, the run
    /// starting on the spec's branch) and mints its capability.
    async fn admit(&self, spec: &RunnerSpec) -> String {
        let now = Utc::now();
        let config_id = format!("c-{}", spec.run_id);
        let mut config = ConfigSpec::new(&spec.title, "task");
        config.repos = spec.repos.clone();
        self.store
            .create_config(config_id.clone(), config, now)
            .await
            .unwrap();
        let run = NewRun {
            id: spec.run_id.clone(),
            config_id,
            config_version: 1,
            prompt: spec.prompt.clone(),
            branch: spec.branch.clone(),
        };
        self.store.insert_run(run, now).await.unwrap();
        self.store.start_queued(1_000, now).await.unwrap();
        let capability = Capability::mint().unwrap();
        self.store
            .issue_capability(spec.run_id.clone(), capability.hash(), now)
            .await
            .unwrap();
        capability.secret().to_owned()
    }
}

impl Fixture {
    async fn new() -> Fixture {
        let github = FakeGithub::start(TOKEN).await;
        github.create_repo("octo", "app", "main");
        let model = FakeModel::start().await;
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            control: ControlPlane::start(dir.path(), &github, &model).await,
            model,
            github,
            dir,
        }
    }

    fn spec(&self, run_id: &str, branch: &str, prompt: &str) -> RunnerSpec {
        RunnerSpec {
            run_id: run_id.into(),
            title: "Write notes".into(),
            session_id: uuid::Uuid::new_v4().to_string(),
            prompt: prompt.into(),
            system_prompt: String::new(),
            model: "sonnet".into(),
            max_turns: 10,
            budget_usd: None,
            repos: vec!["octo/app".into()],
            branch: branch.into(),
            git_url: format!("{}/proxy/git", self.control.server.url()),
            control_url: self.control.server.url(),
            claude_command: claude_bin().display().to_string(),
            idle_timeout_secs: None,
        }
    }

    /// A fresh work dir for one run.
    fn work(&self, run_id: &str) -> PathBuf {
        let work = self.dir.path().join(run_id).join("work");
        std::fs::create_dir_all(&work).unwrap();
        work
    }

    async fn start(&self, spec: &RunnerSpec, work: &Path) -> Runner {
        let capability = self.control.admit(spec).await;
        let home = work.parent().unwrap().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let spec_file = work.parent().unwrap().join("spec.json");
        std::fs::write(&spec_file, serde_json::to_vec(spec).unwrap()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentfarm-runner"))
            .arg("--spec")
            .arg(&spec_file)
            .current_dir(work)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .envs(self.model.cli_env(&home))
            .env(RUN_TOKEN_ENV, &capability)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (lines_tx, lines) = mpsc::unbounded_channel();
        for (stream, reader) in [
            (
                "out",
                Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            ),
            ("err", Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = lines_tx.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(reader).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let _ = tx.send((stream, line));
                }
            });
        }
        Runner {
            capability,
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }
}

struct Runner {
    /// The run's capability, the one credential the runner holds.
    capability: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<(&'static str, String)>,
    seen: Vec<(&'static str, String)>,
}

impl Runner {
    async fn say(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        let line = user_message_line(text, &uuid::Uuid::new_v4().to_string());
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the runner to exit; returns its exit code and every line it printed.
    async fn finish(mut self) -> (i32, Vec<(&'static str, String)>) {
        self.close_stdin();
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        (status.code().unwrap_or(-1), self.seen)
    }
}

fn events(lines: &[(&str, String)]) -> Vec<RunnerEvent> {
    lines
        .iter()
        .filter(|(s, _)| *s == "out")
        .filter_map(|(_, l)| RunnerEvent::parse(l))
        .collect()
}

fn all_text(lines: &[(&str, String)]) -> String {
    lines
        .iter()
        .map(|(_, l)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every process's command line on this machine, while something runs.
fn command_lines() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .collect()
}

/// Clone, a real file edit by the agent, commit, push, pull request with the right head, base and title.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_edit_commit_push_and_open_a_pull_request() {
    let fx = Fixture::new().await;
    let work = fx.work("run-1");
    let notes = work.join("app/NOTES.md");
    let spec = fx.spec(
        "run-1",
        "agentfarm/run-1",
        &format!("[[write:{}]] add notes", notes.display()),
    );
    let runner = fx.start(&spec, &work).await;
    let (code, lines) = runner.finish().await;
    assert_eq!(code, 0, "{}", all_text(&lines));

    assert_eq!(
        fx.github
            .file_at("octo", "app", "agentfarm/run-1", "NOTES.md")
            .as_deref(),
        Some("written by the fake model\n")
    );
    let log = fx.github.log("octo", "app", "agentfarm/run-1");
    assert!(log[0].contains("agentfarm run run-1"), "{log:?}");
    let pulls = fx.github.pulls();
    assert_eq!(pulls.len(), 1);
    let expected_title = format!("Done: wrote {}", notes.display());
    assert_eq!(
        (pulls[0].head.as_str(), pulls[0].base.as_str()),
        ("agentfarm/run-1", "main")
    );
    assert_eq!(
        pulls[0].title,
        expected_title.chars().take(72).collect::<String>().trim_end()
    );

    let events = events(&lines);
    let names: Vec<&str> = events
        .iter()
        .map(|e| match e {
            RunnerEvent::Cloning { .. } => "cloning",
            RunnerEvent::Cloned { .. } => "cloned",
            RunnerEvent::Committed { .. } => "committed",
            RunnerEvent::Pushed { .. } => "pushed",
            RunnerEvent::Diff { .. } => "diff",
            RunnerEvent::PrOpened { .. } => "pr_opened",
            RunnerEvent::LimitHit { .. } => "limit_hit",
            RunnerEvent::Error { .. } => "error",
        })
        .collect();
    assert_eq!(
        names,
        ["cloning", "cloned", "committed", "pushed", "diff", "pr_opened"]
    );
    assert!(matches!(&events[1], RunnerEvent::Cloned { continued: false, base, .. } if base == "main"));
    let RunnerEvent::Diff { files, .. } = &events[4] else {
        unreachable!()
    };
    assert_eq!(
        (files[0].path.as_str(), files[0].added, files[0].removed),
        ("NOTES.md", Some(1), Some(0))
    );
    assert!(
        matches!(&events[5], RunnerEvent::PrOpened { updated: false, url, .. } if url == &pulls[0].html_url)
    );
    // Claude's events pass through unchanged, one per line.
    let results = lines
        .iter()
        .filter(|(_, l)| serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["type"] == "result"));
    assert_eq!(results.count(), 1);
}

/// A follow-up on stdin reaches Claude; the token shows nowhere; a second run on the same branch updates
/// the same pull request instead of opening another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_secrets_and_a_continued_branch() {
    let fx = Fixture::new().await;
    let work = fx.work("run-a");
    let notes = work.join("app/NOTES.md");
    let spec = fx.spec(
        "run-a",
        "agentfarm/run-a",
        &format!("[[wait:first]] [[write:{}]] notes", notes.display()),
    );
    let mut runner = fx.start(&spec, &work).await;
    tokio::time::timeout(PATIENCE, fx.model.parked("first"))
        .await
        .unwrap();

    // While the agent works: no command line anywhere holds the capability, nor does the clone's git config;
    // the owner's token is nowhere near the runner.
    let capability = runner.capability.clone();
    let leaks: Vec<String> = command_lines()
        .into_iter()
        .filter(|c| c.contains(&capability) || c.contains(TOKEN))
        .collect();
    assert!(leaks.is_empty(), "a credential on a command line: {leaks:?}");
    let config = std::fs::read_to_string(work.join("app/.git/config")).unwrap();
    assert!(
        !config.contains(&capability) && !config.contains(TOKEN),
        "{config}"
    );

    runner.say(&format!("And a follow-up? My token is {TOKEN}")).await;
    fx.model.release("first");
    let (code, lines) = runner.finish().await;
    assert_eq!(code, 0, "{}", all_text(&lines));
    let text = all_text(&lines);
    // Claude 2.1.332 folds a message sent during a tool call into the running turn.
    assert!(text.contains("And a follow-up? My token is [REDACTED]"), "{text}");
    assert!(
        text.contains(r#""text":"Fake answer to: The user sent a new message while you were working"#),
        "{text}"
    );
    assert!(
        !text.contains(TOKEN) && !text.contains(&capability),
        "a credential was printed"
    );
    assert!(
        !std::fs::read_to_string(work.join("app/.git/config"))
            .unwrap()
            .contains(&capability)
    );
    assert_eq!(fx.github.pulls().len(), 1);

    // A later run of the same config continues the branch.
    let work = fx.work("run-b");
    let more = work.join("app/MORE.md");
    let spec = fx.spec(
        "run-b",
        "agentfarm/run-a",
        &format!("[[write:{}]] more", more.display()),
    );
    let (code, lines) = fx.start(&spec, &work).await.finish().await;
    assert_eq!(code, 0, "{}", all_text(&lines));
    let events = events(&lines);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RunnerEvent::Cloned { continued: true, .. })),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RunnerEvent::PrOpened { updated: true, .. })),
        "{events:?}"
    );
    let pulls = fx.github.pulls();
    assert_eq!((pulls.len(), pulls[0].updates), (1, 1), "{pulls:?}");
    assert!(
        fx.github
            .file_at("octo", "app", "agentfarm/run-a", "NOTES.md")
            .is_some(),
        "the first run's work stays"
    );
    assert!(
        fx.github
            .file_at("octo", "app", "agentfarm/run-a", "MORE.md")
            .is_some()
    );
    for request in fx.github.requests() {
        assert!(!request.path.contains(TOKEN), "token in a URL: {}", request.path);
        assert!(
            !request.path.contains(&capability),
            "capability in a URL: {}",
            request.path
        );
    }
}

/// SIGTERM interrupts Claude, and what exists in the work tree is still committed and pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_pushes_what_exists() {
    let fx = Fixture::new().await;
    let work = fx.work("run-t");
    let runner = fx
        .start(
            &fx.spec("run-t", "agentfarm/run-t", "[[wait:never]] think"),
            &work,
        )
        .await;
    tokio::time::timeout(PATIENCE, fx.model.parked("never"))
        .await
        .unwrap();
    std::fs::write(work.join("app/PARTIAL.md"), "half done\n").unwrap();
    let pid = runner.child.id().unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let (code, lines) = runner.finish().await;
    assert_ne!(code, 0, "an interrupted run is not a success");
    assert_eq!(
        fx.github
            .file_at("octo", "app", "agentfarm/run-t", "PARTIAL.md")
            .as_deref(),
        Some("half done\n"),
        "{}",
        all_text(&lines)
    );
}

/// A usage limit becomes a `limit_hit` event with the reset time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_limits_are_reported_with_their_reset_time() {
    let fx = Fixture::new().await;
    let work = fx.work("run-l");
    let mut spec = fx.spec("run-l", "agentfarm/run-l", "[[usage-limit]] work");
    spec.repos.clear();
    let (code, lines) = fx.start(&spec, &work).await.finish().await;
    assert_eq!(code, 1, "{}", all_text(&lines));
    let limit = events(&lines).into_iter().find_map(|e| match e {
        RunnerEvent::LimitHit { resets_at, .. } => Some(resets_at),
        _ => None,
    });
    assert!(
        limit.flatten().is_some_and(|at| at > 1_700_000_000),
        "{}",
        all_text(&lines)
    );
}

/// A clone that fails (unknown repository) ends the run with the setup exit code and an error event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_clone_is_reported() {
    let fx = Fixture::new().await;
    let work = fx.work("run-x");
    let mut spec = fx.spec("run-x", "agentfarm/run-x", "anything");
    spec.repos = vec!["octo/missing".into()];
    let (code, lines) = fx.start(&spec, &work).await.finish().await;
    assert_eq!(code, agentfarm_runner::EXIT_SETUP);
    assert!(
        events(&lines)
            .iter()
            .any(|e| matches!(e, RunnerEvent::Error { stage, .. } if stage == "clone"))
    );
    assert!(!all_text(&lines).contains(TOKEN));
}

/// Every flag the runner gives Claude exists in the pinned CLI's `--help` (catches drift when the pin moves).
#[tokio::test]
async fn every_flag_exists_in_the_pinned_cli() {
    let help = Command::new(claude_bin()).arg("--help").output().await.unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let fx_spec = RunnerSpec {
        run_id: "r".into(),
        title: "t".into(),
        session_id: "s".into(),
        prompt: "p".into(),
        system_prompt: "s".into(),
        model: "m".into(),
        max_turns: 1,
        budget_usd: Some(1.0),
        repos: vec![],
        branch: "b".into(),
        git_url: String::new(),
        control_url: String::new(),
        claude_command: String::new(),
        idle_timeout_secs: None,
    };
    for flag in agentfarm_runner::claude::args(&fx_spec)
        .iter()
        .filter(|a| a.starts_with('-'))
    {
        assert!(help.contains(flag.as_str()), "{flag} is not in `claude --help`");
    }
}

/// The config's `max_turns` is enforced by the runner: the model gets no turn beyond it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_turns_is_enforced() {
    let fx = Fixture::new().await;
    let work = fx.work("run-m");
    let notes = work.join("app/NOTES.md");
    let mut spec = fx.spec(
        "run-m",
        "agentfarm/run-m",
        &format!("[[write:{}]] notes", notes.display()),
    );
    spec.max_turns = 1;
    let (code, lines) = fx.start(&spec, &work).await.finish().await;
    assert_ne!(code, 0, "{}", all_text(&lines));
    let stopped = events(&lines).into_iter().any(|e| matches!(e, RunnerEvent::Error { stage, message } if stage == "claude" && message.contains("max_turns")));
    assert!(stopped, "{}", all_text(&lines));
    assert_eq!(
        fx.github
            .file_at("octo", "app", "agentfarm/run-m", "NOTES.md")
            .as_deref(),
        Some("written by the fake model\n"),
        "the first turn's work is still pushed"
    );
}

/// With an idle timeout the runner ends the conversation itself, though its stdin stays open (as in a pod).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_timeout_ends_the_conversation_with_stdin_open() {
    let fx = Fixture::new().await;
    let work = fx.work("run-i");
    let notes = work.join("app/NOTES.md");
    let prompt = format!("[[write:{}]] take notes", notes.display());
    let spec = RunnerSpec {
        idle_timeout_secs: Some(1),
        ..fx.spec("run-i", "agentfarm/run-i", &prompt)
    };
    let mut runner = fx.start(&spec, &work).await;
    let status = tokio::time::timeout(PATIENCE, runner.child.wait())
        .await
        .expect("the runner ends on its own while its stdin is open")
        .unwrap();
    assert!(runner.stdin.is_some());
    let (code, lines) = runner.finish().await;
    assert_eq!((status.code(), code), (Some(0), 0), "{}", all_text(&lines));
    assert!(
        events(&lines)
            .iter()
            .any(|event| matches!(event, RunnerEvent::PrOpened { .. })),
        "{}",
        all_text(&lines)
    );
}

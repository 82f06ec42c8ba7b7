//! Runs the real, pinned Claude Code CLI against the fake model, one scenario per test, and checks the
//! stream-json it prints.

// Test code: a failed unwrap is a failed test. (`allow-*-in-tests` does not cover helpers outside `#[test]`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use agentfarm_fake_model::{FAKE_OAUTH_TOKEN, FakeModel, RequestKind, claude_bin};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Safety net only: every test normally finishes in a second or two.
const SAFETY_NET: Duration = Duration::from_secs(90);

/// One running `claude -p` in stream-json mode, with its own home and working directory.
struct Cli {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Every event read so far.
    events: Vec<Value>,
    home: TempDir,
    work: TempDir,
}

impl Cli {
    async fn spawn(fake: &FakeModel, extra: &[&str]) -> Cli {
        let home = TempDir::new().unwrap();
        let work = TempDir::new().unwrap();
        let stderr = std::fs::File::create(home.path().join("stderr.txt")).unwrap();
        let mut child = Command::new(claude_bin())
            .args([
                "-p",
                "--output-format",
                "stream-json",
                "--input-format",
                "stream-json",
                "--verbose",
            ])
            .args(["--permission-mode", "bypassPermissions"])
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(fake.cli_env(home.path()))
            .current_dir(work.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Cli {
            child,
            stdin,
            stdout,
            events: Vec::new(),
            home,
            work,
        }
    }

    async fn send(&mut self, line: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    async fn say(&mut self, text: &str) {
        self.send(&json!({"type": "user", "message": {"role": "user", "content": text}}))
            .await;
    }

    /// The next stdout event, or `None` at EOF.
    async fn next(&mut self) -> Option<Value> {
        let line = self.stdout.next_line().await.unwrap()?;
        let event: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        self.events.push(event.clone());
        Some(event)
    }

    /// Reads until an event matches; panics (with everything seen and the CLI's stderr) at EOF.
    async fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        while let Some(event) = self.next().await {
            if pred(&event) {
                return event;
            }
        }
        panic!(
            "stdout ended before {what}; events: {:#?}\nstderr: {}",
            self.events,
            self.stderr()
        );
    }

    async fn until_type(&mut self, kind: &str) -> Value {
        self.until(kind, |event| event["type"] == kind).await
    }

    /// Closes stdin, reads the remaining events, and waits for the exit.
    async fn finish(&mut self) -> ExitStatus {
        drop(self.stdin.take());
        while self.next().await.is_some() {}
        self.child.wait().await.unwrap()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.home.path().join("stderr.txt")).unwrap_or_default()
    }

    fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|event| event["type"] == kind).collect()
    }
}

async fn with_safety_net(test: impl Future<Output = ()>) {
    tokio::time::timeout(SAFETY_NET, test)
        .await
        .expect("the test hung (safety net)");
}

fn texts(assistant: &Value) -> Vec<&str> {
    let content = assistant["message"]["content"].as_array().unwrap();
    content
        .iter()
        .filter(|block| block["type"] == "text")
        .map(|b| b["text"].as_str().unwrap())
        .collect()
}

fn tool_use(assistant: &Value) -> Option<&Value> {
    assistant["message"]["content"]
        .as_array()?
        .iter()
        .find(|block| block["type"] == "tool_use")
}

fn assert_successful_result(result: &Value, text: &str, turns: u64) {
    assert_eq!(result["subtype"], "success", "{result:#}");
    assert_eq!(result["is_error"], false, "{result:#}");
    assert_eq!(result["result"], text, "{result:#}");
    assert_eq!(result["num_turns"], turns, "{result:#}");
    assert_eq!(result["terminal_reason"], "completed", "{result:#}");
    assert!(result["total_cost_usd"].as_f64().is_some(), "{result:#}");
    assert!(
        result["usage"].is_object() && result["modelUsage"].is_object(),
        "{result:#}"
    );
}

#[tokio::test]
async fn plain_answer_with_all_the_flags() {
    with_safety_net(async {
        let fake = FakeModel::start().await;
        let session = uuid::Uuid::new_v4().to_string();
        let mut cli = Cli::spawn(
            &fake,
            &[
                "--replay-user-messages",
                "--model",
                "sonnet",
                "--max-turns",
                "5",
                "--append-system-prompt",
                "APPENDED-BY-TEST",
                "--session-id",
                &session,
            ],
        )
        .await;
        cli.say("hello there").await;

        let init = cli
            .until("system/init", |e| e["type"] == "system" && e["subtype"] == "init")
            .await;
        assert_eq!(init["session_id"], session.as_str());
        assert_eq!(init["permissionMode"], "bypassPermissions");
        assert!(
            init["claude_code_version"]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "{init:#}"
        );
        assert!(init["model"].as_str().unwrap().contains("sonnet"), "{init:#}");
        assert!(
            init["tools"]
                .as_array()
                .unwrap()
                .iter()
                .any(|tool| tool == "Bash"),
            "{init:#}"
        );

        let replay = cli.until_type("user").await;
        assert_eq!(replay["isReplay"], true, "{replay:#}");
        assert_eq!(replay["message"]["content"], "hello there");

        let assistant = cli.until_type("assistant").await;
        assert_eq!(texts(&assistant), ["Fake answer to: hello there"]);
        assert_eq!(assistant["session_id"], session.as_str());

        let result = cli.until_type("result").await;
        assert_successful_result(&result, "Fake answer to: hello there", 1);
        assert_eq!(result["session_id"], session.as_str());
        assert!(cli.finish().await.success(), "stderr: {}", cli.stderr());

        let requests = fake.main_requests();
        assert_eq!(requests.len(), 1, "{requests:#?}");
        let request = &requests[0];
        assert!(request.path.starts_with("/v1/messages"));
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {FAKE_OAUTH_TOKEN}").as_str())
        );
        assert_eq!(request.body["stream"], true);
        assert!(request.body["model"].as_str().unwrap().contains("sonnet"));
        assert!(request.body["system"].to_string().contains("APPENDED-BY-TEST"));
        assert_eq!(request.last_user_text(), "hello there");
        assert!(
            fake.requests().iter().all(|r| r.kind == RequestKind::Main),
            "{:#?}",
            fake.requests()
        );
    })
    .await;
}

#[tokio::test]
async fn write_scenario_really_writes_the_file_and_runs_bash() {
    with_safety_net(async {
        let fake = FakeModel::start().await;
        let mut cli = Cli::spawn(&fake, &[]).await;
        let target = cli.work.path().join("out").join("hello.txt");
        cli.say(&format!("please [[write:{}]]", target.display())).await;

        let write = cli
            .until("Write tool_use", |e| {
                e["type"] == "assistant" && tool_use(e).is_some()
            })
            .await;
        let write = tool_use(&write).unwrap();
        assert_eq!(write["name"], "Write");
        assert_eq!(write["input"]["file_path"], target.display().to_string());
        let written = cli.until_type("user").await;
        let block = &written["message"]["content"][0];
        assert_eq!(block["type"], "tool_result");
        assert_eq!(block["tool_use_id"], write["id"]);
        assert_eq!(written["tool_use_result"]["type"], "create", "{written:#}");

        let bash = cli
            .until("Bash tool_use", |e| {
                e["type"] == "assistant" && tool_use(e).is_some()
            })
            .await;
        assert_eq!(tool_use(&bash).unwrap()["name"], "Bash");
        let ran = cli.until_type("user").await;
        let output = &ran["message"]["content"][0];
        assert_eq!(output["type"], "tool_result");
        assert_eq!(output["is_error"], false, "{ran:#}");
        assert_eq!(
            output["content"], "written by the fake model\nbash-ran",
            "{ran:#}"
        );
        assert_eq!(
            ran["tool_use_result"]["stdout"],
            "written by the fake model\nbash-ran"
        );

        let result = cli.until_type("result").await;
        assert_successful_result(&result, &format!("Done: wrote {}", target.display()), 3);
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "written by the fake model\n"
        );
        assert!(cli.finish().await.success(), "stderr: {}", cli.stderr());
        assert_eq!(fake.main_requests().len(), 3);
    })
    .await;
}

#[tokio::test]
async fn follow_up_sent_while_parked_gets_its_own_turn() {
    with_safety_net(async {
        let fake = FakeModel::start().await;
        let mut cli = Cli::spawn(&fake, &["--replay-user-messages"]).await;
        cli.say("[[wait:first]] first task").await;
        fake.parked("first").await;
        cli.say("second task").await;
        fake.release("first");

        let first = cli.until_type("result").await;
        assert_successful_result(&first, "Fake answer to: [[wait:first]] first task", 1);
        let second = cli.until_type("result").await;
        assert_successful_result(&second, "Fake answer to: second task", 1);
        assert!(cli.finish().await.success(), "stderr: {}", cli.stderr());

        let inits = cli
            .events
            .iter()
            .filter(|e| e["type"] == "system" && e["subtype"] == "init")
            .count();
        assert_eq!(inits, 2, "one system/init per turn");
        let replays: Vec<&Value> = cli
            .of_type("user")
            .into_iter()
            .filter(|e| e["isReplay"] == true)
            .collect();
        assert_eq!(replays.len(), 2, "{replays:#?}");
        let requests = fake.main_requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[1].last_user_text(), "second task");
    })
    .await;
}

#[tokio::test]
async fn interrupt_during_a_parked_request_ends_the_turn() {
    with_safety_net(async {
        let fake = FakeModel::start().await;
        let mut cli = Cli::spawn(&fake, &[]).await;
        let uuid = uuid::Uuid::new_v4().to_string();
        cli.send(&json!({"type": "user", "uuid": uuid, "message": {"role": "user", "content": "[[wait:never]] go"}}))
            .await;
        fake.parked("never").await;
        cli.send(&json!({"type": "control_request", "request_id": "stop-1", "request": {"subtype": "interrupt"}}))
            .await;

        let receipt = cli.until_type("control_response").await;
        assert_eq!(receipt["response"]["subtype"], "success", "{receipt:#}");
        assert_eq!(receipt["response"]["request_id"], "stop-1");
        let result = cli.until_type("result").await;
        assert_eq!(result["subtype"], "error_during_execution", "{result:#}");
        assert_eq!(result["is_error"], true);
        assert_eq!(result["terminal_reason"], "aborted_streaming");
        let marker = cli.of_type("user").into_iter().any(|e| e["message"].to_string().contains("interrupted by user"));
        assert!(marker, "{:#?}", cli.events);
        // With a `uuid` on the user line the CLI reports the prompt's lifecycle; `cancelled` follows the result.
        cli.until("cancelled", |e| e["type"] == "command_lifecycle" && e["state"] == "cancelled").await;
        let lifecycle: Vec<&str> = cli
            .of_type("command_lifecycle")
            .iter()
            .filter(|e| e["command_uuid"] == uuid.as_str())
            .map(|e| e["state"].as_str().unwrap())
            .collect();
        assert_eq!(lifecycle, ["queued", "started", "cancelled"]);

        // The session goes on: a later message gets an answer (the interrupted prompt is not re-run).
        cli.say("after the interrupt").await;
        let next = cli.until_type("result").await;
        assert_successful_result(&next, "Fake answer to: after the interrupt", 1);
        assert!(cli.finish().await.success(), "stderr: {}", cli.stderr());
    })
    .await;
}

#[tokio::test]
async fn interrupt_then_eof_exits_with_the_error_status() {
    with_safety_net(async {
        let fake = FakeModel::start().await;
        let mut cli = Cli::spawn(&fake, &[]).await;
        cli.say("[[wait:never]] go").await;
        fake.parked("never").await;
        cli.send(&json!({"type": "control_request", "request_id": "x", "request": {"subtype": "interrupt"}}))
            .await;
        cli.until_type("control_response").await;
        let result = cli.until_type("result").await;
        assert_eq!(result["is_error"], true);
        let status = cli.finish().await;
        assert_eq!(status.code(), Some(1), "stderr: {}", cli.stderr());
    })
    .await;
}

#[tokio::test]
async fn stdin_eof_waits_for_the_running_turn() {
    with_safety_net(async {
        let fake = FakeModel::start().await;
        let mut cli = Cli::spawn(&fake, &[]).await;
        cli.say("[[wait:late]] slow").await;
        fake.parked("late").await;
        drop(cli.stdin.take());
        fake.release("late");
        let status = cli.finish().await;
        assert!(status.success(), "stderr: {}", cli.stderr());
        let result = cli.of_type("result");
        assert_eq!(result.len(), 1);
        assert_eq!(result[0]["result"], "Fake answer to: [[wait:late]] slow");
    })
    .await;
}

#[tokio::test]
async fn usage_limit_is_an_error_result_with_the_limit_text() {
    with_safety_net(async {
        let fake = FakeModel::start().await;
        let mut cli = Cli::spawn(&fake, &[]).await;
        cli.say("[[usage-limit]]").await;

        let event = cli.until_type("rate_limit_event").await;
        let info = &event["rate_limit_info"];
        assert_eq!(info["status"], "rejected", "{event:#}");
        assert_eq!(info["rateLimitType"], "five_hour");
        assert!(info["resetsAt"].as_u64().is_some(), "{event:#}");
        let assistant = cli.until_type("assistant").await;
        assert_eq!(assistant["error"], "rate_limit", "{assistant:#}");
        assert_eq!(assistant["api_error"], "usage_limit_reached", "{assistant:#}");
        let result = cli.until_type("result").await;
        assert_eq!(result["is_error"], true, "{result:#}");
        assert_eq!(result["api_error_status"], 429);
        assert_eq!(result["terminal_reason"], "api_error");
        let text = result["result"].as_str().unwrap();
        assert!(text.contains("hit your 5-hour limit"), "{text}");
        assert_eq!(cli.finish().await.code(), Some(1));
        assert_eq!(fake.main_requests().len(), 1, "a usage limit is not retried");
    })
    .await;
}

#[tokio::test]
async fn server_errors_end_quickly_in_an_error_result() {
    with_safety_net(async {
        let fake = FakeModel::start().await;
        for (status, retry_error, text) in [
            (500, "server_error", "API Error: 500"),
            (529, "overloaded", "API Error: 529"),
            (429, "rate_limit", "not your usage limit"),
        ] {
            let started = Instant::now();
            let mut cli = Cli::spawn(&fake, &[]).await;
            cli.say(&format!("[[status:{status}]]")).await;
            let retry = cli
                .until("api_retry", |e| {
                    e["type"] == "system" && e["subtype"] == "api_retry"
                })
                .await;
            assert_eq!(retry["error_status"], status, "{retry:#}");
            assert_eq!(retry["error"], retry_error, "{retry:#}");
            assert_eq!(retry["max_retries"], 1, "{retry:#}");
            let result = cli.until_type("result").await;
            assert_eq!(result["is_error"], true, "{result:#}");
            assert_eq!(result["api_error_status"], status, "{result:#}");
            assert!(result["result"].as_str().unwrap().contains(text), "{result:#}");
            assert_eq!(cli.finish().await.code(), Some(1));
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{status} took {:?}",
                started.elapsed()
            );
        }
        assert_eq!(
            fake.main_requests().len(),
            6,
            "each error is tried twice (CLAUDE_CODE_MAX_RETRIES=1)"
        );
    })
    .await;
}

#[tokio::test]
async fn rate_headers_produce_a_warning_event() {
    with_safety_net(async {
        let fake = FakeModel::start().await;
        let mut cli = Cli::spawn(&fake, &[]).await;
        cli.say("[[rate-headers]] hi").await;
        let event = cli.until_type("rate_limit_event").await;
        let info = &event["rate_limit_info"];
        assert_eq!(info["status"], "allowed_warning", "{event:#}");
        assert_eq!(info["rateLimitType"], "five_hour");
        assert_eq!(info["utilization"], 0.91);
        assert_eq!(
            info["unifiedWindows"]["seven_day"]["utilization"], 0.35,
            "{event:#}"
        );
        let result = cli.until_type("result").await;
        assert_successful_result(&result, "Fake answer to: [[rate-headers]] hi", 1);
        assert!(cli.finish().await.success());
    })
    .await;
}

#[tokio::test]
async fn long_answer_streams_every_delta() {
    with_safety_net(async {
        let fake = FakeModel::start().await;
        let mut cli = Cli::spawn(&fake, &["--include-partial-messages"]).await;
        cli.say("[[long:40]]").await;
        let result = cli.until_type("result").await;
        let expected: String = (0..40).map(|i| format!("word{i} ")).collect();
        assert_successful_result(&result, &expected, 1);
        let deltas = cli
            .of_type("stream_event")
            .iter()
            .filter(|e| e["event"]["delta"]["type"] == "text_delta")
            .count();
        assert_eq!(deltas, 40);
        assert!(cli.finish().await.success());
    })
    .await;
}

#[tokio::test]
async fn max_turns_stops_a_tool_loop() {
    with_safety_net(async {
        let fake = FakeModel::start().await;
        let mut cli = Cli::spawn(&fake, &["--max-turns", "1"]).await;
        let target = cli.work.path().join("limited.txt");
        cli.say(&format!("[[write:{}]]", target.display())).await;
        let result = cli.until_type("result").await;
        assert_eq!(result["subtype"], "error_max_turns", "{result:#}");
        assert_eq!(result["is_error"], true);
        assert_eq!(result["terminal_reason"], "max_turns");
        assert!(Path::new(&target).exists(), "the first tool call still ran");
        assert_eq!(cli.finish().await.code(), Some(1));
    })
    .await;
}

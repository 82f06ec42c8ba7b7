//! A run's whole life with the real Claude Code CLI: launch, live states and lines over the socket, resume
//! after a disconnect, a follow-up, a real tool call, a stop, and the stored result.

use agentfarm_shared::claude::{ClaudeEvent, ContentBlock, MessageContent};
use agentfarm_shared::log::{LogLine, LogPage};
use agentfarm_shared::run::{Run, RunState};
use agentfarm_shared::ws::ServerFrame;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Backend, PATIENCE, Socket, TestServer};

/// Reads `socket` until run `id` has ended and every line up to its last one has arrived; returns the run
/// and the lines, checking they come once each, in order, right after `after_seq`.
async fn drain(socket: &mut Socket, id: &str, after_seq: u64) -> (Run, Vec<LogLine>) {
    let mut lines: Vec<LogLine> = Vec::new();
    let mut ended: Option<Run> = None;
    loop {
        if let Some(run) = &ended
            && lines.last().map_or(after_seq, |l| l.seq) == run.last_seq
        {
            return (run.clone(), lines);
        }
        match socket.next().await {
            ServerFrame::Log { run_id, lines: batch } if run_id == id => {
                for line in batch {
                    let expected = lines.last().map_or(after_seq, |l| l.seq) + 1;
                    assert_eq!(line.seq, expected, "lines must be contiguous, once each");
                    lines.push(line);
                }
            }
            ServerFrame::Run { run } if run.id == id && run.state.is_terminal() => ended = Some(*run),
            ServerFrame::Gap { .. } | ServerFrame::Resync => panic!("nothing may be lost here"),
            _ => {}
        }
    }
}

fn events(lines: &[LogLine]) -> Vec<ClaudeEvent> {
    lines.iter().filter_map(LogLine::claude_event).collect()
}

fn assistant_texts(lines: &[LogLine]) -> Vec<String> {
    events(lines)
        .into_iter()
        .filter_map(|event| match event {
            ClaudeEvent::Assistant(message) => Some(message.message.content),
            _ => None,
        })
        .flat_map(|content| match content {
            MessageContent::Text(text) => vec![text],
            MessageContent::Blocks(blocks) => blocks
                .into_iter()
                .filter_map(|block| match block {
                    ContentBlock::Text { text } => Some(text),
                    _ => None,
                })
                .collect(),
        })
        .collect()
}

async fn parked(server: &TestServer, gate: &str) {
    tokio::time::timeout(PATIENCE, server.model.parked(gate))
        .await
        .expect("the agent never asked the model");
}

/// The acceptance journey: states over one socket; the log over another that disconnects mid-stream and
/// resumes; a follow-up the model answers; a second run stopped; the stored result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_stream_resume_follow_up_stop() {
    journey(Backend::Local).await;
}

/// The same journey with runs as Jobs on the (fake) cluster: follow-ups through `pods/attach`, the log
/// through `pods/log`, the stop as an interrupt and a delete with grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_stream_resume_follow_up_stop_on_kubernetes() {
    journey(Backend::Kube).await;
}

async fn journey(backend: Backend) {
    let server = TestServer::start_on(backend, |_| {}).await;
    let config = server.create_config("Journey", "Say hello").await;
    let mut observer = server.socket().await;
    assert!(matches!(observer.next().await, ServerFrame::Snapshot { .. }));

    let run = server.launch(&config, "[[wait:first]] Say hello").await;
    assert_eq!(run.state, RunState::Queued);
    parked(&server, "first").await;

    // Read the first lines, then drop the socket mid-run.
    let mut logs = server.socket().await;
    logs.subscribe(&run.id, 0).await;
    let first_part = logs
        .until(|frame| match frame {
            ServerFrame::Log { run_id, lines } if *run_id == run.id => Some(lines.clone()),
            _ => None,
        })
        .await;
    assert_eq!(first_part.first().map(|l| l.seq), Some(1));
    drop(logs);

    // A follow-up while the first answer is still pending, then let the model answer.
    let (status, body) = server
        .post(
            &format!("/api/runs/{}/messages", run.id),
            json!({"text": "And a follow-up?"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    server.model.release("first");

    let resume_after = first_part.last().unwrap().seq;
    let mut logs = server.socket().await;
    logs.subscribe(&run.id, resume_after).await;
    let (ended, rest) = drain(&mut logs, &run.id, resume_after).await;
    assert_eq!(ended.state, RunState::Succeeded, "{ended:?}");

    let (_, states) = observer.until_state(&run.id, RunState::Succeeded).await;
    assert_eq!(
        states,
        [
            RunState::Queued,
            RunState::Starting,
            RunState::Running,
            RunState::Succeeded
        ]
    );

    // Both halves together are the whole stored log.
    let all: Vec<LogLine> = first_part.into_iter().chain(rest).collect();
    let (status, page) = server
        .get(&format!("/api/runs/{}/logs?after_seq=0&limit=5000", run.id))
        .await;
    assert_eq!(status, StatusCode::OK);
    let page: LogPage = serde_json::from_value(page).unwrap();
    assert_eq!(page.lines, all);
    assert_eq!(page.last_seq, ended.last_seq);

    let texts = assistant_texts(&all);
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Fake answer to: And a follow-up?")),
        "{texts:?}"
    );
    let results = events(&all)
        .into_iter()
        .filter(|e| matches!(e, ClaudeEvent::Result(_)))
        .count();
    assert_eq!(results, 2, "one result per turn");

    // The stored result.
    let stored = server.run(&run.id).await;
    let session = events(&all)
        .iter()
        .find_map(|e| e.session_id().map(str::to_owned));
    assert_eq!(stored.session_id, session);
    assert!(stored.session_id.is_some());
    assert_eq!(stored.turns, Some(2), "one agentic turn per message: {stored:?}");
    assert!(stored.cost_usd.is_some(), "{stored:?}");
    assert_eq!(stored.exit_code, Some(0));
    assert!(stored.finished_at.is_some());

    // A second run, stopped while the model is thinking.
    let second = server.launch(&config, "[[wait:never]] Think forever").await;
    parked(&server, "never").await;
    let (status, body) = server
        .post(&format!("/api/runs/{}/stop", second.id), json!(null))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (stopped, _) = observer.until_state(&second.id, RunState::Stopped).await;
    assert_eq!(stopped.reason.as_deref(), Some("stopped by the owner"));
    let (status, _) = server
        .post(
            &format!("/api/runs/{}/messages", second.id),
            json!({"text": "too late"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "an ended run takes no messages");

    // Ended runs can be deleted; their log goes with them.
    let delete = server
        .http
        .delete(format!("{}/api/runs/{}", server.url, second.id))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        server.get(&format!("/api/runs/{}", second.id)).await.0,
        StatusCode::NOT_FOUND
    );
    observer
        .until(|f| matches!(f, ServerFrame::RunRemoved { run_id } if *run_id == second.id).then_some(()))
        .await;
}

/// The model asks for a tool call and the real CLI carries it out: a file is written, a command runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_really_uses_tools() {
    let server = TestServer::start().await;
    let config = server.create_config("Tools", "unused").await;
    let target = server.dir.path().join("written-by-agent.txt");
    let mut socket = server.socket().await;
    let run = server
        .launch(&config, &format!("[[write:{}]] write it", target.display()))
        .await;
    socket.subscribe(&run.id, 0).await;
    let (ended, lines) = drain(&mut socket, &run.id, 0).await;
    assert_eq!(ended.state, RunState::Succeeded, "{ended:?} {lines:#?}");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "written by the fake model\n"
    );
    let tools: Vec<String> = events(&lines)
        .into_iter()
        .filter_map(|e| match e {
            ClaudeEvent::Assistant(m) => Some(m.message.content),
            _ => None,
        })
        .flat_map(|content| match content {
            MessageContent::Blocks(blocks) => blocks,
            MessageContent::Text(_) => vec![],
        })
        .filter_map(|block| match block {
            ContentBlock::ToolUse { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(tools, ["Write", "Bash"]);
    assert!(
        lines.iter().any(|l| l.text.contains("bash-ran")),
        "the command's output is in the transcript"
    );
}

/// A failing model call fails the run, with Claude's error as the run's last error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_limit_fails_the_run_with_the_reason() {
    let server = TestServer::start().await;
    let config = server.create_config("Limited", "unused").await;
    let mut socket = server.socket().await;
    let run = server.launch(&config, "[[usage-limit]] work").await;
    socket.subscribe(&run.id, 0).await;
    let (ended, _) = drain(&mut socket, &run.id, 0).await;
    assert_eq!(ended.state, RunState::Failed, "{ended:?}");
    let error = ended.last_error.unwrap_or_default();
    assert!(error.contains("limit"), "{error}");
}

/// With an idle timeout, a finished turn waits for input; a follow-up makes the agent work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_input_and_back() {
    waiting_and_back(Backend::Local).await;
}

/// The same on the (fake) cluster, where the runner keeps the idle timeout: a pod's stdin never closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_input_and_back_on_kubernetes() {
    waiting_and_back(Backend::Kube).await;
}

async fn waiting_and_back(backend: Backend) {
    let server = TestServer::start_on(backend, |s| s.idle_timeout = 3_600).await;
    let config = server.create_config("Chat", "unused").await;
    let mut socket = server.socket().await;
    let run = server.launch(&config, "first question").await;
    let (_, states) = socket.until_state(&run.id, RunState::WaitingForInput).await;
    assert_eq!(
        states,
        [
            RunState::Queued,
            RunState::Starting,
            RunState::Running,
            RunState::WaitingForInput
        ]
    );

    let (status, _) = server
        .post(
            &format!("/api/runs/{}/messages", run.id),
            json!({"text": "second question"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, states) = socket.until_state(&run.id, RunState::WaitingForInput).await;
    assert_eq!(states, [RunState::Running, RunState::WaitingForInput]);

    let (_, page) = server.get(&format!("/api/runs/{}/logs", run.id)).await;
    let page: LogPage = serde_json::from_value(page).unwrap();
    assert!(
        assistant_texts(&page.lines)
            .iter()
            .any(|t| t == "Fake answer to: second question")
    );

    let (status, _) = server
        .post(&format!("/api/runs/{}/stop", run.id), json!(null))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (stopped, _) = socket.until_state(&run.id, RunState::Stopped).await;
    assert_eq!(stopped.turns, Some(2), "one agentic turn per question");
}

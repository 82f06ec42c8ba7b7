//! What a run's log lines mean for the transcript: each line is read once, when it arrives, into zero or more
//! [`Item`]s (pure, tested on the host); `components::transcript` draws them.

use agentfarm_shared::claude::{ClaudeEvent, ContentBlock, MessageContent, MessageEvent};
use agentfarm_shared::log::{LogLine, LogStream};
use agentfarm_shared::runner::{FileDiff, RunnerEvent};
use serde_json::Value;

/// A log line with what it shows in the transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    /// The line as stored.
    pub line: LogLine,
    /// What it shows (empty: nothing, e.g. lifecycle noise).
    pub items: Vec<Item>,
}

impl ParsedLine {
    /// Reads a line.
    pub fn new(line: LogLine) -> Self {
        let items = items(&line);
        Self { line, items }
    }

    /// A one-line summary of what the line shows, if it shows anything.
    pub fn summary(&self) -> Option<String> {
        self.items.iter().rev().find_map(Item::summary)
    }
}

/// One thing the transcript shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Claude's text (Markdown).
    Text(String),
    /// Claude's visible reasoning (collapsed).
    Thinking(String),
    /// Claude calls a tool: `name: summary`, the full input when expanded.
    ToolCall {
        /// The tool (`Bash`, `Write`, …).
        name: String,
        /// A short description of the input (`ls -la`, a path).
        summary: String,
        /// The whole input, pretty-printed.
        input: String,
    },
    /// A tool's answer, folded to its first line.
    ToolResult {
        /// The answer's text.
        text: String,
        /// True when the tool failed.
        is_error: bool,
    },
    /// A message to Claude (the prompt or a follow-up).
    User(String),
    /// An API error Claude reported on a message.
    ApiError(String),
    /// Claude's session started (once per turn).
    SessionStarted {
        /// The model in use.
        model: Option<String>,
    },
    /// The end of a turn.
    TurnResult {
        /// Turns so far.
        turns: Option<u32>,
        /// Session cost so far, in US dollars.
        cost_usd: Option<f64>,
        /// The turn's duration.
        duration_ms: Option<u64>,
        /// The error, when the turn failed.
        error: Option<String>,
    },
    /// The usage limit refused work until `resets_at` (Unix seconds).
    LimitNotice {
        /// When the limit resets.
        resets_at: Option<i64>,
        /// What was said.
        message: String,
    },
    /// One of the runner's own events.
    Runner(RunnerEvent),
    /// A line of the agent's standard error.
    Stderr(String),
    /// A note from agentfarm itself.
    Control(String),
    /// A standard output line that is not an event.
    Plain(String),
}

impl Item {
    /// The item in one line, for the agents list.
    pub fn summary(&self) -> Option<String> {
        let text = match self {
            Item::Text(text) | Item::User(text) | Item::Plain(text) | Item::Control(text) => text.clone(),
            Item::Thinking(_) | Item::SessionStarted { .. } | Item::Stderr(_) => return None,
            Item::ToolCall { name, summary, .. } => tool_label(name, summary),
            Item::ToolResult { text, is_error } => {
                format!("{}{}", if *is_error { "error: " } else { "→ " }, text)
            }
            Item::ApiError(message) => format!("error: {message}"),
            Item::TurnResult {
                error: Some(error), ..
            } => format!("turn failed: {error}"),
            Item::TurnResult { turns, .. } => {
                format!("turn finished ({} turns)", turns.unwrap_or_default())
            }
            Item::LimitNotice { message, .. } => format!("usage limit: {message}"),
            Item::Runner(event) => runner_summary(event),
        };
        let line = first_line(&text);
        (!line.is_empty()).then(|| shorten(line, 140))
    }
}

/// `Name: summary`, or the name alone.
pub fn tool_label(name: &str, summary: &str) -> String {
    if summary.is_empty() {
        name.to_owned()
    } else {
        format!("{name}: {summary}")
    }
}

fn runner_summary(event: &RunnerEvent) -> String {
    match event {
        RunnerEvent::Cloning { repo } => format!("cloning {repo}"),
        RunnerEvent::Cloned { repo, branch, .. } => format!("cloned {repo} on {branch}"),
        RunnerEvent::Committed { message, .. } => format!("committed: {message}"),
        RunnerEvent::Pushed { branch, .. } => format!("pushed {branch}"),
        RunnerEvent::PrOpened { number, updated, .. } => {
            format!(
                "pull request #{number} {}",
                if *updated { "updated" } else { "opened" }
            )
        }
        RunnerEvent::Diff { files, .. } => {
            let (added, removed) = diff_totals(files);
            format!("{} changed, +{added} −{removed}", self::files(files.len() as u64))
        }
        RunnerEvent::LimitHit { message, .. } => format!("usage limit: {message}"),
        RunnerEvent::Error { stage, message } => format!("{stage} failed: {message}"),
    }
}

/// "1 file", "3 files".
pub fn files(n: u64) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}

/// Lines added and removed over a diff's files (binary files count as zero).
pub fn diff_totals(files: &[FileDiff]) -> (u64, u64) {
    files.iter().fold((0, 0), |(a, r), f| {
        (a + f.added.unwrap_or(0), r + f.removed.unwrap_or(0))
    })
}

/// What a line shows.
pub fn items(line: &LogLine) -> Vec<Item> {
    match line.stream {
        LogStream::Stderr => vec![Item::Stderr(line.text.clone())],
        LogStream::Control => vec![Item::Control(line.text.clone())],
        LogStream::Stdout => {
            if let Some(event) = RunnerEvent::parse(&line.text) {
                return vec![Item::Runner(event)];
            }
            match line.claude_event() {
                Some(event) => claude_items(event),
                None if line.text.trim().is_empty() => Vec::new(),
                None => vec![Item::Plain(line.text.clone())],
            }
        }
    }
}

fn claude_items(event: ClaudeEvent) -> Vec<Item> {
    match event {
        ClaudeEvent::System(system) if system.subtype.as_deref() == Some("init") => {
            vec![Item::SessionStarted { model: system.model }]
        }
        ClaudeEvent::Assistant(message) => assistant_items(message),
        ClaudeEvent::User(message) => user_items(message),
        ClaudeEvent::Result(result) => vec![Item::TurnResult {
            turns: result.num_turns,
            cost_usd: result.total_cost_usd,
            duration_ms: result.duration_ms,
            error: result.error_text(),
        }],
        ClaudeEvent::RateLimit(limit) if limit.is_rejected() => {
            let (resets_at, window) = limit
                .rate_limit_info
                .map(|info| (info.resets_at, info.rate_limit_type))
                .unwrap_or_default();
            let window = window.unwrap_or_else(|| "usage".to_owned());
            vec![Item::LimitNotice {
                resets_at,
                message: format!("{} limit reached", window.replace('_', "-")),
            }]
        }
        ClaudeEvent::System(_)
        | ClaudeEvent::RateLimit(_)
        | ClaudeEvent::CommandLifecycle(_)
        | ClaudeEvent::Other(_) => Vec::new(),
    }
}

fn assistant_items(event: MessageEvent) -> Vec<Item> {
    let mut out = Vec::new();
    match event.message.content {
        MessageContent::Text(text) => push_text(&mut out, text),
        MessageContent::Blocks(blocks) => {
            for block in blocks {
                match block {
                    ContentBlock::Text { text } => push_text(&mut out, text),
                    ContentBlock::Thinking { thinking } if !thinking.trim().is_empty() => {
                        out.push(Item::Thinking(thinking));
                    }
                    ContentBlock::ToolUse { name, input, .. } => out.push(Item::ToolCall {
                        summary: tool_summary(&name, &input),
                        input: pretty(&input),
                        name,
                    }),
                    ContentBlock::ToolResult {
                        content, is_error, ..
                    } => out.push(Item::ToolResult {
                        text: value_text(&content),
                        is_error: is_error.unwrap_or(false),
                    }),
                    ContentBlock::Thinking { .. } | ContentBlock::Other(_) => {}
                }
            }
        }
    }
    if let Some(error) = event.error {
        out.push(Item::ApiError(error));
    }
    out
}

fn user_items(event: MessageEvent) -> Vec<Item> {
    let mut out = Vec::new();
    match event.message.content {
        MessageContent::Text(text) if !text.trim().is_empty() => out.push(Item::User(text)),
        MessageContent::Text(_) => {}
        MessageContent::Blocks(blocks) => {
            for block in blocks {
                match block {
                    ContentBlock::Text { text } if !text.trim().is_empty() => out.push(Item::User(text)),
                    ContentBlock::ToolResult {
                        content, is_error, ..
                    } => out.push(Item::ToolResult {
                        text: value_text(&content),
                        is_error: is_error.unwrap_or(false),
                    }),
                    _ => {}
                }
            }
        }
    }
    out
}

fn push_text(out: &mut Vec<Item>, text: String) {
    if !text.trim().is_empty() {
        out.push(Item::Text(text));
    }
}

/// A tool call's input in a few words: the command, the path, the pattern, …
pub fn tool_summary(name: &str, input: &Value) -> String {
    let field = |key: &str| input.get(key).and_then(Value::as_str).map(str::to_owned);
    let summary = match name {
        "Bash" => field("command"),
        "Read" | "Write" | "Edit" | "MultiEdit" => field("file_path"),
        "NotebookEdit" => field("notebook_path"),
        "Glob" | "Grep" => field("pattern").map(|p| match field("path") {
            Some(path) => format!("{p} in {path}"),
            None => p,
        }),
        "WebFetch" => field("url"),
        "WebSearch" => field("query"),
        "Task" | "Agent" => field("description"),
        "TodoWrite" => input
            .get("todos")
            .and_then(Value::as_array)
            .map(|todos| format!("{} todos", todos.len())),
        _ => None,
    }
    .or_else(|| {
        input
            .as_object()
            .and_then(|object| object.values().find_map(Value::as_str).map(str::to_owned))
    })
    .unwrap_or_default();
    shorten(first_line(&summary), 80)
}

/// The text of a tool result's content: a string, or the text of its blocks.
pub fn value_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|block| match block.get("text").and_then(Value::as_str) {
                Some(text) => Some(text.to_owned()),
                None if block.get("type").and_then(Value::as_str) == Some("image") => {
                    Some("[image]".to_owned())
                }
                None => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The first non-blank line, trimmed.
pub fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
}

/// At most `max` characters, with an ellipsis when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn line(stream: LogStream, text: &str) -> LogLine {
        LogLine {
            seq: 1,
            ts: DateTime::from_timestamp(0, 0).unwrap(),
            stream,
            text: text.to_owned(),
            truncated: false,
        }
    }

    fn stdout(text: &str) -> Vec<Item> {
        items(&line(LogStream::Stdout, text))
    }

    #[test]
    fn assistant_text_and_tool_calls() {
        let got = stdout(
            r#"{"type":"assistant","message":{"role":"assistant","content":[
                {"type":"text","text":"Let me look."},
                {"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls -la\necho hi","description":"list"}},
                {"type":"tool_use","id":"t2","name":"Write","input":{"file_path":"/w/hello.txt","content":"hi"}}]}}"#,
        );
        assert_eq!(got[0], Item::Text("Let me look.".into()));
        assert!(
            matches!(&got[1], Item::ToolCall { name, summary, .. } if name == "Bash" && summary == "ls -la")
        );
        assert!(matches!(&got[2], Item::ToolCall { summary, .. } if summary == "/w/hello.txt"));
        assert_eq!(got[1].summary().as_deref(), Some("Bash: ls -la"));
    }

    #[test]
    fn user_prompts_and_tool_results() {
        assert_eq!(
            stdout(r#"{"type":"user","isReplay":true,"message":{"role":"user","content":"hello there"}}"#),
            vec![Item::User("hello there".into())]
        );
        assert_eq!(
            stdout(
                r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"a\nb"}],"is_error":true}]}}"#
            ),
            vec![Item::ToolResult {
                text: "a\nb".into(),
                is_error: true
            }]
        );
    }

    #[test]
    fn init_result_and_noise() {
        assert_eq!(
            stdout(r#"{"type":"system","subtype":"init","model":"claude-sonnet"}"#),
            vec![Item::SessionStarted {
                model: Some("claude-sonnet".into())
            }]
        );
        assert!(stdout(r#"{"type":"command_lifecycle","command_uuid":"u","state":"started"}"#).is_empty());
        assert!(stdout(r#"{"type":"stream_event","event":{}}"#).is_empty());
        assert!(stdout(r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed"}}"#).is_empty());
        let limit = stdout(
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1700000000,"rateLimitType":"five_hour"}}"#,
        );
        assert_eq!(
            limit,
            vec![Item::LimitNotice {
                resets_at: Some(1_700_000_000),
                message: "five-hour limit reached".into()
            }]
        );
        let result = stdout(
            r#"{"type":"result","subtype":"success","is_error":true,"num_turns":2,"result":"boom","total_cost_usd":0.25}"#,
        );
        assert!(matches!(&result[0], Item::TurnResult { error: Some(e), turns: Some(2), .. } if e == "boom"));
    }

    #[test]
    fn runner_events_and_streams() {
        let event = RunnerEvent::PrOpened {
            repo: "o/r".into(),
            number: 7,
            url: "https://x/7".into(),
            updated: false,
        };
        assert_eq!(stdout(&event.to_line()), vec![Item::Runner(event)]);
        assert_eq!(
            items(&line(LogStream::Stderr, "warn")),
            vec![Item::Stderr("warn".into())]
        );
        assert_eq!(
            items(&line(LogStream::Control, "agent started")),
            vec![Item::Control("agent started".into())]
        );
        assert_eq!(stdout("not json"), vec![Item::Plain("not json".into())]);
        assert_eq!(
            stdout("{\"no\":\"type\"}"),
            vec![Item::Plain("{\"no\":\"type\"}".into())]
        );
    }

    #[test]
    fn summaries() {
        let parsed = ParsedLine::new(line(
            LogStream::Stdout,
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"\n  First line\nsecond"}]}}"#,
        ));
        assert_eq!(parsed.summary().as_deref(), Some("First line"));
        assert_eq!(shorten("abcdef", 4), "abc…");
        let diff = RunnerEvent::Diff {
            repo: "o/r".into(),
            files: vec![
                FileDiff {
                    path: "a".into(),
                    added: Some(3),
                    removed: Some(1),
                },
                FileDiff {
                    path: "b.png".into(),
                    added: None,
                    removed: None,
                },
            ],
            patch: String::new(),
            truncated: false,
        };
        assert_eq!(
            Item::Runner(diff).summary().as_deref(),
            Some("2 files changed, +3 −1")
        );
    }

    #[test]
    fn tool_summaries() {
        let input = serde_json::json!({"pattern": "fn main", "path": "src"});
        assert_eq!(tool_summary("Grep", &input), "fn main in src");
        assert_eq!(
            tool_summary("Mystery", &serde_json::json!({"n": 1, "x": "y"})),
            "y"
        );
        assert_eq!(tool_summary("Mystery", &Value::Null), "");
    }
}

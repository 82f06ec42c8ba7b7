//! Claude Code's `stream-json` output, read into typed events so the web app can render a transcript and the
//! backend can record session id, turns, cost and errors.
//!
//! Reading is lenient by design: unknown event types come back as [`ClaudeEvent::Other`], unknown fields are
//! ignored (the raw line is always kept), and a line that is not a JSON object is plain text (`None`).

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::tagged::Fields;

/// One stream-json event.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaudeEvent {
    /// `{"type":"system", …}`; `subtype: "init"` starts every turn.
    System(SystemEvent),
    /// A message from Claude: text, tool calls, thinking.
    Assistant(MessageEvent),
    /// A message to Claude: the prompt, follow-ups (when replayed) and tool results.
    User(MessageEvent),
    /// The end of a turn, with cost, turns and errors.
    Result(ResultEvent),
    /// The subscription's usage window status.
    RateLimit(RateLimitEvent),
    /// Where a user message sent with a `uuid` is: `queued`, `started`, `completed`, `cancelled`.
    CommandLifecycle(LifecycleEvent),
    /// Any other object with a `type` (kept whole).
    Other(Value),
}

impl ClaudeEvent {
    /// Reads one line. `None` when the line is not a JSON object with a string `type`.
    pub fn parse(line: &str) -> Option<ClaudeEvent> {
        let trimmed = line.trim_start();
        if !trimmed.starts_with('{') {
            return None;
        }
        let value: Value = serde_json::from_str(trimmed).ok()?;
        let kind = value.get("type")?.as_str()?.to_owned();
        Some(match kind.as_str() {
            "system" => typed(value, ClaudeEvent::System),
            "assistant" => typed(value, ClaudeEvent::Assistant),
            "user" => typed(value, ClaudeEvent::User),
            "result" => typed(value, ClaudeEvent::Result),
            "rate_limit_event" => typed(value, ClaudeEvent::RateLimit),
            "command_lifecycle" => typed(value, ClaudeEvent::CommandLifecycle),
            _ => ClaudeEvent::Other(value),
        })
    }

    /// The session id the event carries, if any.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            ClaudeEvent::System(e) => e.session_id.as_deref(),
            ClaudeEvent::Assistant(e) | ClaudeEvent::User(e) => e.session_id.as_deref(),
            ClaudeEvent::Result(e) => e.session_id.as_deref(),
            ClaudeEvent::RateLimit(_) | ClaudeEvent::CommandLifecycle(_) | ClaudeEvent::Other(_) => None,
        }
    }
}

fn typed<T: DeserializeOwned>(value: Value, wrap: fn(T) -> ClaudeEvent) -> ClaudeEvent {
    match T::deserialize(&value) {
        Ok(event) => wrap(event),
        Err(_) => ClaudeEvent::Other(value),
    }
}

/// `{"type":"system", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemEvent {
    /// `init` at the start of each turn; other subtypes pass through.
    #[serde(default)]
    pub subtype: Option<String>,
    /// Claude Code's session id.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The model in use.
    #[serde(default)]
    pub model: Option<String>,
    /// The working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// The permission mode (`bypassPermissions`, …).
    #[serde(default, rename = "permissionMode")]
    pub permission_mode: Option<String>,
    /// The CLI's version.
    #[serde(default)]
    pub claude_code_version: Option<String>,
}

/// `{"type":"assistant"|"user", "message": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageEvent {
    /// The message.
    pub message: Message,
    /// Claude Code's session id.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Set when the message belongs to a sub-agent's tool call.
    #[serde(default)]
    pub parent_tool_use_id: Option<String>,
    /// Set on an assistant message that reports an API error (e.g. `rate_limit`).
    #[serde(default)]
    pub error: Option<String>,
}

/// A message's role and content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The model's message id (assistant messages; one per model turn, shared by its content blocks).
    #[serde(default)]
    pub id: Option<String>,
    /// `assistant` or `user`.
    #[serde(default)]
    pub role: Option<String>,
    /// Plain text or content blocks.
    pub content: MessageContent,
}

/// A message's content: a string, or a list of blocks. Decoded by hand (see [`crate::tagged`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content blocks.
    Blocks(Vec<ContentBlock>),
}

/// One block of a message. Decoded by hand (see [`crate::tagged`]): a block that does not read as one of the
/// known types is [`ContentBlock::Other`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text (Markdown from Claude).
        text: String,
    },
    /// Claude calls a tool.
    ToolUse {
        /// The call's id.
        id: String,
        /// The tool's name (`Bash`, `Write`, …).
        name: String,
        /// The tool's input.
        #[serde(default)]
        input: Value,
    },
    /// A tool's answer.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// Text or blocks.
        #[serde(default)]
        content: Value,
        /// True when the tool failed.
        #[serde(default)]
        is_error: Option<bool>,
    },
    /// Claude's visible reasoning.
    Thinking {
        /// The reasoning text.
        #[serde(default)]
        thinking: String,
    },
    /// Any other block (kept whole).
    #[serde(untagged)]
    Other(Value),
}

impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(MessageContent::Text(text)),
            Value::Array(blocks) => Ok(MessageContent::Blocks(
                blocks.into_iter().map(ContentBlock::from_value).collect(),
            )),
            _ => Err(D::Error::custom(
                "data did not match any variant of untagged enum MessageContent",
            )),
        }
    }
}

impl ContentBlock {
    /// Reads a block; anything that is not a well-formed known block is kept whole.
    fn from_value(value: Value) -> ContentBlock {
        let Value::Object(map) = value else {
            return ContentBlock::Other(value);
        };
        let f = Fields::from(map);
        let block: Result<ContentBlock, serde_json::Error> = match f.tag("type") {
            Some("text") => f.req("text").map(|text| ContentBlock::Text { text }),
            Some("tool_use") => (|| {
                Ok(ContentBlock::ToolUse {
                    id: f.req("id")?,
                    name: f.req("name")?,
                    input: f.opt("input")?,
                })
            })(),
            Some("tool_result") => (|| {
                Ok(ContentBlock::ToolResult {
                    tool_use_id: f.req("tool_use_id")?,
                    content: f.opt("content")?,
                    is_error: f.opt("is_error")?,
                })
            })(),
            Some("thinking") => f
                .or_default("thinking")
                .map(|thinking| ContentBlock::Thinking { thinking }),
            _ => Err(serde::de::Error::custom("other block")),
        };
        block.unwrap_or_else(|_| ContentBlock::Other(f.into_value()))
    }
}

impl<'de> Deserialize<'de> for ContentBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(ContentBlock::from_value)
    }
}

/// `{"type":"result", …}`: the end of a turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultEvent {
    /// `success`, `error_max_turns`, `error_during_execution`, … — `success` may still carry `is_error: true`.
    #[serde(default)]
    pub subtype: Option<String>,
    /// True when the turn failed, whatever the subtype says.
    #[serde(default)]
    pub is_error: bool,
    /// Agentic turns taken in the session.
    #[serde(default)]
    pub num_turns: Option<u32>,
    /// The final text (or the error text).
    #[serde(default)]
    pub result: Option<String>,
    /// Cost of the session so far, in US dollars.
    #[serde(default)]
    pub total_cost_usd: Option<f64>,
    /// Wall-clock duration of the turn.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Claude Code's session id.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The HTTP status of a failed model API call (429 for a usage limit).
    #[serde(default)]
    pub api_error_status: Option<u16>,
    /// Why the turn ended (`completed`, `api_error`, …).
    #[serde(default)]
    pub terminal_reason: Option<String>,
}

impl ResultEvent {
    /// The error text of a failed turn, if it failed.
    pub fn error_text(&self) -> Option<String> {
        let failed = self.is_error || self.subtype.as_deref().is_some_and(|s| s.starts_with("error"));
        failed.then(|| {
            self.result
                .clone()
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| {
                    format!(
                        "Claude reported an error ({})",
                        self.subtype.as_deref().unwrap_or("no details")
                    )
                })
        })
    }
}

/// `{"type":"command_lifecycle", …}`: what became of a user message sent with a `uuid`. A message that
/// arrives while Claude works is folded into the running turn or queued for the next; either way it ends
/// `completed` (or `cancelled` by an interrupt), which makes this the reliable signal that Claude is idle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// The `uuid` the message was sent with.
    pub command_uuid: String,
    /// `queued`, `started`, `completed` or `cancelled`.
    pub state: String,
}

impl LifecycleEvent {
    /// True once the message is done with (`completed` or `cancelled`).
    pub fn is_done(&self) -> bool {
        matches!(self.state.as_str(), "completed" | "cancelled")
    }
}

/// `{"type":"rate_limit_event", …}`: the subscription's usage window status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitEvent {
    /// The window's status and reset time.
    #[serde(default)]
    pub rate_limit_info: Option<RateLimitInfo>,
}

/// Status of a usage window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitInfo {
    /// `allowed`, `allowed_warning` or `rejected`.
    #[serde(default)]
    pub status: Option<String>,
    /// When the window resets, seconds since the Unix epoch.
    #[serde(default)]
    pub resets_at: Option<i64>,
    /// Which window (`five_hour`, `seven_day`, …).
    #[serde(default)]
    pub rate_limit_type: Option<String>,
    /// How much of the window is used, 0–1.
    #[serde(default)]
    pub utilization: Option<f64>,
}

impl RateLimitEvent {
    /// True when the subscription refused work until the window resets.
    pub fn is_rejected(&self) -> bool {
        self.rate_limit_info.as_ref().and_then(|i| i.status.as_deref()) == Some("rejected")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_not_an_event() {
        assert_eq!(ClaudeEvent::parse("hello"), None);
        assert_eq!(ClaudeEvent::parse("[1,2]"), None);
        assert_eq!(ClaudeEvent::parse("{\"no_type\":1}"), None);
        assert_eq!(ClaudeEvent::parse("{broken"), None);
    }

    #[test]
    fn init_and_result() {
        let init = ClaudeEvent::parse(
            r#"{"type":"system","subtype":"init","session_id":"s1","model":"m","permissionMode":"bypassPermissions","future":1}"#,
        );
        let Some(ClaudeEvent::System(init)) = init else {
            panic!("{init:?}")
        };
        assert_eq!(init.subtype.as_deref(), Some("init"));
        assert_eq!(init.permission_mode.as_deref(), Some("bypassPermissions"));

        let line = r#"{"type":"result","subtype":"success","is_error":true,"num_turns":1,"result":"You've hit your 5-hour limit","total_cost_usd":0.5,"session_id":"s1","api_error_status":429}"#;
        let Some(ClaudeEvent::Result(result)) = ClaudeEvent::parse(line) else {
            panic!()
        };
        assert_eq!(
            result.error_text().as_deref(),
            Some("You've hit your 5-hour limit")
        );
        assert_eq!(result.api_error_status, Some(429));
    }

    #[test]
    fn message_blocks_and_unknown_blocks() {
        let line = r#"{"type":"assistant","session_id":"s","message":{"role":"assistant","content":[
            {"type":"text","text":"hi"},
            {"type":"tool_use","id":"t1","name":"Write","input":{"file_path":"/x"}},
            {"type":"server_tool_use","id":"z"}]}}"#;
        let Some(ClaudeEvent::Assistant(event)) = ClaudeEvent::parse(line) else {
            panic!()
        };
        let MessageContent::Blocks(blocks) = event.message.content else {
            panic!()
        };
        assert!(matches!(&blocks[0], ContentBlock::Text { text } if text == "hi"));
        assert!(matches!(&blocks[1], ContentBlock::ToolUse { name, .. } if name == "Write"));
        assert!(matches!(&blocks[2], ContentBlock::Other(_)));
    }

    #[test]
    fn unknown_types_pass_through() {
        let Some(ClaudeEvent::Other(v)) = ClaudeEvent::parse(r#"{"type":"stream_event","event":{}}"#) else {
            panic!()
        };
        assert_eq!(v["type"], "stream_event");
    }

    #[test]
    fn rate_limits() {
        let line = r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1700000000,"rateLimitType":"five_hour"}}"#;
        let Some(ClaudeEvent::RateLimit(event)) = ClaudeEvent::parse(line) else {
            panic!()
        };
        assert!(event.is_rejected());
        assert_eq!(
            event.rate_limit_info.and_then(|i| i.resets_at),
            Some(1_700_000_000)
        );
    }
}

/// The stream-json line (without newline) that gives Claude a user message on stdin. The `uuid` comes back
/// in the message's [`LifecycleEvent`]s.
pub fn user_message_line(text: &str, uuid: &str) -> String {
    serde_json::json!({"type": "user", "uuid": uuid, "message": {"role": "user", "content": text}})
        .to_string()
}

/// The stream-json line (without newline) that asks Claude to interrupt its current turn and drop any
/// queued follow-ups.
pub fn interrupt_line(request_id: &str) -> String {
    serde_json::json!({
        "type": "control_request",
        "request_id": request_id,
        "request": {"subtype": "interrupt", "cancel_queued": true}
    })
    .to_string()
}

#[cfg(test)]
mod input_tests {
    use super::*;

    #[test]
    fn input_lines_are_single_json_lines() {
        let line = user_message_line("line one\nline \"two\"", "u-1");
        assert!(!line.contains('\n'));
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["message"]["content"], "line one\nline \"two\"");
        assert_eq!(value["uuid"], "u-1");
        assert_eq!(
            serde_json::from_str::<Value>(&interrupt_line("r1")).unwrap()["request"]["subtype"],
            "interrupt"
        );
    }

    /// Every event and content block reads back as itself from the line Claude Code would write; the matches
    /// make a new variant fail to compile here until it is added to the lists.
    #[test]
    fn every_event_and_block_round_trips() {
        let message = |blocks: Vec<ContentBlock>| MessageEvent {
            message: Message {
                id: Some("m".into()),
                role: Some("assistant".into()),
                content: MessageContent::Blocks(blocks),
            },
            session_id: Some("s".into()),
            parent_tool_use_id: None,
            error: None,
        };
        let blocks = vec![
            ContentBlock::Text { text: "t".into() },
            ContentBlock::ToolUse {
                id: "u".into(),
                name: "Bash".into(),
                input: serde_json::json!({"command": "ls"}),
            },
            ContentBlock::ToolResult {
                tool_use_id: "u".into(),
                content: serde_json::json!("out"),
                is_error: Some(true),
            },
            ContentBlock::Thinking {
                thinking: "hm".into(),
            },
            ContentBlock::Other(serde_json::json!({"type": "image", "source": {}})),
        ];
        let mut kinds = std::collections::BTreeSet::new();
        for block in &blocks {
            kinds.insert(match block {
                ContentBlock::Text { .. } => 0,
                ContentBlock::ToolUse { .. } => 1,
                ContentBlock::ToolResult { .. } => 2,
                ContentBlock::Thinking { .. } => 3,
                ContentBlock::Other(_) => 4,
            });
        }
        assert_eq!(kinds.len(), 5, "one of each block");
        let events = [
            (
                "system",
                ClaudeEvent::System(
                    serde_json::from_value(serde_json::json!({"subtype": "init", "session_id": "s"}))
                        .unwrap(),
                ),
            ),
            ("assistant", ClaudeEvent::Assistant(message(blocks.clone()))),
            ("user", ClaudeEvent::User(message(blocks))),
            (
                "result",
                ClaudeEvent::Result(
                    serde_json::from_value(serde_json::json!({"subtype": "success", "num_turns": 2}))
                        .unwrap(),
                ),
            ),
            (
                "rate_limit_event",
                ClaudeEvent::RateLimit(
                    serde_json::from_value(serde_json::json!({"rate_limit_info": {"status": "rejected"}}))
                        .unwrap(),
                ),
            ),
            (
                "command_lifecycle",
                ClaudeEvent::CommandLifecycle(LifecycleEvent {
                    command_uuid: "u".into(),
                    state: "completed".into(),
                }),
            ),
            (
                "something_new",
                ClaudeEvent::Other(serde_json::json!({"type": "something_new", "x": 1})),
            ),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (kind, event) in &events {
            let mut value = match event {
                ClaudeEvent::System(e) => serde_json::to_value(e),
                ClaudeEvent::Assistant(e) | ClaudeEvent::User(e) => serde_json::to_value(e),
                ClaudeEvent::Result(e) => serde_json::to_value(e),
                ClaudeEvent::RateLimit(e) => serde_json::to_value(e),
                ClaudeEvent::CommandLifecycle(e) => serde_json::to_value(e),
                ClaudeEvent::Other(value) => Ok(value.clone()),
            }
            .unwrap();
            seen.insert(*kind);
            value["type"] = Value::from(*kind);
            let line = value.to_string();
            assert_eq!(ClaudeEvent::parse(&line).as_ref(), Some(event), "{line}");
        }
        assert_eq!(seen.len(), 7, "one of each event");
    }
}

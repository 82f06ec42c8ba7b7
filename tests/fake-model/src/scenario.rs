//! Reads a `/v1/messages` request body and decides what the fake model answers.
//!
//! The scenario is chosen by markers (`[[write:/abs]]`, `[[bash:COMMAND]]`, `[[long:N]]`, `[[status:CODE]]`, `[[usage-limit(:SECS)]]`,
//! `[[rate-headers]]`, `[[wait:NAME]]`) in the text of the most recent user message that has text; the
//! number of `tool_result` blocks sent since then tells how far a multi-step scenario has got.

use serde_json::{Value, json};

/// How many characters of the user's text a plain answer echoes.
const ECHO_CHARS: usize = 200;

/// One content block of an answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    /// A text block, streamed as one `text_delta` per chunk.
    Text(Vec<String>),
    /// A `tool_use` block; the server gives it a fresh id.
    ToolUse {
        /// Tool name, e.g. `Write`.
        name: &'static str,
        /// Tool input.
        input: Value,
    },
}

impl Block {
    fn text(text: impl Into<String>) -> Self {
        Self::Text(vec![text.into()])
    }
}

/// What to send back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// A 200 answer: a message with these blocks.
    Message {
        /// Content blocks, in order.
        blocks: Vec<Block>,
        /// `end_turn` or `tool_use`.
        stop_reason: &'static str,
        /// Extra response headers (rate-limit headers).
        headers: Vec<(String, String)>,
    },
    /// An HTTP error with an Anthropic error body.
    Error {
        /// HTTP status.
        status: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// `error.type` of the body.
        error_type: &'static str,
        /// `error.message` of the body.
        message: String,
    },
}

impl Reply {
    fn text(text: impl Into<String>) -> Self {
        Self::Message {
            blocks: vec![Block::text(text)],
            stop_reason: "end_turn",
            headers: Vec::new(),
        }
    }
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// Hold the answer until this gate is released.
    pub(crate) gate: Option<String>,
    /// The answer.
    pub(crate) reply: Reply,
}

/// Markers found in a user text.
#[derive(Debug, Default, PartialEq)]
struct Markers {
    wait: Option<String>,
    write: Option<String>,
    bash: Option<String>,
    long: Option<usize>,
    status: Option<u16>,
    /// Seconds until the limit resets.
    usage_limit: Option<u64>,
    rate_headers: bool,
}

impl Markers {
    fn parse(text: &str) -> Self {
        let mut markers = Self::default();
        let mut rest = text;
        while let Some(start) = rest.find("[[") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("]]") else { break };
            let inner = &after[..end];
            let (name, arg) = inner.split_once(':').map_or((inner, ""), |(n, a)| (n, a));
            let arg = arg.trim();
            match name.trim() {
                "wait" if !arg.is_empty() => markers.wait = Some(arg.to_owned()),
                "write" if !arg.is_empty() => markers.write = Some(arg.to_owned()),
                "bash" if !arg.is_empty() => markers.bash = Some(arg.to_owned()),
                "long" => markers.long = arg.parse().ok(),
                "status" => markers.status = arg.parse().ok(),
                "usage-limit" => markers.usage_limit = Some(arg.parse().unwrap_or(3600)),
                "rate-headers" => markers.rate_headers = true,
                _ => {}
            }
            rest = &after[end + 2..];
        }
        markers
    }
}

/// Decides the answer to a main-conversation request (`now` = current Unix time, for reset headers).
pub(crate) fn plan(body: &Value, now: u64) -> Plan {
    let (text, step) = scenario_text(body);
    let markers = Markers::parse(&text);
    let mut reply = if let Some(status) = markers.status {
        status_error(status)
    } else if let Some(reset_in) = markers.usage_limit {
        usage_limit(now, reset_in)
    } else if let Some(path) = &markers.write {
        write_step(path, step)
    } else if let Some(command) = &markers.bash {
        bash_step(command, step)
    } else if let Some(words) = markers.long {
        let chunks = (0..words).map(|i| format!("word{i} ")).collect();
        Reply::Message {
            blocks: vec![Block::Text(chunks)],
            stop_reason: "end_turn",
            headers: Vec::new(),
        }
    } else {
        Reply::text(plain_answer(&text))
    };
    if markers.rate_headers
        && let Reply::Message { headers, .. } = &mut reply
    {
        headers.extend(warning_headers(now));
    }
    Plan {
        gate: markers.wait,
        reply,
    }
}

/// The no-marker answer.
pub(crate) fn plain_answer(text: &str) -> String {
    let echoed: String = text.chars().take(ECHO_CHARS).collect();
    format!("Fake answer to: {echoed}")
}

/// The user text that picks the scenario, and how many tool results have come back since it.
pub(crate) fn scenario_text(body: &Value) -> (String, usize) {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut tool_results = 0;
    for message in messages.iter().rev() {
        if message.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        let text = user_text(message);
        if !text.is_empty() {
            return (text, tool_results);
        }
        tool_results += count_blocks(message, "tool_result");
    }
    (String::new(), tool_results)
}

/// The text a person last typed in one user message: its last text block that is not only
/// `<system-reminder>` sections (empty if none).
///
/// The CLI folds an interrupted prompt, `[Request interrupted by user]` and the next prompt into one user
/// message of several text blocks, and attaches prompts queued during a turn to a `tool_result` message; the
/// last block is the newest prompt in both cases.
pub(crate) fn user_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(text)) => strip_reminders(text),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .rev()
            .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .map(strip_reminders)
            .find(|text| !text.is_empty())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn strip_reminders(text: &str) -> String {
    const OPEN: &str = "<system-reminder>";
    const CLOSE: &str = "</system-reminder>";
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        match rest[start..].find(CLOSE) {
            Some(end) => rest = &rest[start + end + CLOSE.len()..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

fn count_blocks(message: &Value, kind: &str) -> usize {
    message
        .get("content")
        .and_then(Value::as_array)
        .map_or(0, |blocks| {
            blocks
                .iter()
                .filter(|block| block.get("type").and_then(Value::as_str) == Some(kind))
                .count()
        })
}

fn write_step(path: &str, step: usize) -> Reply {
    let tool = |name, input| Reply::Message {
        blocks: vec![Block::ToolUse { name, input }],
        stop_reason: "tool_use",
        headers: Vec::new(),
    };
    match step {
        0 => tool(
            "Write",
            json!({"file_path": path, "content": "written by the fake model\n"}),
        ),
        1 => tool(
            "Bash",
            json!({"command": format!("cat {path} && echo bash-ran"), "description": "check"}),
        ),
        _ => Reply::text(format!("Done: wrote {path}")),
    }
}

/// One `Bash` call running `command` (in the agent's working directory), then a text answer.
fn bash_step(command: &str, step: usize) -> Reply {
    match step {
        0 => Reply::Message {
            blocks: vec![Block::ToolUse {
                name: "Bash",
                input: json!({"command": command, "description": "run"}),
            }],
            stop_reason: "tool_use",
            headers: Vec::new(),
        },
        _ => Reply::text(format!("Ran: {command}")),
    }
}

fn status_error(status: u16) -> Reply {
    let (error_type, message) = match status {
        400 => ("invalid_request_error", "Fake invalid request."),
        401 => ("authentication_error", "Fake authentication error."),
        403 => ("permission_error", "Fake permission error."),
        404 => ("not_found_error", "Fake not found."),
        413 => ("request_too_large", "Fake request too large."),
        429 => ("rate_limit_error", "Fake rate limit: slow down."),
        529 => ("overloaded_error", "Fake overloaded."),
        _ => ("api_error", "Fake internal server error."),
    };
    let headers = if status == 429 {
        vec![header("retry-after", "0")]
    } else {
        Vec::new()
    };
    Reply::Error {
        status,
        headers,
        error_type,
        message: message.to_owned(),
    }
}

fn usage_limit(now: u64, reset_in: u64) -> Reply {
    let reset = (now + reset_in).to_string();
    Reply::Error {
        status: 429,
        headers: vec![
            header("anthropic-ratelimit-unified-status", "rejected"),
            header("anthropic-ratelimit-unified-reset", &reset),
            header("anthropic-ratelimit-unified-representative-claim", "five_hour"),
            header("anthropic-ratelimit-unified-5h-status", "rejected"),
            header("anthropic-ratelimit-unified-5h-utilization", "1.0"),
            header("anthropic-ratelimit-unified-5h-reset", &reset),
        ],
        error_type: "rate_limit_error",
        message: "This request would exceed your account's rate limit. Please try again later.".to_owned(),
    }
}

fn warning_headers(now: u64) -> Vec<(String, String)> {
    let five_hour = (now + 3600).to_string();
    let seven_day = (now + 3 * 24 * 3600).to_string();
    vec![
        header("anthropic-ratelimit-unified-status", "allowed_warning"),
        header("anthropic-ratelimit-unified-reset", &five_hour),
        header("anthropic-ratelimit-unified-representative-claim", "five_hour"),
        header("anthropic-ratelimit-unified-5h-status", "allowed_warning"),
        header("anthropic-ratelimit-unified-5h-utilization", "0.91"),
        header("anthropic-ratelimit-unified-5h-reset", &five_hour),
        header("anthropic-ratelimit-unified-5h-surpassed-threshold", "0.9"),
        header("anthropic-ratelimit-unified-7d-status", "allowed"),
        header("anthropic-ratelimit-unified-7d-utilization", "0.35"),
        header("anthropic-ratelimit-unified-7d-reset", &seven_day),
    ]
}

fn header(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(content: &Value) -> Value {
        json!({"role": "user", "content": content})
    }

    fn body(messages: &[Value]) -> Value {
        json!({"model": "m", "messages": messages, "stream": true})
    }

    #[test]
    fn markers_are_found_anywhere() {
        let m = Markers::parse("a [[wait:g1]] b [[write:/tmp/x y]] [[long:3]][[status:529]] [[usage-limit]]");
        assert_eq!(m.wait.as_deref(), Some("g1"));
        assert_eq!(m.write.as_deref(), Some("/tmp/x y"));
        assert_eq!(m.long, Some(3));
        assert_eq!(m.status, Some(529));
        assert_eq!(m.usage_limit, Some(3600));
        assert_eq!(Markers::parse("[[usage-limit:5]]").usage_limit, Some(5));
        assert!(!m.rate_headers);
    }

    #[test]
    fn plain_answer_echoes_text_without_reminders() {
        let msg = user(&json!([
            {"type": "text", "text": "<system-reminder>\nnoise\n</system-reminder>\n"},
            {"type": "text", "text": "hello there"}
        ]));
        let plan = plan(&body(&[msg]), 0);
        assert_eq!(plan.gate, None);
        assert_eq!(plan.reply, Reply::text("Fake answer to: hello there"));
    }

    #[test]
    fn the_newest_prompt_in_a_folded_message_wins() {
        let msg = user(&json!([
            {"type": "text", "text": "[[wait:g]] first"},
            {"type": "text", "text": "[Request interrupted by user]"},
            {"type": "text", "text": "after interrupt"},
            {"type": "text", "text": "<system-reminder>x</system-reminder>"}
        ]));
        let plan = plan(&body(&[msg]), 0);
        assert_eq!(plan.gate, None);
        assert_eq!(plan.reply, Reply::text("Fake answer to: after interrupt"));
    }

    #[test]
    fn write_scenario_walks_through_its_steps() {
        let first = user(&json!("please [[write:/tmp/f]]"));
        let assistant = json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t1"}]});
        let result = user(&json!([{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]));
        let step0 = plan(&body(std::slice::from_ref(&first)), 0);
        assert!(
            matches!(step0.reply, Reply::Message { stop_reason: "tool_use", ref blocks, .. }
            if matches!(blocks[0], Block::ToolUse { name: "Write", .. }))
        );
        let step1 = plan(&body(&[first.clone(), assistant.clone(), result.clone()]), 0);
        assert!(matches!(step1.reply, Reply::Message { ref blocks, .. }
            if matches!(blocks[0], Block::ToolUse { name: "Bash", .. })));
        let step2 = plan(
            &body(&[first, assistant.clone(), result.clone(), assistant, result]),
            0,
        );
        assert_eq!(step2.reply, Reply::text("Done: wrote /tmp/f"));
    }

    #[test]
    fn a_follow_up_text_starts_a_new_scenario() {
        let first = user(&json!("[[write:/tmp/f]]"));
        let answer = json!({"role": "assistant", "content": [{"type": "text", "text": "Done"}]});
        let plan = plan(&body(&[first, answer, user(&json!("second"))]), 0);
        assert_eq!(plan.reply, Reply::text("Fake answer to: second"));
    }

    #[test]
    fn status_and_usage_limit_are_errors() {
        let plan429 = plan(&body(&[user(&json!("[[status:429]]"))]), 0);
        assert!(matches!(
            plan429.reply,
            Reply::Error {
                status: 429,
                error_type: "rate_limit_error",
                ..
            }
        ));
        let limit = plan(&body(&[user(&json!("[[usage-limit]]"))]), 100);
        let Reply::Error {
            status: 429, headers, ..
        } = limit.reply
        else {
            panic!("not a 429")
        };
        assert!(headers.contains(&header("anthropic-ratelimit-unified-5h-reset", "3700")));
    }

    #[test]
    fn wait_combines_with_other_markers() {
        let plan = plan(
            &body(&[user(&json!("[[wait:g]] [[long:2]] [[rate-headers]]"))]),
            0,
        );
        assert_eq!(plan.gate.as_deref(), Some("g"));
        let Reply::Message { blocks, headers, .. } = plan.reply else {
            panic!("not a message")
        };
        assert_eq!(blocks, vec![Block::Text(vec!["word0 ".into(), "word1 ".into()])]);
        assert!(headers.contains(&header("anthropic-ratelimit-unified-status", "allowed_warning")));
    }
}

//! Builds Anthropic Messages API bodies: the streaming (SSE) event sequence, the one-shot JSON message,
//! and the error body.

use serde_json::{Value, json};

/// One content block of an answer, with its tool id already assigned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Content {
    /// Text, streamed as one `text_delta` per chunk.
    Text(Vec<String>),
    /// A tool call.
    ToolUse {
        /// `toolu_…` id, unique within the server.
        id: String,
        /// Tool name.
        name: String,
        /// Tool input.
        input: Value,
    },
}

/// A complete assistant answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// `msg_…` id.
    pub(crate) id: String,
    /// Echo of the requested model.
    pub(crate) model: String,
    /// Content blocks.
    pub(crate) content: Vec<Content>,
    /// `end_turn` or `tool_use`.
    pub(crate) stop_reason: String,
    /// Reported input tokens.
    pub(crate) input_tokens: u64,
}

impl Answer {
    /// Rough output token count: one per text chunk or word, a few per tool call.
    fn output_tokens(&self) -> u64 {
        let tokens: usize = self
            .content
            .iter()
            .map(|block| match block {
                Content::Text(chunks) => chunks.iter().map(|c| c.split_whitespace().count().max(1)).sum(),
                Content::ToolUse { input, .. } => 10 + input.to_string().len() / 4,
            })
            .sum();
        u64::try_from(tokens).unwrap_or(u64::MAX)
    }

    fn usage(&self, output_tokens: u64) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        })
    }

    /// The body of a non-streaming answer.
    pub(crate) fn message(&self) -> Value {
        let content: Vec<Value> = self
            .content
            .iter()
            .map(|block| match block {
                Content::Text(chunks) => json!({"type": "text", "text": chunks.concat()}),
                Content::ToolUse { id, name, input } => {
                    json!({"type": "tool_use", "id": id, "name": name, "input": input})
                }
            })
            .collect();
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self.stop_reason,
            "stop_sequence": null,
            "usage": self.usage(self.output_tokens()),
        })
    }

    /// The streaming answer as `(event name, data)` pairs, in order.
    pub(crate) fn events(&self) -> Vec<(&'static str, Value)> {
        let mut events = vec![
            (
                "message_start",
                json!({"type": "message_start", "message": {
                    "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null, "usage": self.usage(1),
                }}),
            ),
            ("ping", json!({"type": "ping"})),
        ];
        for (index, block) in self.content.iter().enumerate() {
            let (start, deltas) = match block {
                Content::Text(chunks) => (
                    json!({"type": "text", "text": ""}),
                    chunks
                        .iter()
                        .map(|chunk| json!({"type": "text_delta", "text": chunk}))
                        .collect(),
                ),
                Content::ToolUse { id, name, input } => (
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    split_json(&input.to_string())
                        .into_iter()
                        .map(|part| json!({"type": "input_json_delta", "partial_json": part}))
                        .collect::<Vec<_>>(),
                ),
            };
            events.push((
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": start}),
            ));
            for delta in deltas {
                events.push((
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index, "delta": delta}),
                ));
            }
            events.push((
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
        events.push((
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": self.output_tokens()},
            }),
        ));
        events.push(("message_stop", json!({"type": "message_stop"})));
        events
    }
}

/// Splits a JSON text in two at a char boundary, as the real API streams tool input in pieces.
fn split_json(text: &str) -> Vec<String> {
    let mid = text
        .char_indices()
        .map(|(i, _)| i)
        .find(|&i| i >= text.len() / 2)
        .unwrap_or(0);
    let (head, tail) = text.split_at(mid);
    [head, tail]
        .into_iter()
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An Anthropic error body.
pub(crate) fn error_body(error_type: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(content: Vec<Content>) -> Answer {
        Answer {
            id: "msg_1".into(),
            model: "m".into(),
            content,
            stop_reason: "tool_use".into(),
            input_tokens: 5,
        }
    }

    #[test]
    fn tool_input_deltas_reassemble_to_the_input() {
        let input = json!({"file_path": "/tmp/ä", "content": "x\n"});
        let a = answer(vec![Content::ToolUse {
            id: "toolu_1".into(),
            name: "Write".into(),
            input: input.clone(),
        }]);
        let joined: String = a
            .events()
            .iter()
            .filter_map(|(_, data)| data["delta"]["partial_json"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&joined).unwrap(), input);
        let names: Vec<&str> = a.events().iter().map(|(name, _)| *name).collect();
        assert_eq!(names.first(), Some(&"message_start"));
        assert_eq!(names.last(), Some(&"message_stop"));
        assert_eq!(a.message()["content"][0]["input"], input);
    }

    #[test]
    fn text_chunks_become_deltas() {
        let a = answer(vec![Content::Text(vec!["a ".into(), "b ".into()])]);
        let deltas = a
            .events()
            .iter()
            .filter(|(name, _)| *name == "content_block_delta")
            .count();
        assert_eq!(deltas, 2);
        assert_eq!(a.message()["content"][0]["text"], "a b ");
    }
}

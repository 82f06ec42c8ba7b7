//! What a run's output says about the run: Claude's session id, turns, cost and errors.

use agentfarm_shared::claude::{ClaudeEvent, ContentBlock, MessageContent};

use crate::store::RunPatch;

/// Folds what one Claude event says about the run into `patch`.
pub fn observe(event: &ClaudeEvent, patch: &mut RunPatch) {
    if let Some(session) = event.session_id() {
        patch.session_id = Some(session.to_owned());
    }
    match event {
        ClaudeEvent::Result(result) => {
            if let Some(turns) = result.num_turns {
                patch.add_turns = Some(patch.add_turns.unwrap_or(0) + turns);
            }
            patch.cost_usd = result.total_cost_usd.or(patch.cost_usd);
            if let Some(error) = result.error_text() {
                patch.last_error = Some(error);
            }
        }
        ClaudeEvent::Assistant(message) if message.error.is_some() => {
            patch.last_error = Some(message_text(&message.message.content).unwrap_or_else(|| {
                format!(
                    "Claude reported an error: {}",
                    message.error.as_deref().unwrap_or_default()
                )
            }));
        }
        ClaudeEvent::RateLimit(limit) if limit.is_rejected() => {
            let resets = limit.rate_limit_info.as_ref().and_then(|i| i.resets_at);
            patch.last_error = Some(
                match resets.and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
                    Some(at) => format!(
                        "usage limit reached; resets at {}",
                        at.format("%Y-%m-%d %H:%M UTC")
                    ),
                    None => "usage limit reached".to_owned(),
                },
            );
        }
        _ => {}
    }
}

fn message_text(content: &MessageContent) -> Option<String> {
    match content {
        MessageContent::Text(text) => Some(text.clone()),
        MessageContent::Blocks(blocks) => blocks.iter().find_map(|block| match block {
            ContentBlock::Text { text } => Some(text.clone()),
            _ => None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch_of(lines: &[&str]) -> RunPatch {
        let mut patch = RunPatch::default();
        for line in lines {
            observe(&ClaudeEvent::parse(line).unwrap(), &mut patch);
        }
        patch
    }

    #[test]
    fn session_turns_cost() {
        let patch = patch_of(&[
            r#"{"type":"system","subtype":"init","session_id":"s-1"}"#,
            r#"{"type":"result","subtype":"success","is_error":false,"num_turns":3,"total_cost_usd":0.25,"session_id":"s-1"}"#,
            r#"{"type":"result","subtype":"success","is_error":false,"num_turns":1,"total_cost_usd":0.5,"session_id":"s-1"}"#,
        ]);
        assert_eq!(patch.session_id.as_deref(), Some("s-1"));
        assert_eq!(
            (patch.add_turns, patch.cost_usd, patch.last_error),
            (Some(4), Some(0.5), None)
        );
    }

    #[test]
    fn errors_on_success_subtype_are_errors() {
        let patch = patch_of(&[
            r#"{"type":"assistant","error":"rate_limit","message":{"content":[{"type":"text","text":"You've hit your 5-hour limit"}]}}"#,
            r#"{"type":"result","subtype":"success","is_error":true,"result":"You've hit your 5-hour limit · resets 11am"}"#,
        ]);
        assert_eq!(
            patch.last_error.as_deref(),
            Some("You've hit your 5-hour limit · resets 11am")
        );
    }
}

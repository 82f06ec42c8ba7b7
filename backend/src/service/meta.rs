//! What a run's output says about the run: from Claude's events its session id, turns, cost and errors;
//! from the runner's events its branch, pull request, diff size and usage limit.

use std::collections::BTreeMap;

use agentfarm_shared::claude::{ClaudeEvent, ContentBlock, MessageContent};
use agentfarm_shared::run::DiffSummary;
use agentfarm_shared::runner::RunnerEvent;
use chrono::DateTime;

use crate::store::RunPatch;

/// Reads a run's stdout lines as they come, folding what they say into [`RunPatch`]es.
#[derive(Debug, Default)]
pub struct Observer {
    /// Newest diff size per repository; a run's diff is their sum.
    diffs: BTreeMap<String, DiffSummary>,
    /// The error of the newest finished turn (`None` once a turn succeeds).
    pub turn_error: Option<String>,
}

impl Observer {
    /// Folds what one stdout line says into `patch`.
    pub fn observe(&mut self, line: &str, patch: &mut RunPatch) {
        if let Some(event) = RunnerEvent::parse(line) {
            self.runner(event, patch);
        } else if let Some(event) = ClaudeEvent::parse(line) {
            if let ClaudeEvent::Result(result) = &event {
                self.turn_error = result.error_text();
            }
            claude(&event, patch);
        }
    }

    fn runner(&mut self, event: RunnerEvent, patch: &mut RunPatch) {
        match event {
            RunnerEvent::Cloned { branch, .. } | RunnerEvent::Pushed { branch, .. } => {
                patch.branch = Some(branch);
            }
            RunnerEvent::PrOpened { url, .. } => patch.pr_url = Some(url),
            RunnerEvent::Diff { repo, files, .. } => {
                let count = |pick: fn(&agentfarm_shared::runner::FileDiff) -> Option<u64>| {
                    files.iter().filter_map(pick).sum()
                };
                let diff = DiffSummary {
                    files: files.len() as u64,
                    added: count(|f| f.added),
                    removed: count(|f| f.removed),
                };
                self.diffs.insert(repo, diff);
                patch.diff = Some(
                    self.diffs
                        .values()
                        .fold(DiffSummary::default(), |sum, d| DiffSummary {
                            files: sum.files + d.files,
                            added: sum.added + d.added,
                            removed: sum.removed + d.removed,
                        }),
                );
            }
            RunnerEvent::LimitHit { resets_at, message } => {
                patch.limit_resets_at = resets_at.and_then(|at| DateTime::from_timestamp(at, 0));
                patch.last_error = Some(message);
            }
            RunnerEvent::Error { stage, message } => patch.last_error = Some(format!("{stage}: {message}")),
            RunnerEvent::Cloning { .. } | RunnerEvent::Committed { .. } => {}
        }
    }
}

/// Folds what one Claude event says about the run into `patch`.
fn claude(event: &ClaudeEvent, patch: &mut RunPatch) {
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
            let resets = limit
                .rate_limit_info
                .as_ref()
                .and_then(|i| i.resets_at)
                .and_then(|s| DateTime::from_timestamp(s, 0));
            if let Some(at) = resets {
                patch.limit_resets_at = Some(at);
            }
            patch.last_error = Some(match resets {
                Some(at) => format!(
                    "usage limit reached; resets at {}",
                    at.format("%Y-%m-%d %H:%M UTC")
                ),
                None => "the model API is limiting requests".to_owned(),
            });
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
    use agentfarm_shared::runner::FileDiff;

    use super::*;

    fn patch_of(lines: &[String]) -> (RunPatch, Observer) {
        let mut observer = Observer::default();
        let mut patch = RunPatch::default();
        for line in lines {
            observer.observe(line, &mut patch);
        }
        (patch, observer)
    }

    #[test]
    fn session_turns_cost() {
        let (patch, observer) = patch_of(&[
            r#"{"type":"system","subtype":"init","session_id":"s-1"}"#.into(),
            r#"{"type":"result","subtype":"success","is_error":false,"num_turns":3,"total_cost_usd":0.25,"session_id":"s-1"}"#.into(),
            r#"{"type":"result","subtype":"success","is_error":false,"num_turns":1,"total_cost_usd":0.5,"session_id":"s-1"}"#.into(),
        ]);
        assert_eq!(patch.session_id.as_deref(), Some("s-1"));
        assert_eq!(
            (patch.add_turns, patch.cost_usd, patch.last_error),
            (Some(4), Some(0.5), None)
        );
        assert_eq!(observer.turn_error, None);
    }

    #[test]
    fn errors_on_success_subtype_are_errors() {
        let (patch, observer) = patch_of(&[
            r#"{"type":"assistant","error":"rate_limit","message":{"content":[{"type":"text","text":"You've hit your 5-hour limit"}]}}"#.into(),
            r#"{"type":"result","subtype":"success","is_error":true,"result":"You've hit your 5-hour limit · resets 11am"}"#.into(),
        ]);
        assert_eq!(
            patch.last_error.as_deref(),
            Some("You've hit your 5-hour limit · resets 11am")
        );
        assert!(observer.turn_error.is_some());
    }

    #[test]
    fn runner_events() {
        let diff = |repo: &str, added| {
            RunnerEvent::Diff {
                repo: repo.into(),
                files: vec![FileDiff {
                    path: "a".into(),
                    added: Some(added),
                    removed: Some(1),
                }],
                patch: String::new(),
                truncated: false,
            }
            .to_line()
        };
        let (patch, _) = patch_of(&[
            RunnerEvent::Cloned {
                repo: "o/a".into(),
                branch: "agentfarm/r".into(),
                base: "main".into(),
                continued: false,
                commit: "c".into(),
            }
            .to_line(),
            diff("o/a", 5),
            diff("o/b", 2),
            diff("o/a", 7),
            RunnerEvent::PrOpened {
                repo: "o/a".into(),
                number: 1,
                url: "https://x/pull/1".into(),
                updated: false,
            }
            .to_line(),
            RunnerEvent::LimitHit {
                resets_at: Some(1_700_000_000),
                message: "limit".into(),
            }
            .to_line(),
        ]);
        assert_eq!(patch.branch.as_deref(), Some("agentfarm/r"));
        assert_eq!(patch.pr_url.as_deref(), Some("https://x/pull/1"));
        assert_eq!(
            patch.diff,
            Some(DiffSummary {
                files: 2,
                added: 9,
                removed: 2
            })
        );
        assert_eq!(patch.limit_resets_at.map(|t| t.timestamp()), Some(1_700_000_000));
    }
}

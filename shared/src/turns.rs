//! Is Claude working or waiting? Every user message is sent with a `uuid`, and Claude reports each one's
//! lifecycle; Claude is idle exactly when every message it was given is `completed` or `cancelled`. (Counting
//! `result` events is not enough: a message sent mid-turn is folded into that turn and gets no result of
//! its own.)

use std::collections::BTreeSet;

use crate::claude::ClaudeEvent;

/// A change of Claude's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// It has a message to work on.
    Busy,
    /// Every message it was given is done.
    Idle,
}

/// The messages Claude has not finished.
#[derive(Debug, Clone, Default)]
pub struct TurnTracker {
    pending: BTreeSet<String>,
}

impl TurnTracker {
    /// A message with `uuid` was written to Claude's stdin. `Some(Busy)` when Claude was idle.
    pub fn sent(&mut self, uuid: &str) -> Option<Activity> {
        let was_idle = self.pending.is_empty();
        self.pending.insert(uuid.to_owned());
        was_idle.then_some(Activity::Busy)
    }

    /// Reads one of Claude's events. `Some(Idle)` when it finished the last message it had.
    pub fn observe(&mut self, event: &ClaudeEvent) -> Option<Activity> {
        let ClaudeEvent::CommandLifecycle(lifecycle) = event else {
            return None;
        };
        if lifecycle.is_done() {
            let removed = self.pending.remove(&lifecycle.command_uuid);
            (removed && self.pending.is_empty()).then_some(Activity::Idle)
        } else {
            self.sent(&lifecycle.command_uuid)
        }
    }

    /// True when no message is pending.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifecycle(uuid: &str, state: &str) -> ClaudeEvent {
        ClaudeEvent::parse(&format!(
            r#"{{"type":"command_lifecycle","command_uuid":"{uuid}","state":"{state}"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_folded_follow_up_ends_with_its_turn() {
        // What Claude 2.1.332 printed for a follow-up sent during a tool call.
        let mut t = TurnTracker::default();
        assert_eq!(t.sent("a"), Some(Activity::Busy));
        assert_eq!(t.observe(&lifecycle("a", "queued")), None);
        assert_eq!(t.observe(&lifecycle("a", "started")), None);
        assert_eq!(t.sent("b"), None);
        assert_eq!(t.observe(&lifecycle("b", "queued")), None);
        assert_eq!(t.observe(&lifecycle("b", "completed")), None);
        assert!(!t.is_idle());
        assert_eq!(t.observe(&lifecycle("a", "completed")), Some(Activity::Idle));
        assert!(t.is_idle());
    }

    #[test]
    fn messages_seen_only_in_the_output_count_too() {
        let mut t = TurnTracker::default();
        assert_eq!(t.observe(&lifecycle("x", "queued")), Some(Activity::Busy));
        assert_eq!(t.observe(&lifecycle("x", "cancelled")), Some(Activity::Idle));
        assert_eq!(
            t.observe(&lifecycle("x", "completed")),
            None,
            "a late duplicate changes nothing"
        );
    }
}

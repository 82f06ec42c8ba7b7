//! One line of a run's output, numbered once when stored: clients resume by that number.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::claude::ClaudeEvent;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// The agent's standard output (Claude's stream-json events).
    Stdout,
    /// The agent's standard error.
    Stderr,
    /// A note from agentfarm itself (process started, exited, stop requested, …).
    Control,
}

impl LogStream {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::Control => "control",
        }
    }

    /// Reads a stored name back.
    pub fn parse(name: &str) -> Option<Self> {
        [LogStream::Stdout, LogStream::Stderr, LogStream::Control]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// Longest line kept, in bytes; longer lines are cut at a character boundary and marked `truncated`.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// One stored line of a run's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// Per-run sequence number: 1, 2, 3, … with no holes.
    pub seq: u64,
    /// When agentfarm read the line.
    #[serde(deserialize_with = "crate::stamp::de")]
    pub ts: DateTime<Utc>,
    /// Where it came from.
    pub stream: LogStream,
    /// The line itself, without its newline.
    pub text: String,
    /// True when the line was longer than [`MAX_LINE_BYTES`] and was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl LogLine {
    /// The Claude stream-json event this line holds, if it is one.
    pub fn claude_event(&self) -> Option<ClaudeEvent> {
        match self.stream {
            LogStream::Stdout => ClaudeEvent::parse(&self.text),
            LogStream::Stderr | LogStream::Control => None,
        }
    }
}

/// Cuts `text` to at most [`MAX_LINE_BYTES`] bytes on a character boundary; true when it cut.
pub fn truncate_line(text: &mut String) -> bool {
    if text.len() <= MAX_LINE_BYTES {
        return false;
    }
    let mut end = MAX_LINE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

/// Body of `GET /api/runs/{id}/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPage {
    /// Lines after the requested sequence number, oldest first.
    pub lines: Vec<LogLine>,
    /// Set when lines right after the requested sequence number are no longer kept: the first and last
    /// missing sequence numbers.
    pub gap: Option<(u64, u64)>,
    /// The run's newest sequence number when the page was read.
    pub last_seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut s = "é".repeat(MAX_LINE_BYTES);
        assert!(truncate_line(&mut s));
        assert!(s.len() <= MAX_LINE_BYTES);
        let mut short = "ok".to_owned();
        assert!(!truncate_line(&mut short));
    }
}

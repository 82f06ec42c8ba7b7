//! Following a pod's log into the run's sequence: every line once, across reconnects and server restarts.
//!
//! The log is read with `timestamps=true`. A [`Position`] remembers the newest timestamp taken and how many
//! lines carried it; a new stream starts at that second (`sinceTime` has whole-second granularity) and skips
//! what was already taken. Its text form is the run's stored cursor.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use tokio::sync::mpsc;
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::Inbox;
use super::job::CONTAINER;
use crate::backoff::Backoff;
use crate::runtime::lines::read_bounded_line;

/// How often the log of an ended container is tried before the run ends without its tail.
const FINAL_READ_ATTEMPTS: u32 = 5;

/// The read position in a pod's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// The newest timestamp taken.
    at: Option<DateTime<Utc>>,
    /// Lines taken with exactly that timestamp.
    taken: u32,
    /// In a resumed stream: lines with that timestamp still to skip; `None` once the stream is past it.
    skip: Option<u32>,
}

impl Position {
    /// The position a stored cursor names (the start when there is none or it does not parse).
    pub fn from_cursor(cursor: Option<&str>) -> Position {
        let parsed = cursor.and_then(|cursor| {
            let (at, taken) = cursor.rsplit_once('/')?;
            Some(Position {
                at: Some(DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc)),
                taken: taken.parse().ok()?,
                skip: None,
            })
        });
        parsed.unwrap_or_default()
    }

    /// The cursor to store.
    pub fn cursor(&self) -> Option<String> {
        self.at.map(|at| {
            format!(
                "{}/{}",
                at.to_rfc3339_opts(SecondsFormat::Nanos, true),
                self.taken
            )
        })
    }

    /// Where a new stream starts: the second of the newest line taken.
    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.at.map(|at| at.trunc_subsecs(0))
    }

    /// A new stream begins: what it repeats must be skipped.
    pub fn resume(&mut self) {
        self.skip = self.at.map(|_| self.taken);
    }

    /// Whether a line stamped `at` is new (and, if so, takes it).
    pub fn take(&mut self, at: DateTime<Utc>) -> bool {
        if let (Some(skip), Some(last)) = (self.skip, self.at) {
            if at < last {
                return false;
            }
            if at == last && skip > 0 {
                self.skip = Some(skip - 1);
                return false;
            }
        }
        // Past the repeated part: from here on, everything in this stream is new, in the log's order.
        self.skip = None;
        match self.at {
            Some(last) if at == last => self.taken += 1,
            Some(last) if at < last => {}
            _ => {
                self.at = Some(at);
                self.taken = 1;
            }
        }
        true
    }
}

/// Splits `2026-01-02T03:04:05.123456789Z text` into its timestamp and text.
fn split_timestamp(line: &str) -> Option<(DateTime<Utc>, &str)> {
    let (stamp, text) = line.split_once(' ').unwrap_or((line, ""));
    let at = DateTime::parse_from_rfc3339(stamp).ok()?.with_timezone(&Utc);
    Some((at, text))
}

/// Reads pod `pod`'s log from `position` into `inbox` until the container has ended and everything is read,
/// or the pod is gone; then sends [`Inbox::LogDone`]. Stops early when the inbox closes.
pub async fn follow(
    pods: Api<Pod>,
    pod: String,
    mut position: Position,
    inbox: mpsc::UnboundedSender<Inbox>,
) {
    let mut backoff = Backoff::new(super::RETRY_FIRST, super::RETRY_MAX);
    // Failed reads of an ended container's log in a row: its node may be gone, and with it the log.
    let mut failed_final_reads = 0;
    loop {
        if inbox.is_closed() {
            return;
        }
        // Ask first whether the container has ended: then this read is the last one needed.
        let ended = match pods.get_opt(&pod).await {
            Ok(None) => break,
            Ok(Some(pod)) => container_ended(&pod),
            Err(err) => {
                tracing::debug!(pod, %err, "reading the pod before its log failed; retrying");
                backoff.wait().await;
                continue;
            }
        };
        let params = LogParams {
            container: Some(CONTAINER.into()),
            follow: !ended,
            timestamps: true,
            since_time: position
                .since()
                .and_then(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true).parse().ok()),
            ..LogParams::default()
        };
        position.resume();
        match pods.log_stream(&pod, &params).await {
            Ok(reader) => {
                let mut reader = std::pin::pin!(reader.compat());
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match read_bounded_line(&mut reader, &mut line).await {
                        Ok(true) => {
                            backoff.reset();
                            let text = String::from_utf8_lossy(&line);
                            let text = text.trim_end_matches(['\r', '\n']);
                            let Some((at, text)) = split_timestamp(text) else {
                                continue;
                            };
                            if !position.take(at) {
                                continue;
                            }
                            let sent = inbox.send(Inbox::Line {
                                at,
                                text: text.to_owned(),
                                cursor: position.cursor(),
                            });
                            if sent.is_err() {
                                return;
                            }
                        }
                        Ok(false) => break,
                        Err(err) => {
                            tracing::debug!(pod, %err, "the log stream broke; resuming");
                            break;
                        }
                    }
                }
                if ended {
                    break;
                }
            }
            Err(err) if ended && failed_final_reads >= FINAL_READ_ATTEMPTS => {
                tracing::warn!(pod, %err, "the end of the agent's log cannot be read; the run ends without it");
                break;
            }
            Err(err) => {
                if ended {
                    failed_final_reads += 1;
                }
                tracing::debug!(pod, %err, "cannot read the log yet; retrying");
                backoff.wait().await;
            }
        }
    }
    let _ = inbox.send(Inbox::LogDone);
}

/// Whether the agent's container has terminated (its log is complete).
pub fn container_ended(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let terminated = status
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|statuses| {
            statuses
                .iter()
                .any(|c| c.name == CONTAINER && c.state.as_ref().is_some_and(|s| s.terminated.is_some()))
        });
    terminated
        || matches!(
            status.and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn ci_13_a_resumed_stream_skips_exactly_what_was_taken() {
        let mut position = Position::default();
        let first = [
            "2026-01-01T00:00:01.5Z",
            "2026-01-01T00:00:02.1Z",
            "2026-01-01T00:00:02.1Z",
        ];
        for stamp in first {
            assert!(position.take(at(stamp)));
        }
        let cursor = position.cursor().unwrap();
        assert_eq!(cursor, "2026-01-01T00:00:02.100000000Z/2");
        // After a restart: the stored cursor, and a stream from the whole second.
        let mut resumed = Position::from_cursor(Some(&cursor));
        assert_eq!(resumed.since(), Some(at("2026-01-01T00:00:02Z")));
        resumed.resume();
        let replay = [
            ("2026-01-01T00:00:02.1Z", false),
            ("2026-01-01T00:00:02.1Z", false),
            ("2026-01-01T00:00:02.1Z", true),
            ("2026-01-01T00:00:02.9Z", true),
            // Out of order within a live stream (stdout and stderr interleave): still new.
            ("2026-01-01T00:00:02.5Z", true),
        ];
        for (stamp, new) in replay {
            assert_eq!(resumed.take(at(stamp)), new, "{stamp}");
        }
        assert_eq!(resumed.cursor().unwrap(), "2026-01-01T00:00:02.900000000Z/1");
    }

    #[test]
    fn lines_split_at_their_timestamp() {
        let (stamp, text) = split_timestamp("2026-01-01T00:00:01.000000001Z {\"a\": 1}").unwrap();
        assert_eq!(stamp, at("2026-01-01T00:00:01.000000001Z"));
        assert_eq!(text, "{\"a\": 1}");
        assert_eq!(split_timestamp("2026-01-01T00:00:01Z").unwrap().1, "");
        assert!(split_timestamp("no stamp").is_none());
        assert_eq!(Position::from_cursor(Some("garbage")), Position::default());
    }
}

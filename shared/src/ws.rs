//! The live stream at [`crate::api::routes::WS`]: one multiplexed socket per client, one tagged enum per
//! direction.
//!
//! On connect the server sends [`ServerFrame::Snapshot`], then every run change as [`ServerFrame::Run`]. A
//! client asks for a run's log with [`ClientFrame::Subscribe`] and its last seen sequence number; it then gets
//! exactly the lines after it, in order, as [`ServerFrame::Log`] frames (a [`ServerFrame::Gap`] first when some
//! are no longer kept). A client too slow to keep up gets [`ServerFrame::Resync`] followed by a fresh snapshot
//! and the lines it missed.

use serde::{Deserialize, Serialize};

use crate::log::LogLine;
use crate::run::Run;
use crate::tagged::{Fields, unknown};

/// How often the server sends [`ServerFrame::Heartbeat`]; a client that hears nothing for about
/// `HEARTBEAT_SECS + 10` should reconnect.
pub const HEARTBEAT_SECS: u64 = 25;

/// Largest frame a client may send, in bytes.
pub const MAX_CLIENT_FRAME_BYTES: usize = 64 * 1024;

/// Frames the client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Stream this run's log, starting after `after_seq` (0 or absent: from the beginning).
    Subscribe {
        /// The run.
        run_id: String,
        /// The last sequence number the client already has.
        #[serde(default)]
        after_seq: u64,
    },
    /// Stop streaming this run's log.
    Unsubscribe {
        /// The run.
        run_id: String,
    },
    /// Asks for a [`ServerFrame::Pong`] (a client-side liveness check).
    Ping,
}

/// Frames the server sends. Decoded by hand (see [`crate::tagged`]), to the same JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Every active run and the most recent finished ones, newest first.
    Snapshot {
        /// The runs.
        runs: Vec<Run>,
    },
    /// A run was created or changed.
    Run {
        /// The run as it is now.
        run: Box<Run>,
    },
    /// A run was deleted.
    RunRemoved {
        /// The run's id.
        run_id: String,
    },
    /// Log lines of a subscribed run, contiguous and in order.
    Log {
        /// The run.
        run_id: String,
        /// The lines.
        lines: Vec<LogLine>,
    },
    /// Lines `from_seq..=to_seq` of a subscribed run are no longer kept; the stream goes on after them.
    Gap {
        /// The run.
        run_id: String,
        /// First missing sequence number.
        from_seq: u64,
        /// Last missing sequence number.
        to_seq: u64,
    },
    /// The client fell behind; a fresh snapshot and the missed lines follow.
    Resync,
    /// Sent every [`HEARTBEAT_SECS`] seconds.
    Heartbeat,
    /// Answers [`ClientFrame::Ping`].
    Pong,
    /// A client frame could not be served (the socket stays open).
    Error {
        /// Machine-readable code, as in the REST error shape.
        code: String,
        /// What went wrong.
        message: String,
    },
}

impl<'de> Deserialize<'de> for ServerFrame {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const TAGS: &[&str] = &[
            "snapshot",
            "run",
            "run_removed",
            "log",
            "gap",
            "resync",
            "heartbeat",
            "pong",
            "error",
        ];
        let f = Fields::read(deserializer)?;
        Ok(match f.tag("type") {
            Some("snapshot") => ServerFrame::Snapshot { runs: f.req("runs")? },
            Some("run") => ServerFrame::Run { run: f.req("run")? },
            Some("run_removed") => ServerFrame::RunRemoved {
                run_id: f.req("run_id")?,
            },
            Some("log") => ServerFrame::Log {
                run_id: f.req("run_id")?,
                lines: f.req("lines")?,
            },
            Some("gap") => ServerFrame::Gap {
                run_id: f.req("run_id")?,
                from_seq: f.req("from_seq")?,
                to_seq: f.req("to_seq")?,
            },
            Some("resync") => ServerFrame::Resync,
            Some("heartbeat") => ServerFrame::Heartbeat,
            Some("pong") => ServerFrame::Pong,
            Some("error") => ServerFrame::Error {
                code: f.req("code")?,
                message: f.req("message")?,
            },
            tag => return Err(unknown(tag, TAGS)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shapes() {
        let frame: ClientFrame =
            serde_json::from_str(r#"{"type":"subscribe","run_id":"r1","after_seq":5}"#).unwrap();
        assert_eq!(
            frame,
            ClientFrame::Subscribe {
                run_id: "r1".into(),
                after_seq: 5
            }
        );
        let frame: ClientFrame = serde_json::from_str(r#"{"type":"subscribe","run_id":"r1"}"#).unwrap();
        assert_eq!(
            frame,
            ClientFrame::Subscribe {
                run_id: "r1".into(),
                after_seq: 0
            }
        );
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"subscribe","run_id":"r","x":1}"#).is_err());
        let gap = ServerFrame::Gap {
            run_id: "r".into(),
            from_seq: 1,
            to_seq: 9,
        };
        assert_eq!(
            serde_json::to_string(&gap).unwrap(),
            r#"{"type":"gap","run_id":"r","from_seq":1,"to_seq":9}"#
        );
        assert_eq!(
            serde_json::to_string(&ServerFrame::Resync).unwrap(),
            r#"{"type":"resync"}"#
        );
    }

    /// A run as the API writes it.
    fn run() -> Run {
        serde_json::from_value(serde_json::json!({
            "id": "01jabcdefghjkmnpqrstvwxyz0", "config_id": "c", "config_version": 2, "prompt": "p",
            "state": "running", "created_at": "2026-12-07T04:00:00.000Z", "started_at": "2026-12-07T04:00:01.000Z",
            "finished_at": null, "updated_at": "2026-12-07T04:00:02.000Z", "exit_code": null, "reason": null,
            "session_id": "s", "turns": 3, "cost_usd": 0.25, "branch": "agentfarm/x", "pr_url": null,
            "last_error": null, "diff": {"files": 1, "added": 2, "removed": 3}, "limit_resets_at": null,
            "last_seq": 7, "usage": {"requests": 1, "input_tokens": 2, "output_tokens": 3,
            "cache_creation_tokens": 4, "cache_read_tokens": 5}
        }))
        .unwrap()
    }

    /// Every frame the server sends reads back as itself; the match makes a new variant fail to compile here
    /// until it is added to the list.
    #[test]
    fn every_server_frame_round_trips() {
        let line: LogLine = serde_json::from_value(serde_json::json!({
            "seq": 4, "ts": "2026-12-07T04:00:03.000Z", "stream": "stdout", "text": "hi", "truncated": true
        }))
        .unwrap();
        let frames = [
            ServerFrame::Snapshot { runs: vec![run()] },
            ServerFrame::Run { run: Box::new(run()) },
            ServerFrame::RunRemoved { run_id: "r".into() },
            ServerFrame::Log {
                run_id: "r".into(),
                lines: vec![line],
            },
            ServerFrame::Gap {
                run_id: "r".into(),
                from_seq: 1,
                to_seq: 2,
            },
            ServerFrame::Resync,
            ServerFrame::Heartbeat,
            ServerFrame::Pong,
            ServerFrame::Error {
                code: "bad_request".into(),
                message: "m".into(),
            },
        ];
        let mut seen = std::collections::BTreeSet::new();
        for frame in &frames {
            seen.insert(match frame {
                ServerFrame::Snapshot { .. } => 0,
                ServerFrame::Run { .. } => 1,
                ServerFrame::RunRemoved { .. } => 2,
                ServerFrame::Log { .. } => 3,
                ServerFrame::Gap { .. } => 4,
                ServerFrame::Resync => 5,
                ServerFrame::Heartbeat => 6,
                ServerFrame::Pong => 7,
                ServerFrame::Error { .. } => 8,
            });
            let text = serde_json::to_string(frame).unwrap();
            assert_eq!(
                &serde_json::from_str::<ServerFrame>(&text).unwrap(),
                frame,
                "{text}"
            );
        }
        assert_eq!(seen.len(), frames.len(), "one of each variant");
        assert!(serde_json::from_str::<ServerFrame>(r#"{"type":"gap","run_id":"r"}"#).is_err());
        assert!(serde_json::from_str::<ServerFrame>(r#"{"type":"novel"}"#).is_err());
    }
}

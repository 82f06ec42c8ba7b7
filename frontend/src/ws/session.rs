//! The live socket's logic with no browser in it: which runs are subscribed and the last line seen of each,
//! what to send on (re)connect, what each server frame changes in the store, the reconnect backoff and the
//! heartbeat deadline. The driver (`ws::client`) feeds it events and carries out what it returns.

use std::collections::HashMap;

use agentfarm_shared::ws::{ClientFrame, HEARTBEAT_SECS, ServerFrame};

use crate::state::{Action, ConnState};

/// First reconnect delay, in milliseconds.
pub const BACKOFF_MIN_MS: u32 = 500;
/// Longest reconnect delay, in milliseconds.
pub const BACKOFF_MAX_MS: u32 = 10_000;
/// Silence after which the socket counts as dead, in milliseconds.
pub const STALE_AFTER_MS: f64 = ((HEARTBEAT_SECS + 10) * 1_000) as f64;

/// The socket's bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Subscribed runs, with how many views want each.
    subscribed: HashMap<String, u32>,
    /// The last sequence number received per run (kept after unsubscribing, so a return resumes).
    last_seq: HashMap<String, u64>,
    conn: ConnState,
    /// Failed connection attempts since the last good one.
    attempts: u32,
    /// When a frame last arrived (or the current attempt began), in milliseconds.
    last_heard_ms: f64,
}

impl Session {
    /// The connection's state.
    pub fn conn(&self) -> ConnState {
        self.conn
    }

    /// The last sequence number received for a run.
    pub fn last_seq(&self, run_id: &str) -> u64 {
        self.last_seq.get(run_id).copied().unwrap_or(0)
    }

    /// A connection attempt begins.
    pub fn connecting(&mut self, now_ms: f64) -> Action {
        self.conn = ConnState::Connecting;
        self.last_heard_ms = now_ms;
        Action::Conn(self.conn)
    }

    /// The socket opened: re-subscribe every run after its last line, so nothing is missed or repeated.
    pub fn opened(&mut self, now_ms: f64) -> (Action, Vec<ClientFrame>) {
        self.conn = ConnState::Live;
        self.last_heard_ms = now_ms;
        let mut ids: Vec<&String> = self.subscribed.keys().collect();
        crate::util::sort_by(&mut ids, Ord::cmp);
        let frames = ids
            .into_iter()
            .map(|run_id| ClientFrame::Subscribe {
                run_id: run_id.clone(),
                after_seq: self.last_seq(run_id),
            })
            .collect();
        (Action::Conn(self.conn), frames)
    }

    /// A frame arrived: what it changes in the store.
    pub fn received(&mut self, frame: ServerFrame, now_ms: f64) -> Vec<Action> {
        self.last_heard_ms = now_ms;
        match frame {
            ServerFrame::Snapshot { runs } => {
                // A snapshot means the server accepted us: the next drop starts the backoff afresh.
                self.attempts = 0;
                vec![Action::Snapshot(runs)]
            }
            ServerFrame::Run { run } => vec![Action::Upsert(*run)],
            ServerFrame::RunRemoved { run_id } => {
                self.last_seq.remove(&run_id);
                vec![Action::Remove(run_id)]
            }
            ServerFrame::Log { run_id, mut lines } => {
                let last = self.last_seq(&run_id);
                lines.retain(|line| line.seq > last);
                crate::util::sort_by(&mut lines, |a, b| a.seq.cmp(&b.seq));
                lines.dedup_by_key(|line| line.seq);
                match lines.last() {
                    Some(newest) => {
                        self.last_seq.insert(run_id.clone(), newest.seq);
                        vec![Action::Lines(run_id, lines)]
                    }
                    None => Vec::new(),
                }
            }
            ServerFrame::Gap {
                run_id,
                from_seq,
                to_seq,
            } => {
                let last = self.last_seq(&run_id);
                if to_seq > last {
                    self.last_seq.insert(run_id.clone(), to_seq);
                }
                vec![Action::Gap(run_id, from_seq, to_seq)]
            }
            ServerFrame::Error { code, message } => vec![Action::Toast(
                crate::state::ToastKind::Error,
                format!("Live stream: {message} ({code})"),
            )],
            ServerFrame::Resync | ServerFrame::Heartbeat | ServerFrame::Pong => Vec::new(),
        }
    }

    /// The socket closed (or could not open): the delay before the next attempt, in milliseconds.
    pub fn closed(&mut self) -> (Action, u32) {
        self.conn = ConnState::Offline;
        let delay = backoff_ms(self.attempts);
        self.attempts = self.attempts.saturating_add(1);
        (Action::Conn(self.conn), delay)
    }

    /// The page came back (visible, shown, online): retry at once, with a fresh backoff.
    pub fn woke(&mut self) {
        self.attempts = 0;
    }

    /// True when nothing arrived for too long: the socket is dead even if it looks open.
    pub fn is_stale(&self, now_ms: f64) -> bool {
        self.conn != ConnState::Offline && now_ms - self.last_heard_ms > STALE_AFTER_MS
    }

    /// A view wants a run's log. The frame to send now, if the socket is open and the run was not yet
    /// subscribed.
    pub fn subscribe(&mut self, run_id: &str) -> Option<ClientFrame> {
        let count = self.subscribed.entry(run_id.to_owned()).or_insert(0);
        *count += 1;
        (*count == 1 && self.conn == ConnState::Live).then(|| ClientFrame::Subscribe {
            run_id: run_id.to_owned(),
            after_seq: self.last_seq(run_id),
        })
    }

    /// A view no longer wants a run's log. The frame to send now, if it was the last such view.
    pub fn unsubscribe(&mut self, run_id: &str) -> Option<ClientFrame> {
        let count = self.subscribed.get_mut(run_id)?;
        *count = count.saturating_sub(1);
        if *count > 0 {
            return None;
        }
        self.subscribed.remove(run_id);
        (self.conn == ConnState::Live).then(|| ClientFrame::Unsubscribe {
            run_id: run_id.to_owned(),
        })
    }
}

/// The reconnect delay after `attempts` failed attempts: 0.5 s, 1 s, 2 s, 4 s, 8 s, then 10 s.
pub fn backoff_ms(attempts: u32) -> u32 {
    BACKOFF_MIN_MS
        .saturating_mul(1u32.checked_shl(attempts.min(16)).unwrap_or(u32::MAX))
        .min(BACKOFF_MAX_MS)
}

/// Reads a text frame from the server.
pub fn decode(text: &str) -> Result<ServerFrame, String> {
    crate::json::decode(text).map_err(|e| format!("unreadable frame from the server: {e}"))
}

/// Writes a frame for the server.
pub fn encode(frame: &ClientFrame) -> String {
    // Plain data with string keys always serializes.
    serde_json::to_string(frame).unwrap_or_default()
}

/// The socket's URL on the page's own origin: `wss://host/api/ws` for an `https:` page.
pub fn socket_url(protocol: &str, host: &str) -> String {
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    format!("{scheme}://{host}{}", agentfarm_shared::api::routes::WS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{log_line, run};
    use agentfarm_shared::run::RunState;

    fn subscribe(run_id: &str, after_seq: u64) -> ClientFrame {
        ClientFrame::Subscribe {
            run_id: run_id.into(),
            after_seq,
        }
    }

    fn log(run_id: &str, seqs: &[u64]) -> ServerFrame {
        ServerFrame::Log {
            run_id: run_id.into(),
            lines: seqs.iter().map(|&s| log_line(s, "x")).collect(),
        }
    }

    #[test]
    fn subscriptions_wait_for_the_socket_and_resume_after_the_last_line() {
        let mut s = Session::default();
        s.connecting(0.0);
        assert_eq!(s.subscribe("r1"), None, "not sent while connecting");
        let (action, frames) = s.opened(1.0);
        assert_eq!(action, Action::Conn(ConnState::Live));
        assert_eq!(frames, vec![subscribe("r1", 0)]);

        let actions = s.received(log("r1", &[1, 2, 3]), 2.0);
        assert!(matches!(&actions[..], [Action::Lines(id, lines)] if id == "r1" && lines.len() == 3));
        assert_eq!(s.last_seq("r1"), 3);

        // Reconnect: resume after 3.
        let (action, delay) = s.closed();
        assert_eq!((action, delay), (Action::Conn(ConnState::Offline), 500));
        s.connecting(3.0);
        assert_eq!(s.opened(4.0).1, vec![subscribe("r1", 3)]);
        // A late, repeated line is dropped; only the new ones pass.
        let actions = s.received(log("r1", &[2, 3, 4]), 5.0);
        assert!(
            matches!(&actions[..], [Action::Lines(_, lines)] if lines.iter().map(|l| l.seq).collect::<Vec<_>>() == [4])
        );
        assert!(s.received(log("r1", &[4]), 6.0).is_empty());
    }

    #[test]
    fn subscribing_while_live_sends_at_once_and_counts_views() {
        let mut s = Session::default();
        s.opened(0.0);
        assert_eq!(s.subscribe("r"), Some(subscribe("r", 0)));
        assert_eq!(s.subscribe("r"), None, "a second view shares the subscription");
        assert_eq!(s.unsubscribe("r"), None);
        assert_eq!(
            s.unsubscribe("r"),
            Some(ClientFrame::Unsubscribe { run_id: "r".into() })
        );
        assert_eq!(s.unsubscribe("r"), None);
        assert!(s.opened(1.0).1.is_empty(), "no longer re-subscribed");
        s.received(log("r", &[1, 2]), 2.0);
        assert_eq!(s.subscribe("r"), Some(subscribe("r", 2)), "a return resumes");
    }

    #[test]
    fn gaps_advance_the_cursor_and_removals_forget_it() {
        let mut s = Session::default();
        s.opened(0.0);
        s.subscribe("r");
        let actions = s.received(
            ServerFrame::Gap {
                run_id: "r".into(),
                from_seq: 1,
                to_seq: 10,
            },
            1.0,
        );
        assert_eq!(actions, vec![Action::Gap("r".into(), 1, 10)]);
        assert_eq!(s.last_seq("r"), 10);
        assert_eq!(
            s.received(ServerFrame::RunRemoved { run_id: "r".into() }, 2.0),
            vec![Action::Remove("r".into())]
        );
        assert_eq!(s.last_seq("r"), 0);
    }

    #[test]
    fn run_frames_become_store_actions() {
        let mut s = Session::default();
        let r = run("r", RunState::Running, 1);
        assert_eq!(
            s.received(
                ServerFrame::Snapshot {
                    runs: vec![r.clone()]
                },
                0.0
            ),
            vec![Action::Snapshot(vec![r.clone()])]
        );
        assert_eq!(
            s.received(
                ServerFrame::Run {
                    run: Box::new(r.clone())
                },
                0.0
            ),
            vec![Action::Upsert(r)]
        );
        assert!(s.received(ServerFrame::Heartbeat, 0.0).is_empty());
        assert!(s.received(ServerFrame::Resync, 0.0).is_empty());
    }

    #[test]
    fn backoff_grows_to_ten_seconds_and_resets_on_a_snapshot() {
        assert_eq!(
            (0..7).map(backoff_ms).collect::<Vec<_>>(),
            [500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]
        );
        assert_eq!(backoff_ms(u32::MAX), 10_000);
        let mut s = Session::default();
        for _ in 0..4 {
            s.closed();
        }
        assert_eq!(s.closed().1, 8_000);
        s.received(ServerFrame::Snapshot { runs: vec![] }, 0.0);
        assert_eq!(s.closed().1, 500);
        s.closed();
        s.woke();
        assert_eq!(s.closed().1, 500);
    }

    #[test]
    fn heartbeat_deadline() {
        let mut s = Session::default();
        s.opened(0.0);
        assert!(!s.is_stale(STALE_AFTER_MS));
        assert!(s.is_stale(STALE_AFTER_MS + 1.0));
        s.received(ServerFrame::Heartbeat, 30_000.0);
        assert!(!s.is_stale(60_000.0));
        s.closed();
        assert!(!s.is_stale(1e12), "an offline socket waits for its retry instead");
    }

    #[test]
    fn wire_helpers() {
        assert_eq!(socket_url("https:", "farm.ts.net"), "wss://farm.ts.net/api/ws");
        assert_eq!(
            socket_url("http:", "127.0.0.1:8080"),
            "ws://127.0.0.1:8080/api/ws"
        );
        assert_eq!(
            encode(&subscribe("r", 7)),
            r#"{"type":"subscribe","run_id":"r","after_seq":7}"#
        );
        assert_eq!(decode(r#"{"type":"pong"}"#), Ok(ServerFrame::Pong));
        assert!(decode("nope").is_err());
    }
}

//! The app's one store (a `use_reducer`, shared through a context): runs by id, each watched run's log, the
//! configs, the live connection's state, optimistic stops and toasts. The reducer is pure and tested on the
//! host.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use agentfarm_shared::config::AgentConfig;
use agentfarm_shared::log::LogLine;
use agentfarm_shared::run::Run;
use yew::prelude::*;

use crate::transcript::ParsedLine;

/// The live socket's state, for the dot in the top bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnState {
    /// Opening the socket.
    #[default]
    Connecting,
    /// Open and hearing from the server.
    Live,
    /// Closed; a reconnect is scheduled.
    Offline,
}

impl ConnState {
    /// The name used in `data-state` and CSS.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::Connecting => "connecting",
            ConnState::Live => "live",
            ConnState::Offline => "offline",
        }
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            ConnState::Connecting => "Connecting…",
            ConnState::Live => "Live",
            ConnState::Offline => "Offline, reconnecting",
        }
    }
}

/// What the client holds of one run's log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLog {
    /// Lines in order, each read once.
    pub lines: Vec<Rc<ParsedLine>>,
    /// Ranges of lines the server no longer keeps (first, last).
    pub gaps: Vec<(u64, u64)>,
}

impl RunLog {
    /// The newest sequence number held (0 when none).
    pub fn last_seq(&self) -> u64 {
        self.lines.last().map_or(0, |l| l.line.seq)
    }

    /// A one-line summary of the newest line that shows something.
    pub fn summary(&self) -> Option<String> {
        self.lines.iter().rev().take(200).find_map(|l| l.summary())
    }
}

/// How a toast looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToastKind {
    /// Something worked.
    Info,
    /// Something failed.
    Error,
}

/// A short message at the bottom of the screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    /// Its id, for dismissing.
    pub id: u32,
    /// How it looks.
    pub kind: ToastKind,
    /// What it says.
    pub text: String,
}

/// Everything the app knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Store {
    /// Runs by id.
    pub runs: HashMap<String, Run>,
    /// Logs of the runs the client watched, by run id.
    pub logs: HashMap<String, Rc<RunLog>>,
    /// Configs, once loaded.
    pub configs: Option<Vec<AgentConfig>>,
    /// The live socket's state.
    pub conn: ConnState,
    /// Runs the owner asked to stop that have not ended yet.
    pub stopping: HashSet<String>,
    /// Toasts on screen.
    pub toasts: Vec<Toast>,
    next_toast: u32,
}

/// Every change to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The server's snapshot of active and recent runs.
    Snapshot(Vec<Run>),
    /// A run as it is now (from the socket or a response).
    Upsert(Run),
    /// Runs from a list request.
    UpsertMany(Vec<Run>),
    /// A run was deleted.
    Remove(String),
    /// New lines of a run's log.
    Lines(String, Vec<LogLine>),
    /// Lines of a run's log that are no longer kept.
    Gap(String, u64, u64),
    /// The socket's state changed.
    Conn(ConnState),
    /// The config list.
    Configs(Vec<AgentConfig>),
    /// A created or updated config.
    UpsertConfig(AgentConfig),
    /// A deleted config.
    RemoveConfig(String),
    /// The owner asked to stop a run (true), or the request failed (false).
    Stopping(String, bool),
    /// Shows a toast.
    Toast(ToastKind, String),
    /// Hides a toast.
    Dismiss(u32),
}

impl Store {
    /// Runs ordered for the agents list: active (and queued) first, then ended ones; newest first in each.
    pub fn ordered_runs(&self) -> Vec<&Run> {
        let mut runs: Vec<&Run> = self.runs.values().collect();
        crate::util::sort_by(&mut runs, |a, b| {
            a.state
                .is_terminal()
                .cmp(&b.state.is_terminal())
                .then_with(|| b.created_at.cmp(&a.created_at))
                .then_with(|| b.id.cmp(&a.id))
        });
        runs
    }

    /// A config's display name, when the configs are loaded.
    pub fn config_name(&self, id: &str) -> Option<&str> {
        self.configs
            .as_ref()?
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.spec.name.as_str())
    }

    /// True while the owner's stop request for this run is pending.
    pub fn is_stopping(&self, run: &Run) -> bool {
        !run.state.is_terminal() && self.stopping.contains(&run.id)
    }

    fn upsert(&mut self, run: Run) {
        if run.state.is_terminal() {
            self.stopping.remove(&run.id);
        }
        match self.runs.get(&run.id) {
            // Keep the newer of the two: a slow list response must not undo a live update.
            Some(known) if known.updated_at > run.updated_at => {}
            _ => {
                self.runs.insert(run.id.clone(), run);
            }
        }
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Snapshot(runs) => {
                let fresh: HashSet<String> = runs.iter().map(|r| r.id.clone()).collect();
                // A snapshot lists every active run: one we knew as active and that is missing has ended and
                // fallen out of "recent" or was deleted; ended runs we know stay (they cannot change).
                self.runs
                    .retain(|id, run| fresh.contains(id) || run.state.is_terminal());
                for run in runs {
                    self.upsert(run);
                }
            }
            Action::Upsert(run) => self.upsert(run),
            Action::UpsertMany(runs) => runs.into_iter().for_each(|run| self.upsert(run)),
            Action::Remove(id) => {
                self.runs.remove(&id);
                self.logs.remove(&id);
                self.stopping.remove(&id);
            }
            Action::Lines(id, lines) => {
                let log = Rc::make_mut(self.logs.entry(id).or_default());
                for line in lines {
                    if line.seq > log.last_seq() {
                        log.lines.push(Rc::new(ParsedLine::new(line)));
                    }
                }
            }
            Action::Gap(id, from, to) => {
                let log = Rc::make_mut(self.logs.entry(id).or_default());
                if !log.gaps.contains(&(from, to)) {
                    log.gaps.push((from, to));
                }
            }
            Action::Conn(conn) => self.conn = conn,
            Action::Configs(mut configs) => {
                crate::util::sort_by(&mut configs, |a, b| {
                    a.spec
                        .name
                        .to_ascii_lowercase()
                        .cmp(&b.spec.name.to_ascii_lowercase())
                });
                self.configs = Some(configs);
            }
            Action::UpsertConfig(config) => {
                if let Some(configs) = &mut self.configs {
                    match configs.iter_mut().find(|c| c.id == config.id) {
                        Some(known) => *known = config,
                        None => configs.push(config),
                    }
                }
            }
            Action::RemoveConfig(id) => {
                if let Some(configs) = &mut self.configs {
                    configs.retain(|c| c.id != id);
                }
            }
            Action::Stopping(id, true) => {
                self.stopping.insert(id);
            }
            Action::Stopping(id, false) => {
                self.stopping.remove(&id);
            }
            Action::Toast(kind, text) => {
                self.next_toast += 1;
                self.toasts.push(Toast {
                    id: self.next_toast,
                    kind,
                    text,
                });
                if self.toasts.len() > 3 {
                    self.toasts.remove(0);
                }
            }
            Action::Dismiss(id) => self.toasts.retain(|t| t.id != id),
        }
    }
}

/// The reducer's state: the store behind an `Rc`, so each change yields a new snapshot that the context can
/// tell apart by pointer.
#[derive(Debug, Default)]
pub struct Root(pub Rc<Store>);

impl Reducible for Root {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = Store::clone(&self.0);
        next.apply(action);
        Rc::new(Root(Rc::new(next)))
    }
}

/// The store as components see it: the state and a way to change it. Equal when the state is the same
/// object, so consumers re-render on every change without comparing the whole store.
#[derive(Clone)]
pub struct StoreCtx {
    /// The current state.
    pub state: Rc<Store>,
    /// Sends actions to the reducer.
    pub dispatch: Callback<Action>,
}

impl PartialEq for StoreCtx {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.state, &other.state)
    }
}

impl StoreCtx {
    /// Shows an error toast.
    pub fn error(&self, text: impl Into<String>) {
        self.dispatch.emit(Action::Toast(ToastKind::Error, text.into()));
    }

    /// Shows an info toast.
    pub fn info(&self, text: impl Into<String>) {
        self.dispatch.emit(Action::Toast(ToastKind::Info, text.into()));
    }
}

/// The store from the context (an empty one outside the provider, which only happens in a broken tree).
#[hook]
pub fn use_store() -> StoreCtx {
    use_context::<StoreCtx>().unwrap_or_else(|| StoreCtx {
        state: Rc::default(),
        dispatch: Callback::noop(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use agentfarm_shared::log::LogStream;
    use agentfarm_shared::run::RunState;
    use chrono::DateTime;

    pub(crate) fn run(id: &str, state: RunState, created: i64) -> Run {
        let at = DateTime::from_timestamp(created, 0).unwrap();
        Run {
            id: id.into(),
            config_id: "c".into(),
            config_version: 1,
            prompt: "p".into(),
            state,
            created_at: at,
            started_at: None,
            finished_at: None,
            updated_at: at,
            exit_code: None,
            reason: None,
            session_id: None,
            turns: None,
            cost_usd: None,
            branch: None,
            pr_url: None,
            last_error: None,
            diff: None,
            limit_resets_at: None,
            last_seq: 0,
            usage: Default::default(),
        }
    }

    pub(crate) fn log_line(seq: u64, text: &str) -> LogLine {
        LogLine {
            seq,
            ts: DateTime::from_timestamp(0, 0).unwrap(),
            stream: LogStream::Stdout,
            text: text.into(),
            truncated: false,
        }
    }

    fn reduce(store: Store, action: Action) -> Store {
        let root = Rc::new(Root(Rc::new(store))).reduce(action);
        Store::clone(&root.0)
    }

    #[test]
    fn active_runs_come_first_then_newest() {
        let mut store = Store::default();
        store.apply(Action::UpsertMany(vec![
            run("old-done", RunState::Succeeded, 1),
            run("new-done", RunState::Failed, 5),
            run("old-active", RunState::Running, 2),
            run("queued", RunState::Queued, 3),
        ]));
        let ids: Vec<&str> = store.ordered_runs().iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["queued", "old-active", "new-done", "old-done"]);
    }

    #[test]
    fn older_updates_do_not_win() {
        let mut store = Store::default();
        let mut newer = run("r", RunState::Succeeded, 1);
        newer.updated_at = DateTime::from_timestamp(10, 0).unwrap();
        store.apply(Action::Upsert(newer));
        store.apply(Action::UpsertMany(vec![run("r", RunState::Running, 1)]));
        assert_eq!(store.runs["r"].state, RunState::Succeeded);
    }

    #[test]
    fn snapshot_drops_vanished_active_runs_and_keeps_ended_ones() {
        let mut store = Store::default();
        store.apply(Action::UpsertMany(vec![
            run("gone", RunState::Running, 1),
            run("ended", RunState::Stopped, 1),
        ]));
        store.apply(Action::Snapshot(vec![run("new", RunState::Queued, 2)]));
        let mut ids: Vec<&String> = store.runs.keys().collect();
        ids.sort();
        assert_eq!(ids, ["ended", "new"]);
    }

    #[test]
    fn lines_are_never_duplicated() {
        let store = reduce(
            Store::default(),
            Action::Lines("r".into(), vec![log_line(1, "a"), log_line(2, "b")]),
        );
        let store = reduce(
            store,
            Action::Lines("r".into(), vec![log_line(2, "b"), log_line(3, "c")]),
        );
        let seqs: Vec<u64> = store.logs["r"].lines.iter().map(|l| l.line.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(store.logs["r"].summary().as_deref(), Some("c"));
        let store = reduce(store, Action::Remove("r".into()));
        assert!(store.logs.is_empty());
    }

    #[test]
    fn stopping_clears_when_the_run_ends() {
        let mut store = Store::default();
        store.apply(Action::Upsert(run("r", RunState::Running, 1)));
        store.apply(Action::Stopping("r".into(), true));
        assert!(store.is_stopping(&store.runs["r"]));
        let mut ended = run("r", RunState::Stopped, 1);
        ended.updated_at = DateTime::from_timestamp(9, 0).unwrap();
        store.apply(Action::Upsert(ended));
        assert!(store.stopping.is_empty());
    }

    #[test]
    fn toasts_are_capped() {
        let mut store = Store::default();
        for i in 0..5 {
            store.apply(Action::Toast(ToastKind::Error, format!("t{i}")));
        }
        let texts: Vec<&str> = store.toasts.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["t2", "t3", "t4"]);
        let id = store.toasts[0].id;
        store.apply(Action::Dismiss(id));
        assert_eq!(store.toasts.len(), 2);
    }
}

//! SQLite reliability (security.md §4.2): crash durability (CI-22), contention with an online backup
//! (CI-23), migrations from every earlier schema (CI-24), the WAL at a graceful stop and the retention sweep
//! (CI-26). Shared here: a seeded random source, a client that keeps a ledger of what the server
//! acknowledged, and the checks of a database file.

mod contention;
mod crash;
mod migrations;
mod retention;
mod shutdown;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use agentfarm_shared::config::AgentConfig;
use agentfarm_shared::run::{Run, RunState};
use reqwest::{Method, StatusCode};
use rusqlite::{Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::harness::{ServerBinary, serve_command};

/// `agentfarm serve` on `dir`/data whose agent program does not exist: every run that starts fails at
/// once, so runs move through their states in the background while clients make changes.
pub fn without_agents(dir: &Path) -> tokio::process::Command {
    let mut command = serve_command(&dir.join("data"));
    command.arg("--agent-command").arg(dir.join("no-agent"));
    command
}

/// A small seeded generator (SplitMix64): the same seed replays the same choices.
pub struct Rng(u64);

impl Rng {
    /// `$AGENTFARM_TEST_SEED` when set, else one from the clock; printed, so that a failure can be replayed.
    pub fn from_env() -> Rng {
        let given = std::env::var("AGENTFARM_TEST_SEED")
            .ok()
            .filter(|seed| !seed.is_empty());
        let seed = given.map_or_else(
            || {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap();
                u64::try_from(now.as_nanos() % u128::from(u64::MAX)).unwrap()
            },
            |seed| seed.parse().expect("AGENTFARM_TEST_SEED must be a number"),
        );
        println!("seed {seed} (replay with AGENTFARM_TEST_SEED={seed})");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + usize::try_from(self.next() % u64::try_from(high - low + 1).unwrap()).unwrap()
    }

    /// A generator of its own, for one task.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next())
    }
}

/// Every change the server acknowledged with a 2xx: from then on the database must hold it.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Config versions: (config id, version) → task prompt.
    versions: BTreeMap<(String, u32), String>,
    /// Runs: id → (config id, config version).
    runs: BTreeMap<String, (String, u32)>,
    /// Runs acknowledged as ended, and how.
    ended: BTreeMap<String, RunState>,
    /// Runs acknowledged as deleted.
    deleted: BTreeSet<String>,
    /// Runs asked to be deleted: without an answer (the server was killed), either is right.
    deleting: BTreeSet<String>,
}

impl Ledger {
    /// A config version the server answered with.
    pub fn config(&mut self, config: &AgentConfig) {
        self.versions.insert(
            (config.id.clone(), config.version),
            config.spec.task_prompt.clone(),
        );
    }

    /// A run as the server answered with it.
    pub fn run(&mut self, run: &Run) {
        self.runs
            .insert(run.id.clone(), (run.config_id.clone(), run.config_version));
        if run.state.is_terminal() {
            self.ended.insert(run.id.clone(), run.state);
        }
    }

    /// A run the server answered it deleted.
    pub fn deleted(&mut self, id: &str) {
        self.deleted.insert(id.to_owned());
    }

    /// A run about to be asked to be deleted.
    pub fn deleting(&mut self, id: &str) {
        self.deleting.insert(id.to_owned());
    }

    /// What of the ledger the database at `db` lacks (empty: it holds every acknowledged change).
    pub fn missing_in(&self, db: &Path) -> Vec<String> {
        let db = Connection::open(db).unwrap();
        let mut missing = Vec::new();
        for ((id, version), prompt) in &self.versions {
            let spec: Option<String> = db
                .query_row(
                    "SELECT spec FROM config_versions WHERE config_id = ?1 AND version = ?2",
                    rusqlite::params![id, version],
                    |row| row.get(0),
                )
                .optional()
                .unwrap();
            let stored = spec
                .map(|spec| serde_json::from_str::<serde_json::Value>(&spec).unwrap()["task_prompt"].clone());
            if stored.as_ref().and_then(|p| p.as_str()) != Some(prompt) {
                missing.push(format!("config {id} version {version} ({prompt:?}): {stored:?}"));
            }
            let current: Option<u32> = db
                .query_row("SELECT current_version FROM configs WHERE id = ?1", [id], |row| {
                    row.get(0)
                })
                .optional()
                .unwrap();
            if current.is_none_or(|current| current < *version) {
                missing.push(format!(
                    "config {id} is at version {current:?}, acknowledged {version}"
                ));
            }
        }
        for (id, launched) in &self.runs {
            let stored: Option<(String, u32, String)> = db
                .query_row(
                    "SELECT config_id, config_version, state FROM runs WHERE id = ?1",
                    [id],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .unwrap();
            match (stored, self.deleted.contains(id)) {
                (Some(_), true) => missing.push(format!("run {id} was deleted, yet it is there")),
                (None, false) if !self.deleting.contains(id) => missing.push(format!("run {id} is gone")),
                (Some((config, version, state)), false) => {
                    if (&config, version) != (&launched.0, launched.1) {
                        missing.push(format!(
                            "run {id} is of {config} v{version}, launched {launched:?}"
                        ));
                    }
                    if let Some(ended) = self.ended.get(id)
                        && ended.as_str() != state
                    {
                        missing.push(format!("run {id} is {state}, acknowledged {ended}"));
                    }
                }
                (None, _) => {}
            }
        }
        missing
    }
}

/// `PRAGMA integrity_check` of the database at `db`.
pub fn integrity(db: &Path) -> String {
    Connection::open(db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

/// The applied migrations of the database at `db`: (version, name, checksum, applied_at).
pub fn applied_migrations(db: &Path) -> Vec<(u32, String, String, i64)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A client of one server that writes every change the server acknowledges into a ledger, then counts it.
pub struct Recorder {
    url: String,
    http: reqwest::Client,
    ledger: Arc<Mutex<Ledger>>,
    acks: watch::Sender<usize>,
    /// Set when the server is about to be killed: from then on a failed request is expected.
    gone: AtomicBool,
}

impl Recorder {
    pub fn new(server: &ServerBinary, ledger: Arc<Mutex<Ledger>>) -> Arc<Recorder> {
        Arc::new(Recorder {
            url: server.url.clone(),
            http: server.http.clone(),
            ledger,
            acks: watch::channel(0).0,
            gone: AtomicBool::new(false),
        })
    }

    /// The number of acknowledged changes so far, as it grows.
    pub fn acks(&self) -> watch::Receiver<usize> {
        self.acks.subscribe()
    }

    /// Says that the server is about to go: requests that fail from now on end their client quietly.
    pub fn going(&self) {
        self.gone.store(true, Ordering::SeqCst);
    }

    /// `method path` with `body`; `None` when the server is gone on purpose.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<(StatusCode, Value)> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = async {
            let response = request.send().await?;
            let status = response.status();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
        };
        match response.await {
            Ok(answer) => Some(answer),
            Err(_) if self.gone.load(Ordering::SeqCst) => None,
            Err(err) => panic!("{method} {path}: {err}"),
        }
    }

    /// A change: `expected` or the test fails; the answer is recorded with `record` before it is counted.
    async fn change<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: StatusCode,
        record: impl FnOnce(&mut Ledger, &T),
    ) -> Option<T> {
        let (status, answer) = self.request(method.clone(), path, body).await?;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        let value: T = serde_json::from_value(answer).unwrap();
        record(&mut self.ledger.lock().unwrap(), &value);
        self.acks.send_modify(|n| *n += 1);
        Some(value)
    }

    pub async fn create_config(&self, name: &str, task: &str) -> Option<AgentConfig> {
        let body = json!({"name": name, "task_prompt": task});
        self.change(
            Method::POST,
            "/api/configs",
            Some(body),
            StatusCode::CREATED,
            Ledger::config,
        )
        .await
    }

    pub async fn update_config(&self, id: &str, name: &str, task: &str) -> Option<AgentConfig> {
        let body = json!({"name": name, "task_prompt": task});
        let path = format!("/api/configs/{id}");
        self.change(Method::PUT, &path, Some(body), StatusCode::OK, Ledger::config)
            .await
    }

    pub async fn launch(&self, config_id: &str) -> Option<Run> {
        let body = json!({"config_id": config_id, "prompt": "go"});
        self.change(
            Method::POST,
            "/api/runs",
            Some(body),
            StatusCode::CREATED,
            Ledger::run,
        )
        .await
    }

    pub async fn stop(&self, id: &str) -> Option<Run> {
        let path = format!("/api/runs/{id}/stop");
        self.change(Method::POST, &path, None, StatusCode::ACCEPTED, Ledger::run)
            .await
    }

    pub async fn delete_run(&self, id: &str) -> Option<()> {
        self.ledger.lock().unwrap().deleting(id);
        let path = format!("/api/runs/{id}");
        self.change(
            Method::DELETE,
            &path,
            None,
            StatusCode::NO_CONTENT,
            |ledger, _: &Value| {
                ledger.deleted(id);
            },
        )
        .await
        .map(drop)
    }
}

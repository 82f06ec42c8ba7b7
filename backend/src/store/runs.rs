//! Runs: insert, validated state transitions, metadata, queries and deletion.

use agentfarm_shared::run::{DiffSummary, Run, RunState, RunUsage};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::{Durability, Store, StoreError, from_millis, to_millis};

/// A run about to be stored as `queued`.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id (lowercase ULID).
    pub id: String,
    /// The config it launches.
    pub config_id: String,
    /// The config version it launches.
    pub config_version: u32,
    /// Its task prompt.
    pub prompt: String,
    /// The git branch it works on.
    pub branch: String,
}

/// What a transition (or a metadata update) changes besides the state. `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunPatch {
    /// Why the run is in its new state (replaces the previous reason on a transition).
    pub reason: Option<String>,
    /// The agent's exit code.
    pub exit_code: Option<i32>,
    /// Claude's session id.
    pub session_id: Option<String>,
    /// Turns to add to the run's count (Claude reports them per turn of the conversation).
    pub add_turns: Option<u32>,
    /// Cost so far.
    pub cost_usd: Option<f64>,
    /// The agent's branch.
    pub branch: Option<String>,
    /// The agent's pull request.
    pub pr_url: Option<String>,
    /// The latest error.
    pub last_error: Option<String>,
    /// The size of the branch's changes (replaces the stored one).
    pub diff: Option<DiffSummary>,
    /// When a usage limit that stopped the agent resets.
    pub limit_resets_at: Option<DateTime<Utc>>,
    /// Where the runtime resumes reading the run's output (see `RunEvent::Line`).
    pub log_cursor: Option<String>,
    /// Replaces the reason without a transition: why a starting agent is still waiting.
    pub note: Option<String>,
}

impl RunPatch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == RunPatch::default()
    }
}

const SELECT_RUN: &str =
    "SELECT id, config_id, config_version, prompt, state, created_at, started_at, finished_at,
    updated_at, exit_code, reason, session_id, turns, cost_usd, branch, pr_url, last_error, last_seq,
    diff_files, diff_added, diff_removed, limit_resets_at,
    (SELECT json_array(requests, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens)
     FROM run_usage WHERE run_usage.run_id = runs.id) FROM runs";

const ACTIVE: &str = "('starting', 'running', 'waiting_for_input')";

const TERMINAL: &str = "('succeeded', 'failed', 'stopped', 'lost')";

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<Run> {
    let state: String = row.get(4)?;
    let state = state.parse::<RunState>().map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, err.into())
    })?;
    Ok(Run {
        id: row.get(0)?,
        config_id: row.get(1)?,
        config_version: row.get(2)?,
        prompt: row.get(3)?,
        state,
        created_at: from_millis(row.get(5)?),
        started_at: row.get::<_, Option<i64>>(6)?.map(from_millis),
        finished_at: row.get::<_, Option<i64>>(7)?.map(from_millis),
        updated_at: from_millis(row.get(8)?),
        exit_code: row.get(9)?,
        reason: row.get(10)?,
        session_id: row.get(11)?,
        turns: row.get(12)?,
        cost_usd: row.get(13)?,
        branch: row.get(14)?,
        pr_url: row.get(15)?,
        last_error: row.get(16)?,
        last_seq: row.get(17)?,
        diff: match (row.get(18)?, row.get(19)?, row.get(20)?) {
            (Some(files), Some(added), Some(removed)) => Some(DiffSummary {
                files,
                added,
                removed,
            }),
            _ => None,
        },
        limit_resets_at: row.get::<_, Option<i64>>(21)?.map(from_millis),
        usage: match row.get::<_, Option<String>>(22)? {
            Some(counts) => {
                let [
                    requests,
                    input_tokens,
                    output_tokens,
                    cache_creation_tokens,
                    cache_read_tokens,
                ] = serde_json::from_str::<[u64; 5]>(&counts).map_err(|err| {
                    rusqlite::Error::FromSqlConversionFailure(22, rusqlite::types::Type::Text, err.into())
                })?;
                RunUsage {
                    requests,
                    input_tokens,
                    output_tokens,
                    cache_creation_tokens,
                    cache_read_tokens,
                }
            }
            None => RunUsage::default(),
        },
    })
}

pub(super) fn load(conn: &Connection, id: &str) -> Result<Run, StoreError> {
    conn.query_row(&format!("{SELECT_RUN} WHERE id = ?1"), [id], run_from_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("run {id}")))
}

/// Writes the metadata fields of `patch` that are set (`reason` only from `note`: transitions set it).
pub(super) fn apply_patch(conn: &Connection, id: &str, patch: &RunPatch, now: i64) -> Result<(), StoreError> {
    let diff = patch.diff;
    if patch.limit_resets_at.is_some() {
        let first_time: bool = conn.query_row(
            "SELECT limit_resets_at IS NULL FROM runs WHERE id = ?1",
            [id],
            |row| row.get(0),
        )?;
        if first_time {
            super::push::enqueue(conn, id, super::push::Kind::LimitHit, now)?;
        }
    }
    conn.execute(
        "UPDATE runs SET updated_at = ?2,
            exit_code = COALESCE(?3, exit_code),
            session_id = COALESCE(?4, session_id),
            turns = CASE WHEN ?5 IS NULL THEN turns ELSE COALESCE(turns, 0) + ?5 END,
            cost_usd = COALESCE(?6, cost_usd),
            branch = COALESCE(?7, branch),
            pr_url = COALESCE(?8, pr_url),
            last_error = COALESCE(?9, last_error),
            diff_files = COALESCE(?10, diff_files),
            diff_added = COALESCE(?11, diff_added),
            diff_removed = COALESCE(?12, diff_removed),
            limit_resets_at = COALESCE(?13, limit_resets_at),
            log_cursor = COALESCE(?14, log_cursor),
            reason = COALESCE(?15, reason)
         WHERE id = ?1",
        params![
            id,
            now,
            patch.exit_code,
            patch.session_id,
            patch.add_turns,
            patch.cost_usd,
            patch.branch,
            patch.pr_url,
            patch.last_error,
            diff.map(|d| d.files),
            diff.map(|d| d.added),
            diff.map(|d| d.removed),
            patch.limit_resets_at.map(to_millis),
            patch.log_cursor,
            patch.note,
        ],
    )?;
    Ok(())
}

/// Moves run `id` to `to` (from `from` only, when given), applying `patch`.
fn transition(
    conn: &Connection,
    id: &str,
    from: Option<RunState>,
    to: RunState,
    patch: &RunPatch,
    now: DateTime<Utc>,
) -> Result<Run, StoreError> {
    let run = load(conn, id)?;
    if !run.state.can_become(to) || from.is_some_and(|from| from != run.state) {
        return Err(StoreError::InvalidTransition {
            run_id: id.to_owned(),
            from: run.state,
            to,
        });
    }
    let now = to_millis(now);
    apply_patch(conn, id, patch, now)?;
    if to.is_terminal() {
        super::capabilities::revoke(conn, id)?;
    }
    if let Some(kind) = super::push::Kind::of_state(to) {
        super::push::enqueue(conn, id, kind, now)?;
    }
    conn.execute(
        "UPDATE runs SET state = ?2, reason = ?3,
            started_at = CASE WHEN ?2 IN ('running', 'waiting_for_input')
                         THEN COALESCE(started_at, ?4) ELSE started_at END,
            finished_at = CASE WHEN ?5 THEN ?4 ELSE finished_at END
         WHERE id = ?1",
        params![id, to.as_str(), patch.reason, now, to.is_terminal()],
    )?;
    load(conn, id)
}

impl Store {
    /// Stores a new run as `queued`.
    pub async fn insert_run(&self, run: NewRun, now: DateTime<Utc>) -> Result<Run, StoreError> {
        self.call_write(Durability::Full, move |tx| {
            let now = to_millis(now);
            tx.execute(
                "INSERT INTO runs (id, config_id, config_version, prompt, branch, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?6)",
                params![run.id, run.config_id, run.config_version, run.prompt, run.branch, now],
            )?;
            load(tx, &run.id)
        })
        .await
    }

    /// Moves run `id` to `to` if its state machine allows it, applying `patch`; durable when it returns.
    pub async fn transition(
        &self,
        id: String,
        to: RunState,
        patch: RunPatch,
        now: DateTime<Utc>,
    ) -> Result<Run, StoreError> {
        self.call_write(Durability::Full, move |tx| {
            transition(tx, &id, None, to, &patch, now)
        })
        .await
    }

    /// [`Store::transition`], but only while run `id` is still `from` (else `InvalidTransition`): for a
    /// change decided on a state read earlier, which another task may have changed since.
    pub async fn transition_from(
        &self,
        id: String,
        from: RunState,
        to: RunState,
        patch: RunPatch,
        now: DateTime<Utc>,
    ) -> Result<Run, StoreError> {
        self.call_write(Durability::Full, move |tx| {
            transition(tx, &id, Some(from), to, &patch, now)
        })
        .await
    }

    /// Run `id`.
    pub async fn run(&self, id: String) -> Result<Run, StoreError> {
        self.call(move |conn| load(conn, &id)).await
    }

    /// Runs, newest first, optionally only those in `state` or of `config_id`.
    pub async fn runs(
        &self,
        state: Option<RunState>,
        config_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<Run>, StoreError> {
        self.call(move |conn| {
            let mut filters = Vec::new();
            let mut args: Vec<String> = Vec::new();
            if let Some(state) = state {
                args.push(state.as_str().into());
                filters.push(format!("state = ?{}", args.len()));
            }
            if let Some(config_id) = config_id {
                args.push(config_id);
                filters.push(format!("config_id = ?{}", args.len()));
            }
            let filter = if filters.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", filters.join(" AND "))
            };
            let mut stmt = conn.prepare(&format!("{SELECT_RUN}{filter} ORDER BY id DESC LIMIT {limit}"))?;
            Ok(stmt
                .query_map(params_from_iter(args), run_from_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Runs that have an agent (starting, running or waiting for input), oldest first.
    pub async fn active_runs(&self) -> Result<Vec<Run>, StoreError> {
        self.call(|conn| {
            let mut stmt = conn.prepare(&format!("{SELECT_RUN} WHERE state IN {ACTIVE} ORDER BY id"))?;
            Ok(stmt.query_map([], run_from_row)?.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// How many runs are in each state that has any.
    pub async fn count_by_state(&self) -> Result<Vec<(RunState, u64)>, StoreError> {
        self.call(|conn| {
            let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM runs GROUP BY state")?;
            let counts = stmt.query_map([], |row| {
                let state: String = row.get(0)?;
                let state = state.parse::<RunState>().map_err(|err| {
                    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, err.into())
                })?;
                Ok((state, row.get(1)?))
            })?;
            Ok(counts.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Where the runtime resumes reading run `id`'s output, if it said.
    pub async fn log_cursor(&self, id: String) -> Result<Option<String>, StoreError> {
        self.call(move |conn| {
            conn.query_row("SELECT log_cursor FROM runs WHERE id = ?1", [&id], |row| {
                row.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("run {id}")))
        })
        .await
    }

    /// Moves the oldest queued runs to `starting`, as many as keep the runs with an agent (starting, running
    /// or waiting for input) at most `max_active`, all in one commit; returns them, oldest first.
    pub async fn start_queued(&self, max_active: u32, now: DateTime<Utc>) -> Result<Vec<Run>, StoreError> {
        self.call_write(Durability::Full, move |tx| {
            let active: u32 = tx.query_row(
                &format!("SELECT COUNT(*) FROM runs WHERE state IN {ACTIVE}"),
                [],
                |row| row.get(0),
            )?;
            let queued = tx
                .prepare_cached("SELECT id FROM runs WHERE state = 'queued' ORDER BY id LIMIT ?1")?
                .query_map([max_active.saturating_sub(active)], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            queued
                .iter()
                .map(|id| {
                    transition(
                        tx,
                        id,
                        Some(RunState::Queued),
                        RunState::Starting,
                        &RunPatch::default(),
                        now,
                    )
                })
                .collect()
        })
        .await
    }

    /// Every active run plus the newest `recent` others, newest first: what a new client is shown.
    pub async fn snapshot_runs(&self, recent: u32) -> Result<Vec<Run>, StoreError> {
        self.call(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "{SELECT_RUN} WHERE state IN {ACTIVE} OR state = 'queued'
                 OR id IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?1) ORDER BY id DESC"
            ))?;
            Ok(stmt
                .query_map([recent], run_from_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Ids of the runs that ended before `before`, oldest first, except the newest run of each config (kept
    /// for what it shows about its config, and so that a later run can continue its branch).
    pub async fn expired_runs(&self, before: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.call(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT id FROM runs WHERE state IN {TERMINAL} AND COALESCE(finished_at, updated_at) < ?1
                 AND id NOT IN (SELECT MAX(id) FROM runs GROUP BY config_id) ORDER BY id"
            ))?;
            Ok(stmt
                .query_map([to_millis(before)], |row| row.get(0))?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Deletes run `id` and its log. Refused unless the run has ended.
    pub async fn delete_run(&self, id: String) -> Result<(), StoreError> {
        self.call_write(Durability::Full, move |tx| {
            let run = load(tx, &id)?;
            if !run.state.is_terminal() {
                return Err(StoreError::Conflict(format!(
                    "run {id} is {}; stop it before deleting it",
                    run.state
                )));
            }
            tx.execute("DELETE FROM runs WHERE id = ?1", [&id])?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use agentfarm_shared::config::ConfigSpec;

    use super::*;

    #[tokio::test]
    async fn a_transition_from_a_state_read_earlier_is_refused_once_the_run_moved_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("runs.db")).unwrap();
        let now = Utc::now();
        store
            .create_config("c".into(), ConfigSpec::new("c", "task"), now)
            .await
            .unwrap();
        let run = NewRun {
            id: "r1".into(),
            config_id: "c".into(),
            config_version: 1,
            prompt: "task".into(),
            branch: "agentfarm/r1".into(),
        };
        store.insert_run(run, now).await.unwrap();
        store
            .transition("r1".into(), RunState::Starting, RunPatch::default(), now)
            .await
            .unwrap();
        let refused = store
            .transition_from(
                "r1".into(),
                RunState::Queued,
                RunState::Stopped,
                RunPatch::default(),
                now,
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(StoreError::InvalidTransition {
                    from: RunState::Starting,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert_eq!(store.run("r1".into()).await.unwrap().state, RunState::Starting);
        let stopped = store
            .transition_from(
                "r1".into(),
                RunState::Starting,
                RunState::Stopped,
                RunPatch::default(),
                now,
            )
            .await
            .unwrap();
        assert_eq!(stopped.state, RunState::Stopped);
    }
}

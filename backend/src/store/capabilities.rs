//! Per-run capabilities (their hashes, while the run is active), what the model proxy counted per run, and the
//! subscription's usage window as the model last stated it.

use agentfarm_shared::run::{RunState, RunUsage};
use agentfarm_shared::usage::UsageWindow;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Durability, Store, StoreError, from_millis, to_millis};

/// The run a valid capability belongs to, with what the proxies need to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The run.
    pub run_id: String,
    /// Its config's repositories (`owner/repo` or `owner/repo@base`).
    pub repos: Vec<String>,
    /// The one branch it may push to.
    pub branch: String,
}

/// The subscription's usage window as the model's last answer stated it: its headers as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRecord {
    /// The `anthropic-ratelimit-unified-*` headers, names without that prefix.
    pub headers: Vec<(String, String)>,
    /// When they were read.
    pub observed_at: DateTime<Utc>,
}

/// Deletes run `id`'s capabilities: called in the transaction that ends the run.
pub(super) fn revoke(conn: &rusqlite::Connection, run_id: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM run_capabilities WHERE run_id = ?1", [run_id])?;
    Ok(())
}

impl Store {
    /// Gives run `run_id` the capability hashed as `token_sha256`. A relaunch after a restart adds one: an
    /// agent created before the restart keeps the one it holds. Refused unless the run is active.
    pub async fn issue_capability(
        &self,
        run_id: String,
        token_sha256: String,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call_write(Durability::Full, move |tx| {
            let run = super::runs::load(tx, &run_id)?;
            if run.state.is_terminal() || run.state == RunState::Queued {
                return Err(StoreError::InvalidTransition {
                    run_id,
                    from: run.state,
                    to: RunState::Starting,
                });
            }
            tx.execute(
                "INSERT INTO run_capabilities (token_sha256, run_id, issued_at) VALUES (?1, ?2, ?3)",
                params![token_sha256, run_id, to_millis(now)],
            )?;
            Ok(())
        })
        .await
    }

    /// The active run holding the capability hashed as `token_sha256`, if any.
    pub async fn capability_holder(&self, token_sha256: String) -> Result<Option<Holder>, StoreError> {
        self.call(move |conn| {
            let found: Option<(String, Option<String>, String)> = conn
                .query_row(
                    "SELECT runs.id, runs.branch, v.spec
                     FROM run_capabilities
                     JOIN runs ON runs.id = run_capabilities.run_id
                     JOIN config_versions v ON v.config_id = runs.config_id AND v.version = runs.config_version
                     WHERE run_capabilities.token_sha256 = ?1
                       AND runs.state IN ('starting', 'running', 'waiting_for_input')",
                    [token_sha256],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            found
                .map(|(run_id, branch, spec)| {
                    Ok(Holder {
                        run_id,
                        branch: branch.unwrap_or_default(),
                        repos: super::configs::spec_from_json(&spec)?.repos,
                    })
                })
                .transpose()
        })
        .await
    }

    /// Adds one model request and its tokens to run `run_id`'s count.
    pub async fn count_usage(&self, run_id: String, usage: RunUsage) -> Result<(), StoreError> {
        self.call_write(Durability::Normal, move |tx| {
            tx.execute(
                "INSERT INTO run_usage (run_id, requests, input_tokens, output_tokens, cache_creation_tokens,
                    cache_read_tokens) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (run_id) DO UPDATE SET requests = requests + excluded.requests,
                    input_tokens = input_tokens + excluded.input_tokens,
                    output_tokens = output_tokens + excluded.output_tokens,
                    cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
                    cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens",
                params![
                    run_id,
                    usage.requests,
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cache_creation_tokens,
                    usage.cache_read_tokens
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Keeps the usage window the model's latest answer stated.
    pub async fn set_usage_window(&self, window: WindowRecord) -> Result<(), StoreError> {
        self.call_write(Durability::Normal, move |tx| {
            let headers = serde_json::to_string(&window.headers)
                .map_err(|err| StoreError::Corrupt(format!("usage window headers: {err}")))?;
            tx.execute(
                "INSERT INTO usage_window (id, headers, observed_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET headers = excluded.headers, observed_at = excluded.observed_at",
                params![headers, to_millis(window.observed_at)],
            )?;
            Ok(())
        })
        .await
    }

    /// The usage window the model last stated, if it ever stated one.
    pub async fn usage_window(&self) -> Result<Option<UsageWindow>, StoreError> {
        self.call(|conn| {
            let row: Option<(String, i64)> = conn
                .query_row(
                    "SELECT headers, observed_at FROM usage_window WHERE id = 1",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((headers, observed_at)) = row else {
                return Ok(None);
            };
            let headers: Vec<(String, String)> = serde_json::from_str(&headers)
                .map_err(|err| StoreError::Corrupt(format!("usage window headers: {err}")))?;
            Ok(UsageWindow::from_headers(&headers, from_millis(observed_at)))
        })
        .await
    }
}

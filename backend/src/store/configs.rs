//! Configs and their immutable versions.

use agentfarm_shared::config::{AgentConfig, ConfigSpec, ConfigVersion};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Durability, Store, StoreError, from_millis, to_millis};

const SELECT_CONFIG: &str = "SELECT c.id, c.current_version, c.created_at, v.created_at, v.spec
    FROM configs c JOIN config_versions v ON v.config_id = c.id AND v.version = c.current_version";

pub(super) fn spec_from_json(json: &str) -> Result<ConfigSpec, StoreError> {
    serde_json::from_str(json).map_err(|err| StoreError::Corrupt(format!("config spec: {err}")))
}

fn spec_to_json(spec: &ConfigSpec) -> Result<String, StoreError> {
    serde_json::to_string(spec).map_err(|err| StoreError::Corrupt(format!("config spec: {err}")))
}

fn config_from_row(row: &Row<'_>) -> rusqlite::Result<(String, u32, i64, i64, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

fn assemble(
    (id, version, created, updated, spec): (String, u32, i64, i64, String),
) -> Result<AgentConfig, StoreError> {
    Ok(AgentConfig {
        id,
        version,
        created_at: from_millis(created),
        updated_at: from_millis(updated),
        spec: spec_from_json(&spec)?,
    })
}

fn load(conn: &Connection, id: &str) -> Result<AgentConfig, StoreError> {
    let row = conn
        .query_row(
            &format!("{SELECT_CONFIG} WHERE c.id = ?1 AND c.deleted_at IS NULL"),
            [id],
            config_from_row,
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("config {id}")))?;
    assemble(row)
}

fn add_version(tx: &Connection, id: &str, version: u32, spec: &str, now: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO config_versions (config_id, version, spec, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, version, spec, now],
    )?;
    Ok(())
}

impl Store {
    /// Creates config `id` at version 1. A deleted config of the same id comes back with its history and a
    /// new version; a live one is a conflict.
    pub async fn create_config(
        &self,
        id: String,
        spec: ConfigSpec,
        now: DateTime<Utc>,
    ) -> Result<AgentConfig, StoreError> {
        let json = spec_to_json(&spec)?;
        self.call_write(Durability::Full, move |tx| {
            let existing: Option<(u32, Option<i64>)> = tx
                .query_row("SELECT current_version, deleted_at FROM configs WHERE id = ?1", [&id], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            let now = to_millis(now);
            match existing {
                Some((_, None)) => {
                    return Err(StoreError::Conflict(format!("a config with id {id} already exists")));
                }
                Some((version, Some(_))) => {
                    add_version(tx, &id, version + 1, &json, now)?;
                    tx.execute(
                        "UPDATE configs SET current_version = ?2, created_at = ?3, updated_at = ?3,
                         deleted_at = NULL WHERE id = ?1",
                        params![id, version + 1, now],
                    )?;
                }
                None => {
                    tx.execute(
                        "INSERT INTO configs (id, current_version, created_at, updated_at) VALUES (?1, 1, ?2, ?2)",
                        params![id, now],
                    )?;
                    add_version(tx, &id, 1, &json, now)?;
                }
            }
            load(tx, &id)
        })
        .await
    }

    /// Makes `spec` the new current version of config `id`.
    pub async fn update_config(
        &self,
        id: String,
        spec: ConfigSpec,
        now: DateTime<Utc>,
    ) -> Result<AgentConfig, StoreError> {
        let json = spec_to_json(&spec)?;
        self.call_write(Durability::Full, move |tx| {
            let current = load(tx, &id)?;
            let now = to_millis(now);
            add_version(tx, &id, current.version + 1, &json, now)?;
            tx.execute(
                "UPDATE configs SET current_version = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, current.version + 1, now],
            )?;
            load(tx, &id)
        })
        .await
    }

    /// Config `id` at its current version.
    pub async fn config(&self, id: String) -> Result<AgentConfig, StoreError> {
        self.call(move |conn| load(conn, &id)).await
    }

    /// Every live config, by id.
    pub async fn configs(&self) -> Result<Vec<AgentConfig>, StoreError> {
        self.call(|conn| {
            let mut stmt = conn.prepare(&format!(
                "{SELECT_CONFIG} WHERE c.deleted_at IS NULL ORDER BY c.id"
            ))?;
            let rows = stmt
                .query_map([], config_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(assemble).collect()
        })
        .await
    }

    /// Every version of config `id`, newest first.
    pub async fn config_versions(&self, id: String) -> Result<Vec<ConfigVersion>, StoreError> {
        self.call(move |conn| {
            load(conn, &id)?;
            let mut stmt = conn.prepare(
                "SELECT version, created_at, spec FROM config_versions WHERE config_id = ?1 ORDER BY version DESC",
            )?;
            let rows = stmt
                .query_map([&id], |row| Ok((row.get::<_, u32>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(version, created, spec)| {
                    Ok(ConfigVersion {
                        config_id: id.clone(),
                        version,
                        created_at: from_millis(created),
                        spec: spec_from_json(&spec)?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Deletes config `id` (its versions stay for the runs that used them). Refused while any of its runs has
    /// not ended.
    pub async fn delete_config(&self, id: String, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.call_write(Durability::Full, move |tx| {
            load(tx, &id)?;
            let unfinished: u32 = tx.query_row(
                "SELECT COUNT(*) FROM runs WHERE config_id = ?1
                 AND state IN ('queued', 'starting', 'running', 'waiting_for_input')",
                [&id],
                |row| row.get(0),
            )?;
            if unfinished > 0 {
                return Err(StoreError::Conflict(format!(
                    "config {id} has {unfinished} run(s) that have not ended; stop them first"
                )));
            }
            tx.execute(
                "UPDATE configs SET deleted_at = ?2 WHERE id = ?1",
                params![id, to_millis(now)],
            )?;
            Ok(())
        })
        .await
    }
}

impl Store {
    /// Version `version` of config `id`, even if the config has since been deleted.
    pub async fn config_version(&self, id: String, version: u32) -> Result<ConfigSpec, StoreError> {
        self.call(move |conn| {
            let json: String = conn
                .query_row(
                    "SELECT spec FROM config_versions WHERE config_id = ?1 AND version = ?2",
                    params![id, version],
                    |row| row.get(0),
                )
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("config {id} version {version}")))?;
            spec_from_json(&json)
        })
        .await
    }
}

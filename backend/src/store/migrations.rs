//! Embedded, numbered schema migrations. Each runs once, in its own transaction, and is remembered with a
//! checksum; a database from a newer agentfarm, or one whose applied migrations differ, is refused.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Durability, StoreError, write};

/// A schema change: its number (from 1, no holes), a name, and its SQL.
struct Migration {
    version: u32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("sql/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "runner results",
        sql: include_str!("sql/0002_runner_results.sql"),
    },
    Migration {
        version: 3,
        name: "runtime cursor",
        sql: include_str!("sql/0003_runtime_cursor.sql"),
    },
    Migration {
        version: 4,
        name: "push",
        sql: include_str!("sql/0004_push.sql"),
    },
    Migration {
        version: 5,
        name: "capabilities",
        sql: include_str!("sql/0005_capabilities.sql"),
    },
];

/// The newest schema version this binary knows.
pub(crate) fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// FNV-1a of the SQL text: stable across builds and platforms, enough to notice an edited migration.
fn checksum(sql: &str) -> String {
    let hash = sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Brings the schema up to date, or refuses a database it cannot safely use.
pub(crate) fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )?;
    let found: u32 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?;
    if found > latest() {
        return Err(StoreError::NewerSchema {
            found,
            known: latest(),
        });
    }
    for migration in MIGRATIONS {
        let applied: Option<String> = conn
            .query_row(
                "SELECT checksum FROM schema_migrations WHERE version = ?1",
                [migration.version],
                |row| row.get(0),
            )
            .optional()?;
        match applied {
            Some(sum) if sum == checksum(migration.sql) => {}
            Some(_) => {
                return Err(StoreError::MigrationDrift {
                    version: migration.version,
                    name: migration.name.into(),
                });
            }
            None => {
                tracing::info!(
                    version = migration.version,
                    name = migration.name,
                    "applying migration"
                );
                write(conn, Durability::Full, |tx| {
                    tx.execute_batch(migration.sql)?;
                    tx.execute(
                        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
                        params![
                            migration.version,
                            migration.name,
                            checksum(migration.sql),
                            chrono::Utc::now().timestamp_millis()
                        ],
                    )?;
                    Ok(())
                })?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_without_holes() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
        }
    }

    #[test]
    fn applying_twice_is_a_no_op_and_newer_schemas_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        apply(&mut conn).unwrap();
        let count: u32 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, latest());
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'x', 0)", [])
            .unwrap();
        assert!(matches!(
            apply(&mut conn),
            Err(StoreError::NewerSchema { found: 999, .. })
        ));
    }

    #[test]
    fn edited_migrations_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        conn.execute(
            "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1",
            [],
        )
        .unwrap();
        assert!(matches!(
            apply(&mut conn),
            Err(StoreError::MigrationDrift { version: 1, .. })
        ));
    }
}

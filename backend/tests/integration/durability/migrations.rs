//! CI-24: a database of every earlier schema version upgrades with its data intact, a second start changes
//! nothing, and the real binary refuses one from a newer agentfarm or with an edited migration.
//!
//! The fixtures in `tests/fixtures/schema/` are SQL dumps, so they diff: `vN.sql` is schema version N with
//! data as that version stored it; `newer.sql` and `drift.sql` are the two databases to refuse. When a
//! migration is added, `ci_24_every_schema_version_has_a_fixture` fails until its `vN.sql` exists: run it
//! with `AGENTFARM_WRITE_SCHEMA_FIXTURE=1` to write one (the previous fixture, upgraded), then add rows that
//! use what the migration added, and check them in `upgraded_data_is_intact`.

use std::path::{Path, PathBuf};

use agentfarm::store::{PushKind, Store};
use agentfarm_shared::config::CredentialMode;
use agentfarm_shared::log::LogStream;
use agentfarm_shared::run::RunState;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::Connection;

use super::applied_migrations;
use crate::harness::{serve_command, within};

/// Set to write the fixture of the newest schema version when it is missing.
const WRITE_FIXTURE: &str = "AGENTFARM_WRITE_SCHEMA_FIXTURE";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schema")
        .join(name)
}

fn version_fixture(version: u32) -> PathBuf {
    fixture(&format!("v{version}.sql"))
}

/// A database at `db` made from the dump `sql`.
fn load(sql: &Path, db: &Path) {
    let dump = std::fs::read_to_string(sql).unwrap();
    Connection::open(db).unwrap().execute_batch(&dump).unwrap();
}

/// Everything in the database at `db` as SQL (the form of `sqlite3 db .dump`): equal dumps, equal databases.
fn dump(db: &Path) -> String {
    let conn = Connection::open(db).unwrap();
    let query = |sql: &str| -> Vec<(String, String)> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let mut out = String::from("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n");
    for (table, sql) in query("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY rowid") {
        if table == "sqlite_sequence" {
            out.push_str("DELETE FROM sqlite_sequence;\n");
        } else {
            out.push_str(&format!("{sql};\n"));
        }
        let columns: Vec<String> = query(&format!("SELECT name, type FROM pragma_table_info('{table}')"))
            .into_iter()
            .map(|(column, _)| format!("quote(\"{column}\")"))
            .collect();
        let rows = format!(
            "SELECT 'INSERT INTO {table} VALUES(' || {} || ');', '' FROM \"{table}\"",
            columns.join(" || ',' || ")
        );
        for (insert, _) in query(&rows) {
            out.push_str(&insert);
            out.push('\n');
        }
    }
    for (sql, _) in query(
        "SELECT sql, '' FROM sqlite_master WHERE type IN ('index', 'trigger', 'view') AND sql IS NOT NULL
         ORDER BY rowid",
    ) {
        out.push_str(&format!("{sql};\n"));
    }
    out.push_str("COMMIT;\n");
    out
}

/// Opens the store on `db` (which applies migrations) and closes it again.
async fn start_and_close(db: &Path) {
    let store = Store::open(db).unwrap();
    store.close().await.unwrap();
}

/// The newest schema version this agentfarm knows: the one a new database gets.
async fn latest_version() -> u32 {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    start_and_close(&db).await;
    applied_migrations(&db).last().unwrap().0
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

/// The fixtures' run ids: `run(n)` is the one ending in `n`.
fn run(n: u8) -> String {
    format!("01jd000000000000000000000{n}")
}

/// When the fixtures' data begins (2026-11-10 08:00 UTC), in milliseconds.
const T: i64 = 1_794_297_600_000;
const HOUR: i64 = 3_600_000;

/// What every fixture holds, read back through the store as the server reads it, plus what schema
/// `version` added.
async fn upgraded_data_is_intact(store: &Store, version: u32) {
    let configs = store.configs().await.unwrap();
    assert_eq!(configs.len(), 1, "the deleted config stays hidden: {configs:?}");
    let alpha = &configs[0];
    assert_eq!((alpha.id.as_str(), alpha.version), ("alpha", 2));
    assert_eq!(alpha.spec.task_prompt, "fix the flaky test, then the docs");
    assert_eq!(alpha.spec.repos, ["octo/alpha@main"]);
    assert_eq!(alpha.spec.budget_usd, Some(2.5));
    assert_eq!(alpha.spec.credential_mode, CredentialMode::SharedVolume);
    assert_eq!((alpha.created_at, alpha.updated_at), (at(T), at(T + HOUR)));
    let versions = store.config_versions("alpha".into()).await.unwrap();
    let prompts: Vec<(u32, &str)> = versions
        .iter()
        .map(|v| (v.version, v.spec.task_prompt.as_str()))
        .collect();
    assert_eq!(
        prompts,
        [
            (2, "fix the flaky test, then the docs"),
            (1, "fix the flaky test")
        ]
    );
    let beta = store.config_version("beta".into(), 1).await.unwrap();
    assert_eq!(
        (beta.model.as_str(), beta.task_prompt.as_str()),
        ("opus", "write a changelog")
    );

    let runs = store.runs(None, None, 100).await.unwrap();
    let states: Vec<(String, RunState)> = runs.iter().map(|r| (r.id.clone(), r.state)).collect();
    use RunState::*;
    let expected: Vec<(String, RunState)> = [
        (8, Queued),
        (7, Starting),
        (6, Running),
        (5, WaitingForInput),
        (4, Lost),
        (3, Stopped),
        (2, Failed),
        (1, Succeeded),
    ]
    .into_iter()
    .map(|(n, state)| (run(n), state))
    .collect();
    assert_eq!(states, expected);
    let active: Vec<String> = store
        .active_runs()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(active, [run(5), run(6), run(7)]);

    let first = store.run(run(1)).await.unwrap();
    assert_eq!((first.config_id.as_str(), first.config_version), ("alpha", 1));
    assert_eq!(first.exit_code, Some(0));
    assert_eq!(first.turns, Some(3));
    assert_eq!(first.cost_usd, Some(0.42));
    assert_eq!(
        first.pr_url.as_deref(),
        Some("https://github.com/octo/alpha/pull/7")
    );
    assert_eq!(
        (first.created_at, first.started_at, first.finished_at),
        (at(T + 10), Some(at(T + 20)), Some(at(T + 900)))
    );
    let failed = store.run(run(2)).await.unwrap();
    assert_eq!(failed.last_error.as_deref(), Some("boom"));

    let log = store.logs(run(1), 0, 10).await.unwrap();
    let lines: Vec<(u64, LogStream, bool)> =
        log.lines.iter().map(|l| (l.seq, l.stream, l.truncated)).collect();
    assert_eq!(
        lines,
        [
            (1, LogStream::Control, false),
            (2, LogStream::Stdout, false),
            (3, LogStream::Stderr, true)
        ]
    );
    assert_eq!(log.lines[1].text, r#"{"type":"assistant","text":"<b>done</b>"}"#);
    let dropped = store.logs(run(2), 0, 10).await.unwrap();
    assert_eq!(
        dropped.gap,
        Some((1, 4)),
        "lines dropped before the upgrade stay a gap"
    );
    assert_eq!(dropped.lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [5, 6]);

    // 2: runner results.
    let diff = first.diff.map(|d| (d.files, d.added, d.removed));
    assert_eq!(diff, (version >= 2).then_some((2, 10, 3)));
    assert_eq!(failed.limit_resets_at, (version >= 2).then(|| at(T + 5 * HOUR)));
    // 3: runtime cursor.
    assert_eq!(
        store.log_cursor(run(6)).await.unwrap().as_deref(),
        (version >= 3).then_some("2026-11-10T15:00:30.000000000Z/1")
    );
    // 4: push.
    let devices: Vec<String> = store
        .subscriptions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.device)
        .collect();
    if version >= 4 {
        assert_eq!(devices.len(), 2, "{devices:?}");
        assert!(devices.contains(&"iPhone".to_owned()), "{devices:?}");
        let keys = store
            .push_keys(|| Err("the stored key pair is used".into()), Utc::now())
            .await
            .unwrap();
        assert_eq!(keys.1, "BPublicKeyOfTheFixture");
        let due = store.due_pushes(at(T + 7 * HOUR), 10).await.unwrap();
        let kinds: Vec<(&str, &str)> = due
            .iter()
            .map(|p| (p.subscription.device.as_str(), p.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("iPhone", PushKind::Failed.as_str()),
                ("Firefox on Linux", PushKind::WaitingForInput.as_str())
            ]
        );
    } else {
        assert!(devices.is_empty(), "{devices:?}");
    }
    // 5: capabilities and usage.
    let usage = (
        first.usage.requests,
        first.usage.input_tokens,
        first.usage.output_tokens,
    );
    assert_eq!(usage, if version >= 5 { (4, 1200, 340) } else { (0, 0, 0) });
    let holder = store.capability_holder("ab".repeat(32)).await.unwrap();
    assert_eq!(holder.map(|h| h.run_id), (version >= 5).then(|| run(5)));
}

/// Every version's fixture upgrades to the newest schema with its data intact; starting again is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_24_migrations() {
    let latest = latest_version().await;
    for version in (1..=latest).filter(|v| version_fixture(*v).exists()) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("agentfarm.db");
        load(&version_fixture(version), &db);
        let applied = applied_migrations(&db);
        assert_eq!(applied.len(), version as usize, "fixture v{version}");

        let store = Store::open(&db).unwrap_or_else(|err| panic!("v{version}: {err}"));
        upgraded_data_is_intact(&store, version).await;
        store.close().await.unwrap();

        let upgraded = applied_migrations(&db);
        assert_eq!(
            upgraded.iter().map(|m| m.0).collect::<Vec<_>>(),
            (1..=latest).collect::<Vec<_>>()
        );
        assert_eq!(
            upgraded[..applied.len()],
            applied[..],
            "v{version}: applied migrations are kept as they were"
        );

        let before = dump(&db);
        start_and_close(&db).await;
        assert_eq!(dump(&db), before, "v{version}: a second start changes nothing");

        // The upgraded schema takes the writes the server makes.
        let store = Store::open(&db).unwrap();
        let stopped = store
            .transition(run(8), RunState::Stopped, Default::default(), Utc::now())
            .await
            .unwrap();
        assert_eq!(stopped.state, RunState::Stopped);
        store.delete_run(run(1)).await.unwrap();
        assert!(store.logs(run(1), 0, 10).await.is_err());
        store.close().await.unwrap();
    }
}

/// The newest schema version has a fixture, so that the next migration is tested against its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_24_every_schema_version_has_a_fixture() {
    let latest = latest_version().await;
    let missing: Vec<u32> = (1..=latest).filter(|v| !version_fixture(*v).exists()).collect();
    if missing == [latest] && std::env::var_os(WRITE_FIXTURE).is_some() {
        write_fixture(latest).await;
        println!(
            "wrote {}: now add rows that use what migration {latest} added, and check them in \
             upgraded_data_is_intact",
            version_fixture(latest).display()
        );
        return;
    }
    assert!(
        missing.is_empty(),
        "no fixture for schema version(s) {missing:?} in tests/fixtures/schema/. For a new migration run \
         `{WRITE_FIXTURE}=1 cargo test -p agentfarm --test integration ci_24_every_schema_version_has_a_fixture` \
         to write v{latest}.sql from v{}.sql upgraded, then add rows that use what the migration added and \
         check them in durability/migrations.rs (upgraded_data_is_intact)",
        latest - 1
    );
}

/// Writes `v{version}.sql`: the previous version's fixture, upgraded by this agentfarm.
async fn write_fixture(version: u32) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("agentfarm.db");
    if version > 1 {
        load(&version_fixture(version - 1), &db);
    }
    start_and_close(&db).await;
    let head = format!(
        "-- An agentfarm database at schema version {version}: v{}.sql upgraded.\n\
         -- Loaded by backend/tests/integration/durability/migrations.rs (CI-24).\n",
        version - 1
    );
    std::fs::write(version_fixture(version), head + &dump(&db)).unwrap();
}

/// Starts the real binary on a data dir holding `fixture`; returns its exit code and error output, and
/// whether the database is as it was.
async fn refused(fixture_name: &str) -> (Option<i32>, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = agentfarm::store::db_path(&data);
    load(&fixture(fixture_name), &db);
    let before = dump(&db);
    let output = within(serve_command(&data).output()).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr, dump(&db) == before)
}

/// A database from a newer agentfarm is refused, untouched, with an error that says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_24_a_newer_schema_is_refused() {
    let latest = latest_version().await;
    let (code, stderr, unchanged) = refused("newer.sql").await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "agentfarm.db: the database schema is version 1000, but this agentfarm knows only up to {latest}; \
             upgrade agentfarm"
        )),
        "{stderr}"
    );
    assert!(unchanged, "the database was changed");
}

/// A database whose applied migration differs from this agentfarm's is refused, untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_24_an_edited_migration_is_refused() {
    let (code, stderr, unchanged) = refused("drift.sql").await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "agentfarm.db: migration 1 (initial) differs from the one applied to this database; refusing to start"
        ),
        "{stderr}"
    );
    assert!(unchanged, "the database was changed");
}

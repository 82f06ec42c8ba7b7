//! The SQLite store: configs and their versions, runs, and each run's bounded log.
//!
//! One thread owns the connection and runs every query (callers `await` [`Store::call`]), so no blocking call
//! ever runs on the async runtime and writes never contend. State transitions commit with
//! `synchronous=FULL`; log batches with `NORMAL` (WAL keeps them crash-safe, and FULL on the next transition
//! makes them durable too). Writes queued at the same time share one transaction and one commit (group
//! commit, [`Store::call_write`]): one fsync and one round of WAL pages for many agents' changes. The WAL is
//! folded into the database file by a thread of its own ([`checkpoint`]), never inside a commit. A graceful
//! shutdown [closes](Store::close) it: the WAL is folded into the database file first. [`backup`] copies a
//! live database from another process.

pub mod backup;
mod capabilities;
mod checkpoint;
mod configs;
mod history;
mod logs;
mod migrations;
mod push;
mod runs;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use checkpoint::Checkpointer;

pub use capabilities::{Holder, WindowRecord};
pub use logs::NewLine;
pub use push::{DuePush, Kind as PushKind, StoredSubscription};
pub use runs::{NewRun, RunPatch};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Stored JSON did not parse.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by a newer agentfarm.
    #[error(
        "the database schema is version {found}, but this agentfarm knows only up to {known}; upgrade agentfarm"
    )]
    NewerSchema {
        /// Schema version in the file.
        found: u32,
        /// Newest version this binary knows.
        known: u32,
    },
    /// A migration that was applied differs from the one this binary carries.
    #[error("migration {version} ({name}) differs from the one applied to this database; refusing to start")]
    MigrationDrift {
        /// The migration's number.
        version: u32,
        /// The migration's name.
        name: String,
    },
    /// No such config or run.
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// A run may not move from `from` to `to`.
    #[error("run {run_id} cannot go from {from} to {to}")]
    InvalidTransition {
        /// The run.
        run_id: String,
        /// Its current state.
        from: agentfarm_shared::run::RunState,
        /// The refused state.
        to: agentfarm_shared::run::RunState,
    },
    /// The store's thread is gone (the server is shutting down).
    #[error("the store is closed")]
    Closed,
    /// The transaction a write shared with others could not begin or commit: the write is not stored.
    #[error("the write could not be committed: {0}")]
    Uncommitted(String),
}

/// How long a connection waits for another one's lock before it fails with `SQLITE_BUSY`.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The database's file name in the data dir.
const DB_FILE: &str = "agentfarm.db";

/// The database of the server whose data dir is `data_dir`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE)
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A write that shares its transaction with the others queued at the same time ([`Store::call_write`]).
struct Write {
    /// How hard its commit must insist on reaching the disk.
    durability: Durability,
    /// Runs it on the open transaction, or learns why none could begin; returns what answers its caller.
    job: WriteJob,
}

/// A write's work, given the shared transaction or why none could begin.
type WriteJob = Box<dyn FnOnce(Result<&Connection, &StoreError>) -> Settle + Send>;

/// Answers a write's caller, given the error of the shared commit when it failed.
type Settle = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// Most writes in one transaction, so that a flood of them cannot hold every caller's answer back.
const MAX_GROUP: usize = 64;

/// What the store thread is asked to do.
enum Message {
    /// Run a query.
    Job(Job),
    /// Run a write that may share its commit.
    Write(Write),
    /// Checkpoint, close the connection and stop.
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Message>,
    path: PathBuf,
    /// How long each commit takes, for `/metrics`.
    commit_seconds: Histogram,
}

/// How hard a write insists on reaching the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Durability {
    /// WAL without fsync on commit: log lines.
    Normal,
    /// fsync on every commit: state transitions, configs.
    Full,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, applies migrations, and starts the store thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // busy_timeout first, so that even switching the journal mode waits for a lock instead of failing.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrations::apply(&mut conn)?;
        let checkpointer = Checkpointer::start(&mut conn, path)?;
        let (jobs, queue) = mpsc::channel::<Message>();
        // From a tenth of a millisecond (WAL without fsync) to about 5 s (fsync on a busy disk), in steps of
        // √2, fine enough to tell a 3 ms commit from a 5 ms one.
        let commit_seconds = Histogram::new(exponential_buckets(0.000_1, std::f64::consts::SQRT_2, 32));
        let timer = commit_seconds.clone();
        std::thread::Builder::new()
            .name("agentfarm-store".into())
            .spawn(move || serve(conn, &queue, checkpointer, &timer))
            .map_err(|err| StoreError::Corrupt(format!("cannot start the store thread: {err}")))?;
        Ok(Store {
            jobs,
            path: path.to_owned(),
            commit_seconds,
        })
    }

    /// How long each commit of a write (or of writes grouped into one transaction) takes, in seconds.
    pub fn commit_seconds(&self) -> &Histogram {
        &self.commit_seconds
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the store thread and returns its result.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have gone away (request cancelled); then nobody needs the answer.
            let _ = reply.send(f(conn));
        });
        self.jobs
            .send(Message::Job(job))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Store::call`] for a write: `f` runs in a transaction it shares with the other writes queued at the
    /// same time, committed with the strongest durability any of them asks for. `f` runs inside a savepoint, so
    /// its failure undoes only its own changes; its answer arrives once the shared transaction has committed.
    pub(crate) async fn call_write<T, F>(&self, durability: Durability, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: WriteJob = Box::new(move |tx| {
            let result = match tx {
                Ok(tx) => in_savepoint(tx, f),
                Err(err) => Err(StoreError::Uncommitted(err.to_string())),
            };
            Box::new(move |commit_error| {
                let answer = match commit_error {
                    None => result,
                    Some(err) => Err(StoreError::Uncommitted(err.to_string())),
                };
                // The caller may have gone away; then nobody needs the answer.
                let _ = reply.send(answer);
            })
        });
        self.jobs
            .send(Message::Write(Write { durability, job }))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Folds the write-ahead log into the database file and closes the connection, after the queries asked
    /// for before; every later call (through any handle) fails with [`StoreError::Closed`]. For a graceful
    /// shutdown: the database file alone is then complete.
    pub async fn close(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Message::Close(reply))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Whether the store answers: one trivial query through its thread (for readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call(|conn| {
            Ok(conn
                .query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                .map(drop)?)
        })
        .await
    }

    /// `PRAGMA integrity_check`: `"ok"` when the file is sound.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        self.call(|conn| Ok(conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?))
            .await
    }
}

/// The store thread: runs what it is asked, in order, until asked to close or every handle is gone. Writes
/// queued one after another share one transaction; a message that is not one ends the group, so everything
/// still runs in the order it was asked.
fn serve(
    mut conn: Connection,
    queue: &mpsc::Receiver<Message>,
    checkpointer: Checkpointer,
    commit_seconds: &Histogram,
) {
    let mut next = queue.recv().ok();
    while let Some(message) = next.take() {
        match message {
            Message::Job(job) => job(&mut conn),
            Message::Write(first) => {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match queue.try_recv() {
                        Ok(Message::Write(write)) => group.push(write),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                checkpointer.restart_if_due(&conn);
                run_group(&mut conn, group, commit_seconds);
            }
            Message::Close(reply) => {
                // Jobs still queued are dropped with the queue: their callers get `Closed`.
                checkpointer.stop();
                let _ = reply.send(close(conn));
                return;
            }
        }
        if next.is_none() {
            next = queue.recv().ok();
        }
    }
    // Every handle is gone.
    checkpointer.stop();
    if let Err(err) = close(conn) {
        tracing::warn!(%err, "closing the database failed");
    }
}

/// Runs `group` in one transaction committed with the strongest durability it asks for (timed into
/// `commit_seconds`), then answers each caller.
fn run_group(conn: &mut Connection, group: Vec<Write>, commit_seconds: &Histogram) {
    let durability = group
        .iter()
        .map(|write| write.durability)
        .max()
        .unwrap_or(Durability::Full);
    let tx = match begin(conn, durability) {
        Ok(tx) => tx,
        Err(err) => {
            for write in group {
                // The write answers with `err` itself: there is no commit to report on.
                (write.job)(Err(&err))(None);
            }
            return;
        }
    };
    let settles: Vec<Settle> = group.into_iter().map(|write| (write.job)(Ok(&tx))).collect();
    let started = Instant::now();
    let committed = tx.commit().map_err(StoreError::from);
    commit_seconds.observe(started.elapsed().as_secs_f64());
    for settle in settles {
        settle(committed.as_ref().err());
    }
}

/// Runs `f` inside a savepoint of the open transaction: kept when it succeeds, undone when it fails. Undoing
/// can only fail on an I/O or memory error, after which SQLite rolls the whole transaction back; the commit
/// then fails, and every write in it is answered with that.
fn in_savepoint<T>(
    tx: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    tx.execute_batch("SAVEPOINT one_write")?;
    match f(tx) {
        Ok(value) => {
            tx.execute_batch("RELEASE one_write")?;
            Ok(value)
        }
        Err(err) => {
            tx.execute_batch("ROLLBACK TO one_write; RELEASE one_write")?;
            Err(err)
        }
    }
}

/// Checkpoints the WAL into the database file, truncating it, then closes the connection (the last one to
/// close also removes the WAL file). A reader in another process (a backup) can keep part of the WAL from
/// being folded in; that part stays safe in the WAL and is folded in by the next checkpoint.
fn close(conn: Connection) -> Result<(), StoreError> {
    let (busy, frames, folded): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    if busy != 0 {
        tracing::warn!(
            frames,
            folded,
            "another connection kept the WAL from being folded in completely"
        );
    }
    conn.close().map_err(|(_, err)| err)?;
    Ok(())
}

/// Runs `f` in an immediate (write-locking) transaction of its own, committed with the given durability: for
/// the migrations, which run before the store thread starts.
pub(crate) fn write<T>(
    conn: &mut Connection,
    durability: Durability,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = begin(conn, durability)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

/// Opens an immediate (write-locking) transaction that will commit with the given durability.
fn begin(conn: &mut Connection, durability: Durability) -> Result<Transaction<'_>, StoreError> {
    let level = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", level)?;
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// Milliseconds since the Unix epoch, as stored.
pub(crate) fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// A stored timestamp back as a date.
pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn writes_queued_together_share_one_commit_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("group.db")).unwrap();
        store
            .call(|conn| Ok(conn.execute_batch("CREATE TABLE scratch (n INTEGER NOT NULL)")?))
            .await
            .unwrap();
        // Hold the store thread with an empty WAL, so that everything below queues up behind it.
        let (release, held) = mpsc::channel::<()>();
        let mut hold = Box::pin(store.call(move |conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            let _ = held.recv();
            Ok(())
        }));
        assert!(hold.as_mut().now_or_never().is_none());
        let mut writes: Vec<_> = (0..20_i64)
            .map(|n| {
                Box::pin(store.call_write(Durability::Normal, move |tx| {
                    tx.execute("INSERT INTO scratch (n) VALUES (?1)", [n])?;
                    if n == 7 {
                        return Err(StoreError::Conflict("seven is refused".into()));
                    }
                    Ok(n)
                }))
            })
            .collect();
        for write in &mut writes {
            assert!(write.as_mut().now_or_never().is_none());
        }
        // Queued after the group: it must see every write the group kept.
        let read_after = store.call(|conn| {
            let rows: String =
                conn.query_row("SELECT group_concat(n, ',' ORDER BY n) FROM scratch", [], |row| {
                    row.get(0)
                })?;
            let frames: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))?;
            Ok((rows, frames))
        });
        release.send(()).unwrap();
        hold.await.unwrap();
        for (n, write) in (0..20_i64).zip(writes) {
            let answer = write.await;
            if n == 7 {
                assert!(matches!(answer, Err(StoreError::Conflict(_))), "{answer:?}");
            } else {
                assert_eq!(answer.unwrap(), n);
            }
        }
        let (rows, frames) = read_after.await.unwrap();
        let kept: Vec<String> = (0..20).filter(|n| *n != 7).map(|n: i64| n.to_string()).collect();
        assert_eq!(rows, kept.join(","));
        // Nineteen commits would have written at least nineteen WAL frames; one commit writes the table's page.
        assert!(frames <= 2, "{frames} WAL frames for one group");
    }
}

//! The checkpointer: folds the write-ahead log into the database file from a thread and a connection of its
//! own, so that no commit ever runs a checkpoint.
//!
//! SQLite's auto-checkpoint runs inside whichever commit takes the WAL past 1,000 pages, and that commit
//! waits for it. The store's connection has it switched off instead and tells this thread how many pages
//! the WAL holds after each commit (SQLite's WAL hook). The thread runs a PASSIVE checkpoint (it neither
//! waits for the writer nor holds it up) once [`PAGES`] new pages have come or the oldest of them has waited
//! [`INTERVAL`]. Once no commit has come for [`IDLE`] it runs a TRUNCATE checkpoint, which empties the WAL
//! file; it gives up at once when a writer or a reader is busy, and tries again after the next quiet spell.
//!
//! The WAL starts over from its beginning only when a transaction begins with all of it folded in. Under
//! sustained writes that never happens by itself: commits keep coming while a checkpoint runs, so it always
//! ends a few pages short. So once the WAL holds [`RESTART_PAGES`] and this thread has folded in all but the
//! newest pages, the store thread folds in those between two transactions ([`Checkpointer::restart_if_due`]:
//! a few pages and one sync of the database file, about one commit's time), and its next commit writes the
//! WAL from its start again. The WAL's size stays bounded by about [`RESTART_PAGES`].

use std::ffi::c_int;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// New WAL pages that call for a checkpoint (SQLite's auto-checkpoint default).
const PAGES: u32 = 1_000;
/// The longest a page waits in the WAL before a checkpoint, under a trickle of writes.
const INTERVAL: Duration = Duration::from_secs(1);
/// No commit for this long and the WAL is emptied.
const IDLE: Duration = Duration::from_secs(2);
/// WAL pages past which the store thread makes the WAL start over (16 MiB of 4 KiB pages).
const RESTART_PAGES: u32 = 4 * PAGES;

/// The checkpointer thread and what the store's commits tell it.
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Pages in the WAL after the last commit.
    wal_pages: u32,
    /// Pages written since the last checkpoint began.
    new_pages: u32,
    /// When the first of those was committed.
    oldest_new: Option<Instant>,
    /// When the last commit was.
    last_commit: Option<Instant>,
    /// A PASSIVE checkpoint of this thread is running.
    folding: bool,
    /// One has ended since the WAL last started over.
    folded_since_restart: bool,
    /// Whether the WAL may hold something a TRUNCATE checkpoint would remove.
    untruncated: bool,
    /// When a TRUNCATE checkpoint last gave up.
    truncate_refused: Option<Instant>,
    /// The store is closing.
    stopping: bool,
}

/// What the thread does next.
enum Step {
    Passive,
    Truncate,
    Stop,
}

impl Checkpointer {
    /// Switches the auto-checkpoint of `writer` (the store's connection to the database at `path`) off, has
    /// it report each commit, and starts the thread on a connection of its own.
    pub(super) fn start(writer: &mut Connection, path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // A checkpoint that would have to wait for a writer or a reader gives up at once instead.
        conn.busy_timeout(Duration::ZERO)?;
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            wake: Condvar::new(),
        });
        // The pragma installs SQLite's own WAL hook, so it goes first.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let reporter = Arc::clone(&shared);
        writer.wal_hook(Some(move |_: &mut Wal, wal_pages: c_int| {
            reporter.committed(u32::try_from(wal_pages).unwrap_or(0));
            Ok(())
        }))?;
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("agentfarm-checkpoint".into())
            .spawn(move || worker.serve(&conn))
            .map_err(|err| StoreError::Corrupt(format!("cannot start the checkpoint thread: {err}")))?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Called by the store thread between two transactions, on its connection `writer`: folds in the newest
    /// WAL pages when the WAL should start over (see the module's comment), so that the next commit writes it
    /// from its start. At most once per checkpoint of this thread, whatever came of it: a reader in another
    /// process (a backup) can keep the WAL from being folded in whole.
    pub(super) fn restart_if_due(&self, writer: &Connection) {
        {
            let mut state = self.shared.lock();
            if state.folding || !state.folded_since_restart || state.wal_pages < RESTART_PAGES {
                return;
            }
            state.folded_since_restart = false;
        }
        if let Err(err) = checkpoint(writer, "PASSIVE") {
            tracing::warn!(%err, "folding in the write-ahead log's newest pages failed; trying again later");
        }
    }

    /// Stops the thread once its checkpoint in progress, if any, is done; its connection is closed.
    pub(super) fn stop(mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the checkpoint thread panicked");
        }
    }
}

impl Shared {
    /// A commit left `wal_pages` pages in the WAL (SQLite's WAL hook).
    fn committed(&self, wal_pages: u32) {
        let now = Instant::now();
        let mut state = self.lock();
        // Fewer pages than before: the commit wrote the WAL from its start again.
        let added = wal_pages.checked_sub(state.wal_pages).unwrap_or_else(|| {
            state.folded_since_restart = false;
            wal_pages
        });
        state.wal_pages = wal_pages;
        state.new_pages = state.new_pages.saturating_add(added);
        state.oldest_new.get_or_insert(now);
        state.last_commit = Some(now);
        state.untruncated = true;
        drop(state);
        self.wake.notify_one();
    }

    /// The state. Each change of it is a few plain assignments that cannot panic halfway, so a poisoned lock
    /// still guards a sound state.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn serve(&self, conn: &Connection) {
        loop {
            match self.next_step() {
                Step::Stop => return,
                Step::Passive => {
                    let folded = checkpoint(conn, "PASSIVE");
                    if let Err(err) = &folded {
                        tracing::warn!(%err, "checkpointing the database failed; trying again later");
                    }
                    let mut state = self.lock();
                    state.folding = false;
                    state.folded_since_restart |= folded.is_ok();
                }
                Step::Truncate => {
                    let emptied = checkpoint(conn, "TRUNCATE").unwrap_or_else(|err| {
                        tracing::warn!(%err, "emptying the write-ahead log failed; trying again later");
                        false
                    });
                    let mut state = self.lock();
                    if emptied && state.last_commit.is_some_and(|at| at.elapsed() >= IDLE) {
                        // No commit came while it ran: the WAL is empty.
                        state.untruncated = false;
                        state.wal_pages = 0;
                    } else {
                        state.truncate_refused = Some(Instant::now());
                    }
                }
            }
        }
    }

    /// Waits until a checkpoint is due (or the store closes), and says which.
    fn next_step(&self) -> Step {
        let mut state = self.lock();
        loop {
            if state.stopping {
                return Step::Stop;
            }
            let now = Instant::now();
            // The store thread is to fold in the rest and start the WAL over: a checkpoint here would only hold
            // that back, since the store's cannot run at the same time.
            let restart_pending = state.folded_since_restart && state.wal_pages >= RESTART_PAGES;
            let passive_at = state
                .oldest_new
                .filter(|_| !restart_pending)
                .map(|oldest| oldest + INTERVAL);
            if (state.new_pages >= PAGES && !restart_pending) || passive_at.is_some_and(|at| at <= now) {
                state.new_pages = 0;
                state.oldest_new = None;
                state.folding = true;
                return Step::Passive;
            }
            let truncate_at = state.untruncated.then(|| {
                let quiet = state.last_commit.map_or(now, |at| at + IDLE);
                let retry = state.truncate_refused.map_or(now, |at| at + IDLE);
                quiet.max(retry)
            });
            if truncate_at.is_some_and(|at| at <= now) {
                return Step::Truncate;
            }
            state = match passive_at.into_iter().chain(truncate_at).min() {
                Some(due) => {
                    self.wake
                        .wait_timeout(state, due.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.wake.wait(state).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// Runs `PRAGMA wal_checkpoint(MODE)`; true when it folded in the whole WAL without giving up.
fn checkpoint(conn: &Connection, mode: &str) -> Result<bool, StoreError> {
    let (busy, frames, folded): (i64, i64, i64) =
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    Ok(busy == 0 && frames == folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_bytes(db: &Path) -> u64 {
        std::fs::metadata(db.with_extension("db-wal")).map_or(0, |meta| meta.len())
    }

    #[test]
    fn under_writes_with_no_pause_the_wal_starts_over_and_once_they_stop_it_is_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("wal.db");
        let mut writer = Connection::open(&db).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer
            .execute_batch(
                "CREATE TABLE filler (id INTEGER PRIMARY KEY, blob BLOB NOT NULL);
                 WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < 100)
                 INSERT INTO filler (id, blob) SELECT id, zeroblob(3 * 4096) FROM n;",
            )
            .unwrap();
        let checkpointer = Checkpointer::start(&mut writer, &db).unwrap();
        // Each write syncs the WAL, as the store's state changes do, and writes 16 pages (a row's overflow pages
        // and its leaf): about 24,000 in all, so a WAL that never started over would grow to about 100 MB.
        const WRITES: i64 = 1_500;
        let mut peak = 0;
        for n in 0..WRITES {
            checkpointer.restart_if_due(&writer);
            writer
                .execute(
                    "UPDATE filler SET blob = zeroblob(15 * 4096 + ?1 % 7) WHERE id = ?1 % 100 + 1",
                    [n],
                )
                .unwrap();
            peak = peak.max(wal_bytes(&db));
        }
        let written = u64::try_from(WRITES).unwrap() * 16 * 4096;
        // The WAL file keeps its largest size until it is emptied: it started over several times.
        assert!(
            peak < written / 3,
            "the WAL reached {peak} bytes of {written} written"
        );
        // Once the writes stop, the WAL file is emptied; nothing else would empty it.
        let deadline = Instant::now() + IDLE * 10;
        while wal_bytes(&db) > 0 {
            assert!(Instant::now() < deadline, "the WAL was never emptied");
            std::thread::park_timeout(Duration::from_millis(50));
        }
        checkpointer.stop();
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM filler", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 100);
    }
}

//! `agentfarm backup`: a consistent copy of the live database, made from another process while the server
//! runs, checked, and only then given the destination's name.
//!
//! `VACUUM INTO` on a connection of its own reads one snapshot (a WAL reader never blocks the server's
//! writes) into a temporary file beside the destination. SQLite does not sync that file, so it is synced
//! here, checked with `PRAGMA integrity_check`, and then renamed into place; an existing destination is
//! replaced only when asked.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::BUSY_TIMEOUT;

/// Why a backup was not written.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// There is no database to copy.
    #[error("no database at {0}")]
    NoDatabase(String),
    /// The destination exists and replacing it was not asked for.
    #[error("{0} already exists; pass --force to replace it")]
    Exists(String),
    /// The destination is not a usable file name.
    #[error("the backup destination {0} must be a UTF-8 file name")]
    Destination(String),
    /// SQLite failed while copying or checking.
    #[error("copying the database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The copy is not sound (it is removed).
    #[error("the copy failed its integrity check: {0}")]
    Corrupt(String),
}

/// Copies the database at `source` to `dest`, which must not exist unless `replace`; the copy has passed
/// `PRAGMA integrity_check` and is on disk when this returns.
pub fn backup(source: &Path, dest: &Path, replace: bool) -> Result<(), BackupError> {
    if !replace && dest.symlink_metadata().is_ok() {
        return Err(BackupError::Exists(dest.display().to_string()));
    }
    if !source.is_file() {
        return Err(BackupError::NoDatabase(source.display().to_string()));
    }
    let partial = partial_name(dest)?;
    let written = copy(source, &partial)
        .and_then(|()| check(&partial))
        .and_then(|()| sync(&partial))
        .and_then(|()| place(&partial, dest, replace));
    if written.is_err() {
        // Best effort: the error in hand is the one to report.
        let _ = fs::remove_file(&partial);
    }
    written
}

/// `.NAME.partial-PID` beside `dest`: hidden, and never the name of a finished backup.
fn partial_name(dest: &Path) -> Result<PathBuf, BackupError> {
    let name = dest
        .file_name()
        .ok_or_else(|| BackupError::Destination(dest.display().to_string()))?;
    let mut partial = OsString::from(".");
    partial.push(name);
    partial.push(format!(".partial-{}", std::process::id()));
    Ok(dest.with_file_name(partial))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One consistent snapshot of `source` into the new file `partial`.
fn copy(source: &Path, partial: &Path) -> Result<(), BackupError> {
    let target = partial
        .to_str()
        .ok_or_else(|| BackupError::Destination(partial.display().to_string()))?;
    match fs::remove_file(partial) {
        Err(err) if err.kind() != ErrorKind::NotFound => return Err(io_error(partial)(err)),
        _ => {}
    }
    // Read-write without create: a WAL database's reader may need to write the shared-memory index, and a
    // missing file must not become an empty database.
    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute("VACUUM INTO ?1", [target])?;
    conn.close().map_err(|(_, err)| err)?;
    Ok(())
}

/// `PRAGMA integrity_check` of the copy: one row `ok`, else the problems.
fn check(partial: &Path) -> Result<(), BackupError> {
    let conn = Connection::open_with_flags(
        partial,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let problems = stmt
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    if problems != ["ok"] {
        return Err(BackupError::Corrupt(problems.join("; ")));
    }
    Ok(())
}

fn sync(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(io_error(path))
}

/// Gives `partial` the name `dest`: a rename when replacing; else a hard link, which fails rather than
/// replace a file that appeared meanwhile. Then syncs the directory, so the name is on disk too.
fn place(partial: &Path, dest: &Path, replace: bool) -> Result<(), BackupError> {
    if replace {
        fs::rename(partial, dest).map_err(io_error(dest))?;
    } else {
        fs::hard_link(partial, dest).map_err(|err| match err.kind() {
            ErrorKind::AlreadyExists => BackupError::Exists(dest.display().to_string()),
            _ => io_error(dest)(err),
        })?;
        fs::remove_file(partial).map_err(io_error(partial))?;
    }
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    sync(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(db: &Path) -> i64 {
        Connection::open(db)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn copies_what_is_committed_and_replaces_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("live.db");
        // Kept open: the rows are still in its WAL, as on a running server.
        let live = Connection::open(&source).unwrap();
        live.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let dest = dir.path().join("copy.db");

        backup(&source, &dest, false).unwrap();
        assert_eq!(count(&dest), 1);

        live.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let refused = backup(&source, &dest, false).unwrap_err();
        assert!(matches!(refused, BackupError::Exists(_)), "{refused}");
        assert!(refused.to_string().contains("--force"), "{refused}");
        assert_eq!(count(&dest), 1, "the existing copy is untouched");

        backup(&source, &dest, true).unwrap();
        assert_eq!(count(&dest), 2);

        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with("live.db"))
            .collect();
        names.sort();
        assert_eq!(names, ["copy.db"], "no partial file is left behind");
    }

    #[test]
    fn a_missing_database_is_named_and_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("none.db");
        let err = backup(&source, &dir.path().join("copy.db"), false).unwrap_err();
        assert!(matches!(err, BackupError::NoDatabase(_)), "{err}");
        assert!(err.to_string().contains("none.db"), "{err}");
        assert!(!source.exists());
    }
}

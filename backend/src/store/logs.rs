//! Each run's log: lines numbered 1, 2, 3, … once, when stored, and kept up to a bounded count.

use agentfarm_shared::log::{LogLine, LogPage, LogStream};
use agentfarm_shared::run::Run;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::runs::{RunPatch, apply_patch, load};
use super::{Durability, Store, StoreError, from_millis, to_millis};

/// A line read from an agent, not yet numbered.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLine {
    /// When it was read.
    pub ts: DateTime<Utc>,
    /// Where it came from.
    pub stream: LogStream,
    /// The text, at most [`agentfarm_shared::log::MAX_LINE_BYTES`].
    pub text: String,
    /// True when the text was cut.
    pub truncated: bool,
}

fn page(conn: &Connection, run_id: &str, after_seq: u64, limit: u32) -> Result<LogPage, StoreError> {
    let run = load(conn, run_id)?;
    let mut stmt = conn.prepare_cached(
        "SELECT seq, ts, stream, text, truncated FROM log_lines WHERE run_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let lines = stmt
        .query_map(params![run_id, after_seq, limit], |row| {
            let stream: String = row.get(2)?;
            Ok(LogLine {
                seq: row.get(0)?,
                ts: from_millis(row.get(1)?),
                stream: LogStream::parse(&stream).unwrap_or(LogStream::Control),
                text: row.get(3)?,
                truncated: row.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // Lines after `after_seq` exist but the first one kept is later: the ones between were dropped.
    let first_wanted = after_seq + 1;
    let first_kept = lines.first().map_or(run.last_seq + 1, |line| line.seq);
    let gap =
        (first_kept > first_wanted && first_wanted <= run.last_seq).then(|| (first_wanted, first_kept - 1));
    Ok(LogPage {
        lines,
        gap,
        last_seq: run.last_seq,
    })
}

impl Store {
    /// Numbers and stores `lines` for run `id`, applies `patch`, and drops lines beyond the newest `keep`.
    /// Returns the stored lines and, when `patch` changed anything, the updated run.
    pub async fn append_logs(
        &self,
        id: String,
        lines: Vec<NewLine>,
        patch: RunPatch,
        keep: u64,
        now: DateTime<Utc>,
    ) -> Result<(Vec<LogLine>, Option<Run>), StoreError> {
        self.call_write(Durability::Normal, move |tx| {
            let first: u64 = tx.query_row(
                "UPDATE runs SET last_seq = last_seq + ?2 WHERE id = ?1 RETURNING last_seq - ?2 + 1",
                params![id, lines.len()],
                |row| row.get(0),
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO log_lines (run_id, seq, ts, stream, text, truncated) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut stored = Vec::with_capacity(lines.len());
            for (seq, line) in (first..).zip(lines) {
                insert.execute(params![
                    id,
                    seq,
                    to_millis(line.ts),
                    line.stream.as_str(),
                    line.text,
                    line.truncated
                ])?;
                stored.push(LogLine {
                    seq,
                    ts: line.ts,
                    stream: line.stream,
                    text: line.text,
                    truncated: line.truncated,
                });
            }
            if let Some(last) = stored.last().map(|line| line.seq)
                && last > keep
            {
                tx.prepare_cached("DELETE FROM log_lines WHERE run_id = ?1 AND seq <= ?2")?
                    .execute(params![id, last - keep])?;
            }
            let run = if patch.is_empty() {
                None
            } else {
                apply_patch(tx, &id, &patch, to_millis(now))?;
                Some(load(tx, &id)?)
            };
            Ok((stored, run))
        })
        .await
    }

    /// Up to `limit` lines of run `id` after `after_seq`, with a gap marker when some were dropped.
    pub async fn logs(&self, id: String, after_seq: u64, limit: u32) -> Result<LogPage, StoreError> {
        self.call(move |conn| page(conn, &id, after_seq, limit)).await
    }
}

//! Web Push rows: the VAPID key pair, subscribed devices, and the outbox of notifications to send.

use agentfarm_shared::run::{Run, RunState};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::runs::load;
use super::{Durability, Store, StoreError, from_millis, to_millis};

/// A subscribed device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// Its id.
    pub id: String,
    /// The push service URL.
    pub endpoint: String,
    /// The subscriber's public key (base64url).
    pub p256dh: String,
    /// The subscriber's auth secret (base64url).
    pub auth: String,
    /// The device's name.
    pub device: String,
    /// When it subscribed.
    pub created_at: DateTime<Utc>,
    /// When it last confirmed.
    pub confirmed_at: DateTime<Utc>,
}

/// One notification due for one device.
#[derive(Debug, Clone)]
pub struct DuePush {
    /// The outbox row.
    pub id: i64,
    /// The device.
    pub subscription: StoredSubscription,
    /// The run it is about, as it is now (none for a test, or when the run was deleted meanwhile).
    pub run: Option<Run>,
    /// What happened (see [`Kind`]).
    pub kind: String,
    /// Attempts so far.
    pub attempts: u32,
}

/// What a notification announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The run succeeded.
    Succeeded,
    /// The run failed.
    Failed,
    /// The agent waits for a follow-up.
    WaitingForInput,
    /// The subscription's usage limit stopped the agent.
    LimitHit,
    /// The owner asked for a test.
    Test,
}

impl Kind {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Succeeded => "succeeded",
            Kind::Failed => "failed",
            Kind::WaitingForInput => "waiting_for_input",
            Kind::LimitHit => "limit_hit",
            Kind::Test => "test",
        }
    }

    /// The notification a transition into `state` makes, if any.
    pub fn of_state(state: RunState) -> Option<Kind> {
        match state {
            RunState::Succeeded => Some(Kind::Succeeded),
            RunState::Failed => Some(Kind::Failed),
            RunState::WaitingForInput => Some(Kind::WaitingForInput),
            _ => None,
        }
    }
}

const SELECT_SUBSCRIPTION: &str =
    "SELECT id, endpoint, p256dh, auth, device, created_at, confirmed_at FROM push_subscriptions";

fn subscription_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSubscription> {
    subscription_at(row, 0)
}

/// The subscription in the seven columns from `first` on, in [`SELECT_SUBSCRIPTION`]'s order.
fn subscription_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<StoredSubscription> {
    Ok(StoredSubscription {
        id: row.get(first)?,
        endpoint: row.get(first + 1)?,
        p256dh: row.get(first + 2)?,
        auth: row.get(first + 3)?,
        device: row.get(first + 4)?,
        created_at: from_millis(row.get(first + 5)?),
        confirmed_at: from_millis(row.get(first + 6)?),
    })
}

/// Queues a `kind` notification about `run_id` for every subscribed device (inside the caller's transaction,
/// so the notification exists exactly when the change it announces does).
pub(super) fn enqueue(conn: &Connection, run_id: &str, kind: Kind, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO push_outbox (subscription_id, run_id, kind, next_attempt_at, created_at)
         SELECT id, ?1, ?2, ?3, ?3 FROM push_subscriptions",
    )?
    .execute(params![run_id, kind.as_str(), now])?;
    Ok(())
}

impl Store {
    /// The VAPID key pair `(private, public)`, made by `make` and stored the first time.
    pub async fn push_keys(
        &self,
        make: impl FnOnce() -> Result<(String, String), String> + Send + 'static,
        now: DateTime<Utc>,
    ) -> Result<(String, String), StoreError> {
        self.call_write(Durability::Full, move |tx| {
            let stored = tx
                .query_row(
                    "SELECT private_key, public_key FROM push_keys WHERE id = 1",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            if let Some(keys) = stored {
                return Ok(keys);
            }
            let (private, public) = make().map_err(StoreError::Conflict)?;
            tx.execute(
                "INSERT INTO push_keys (id, private_key, public_key, created_at) VALUES (1, ?1, ?2, ?3)",
                params![private, public, to_millis(now)],
            )?;
            Ok((private, public))
        })
        .await
    }

    /// Stores a subscription (unless `only_confirm`), or confirms the one with the same endpoint (new keys
    /// and name replace the old). Returns it and whether it is new; `None` when there was nothing to confirm.
    pub async fn upsert_subscription(
        &self,
        candidate: StoredSubscription,
        only_confirm: bool,
    ) -> Result<Option<(StoredSubscription, bool)>, StoreError> {
        self.call_write(Durability::Full, move |tx| {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT id FROM push_subscriptions WHERE endpoint = ?1",
                    [&candidate.endpoint],
                    |row| row.get(0),
                )
                .optional()?;
            let confirmed = to_millis(candidate.confirmed_at);
            let (id, created) = match existing {
                Some(id) => {
                    tx.execute(
                        "UPDATE push_subscriptions SET p256dh = ?2, auth = ?3, device = ?4, confirmed_at = ?5
                         WHERE id = ?1",
                        params![id, candidate.p256dh, candidate.auth, candidate.device, confirmed],
                    )?;
                    (id, false)
                }
                None if only_confirm => return Ok(None),
                None => {
                    tx.execute(
                        "INSERT INTO push_subscriptions
                            (id, endpoint, p256dh, auth, device, created_at, confirmed_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                        params![
                            candidate.id,
                            candidate.endpoint,
                            candidate.p256dh,
                            candidate.auth,
                            candidate.device,
                            confirmed
                        ],
                    )?;
                    (candidate.id, true)
                }
            };
            let stored = tx.query_row(
                &format!("{SELECT_SUBSCRIPTION} WHERE id = ?1"),
                [&id],
                subscription_from_row,
            )?;
            Ok(Some((stored, created)))
        })
        .await
    }

    /// Every subscription, oldest first.
    pub async fn subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError> {
        self.call(|conn| {
            let mut stmt = conn.prepare(&format!("{SELECT_SUBSCRIPTION} ORDER BY created_at, id"))?;
            Ok(stmt
                .query_map([], subscription_from_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Deletes subscription `id` and what was queued for it; false when there was none.
    pub async fn delete_subscription(&self, id: String) -> Result<bool, StoreError> {
        self.call_write(Durability::Full, move |tx| {
            Ok(tx.execute("DELETE FROM push_subscriptions WHERE id = ?1", [&id])? > 0)
        })
        .await
    }

    /// Deletes subscriptions not confirmed since `before`; returns how many.
    pub async fn expire_subscriptions(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        self.call_write(Durability::Full, move |tx| {
            Ok(tx.execute(
                "DELETE FROM push_subscriptions WHERE confirmed_at < ?1",
                [to_millis(before)],
            )?)
        })
        .await
    }

    /// Queues a test notification for subscription `id`; false when there is no such subscription.
    pub async fn enqueue_test_push(&self, id: String, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.call_write(Durability::Full, move |tx| {
            let now = to_millis(now);
            Ok(tx.execute(
                "INSERT INTO push_outbox (subscription_id, run_id, kind, next_attempt_at, created_at)
                 SELECT id, NULL, 'test', ?2, ?2 FROM push_subscriptions WHERE id = ?1",
                params![id, now],
            )? > 0)
        })
        .await
    }

    /// Up to `limit` notifications due at `now`, oldest first.
    pub async fn due_pushes(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DuePush>, StoreError> {
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT o.id, o.run_id, o.kind, o.attempts, s.id, s.endpoint, s.p256dh, s.auth, s.device,
                        s.created_at, s.confirmed_at
                 FROM push_outbox o JOIN push_subscriptions s ON s.id = o.subscription_id
                 WHERE o.next_attempt_at <= ?1 ORDER BY o.next_attempt_at, o.id LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![to_millis(now), limit], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, u32>(3)?,
                        subscription_at(row, 4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut due = Vec::with_capacity(rows.len());
            for (id, run_id, kind, attempts, subscription) in rows {
                let run = match run_id {
                    Some(run_id) => match load(conn, &run_id) {
                        Ok(run) => Some(run),
                        Err(StoreError::NotFound(_)) => None,
                        Err(err) => return Err(err),
                    },
                    None => None,
                };
                due.push(DuePush {
                    id,
                    subscription,
                    run,
                    kind,
                    attempts,
                });
            }
            Ok(due)
        })
        .await
    }

    /// When the next queued notification is due, if any.
    pub async fn next_push_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.call(|conn| {
            let next: Option<i64> =
                conn.query_row("SELECT MIN(next_attempt_at) FROM push_outbox", [], |row| {
                    row.get(0)
                })?;
            Ok(next.map(from_millis))
        })
        .await
    }

    /// Removes outbox row `id`: sent, suppressed, or given up.
    pub async fn push_done(&self, id: i64) -> Result<(), StoreError> {
        self.call_write(Durability::Full, move |tx| {
            tx.execute("DELETE FROM push_outbox WHERE id = ?1", [id])?;
            Ok(())
        })
        .await
    }

    /// Tries outbox row `id` again at `at`.
    pub async fn push_retry(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.call_write(Durability::Full, move |tx| {
            tx.execute(
                "UPDATE push_outbox SET attempts = attempts + 1, next_attempt_at = ?2 WHERE id = ?1",
                params![id, to_millis(at)],
            )?;
            Ok(())
        })
        .await
    }

    /// How many runs wait for the owner (the app icon's badge).
    pub async fn runs_waiting(&self) -> Result<u32, StoreError> {
        self.call(|conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM runs WHERE state = 'waiting_for_input'",
                [],
                |row| row.get(0),
            )?)
        })
        .await
    }
}

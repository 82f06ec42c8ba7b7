//! Retention: a run that ended more than `--run-retention-days` ago is deleted with its log.
//!
//! A sweep runs at start and then every [`SWEEP_INTERVAL`]. It deletes through the service's own delete
//! path, so the runtime first frees what is left of the run (its work dir; on Kubernetes its Job and pod,
//! synchronously: a run whose Job cannot be deleted just now stays until a later sweep, so its row never
//! goes while that release is pending), and sockets hear `run_removed`. A run is marked ended only after its
//! agent's output was flushed to the store, so a Job deleted here has nothing left to archive. Never
//! deleted: a run that has not ended (queued, or with an agent), and the newest run of each config.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::service::Farm;
use crate::store::StoreError;

/// How often expired runs are looked for.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// How long ended runs are kept, from `--run-retention-days`; `None` (0 days): forever.
pub fn keep_for(days: u32) -> Option<TimeDelta> {
    (days > 0).then(|| TimeDelta::days(i64::from(days)))
}

/// Deletes every run that ended before `now - keep` (see the module doc); returns the ids deleted.
pub async fn sweep(farm: &Farm, keep: TimeDelta, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
    let Some(cutoff) = now.checked_sub_signed(keep) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for id in farm.store().expired_runs(cutoff).await? {
        match farm.delete_run(id.clone()).await {
            Ok(()) => removed.push(id),
            Err(err) => {
                tracing::warn!(run_id = id, %err, "cannot delete an expired run now; the next sweep tries again");
            }
        }
    }
    if !removed.is_empty() {
        tracing::info!(count = removed.len(), "deleted runs past their retention");
    }
    Ok(removed)
}

/// Sweeps now and every [`SWEEP_INTERVAL`] until `closed` resolves.
pub async fn run(farm: Arc<Farm>, keep: TimeDelta, closed: impl Future<Output = ()>) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closed = std::pin::pin!(closed);
    loop {
        tokio::select! {
            () = &mut closed => return,
            _ = ticks.tick() => {
                if let Err(err) = sweep(&farm, keep, Utc::now()).await {
                    tracing::warn!(%err, "looking for expired runs failed; trying again later");
                }
            }
        }
    }
}

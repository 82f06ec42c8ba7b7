//! The pump: one task per agent that turns its events into stored log lines (in batches) and validated state
//! transitions, publishing each only after it is stored. Credentials in the agent's output are masked before
//! anything reads it, so no stored row, frame or notification carries one.

use std::borrow::Cow;
use std::sync::Arc;

use agentfarm_shared::log::{LogStream, truncate_line};
use agentfarm_shared::run::RunState;
use chrono::{SubsecRound, Utc};

use super::Farm;
use super::meta::Observer;
use crate::error::AppError;
use crate::runtime::{ExitOutcome, RunEvent, RunEvents};
use crate::store::{NewLine, RunPatch, StoreError};

/// Most lines stored in one transaction.
const BATCH: usize = 512;

/// Lines read but not yet stored, and what they say about the run.
#[derive(Default)]
struct Pending {
    lines: Vec<NewLine>,
    patch: RunPatch,
    /// What the output said so far.
    observer: Observer,
    /// The newest line on stderr: the likeliest explanation when an agent fails without saying why.
    last_stderr: Option<String>,
}

impl Farm {
    /// Consumes one agent's events until it exits.
    pub(super) async fn pump(self: Arc<Self>, run_id: String, mut events: RunEvents) {
        let mut pending = Pending::default();
        while let Some(first) = events.recv().await {
            let mut next = Some(first);
            // Take everything already queued, so one transaction stores many lines.
            while let Some(event) = next.take() {
                let exited = matches!(event, RunEvent::Exited(_));
                if let Err(err) = self.handle(&run_id, event, &mut pending).await {
                    tracing::error!(run_id, %err, "could not record the agent's progress");
                }
                if exited {
                    return;
                }
                if pending.lines.len() < BATCH {
                    next = events.try_recv().ok();
                }
            }
            if let Err(err) = self.flush(&run_id, &mut pending).await {
                tracing::error!(run_id, %err, "could not store the agent's output");
            }
        }
        // The runtime dropped the stream without saying how the agent ended.
        let outcome = ExitOutcome {
            error: Some("the runtime lost track of the agent".into()),
            ..ExitOutcome::default()
        };
        if let Err(err) = self.finish(&run_id, &mut pending, &outcome).await {
            tracing::error!(run_id, %err, "could not record the end of the run");
        }
    }

    async fn handle(&self, run_id: &str, event: RunEvent, pending: &mut Pending) -> Result<(), AppError> {
        match event {
            RunEvent::Line {
                ts,
                stream,
                text,
                cursor,
            } => {
                let mut text = match self.redactor.redact(&text) {
                    Cow::Borrowed(_) => text,
                    Cow::Owned(masked) => masked,
                };
                if cursor.is_some() {
                    pending.patch.log_cursor = cursor;
                }
                if stream == LogStream::Stdout {
                    pending.observer.observe(&text, &mut pending.patch);
                }
                if stream == LogStream::Stderr && !text.trim().is_empty() {
                    pending.last_stderr = Some(text.clone());
                }
                let truncated = truncate_line(&mut text);
                // Stored with millisecond precision; live subscribers must see the same value.
                let ts = ts.trunc_subsecs(3);
                pending.lines.push(NewLine {
                    ts,
                    stream,
                    text,
                    truncated,
                });
                Ok(())
            }
            RunEvent::Pending(note) => {
                pending.patch.note = Some(note);
                self.flush(run_id, pending).await
            }
            RunEvent::Working => self.enter(run_id, pending, RunState::Running).await,
            RunEvent::WaitingForInput => self.enter(run_id, pending, RunState::WaitingForInput).await,
            RunEvent::Exited(outcome) => self.finish(run_id, pending, &outcome).await,
        }
    }

    /// Stores pending lines, then moves the run to `state` unless it is already there.
    async fn enter(&self, run_id: &str, pending: &mut Pending, state: RunState) -> Result<(), AppError> {
        self.flush(run_id, pending).await?;
        let at = Utc::now();
        match self
            .store
            .transition(run_id.to_owned(), state, RunPatch::default(), at)
            .await
        {
            Ok(run) => {
                self.metrics.moved_on(&run, at);
                self.hub.run_changed(run);
                Ok(())
            }
            // Already there, or already ended (a late event): nothing to change.
            Err(StoreError::InvalidTransition { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    async fn flush(&self, run_id: &str, pending: &mut Pending) -> Result<(), AppError> {
        if pending.lines.is_empty() && pending.patch.is_empty() {
            return Ok(());
        }
        let lines = std::mem::take(&mut pending.lines);
        let patch = std::mem::take(&mut pending.patch);
        let (stored, run) = self
            .store
            .append_logs(
                run_id.to_owned(),
                lines,
                patch,
                self.limits.log_retention,
                Utc::now(),
            )
            .await?;
        if !stored.is_empty() {
            self.metrics.log_lines.inc_by(stored.len() as u64);
            self.hub.log_stored(run_id, stored.into());
        }
        if let Some(run) = run {
            self.hub.run_changed(run);
        }
        Ok(())
    }

    async fn finish(
        &self,
        run_id: &str,
        pending: &mut Pending,
        outcome: &ExitOutcome,
    ) -> Result<(), AppError> {
        let flushed = self.flush(run_id, pending).await;
        let stopped = self.stop_requested(run_id);
        let (state, reason) = final_state(outcome, stopped, pending.observer.turn_error.as_deref());
        // The runtime's account of the exit can quote the agent (a pod's termination message).
        let reason = self.redactor.redact(&reason).into_owned();
        let mut patch = RunPatch {
            reason: Some(reason),
            exit_code: outcome.code,
            ..RunPatch::default()
        };
        if state == RunState::Failed {
            patch.last_error = pending
                .observer
                .turn_error
                .clone()
                .or_else(|| pending.last_stderr.clone());
        }
        let result = self
            .store
            .transition(run_id.to_owned(), state, patch, Utc::now())
            .await;
        self.set_stop_requested(run_id, false);
        self.wake.notify_one();
        match result {
            Ok(run) => {
                self.metrics.ended(&run);
                self.hub.run_changed(run.clone());
                if let Err(err) = self.resume_after_limit(&run).await {
                    tracing::error!(run_id, %err, "could not queue the continuation after the usage limit");
                }
            }
            Err(StoreError::InvalidTransition { .. }) => {}
            Err(err) => return Err(err.into()),
        }
        if flushed.is_ok() {
            // The end and every line before it are stored: the runtime may let go of the agent's remains.
            self.runtime.release(run_id).await;
        }
        flushed
    }
}

/// How a run ends, given how its agent exited, whether the owner stopped it, and its last turn's error.
fn final_state(outcome: &ExitOutcome, stopped: bool, turn_error: Option<&str>) -> (RunState, String) {
    if stopped {
        return (RunState::Stopped, "stopped by the owner".into());
    }
    if outcome.vanished {
        let reason = outcome
            .error
            .clone()
            .unwrap_or_else(|| "the agent vanished".into());
        return (RunState::Lost, reason);
    }
    if let Some(error) = &outcome.error {
        return (RunState::Failed, error.clone());
    }
    if outcome.timed_out {
        return (
            RunState::Failed,
            "timed out: ran longer than the config's timeout".into(),
        );
    }
    match (outcome.code, outcome.signal, turn_error) {
        (Some(0), _, None) => (RunState::Succeeded, "finished".into()),
        (Some(0), _, Some(error)) => (RunState::Failed, format!("Claude reported an error: {error}")),
        (Some(code), _, _) => (RunState::Failed, format!("exited with code {code}")),
        (None, Some(signal), _) => (RunState::Failed, format!("killed by signal {signal}")),
        (None, None, _) => (RunState::Failed, "ended without an exit status".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32) -> ExitOutcome {
        ExitOutcome {
            code: Some(code),
            ..ExitOutcome::default()
        }
    }

    #[test]
    fn how_runs_end() {
        assert_eq!(final_state(&exit(0), false, None).0, RunState::Succeeded);
        assert_eq!(final_state(&exit(0), true, None).0, RunState::Stopped);
        assert_eq!(final_state(&exit(0), false, Some("limit")).0, RunState::Failed);
        assert_eq!(
            final_state(&exit(1), false, None),
            (RunState::Failed, "exited with code 1".into())
        );
        let killed = ExitOutcome {
            signal: Some(9),
            ..ExitOutcome::default()
        };
        assert_eq!(
            final_state(&killed, false, None),
            (RunState::Failed, "killed by signal 9".into())
        );
        let late = ExitOutcome {
            timed_out: true,
            ..exit(143)
        };
        assert!(final_state(&late, false, None).1.starts_with("timed out"));
        let gone = ExitOutcome {
            vanished: true,
            error: Some("its Job was deleted".into()),
            ..ExitOutcome::default()
        };
        assert_eq!(
            final_state(&gone, false, None),
            (RunState::Lost, "its Job was deleted".into())
        );
    }
}

//! Run commands (launch, stop, follow-up, delete), queries, start-up reconciliation and the scheduler.

use std::sync::{Arc, PoisonError};

use agentfarm_shared::api::{LogQuery, RunQuery};
use agentfarm_shared::config::limits;
use agentfarm_shared::log::LogPage;
use agentfarm_shared::run::{LaunchRequest, RESUME_PROMPT, Run, RunState};
use agentfarm_shared::validate::{self, Violations};
use chrono::Utc;
use tracing::Instrument;

use super::Farm;
use super::configs::path_id;
use crate::capability::Capability;
use crate::error::AppError;
use crate::runtime::{Adoptee, RunSpec, RuntimeError};
use crate::store::{NewRun, RunPatch, StoreError};

/// A new run works on `agentfarm/<run id>`.
const BRANCH_PREFIX: &str = "agentfarm/";
/// Newest runs a list returns by default, and at most.
const RUN_LIST: (u32, u32) = (100, 500);
/// Log lines a page returns by default, and at most.
const LOG_PAGE: (u32, u32) = (500, 5_000);

impl Farm {
    /// Queues a run of config `config_id`'s current version; it starts when a slot is free.
    pub async fn launch(&self, request: LaunchRequest) -> Result<Run, AppError> {
        let mut v = Violations::default();
        v.check("config_id", validate::rfc1123_label(&request.config_id));
        if let Some(prompt) = &request.prompt {
            v.check("prompt", validate::required_text(prompt, limits::PROMPT, false));
            self.refuse_credentials(&mut v, &[("prompt", prompt)]);
        }
        if let Some(earlier) = &request.continue_run {
            v.check("continue_run", validate::rfc1123_label(earlier));
        }
        v.finish()?;
        let config = self
            .store
            .config(request.config_id.clone())
            .await
            .map_err(|err| match err {
                StoreError::NotFound(_) => {
                    AppError::bad_field("config_id", format!("no config {:?}", request.config_id))
                }
                other => other.into(),
            })?;
        let id = self.next_run_id()?;
        let branch = match &request.continue_run {
            Some(earlier) => self.branch_to_continue(earlier, &config.id).await?,
            None => format!("{BRANCH_PREFIX}{id}"),
        };
        let run = NewRun {
            id,
            config_id: config.id,
            config_version: config.version,
            prompt: request.prompt.unwrap_or(config.spec.task_prompt),
            branch,
        };
        let run = self.store.insert_run(run, Utc::now()).await?;
        self.metrics.launches.inc();
        self.hub.run_changed(run.clone());
        self.wake.notify_one();
        Ok(run)
    }

    /// The branch of `earlier`, which must be a run of the same config.
    async fn branch_to_continue(&self, earlier: &str, config_id: &str) -> Result<String, AppError> {
        let run = self
            .store
            .run(earlier.to_owned())
            .await
            .map_err(|err| match err {
                StoreError::NotFound(_) => AppError::bad_field("continue_run", format!("no run {earlier:?}")),
                other => other.into(),
            })?;
        if run.config_id != config_id {
            return Err(AppError::bad_field(
                "continue_run",
                format!("run {earlier} is of another config ({})", run.config_id),
            ));
        }
        run.branch
            .ok_or_else(|| AppError::bad_field("continue_run", format!("run {earlier} has no branch")))
    }

    fn next_run_id(&self) -> Result<String, AppError> {
        let mut ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
        let id = ids
            .generate()
            .map_err(|err| AppError::Conflict(format!("cannot make a run id now: {err}")))?;
        Ok(id.to_string().to_ascii_lowercase())
    }

    /// Stops run `id`: a queued run ends at once; an agent is interrupted, then terminated. Stopping an ended
    /// run changes nothing.
    pub async fn stop(&self, id: String) -> Result<Run, AppError> {
        path_id("run", &id)?;
        let run = self.store.run(id.clone()).await?;
        if run.state.is_terminal() {
            return Ok(run);
        }
        self.set_stop_requested(&id, true);
        if run.state == RunState::Queued {
            let patch = RunPatch {
                reason: Some("stopped before it started".into()),
                ..RunPatch::default()
            };
            match self
                .store
                .transition_from(id.clone(), RunState::Queued, RunState::Stopped, patch, Utc::now())
                .await
            {
                Ok(run) => {
                    self.set_stop_requested(&id, false);
                    self.hub.run_changed(run.clone());
                    return Ok(run);
                }
                // The scheduler started it meanwhile: stop the agent instead.
                Err(StoreError::InvalidTransition { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        match self.runtime.stop(&id).await {
            // Not launched yet: the scheduler sees the stop request right after launching.
            Ok(()) | Err(RuntimeError::NotRunning(_)) => {}
            Err(err) => return Err(err.into()),
        }
        Ok(self.store.run(id).await?)
    }

    /// Sends a follow-up message to the agent of run `id`.
    pub async fn send_input(&self, id: String, text: String) -> Result<Run, AppError> {
        path_id("run", &id)?;
        let mut v = Violations::default();
        v.check("text", validate::required_text(&text, limits::PROMPT, false));
        self.refuse_credentials(&mut v, &[("text", &text)]);
        v.finish()?;
        let run = self.store.run(id.clone()).await?;
        if !matches!(run.state, RunState::Running | RunState::WaitingForInput) {
            return Err(AppError::Conflict(format!(
                "run {id} is {}; only a working agent takes messages",
                run.state
            )));
        }
        self.runtime.send_input(&id, text).await?;
        Ok(run)
    }

    /// Deletes ended run `id`, its log and its work dir.
    pub async fn delete_run(&self, id: String) -> Result<(), AppError> {
        path_id("run", &id)?;
        let run = self.store.run(id.clone()).await?;
        if !run.state.is_terminal() {
            return Err(AppError::Conflict(format!(
                "run {id} is {}; stop it before deleting it",
                run.state
            )));
        }
        self.runtime.remove(&id).await?;
        self.store.delete_run(id.clone()).await?;
        self.hub.run_removed(&id);
        Ok(())
    }

    /// Run `id`.
    pub async fn run(&self, id: String) -> Result<Run, AppError> {
        path_id("run", &id)?;
        Ok(self.store.run(id).await?)
    }

    /// Runs matching `query`, newest first.
    pub async fn runs(&self, query: RunQuery) -> Result<Vec<Run>, AppError> {
        let limit = bounded_limit("limit", query.limit, RUN_LIST)?;
        Ok(self.store.runs(query.state, query.config_id, limit).await?)
    }

    /// A page of run `id`'s log.
    pub async fn logs(&self, id: String, query: LogQuery) -> Result<LogPage, AppError> {
        path_id("run", &id)?;
        let limit = bounded_limit("limit", query.limit, LOG_PAGE)?;
        Ok(self.store.logs(id, query.after_seq, limit).await?)
    }

    /// Reconciles the store with the runtime, then starts the scheduler. Call once, before serving.
    pub async fn start(self: &Arc<Self>) -> Result<(), AppError> {
        let active = self.store.active_runs().await?;
        let mut adoptees = Vec::with_capacity(active.len());
        for run in &active {
            adoptees.push(Adoptee {
                run_id: run.id.clone(),
                cursor: self.store.log_cursor(run.id.clone()).await?,
                relaunch: match run.state {
                    RunState::Starting => Some(self.run_spec(run.clone()).await?),
                    _ => None,
                },
            });
        }
        let spans: std::collections::HashMap<String, tracing::Span> =
            active.iter().map(|run| (run.id.clone(), run_span(run))).collect();
        let adopted = self.runtime.adopt(adoptees).await;
        let adopted_ids: std::collections::HashSet<String> =
            adopted.iter().map(|(id, _)| id.clone()).collect();
        for run in active.into_iter().filter(|run| !adopted_ids.contains(&run.id)) {
            let reason = format!(
                "lost when the server restarted: the {} runtime no longer had its agent",
                self.runtime.info().kind
            );
            tracing::warn!(run_id = run.id, "{reason}");
            let patch = RunPatch {
                reason: Some(reason),
                ..RunPatch::default()
            };
            let lost = self
                .store
                .transition(run.id, RunState::Lost, patch, Utc::now())
                .await?;
            self.hub.run_changed(lost);
        }
        for (run_id, events) in adopted {
            let span = spans.get(&run_id).cloned().unwrap_or_else(tracing::Span::none);
            tokio::spawn(Arc::clone(self).pump(run_id, events).instrument(span));
        }
        let farm = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(err) = farm.schedule().await {
                    tracing::error!(%err, "scheduling queued runs failed; retrying on the next change");
                }
                farm.wake.notified().await;
            }
        });
        Ok(())
    }

    /// Starts queued runs, oldest first, while fewer than `max_running` are active: all of them marked
    /// `starting` in one commit, then handed to the runtime together, so that one slow launch (a process to
    /// spawn, an API call) does not hold back the others. While the subscription's usage limit refuses
    /// requests, nothing starts (an agent would fail at once): the scheduler wakes again at the reset.
    async fn schedule(self: &Arc<Self>) -> Result<(), AppError> {
        let window = self.store.usage_window().await?;
        if let Some(reset) = window.and_then(|window| window.exhausted_until(Utc::now())) {
            self.wake_at(reset);
            return Ok(());
        }
        let starting = self
            .store
            .start_queued(self.limits.max_running, Utc::now())
            .await?;
        for run in &starting {
            self.hub.run_changed(run.clone());
        }
        let launches = starting.into_iter().map(|run| {
            let span = run_span(&run);
            self.start_run(run).instrument(span)
        });
        for result in futures_util::future::join_all(launches).await {
            if let Err(err) = result {
                tracing::error!(%err, "could not record how a launch went");
            }
        }
        Ok(())
    }

    /// Wakes the scheduler at `at` (one timer: a later call replaces it).
    fn wake_at(self: &Arc<Self>, at: chrono::DateTime<Utc>) {
        let farm = Arc::clone(self);
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            farm.wake.notify_one();
        });
        tracing::info!(resets_at = %at, "the usage limit holds queued runs until it resets");
        let mut held = self.resume_timer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(earlier) = held.replace(timer) {
            earlier.abort();
        }
    }

    /// Queues the continuation of `ended`, which the usage limit stopped, when its config resumes by itself:
    /// the same branch and pull request; it starts when the limit resets.
    pub(super) async fn resume_after_limit(&self, ended: &Run) -> Result<(), AppError> {
        if ended.limit_resets_at.is_none() || ended.state != RunState::Failed {
            return Ok(());
        }
        let spec = self
            .store
            .config_version(ended.config_id.clone(), ended.config_version)
            .await?;
        if !spec.auto_resume {
            return Ok(());
        }
        let resumed = self
            .launch(LaunchRequest {
                config_id: ended.config_id.clone(),
                prompt: Some(RESUME_PROMPT.to_owned()),
                continue_run: Some(ended.id.clone()),
            })
            .await?;
        tracing::info!(
            run_id = ended.id,
            resumed = resumed.id,
            "queued its continuation after the usage limit"
        );
        Ok(())
    }

    /// Hands `run`, already `starting`, to the runtime and pumps its events; a run the runtime cannot start
    /// fails with the runtime's reason.
    async fn start_run(self: &Arc<Self>, run: Run) -> Result<(), AppError> {
        let launched = match self.run_spec(run.clone()).await {
            Ok(spec) => self.runtime.launch(spec).await.map_err(|err| err.to_string()),
            Err(err) => Err(format!("cannot prepare the launch: {err}")),
        };
        match launched {
            Ok(events) => {
                // Called in the run's span: its pump stays in it.
                tokio::spawn(Arc::clone(self).pump(run.id.clone(), events).in_current_span());
                if self.stop_requested(&run.id) {
                    self.runtime.stop(&run.id).await.ok();
                }
            }
            Err(reason) => {
                let patch = RunPatch {
                    reason: Some(reason.clone()),
                    last_error: Some(reason),
                    ..RunPatch::default()
                };
                let failed = self
                    .store
                    .transition(run.id.clone(), RunState::Failed, patch, Utc::now())
                    .await?;
                self.set_stop_requested(&run.id, false);
                self.hub.run_changed(failed);
                self.wake.notify_one();
            }
        }
        Ok(())
    }

    /// What the runtime needs to start `run`, with a capability minted for it (its hash stored first, so the
    /// agent's first request finds it).
    async fn run_spec(&self, run: Run) -> Result<RunSpec, AppError> {
        let capability = Capability::mint().map_err(|err| {
            AppError::Runtime(RuntimeError::Failed(format!(
                "no randomness for a capability: {err}"
            )))
        })?;
        self.store
            .issue_capability(run.id.clone(), capability.hash(), Utc::now())
            .await?;
        Ok(RunSpec {
            capability,
            config: self
                .store
                .config_version(run.config_id.clone(), run.config_version)
                .await?,
            session_id: uuid::Uuid::new_v4().to_string(),
            branch: run.branch.unwrap_or_else(|| format!("{BRANCH_PREFIX}{}", run.id)),
            run_id: run.id,
            config_id: run.config_id,
            config_version: run.config_version,
            prompt: run.prompt,
        })
    }
}

/// The span of everything done for `run` from its launch on: handing it to the runtime (and what the runtime
/// starts for it), then pumping its agent's events.
fn run_span(run: &Run) -> tracing::Span {
    tracing::info_span!("run", run_id = run.id, config_id = run.config_id)
}

fn bounded_limit(field: &str, limit: Option<u32>, (default, max): (u32, u32)) -> Result<u32, AppError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(AppError::bad_field(field, format!("must be between 1 and {max}"))),
    }
}

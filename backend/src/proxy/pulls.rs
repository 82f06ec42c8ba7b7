//! The pull request call: the runner asks the control plane, with its capability, to open or update the pull
//! request of its branch in one of its config's repositories; the control plane makes the GitHub call with
//! the owner's token.

use std::sync::Arc;

use agentfarm_shared::runner::{PullRequestAnswer, PullRequestAsk};
use axum::Json;
use axum::extract::State;

use super::{Run, Upstream, config_lists};
use crate::api::extract::ApiJson;
use crate::error::AppError;
use crate::github::{Github, GithubError};

/// The route.
pub const ROUTE: &str = agentfarm_shared::runner::PULL_REQUEST_ROUTE;

/// `POST /proxy/github/pull-request`.
pub async fn open_or_update(
    State(upstream): State<Arc<Upstream>>,
    State(http): State<reqwest::Client>,
    Run(holder): Run,
    ApiJson(ask): ApiJson<PullRequestAsk>,
) -> Result<Json<PullRequestAnswer>, AppError> {
    let Some((owner, name)) = ask.repo.split_once('/') else {
        return Err(AppError::bad_field("repo", "expected owner/repo"));
    };
    if !config_lists(&holder, owner, name) {
        return Err(AppError::Forbidden(format!(
            "{} is not a repository of this run's config",
            ask.repo
        )));
    }
    if ask.base.is_empty() || ask.title.is_empty() {
        let field = if ask.base.is_empty() { "base" } else { "title" };
        return Err(AppError::bad_field(field, "must not be empty"));
    }
    let token = upstream.credentials.github.get().await.map_err(|err| {
        tracing::error!(%err, "no GitHub token for a pull request");
        AppError::Upstream("the control plane has no GitHub token; see its log".into())
    })?;
    let github = Github::new(http, &upstream.api_url, token);
    let (pull, updated) = github
        .open_or_update(owner, name, &holder.branch, &ask.base, &ask.title, &ask.body)
        .await
        .map_err(|err| match err {
            GithubError::Status { status, message } => {
                AppError::Upstream(format!("GitHub answered {status}: {message}"))
            }
            GithubError::Transport(err) => AppError::Upstream(format!("GitHub did not answer: {err}")),
        })?;
    Ok(Json(PullRequestAnswer {
        number: pull.number,
        url: pull.html_url,
        updated,
    }))
}

//! The git proxy: git smart HTTP (`info/refs`, `git-upload-pack`, `git-receive-pack`) under
//! `/proxy/git/{owner}/{repo}.git/`, forwarded to GitHub with the owner's token. A run fetches only the
//! repositories of its config, and pushes only to its own branch: the proxy reads a push's ref updates before
//! forwarding it, and answers any other ref, a deletion or a tag with git's own refusal, which the agent reads
//! as `! [remote rejected] … (reason)`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::pkt::{self, Head};
use super::{Run, Upstream, config_lists, forwardable};
use crate::error::AppError;
use crate::store::Holder;

/// Largest head of a push (its ref updates) read before the pack: thousands of refs fit.
const MAX_PUSH_HEAD: usize = 256 * 1024;

/// The query of `info/refs`.
#[derive(Deserialize)]
pub struct Service {
    service: Option<String>,
}

/// `GET …/info/refs?service=…`: the refs, for a repository of the run's config.
pub async fn advertise(
    State(upstream): State<Arc<Upstream>>,
    State(http): State<reqwest::Client>,
    Run(holder): Run,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<Service>,
    request: Request,
) -> Result<Response, AppError> {
    let service = query.service.unwrap_or_default();
    if !matches!(service.as_str(), "git-upload-pack" | "git-receive-pack") {
        return Err(AppError::Forbidden(
            "only git's smart HTTP protocol is served; upgrade git".into(),
        ));
    }
    let name = repo.strip_suffix(".git").unwrap_or(&repo);
    if !config_lists(&holder, &owner, name) {
        let message = format!("{owner}/{name} is not a repository of this run's config");
        let body = pkt::error_advertisement(&service, &message);
        let content_type = format!("application/x-{service}-advertisement");
        return Ok(([(header::CONTENT_TYPE, content_type)], body).into_response());
    }
    let path = format!("{owner}/{name}.git/info/refs?service={service}");
    forward(
        &upstream,
        &http,
        Method::GET,
        &path,
        request.headers(),
        Body::empty(),
    )
    .await
}

/// `repo` without its `.git`, if `owner/repo` is a repository of the run's config; else 403 naming it.
fn config_repo<'a>(holder: &Holder, owner: &str, repo: &'a str) -> Result<&'a str, AppError> {
    let name = repo.strip_suffix(".git").unwrap_or(repo);
    if config_lists(holder, owner, name) {
        Ok(name)
    } else {
        Err(AppError::Forbidden(format!(
            "{owner}/{name} is not a repository of this run's config"
        )))
    }
}

/// `POST …/git-upload-pack`: a fetch, for a repository of the run's config.
pub async fn upload_pack(
    State(upstream): State<Arc<Upstream>>,
    State(http): State<reqwest::Client>,
    Run(holder): Run,
    Path((owner, repo)): Path<(String, String)>,
    request: Request,
) -> Result<Response, AppError> {
    let name = config_repo(&holder, &owner, &repo)?;
    let (parts, body) = request.into_parts();
    let path = format!("{owner}/{name}.git/git-upload-pack");
    forward(&upstream, &http, Method::POST, &path, &parts.headers, body).await
}

/// `POST …/git-receive-pack`: a push, forwarded only when it updates nothing but the run's branch.
pub async fn receive_pack(
    State(upstream): State<Arc<Upstream>>,
    State(http): State<reqwest::Client>,
    Run(holder): Run,
    Path((owner, repo)): Path<(String, String)>,
    request: Request,
) -> Result<Response, AppError> {
    let name = config_repo(&holder, &owner, &repo)?;
    let (parts, body) = request.into_parts();
    if parts.headers.contains_key(header::CONTENT_ENCODING) {
        return Err(AppError::UnsupportedMediaType);
    }
    let mut stream = body.into_data_stream();
    let mut read = Vec::new();
    let head = loop {
        match pkt::push_head(&read) {
            Head::Complete(head) => break head,
            Head::Invalid(why) => return Err(AppError::bad_field("body", why)),
            Head::Incomplete if read.len() > MAX_PUSH_HEAD => {
                return Err(AppError::PayloadTooLarge(MAX_PUSH_HEAD));
            }
            Head::Incomplete => match stream.next().await {
                Some(Ok(chunk)) => read.extend_from_slice(&chunk),
                Some(Err(err)) => return Err(AppError::bad_field("body", err.to_string())),
                None => {
                    return Err(AppError::bad_field(
                        "body",
                        "the push ended before its ref updates",
                    ));
                }
            },
        }
    };
    let allowed = format!("refs/heads/{}", holder.branch);
    let verdicts: Vec<Option<String>> = head
        .updates
        .iter()
        .map(|update| {
            if update.name != allowed {
                Some(format!("agentfarm: this run may push only to {allowed}"))
            } else if update.deletes() {
                Some("agentfarm: a run may not delete its branch".to_owned())
            } else {
                None
            }
        })
        .collect();
    if verdicts.iter().any(Option::is_some) {
        tracing::warn!(run_id = holder.run_id, refs = ?head.updates.iter().map(|u| &u.name).collect::<Vec<_>>(), "refused a push");
        // Read what the client still sends (the pack), so that it hears the refusal instead of a broken pipe.
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                break;
            }
        }
        if !head
            .capabilities
            .iter()
            .any(|cap| cap.starts_with("report-status"))
        {
            return Err(AppError::Forbidden(format!(
                "this run may push only to {allowed}"
            )));
        }
        let why: Vec<String> = verdicts
            .into_iter()
            .map(|verdict| verdict.unwrap_or_else(|| "agentfarm: refused with the rest of the push".into()))
            .collect();
        let notice = format!("agentfarm: refused; this run may push only to {allowed}");
        let body = pkt::refusal(&head, &why, &notice);
        return Ok((
            [(header::CONTENT_TYPE, "application/x-git-receive-pack-result")],
            body,
        )
            .into_response());
    }
    let rest = stream.map_err(std::io::Error::other);
    let whole = futures_util::stream::once(async move { Ok(Bytes::from(read)) }).chain(rest);
    let path = format!("{owner}/{name}.git/git-receive-pack");
    forward(
        &upstream,
        &http,
        Method::POST,
        &path,
        &parts.headers,
        Body::from_stream(whole),
    )
    .await
}

/// Sends a request to `{git_url}/{path}` with the owner's token, the body streamed both ways.
async fn forward(
    upstream: &Upstream,
    http: &reqwest::Client,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let token = upstream.credentials.github.get().await.map_err(|err| {
        tracing::error!(%err, "the git proxy has no GitHub token");
        AppError::Upstream("the control plane has no GitHub token; see its log".into())
    })?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    let mut authorization = HeaderValue::from_str(&format!("Basic {basic}"))
        .map_err(|_| AppError::Upstream("the GitHub token is not a valid header value".into()))?;
    authorization.set_sensitive(true);
    let url = format!("{}/{path}", upstream.git_url.trim_end_matches('/'));
    let mut request = http
        .request(method, &url)
        .header(header::AUTHORIZATION, authorization)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    for (name, value) in headers.iter().filter(|(name, _)| forwardable(name)) {
        request = request.header(name, value);
    }
    // Logged by the trace layer, with the error.
    let answer = request
        .send()
        .await
        .map_err(|err| AppError::Upstream(format!("GitHub did not answer: {err}")))?;
    if answer.status() == StatusCode::UNAUTHORIZED {
        // The owner's token was refused: never pass GitHub's challenge on, or git would ask the agent again.
        return Err(AppError::Upstream(
            "GitHub refused the control plane's token; see its settings".into(),
        ));
    }
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers().iter().filter(|(name, _)| forwardable(name)) {
        response = response.header(name, value);
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .map_err(|err| AppError::Upstream(format!("GitHub's answer cannot be passed on: {err}")))
}

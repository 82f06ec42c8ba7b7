//! The proxies agents use instead of credentials. Each request carries the run's capability; the proxy
//! checks it, then forwards with the owner's credential, which never enters an agent.
//!
//! - [`model`]: the Anthropic Messages API, answers streamed back as they come, counting tokens and reading the
//!   usage window.
//! - [`git`]: git smart HTTP, fetch limited to the run's repositories, push to the run's branch only.
//! - [`pulls`]: the one GitHub API call a run makes, opening or updating its pull request.
//!
//! They are routed apart from the app's API: no browser guard or identity check (agents are not browsers),
//! the capability instead.

pub mod git;
pub mod model;
mod pkt;
pub mod pulls;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::routing::{any, get, post};
use base64::Engine;

use crate::credentials::OwnerCredentials;
use crate::error::AppError;
use crate::store::{Holder, Store};

/// Where the proxies forward to, and with what.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The Anthropic API's base URL.
    pub anthropic_url: String,
    /// Base URL of git remotes (`https://github.com`).
    pub git_url: String,
    /// The GitHub REST API's base URL.
    pub api_url: String,
    /// The owner's tokens.
    pub credentials: OwnerCredentials,
}

/// What the proxies share.
#[derive(Clone, FromRef)]
pub struct ProxyState {
    /// Capabilities and usage.
    pub store: Store,
    /// Where to forward.
    pub upstream: Arc<Upstream>,
    /// The client forwarding requests (no timeout: model answers stream for minutes).
    pub http: reqwest::Client,
    /// Model tokens counted for `/metrics`.
    pub model_tokens: model::ModelTokens,
}

/// The proxies' routes, under `/proxy/`.
pub fn router(state: ProxyState) -> Router {
    let router = Router::new()
        .route("/proxy/anthropic/{*path}", any(model::forward))
        .route("/proxy/git/{owner}/{repo}/info/refs", get(git::advertise))
        .route(
            "/proxy/git/{owner}/{repo}/git-upload-pack",
            post(git::upload_pack),
        )
        .route(
            "/proxy/git/{owner}/{repo}/git-receive-pack",
            post(git::receive_pack),
        )
        .route(pulls::ROUTE, post(pulls::open_or_update));
    crate::api::trace::traced(router).with_state(state)
}

/// The run whose capability a request carries: `Authorization: Bearer …` (Claude Code, the runner),
/// `x-api-key: …`, or HTTP Basic with the capability as password (git).
pub struct Run(pub Holder);

impl<S> FromRequestParts<S> for Run
where
    Store: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let presented = presented_capability(&parts.headers)
            .ok_or_else(|| AppError::NoCapability("this needs the run's capability".into()))?;
        let store = Store::from_ref(state);
        store
            .capability_holder(crate::capability::hash(&presented))
            .await?
            .map(Run)
            .ok_or_else(|| AppError::NoCapability("the capability is unknown, or its run has ended".into()))
    }
}

fn presented_capability(headers: &HeaderMap) -> Option<String> {
    let text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(key) = text(header::HeaderName::from_static("x-api-key")) {
        return Some(key.trim().to_owned());
    }
    let authorization = text(header::AUTHORIZATION)?;
    let (scheme, value) = authorization.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(value.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()?;
        let (_, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        return Some(password.to_owned());
    }
    None
}

/// The repository `owner/name` as a run's config lists it (`owner/name` or `owner/name@base`).
fn config_lists(holder: &Holder, owner: &str, name: &str) -> bool {
    holder.repos.iter().any(|listed| {
        let repo = listed.split_once('@').map_or(listed.as_str(), |(repo, _)| repo);
        repo.split_once('/')
            .is_some_and(|(o, n)| o.eq_ignore_ascii_case(owner) && n.eq_ignore_ascii_case(name))
    })
}

/// Request headers that describe one hop, never forwarded (RFC 9110 §7.6.1), plus the credentials replaced.
fn forwardable(name: &header::HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
            | "authorization"
            | "x-api-key"
            | "cookie"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capability_is_read_from_bearer_api_key_or_basic() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_capability(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer afrun_x".parse().unwrap());
        assert_eq!(presented_capability(&headers).as_deref(), Some("afrun_x"));
        let basic = base64::engine::general_purpose::STANDARD.encode("x-access-token:afrun_y");
        headers.insert(header::AUTHORIZATION, format!("Basic {basic}").parse().unwrap());
        assert_eq!(presented_capability(&headers).as_deref(), Some("afrun_y"));
        headers.insert("x-api-key", "afrun_z".parse().unwrap());
        assert_eq!(presented_capability(&headers).as_deref(), Some("afrun_z"));
    }

    #[test]
    fn only_the_configs_repositories_are_listed() {
        let holder = Holder {
            run_id: "r".into(),
            repos: vec!["octo/app@dev".into(), "octo/lib".into()],
            branch: "agentfarm/r".into(),
        };
        assert!(config_lists(&holder, "octo", "app"));
        assert!(config_lists(&holder, "Octo", "LIB"));
        assert!(!config_lists(&holder, "octo", "other"));
        assert!(!config_lists(&holder, "evil", "app"));
    }
}

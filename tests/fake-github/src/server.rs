//! The HTTP front: records every request, then sends `/api/v3/…` to the REST API and everything else to git.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::pulls::StoredPull;
use crate::{RecordedRequest, api, git};

/// Path prefix of the REST API (GitHub Enterprise's).
pub(crate) const API_PREFIX: &str = "/api/v3";

/// Largest REST request body read.
const MAX_API_BODY: usize = 1024 * 1024;

/// State shared by the server and the [`crate::FakeGithub`] handle.
pub(crate) struct Shared {
    /// `GIT_PROJECT_ROOT`: repositories live at `<root>/<owner>/<repo>.git`.
    pub(crate) root: PathBuf,
    /// The one accepted credential.
    pub(crate) token: String,
    /// `http://127.0.0.1:<port>`.
    pub(crate) git_url: String,
    /// `http://127.0.0.1:<port>/api/v3`.
    pub(crate) api_url: String,
    /// Everything received, in arrival order.
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    /// Every pull request, in creation order.
    pub(crate) pulls: Mutex<Vec<StoredPull>>,
}

/// The router of a fake server (serve it with `ConnectInfo<SocketAddr>`).
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(dispatch).with_state(shared)
}

/// Records `request` and routes it.
async fn dispatch(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let uri = request.uri();
    let recorded = RecordedRequest {
        method: request.method().to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |path| path.as_str().to_owned()),
        headers: agentfarm_local_server::recorded_headers(request.headers()),
    };
    tracing::debug!(
        method = recorded.method,
        path = recorded.path,
        "fake github request"
    );
    shared
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(recorded);

    let path = request.uri().path().to_owned();
    if let Some(api_path) = path.strip_prefix(API_PREFIX)
        && (api_path.is_empty() || api_path.starts_with('/'))
    {
        let query = request.uri().query().map(str::to_owned);
        let (parts, body) = request.into_parts();
        let Ok(body) = to_bytes(body, MAX_API_BODY).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
        };
        return api::handle(
            shared,
            &parts.method,
            api_path,
            query.as_deref(),
            &parts.headers,
            body,
        )
        .await;
    }
    if git::is_git_path(&path) {
        return git::handle(&shared, remote, request).await;
    }
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not Found\n",
    )
        .into_response()
}

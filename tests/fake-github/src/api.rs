//! The REST subset, mounted under `/api/v3` (GitHub Enterprise's layout): get a repository, and list,
//! create, get and update its pull requests. Errors use GitHub's `{"message", "documentation_url", "status"}`
//! shape.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::pulls::{self, ListFilter, StoredPull, Urls};
use crate::server::Shared;
use crate::{PullRequest, auth, repos};

const DOCS: &str = "https://docs.github.com/rest";
const DOCS_REPO: &str = "https://docs.github.com/rest/repos/repos#get-a-repository";
const DOCS_LIST: &str = "https://docs.github.com/rest/pulls/pulls#list-pull-requests";
const DOCS_CREATE: &str = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request";
const DOCS_GET: &str = "https://docs.github.com/rest/pulls/pulls#get-a-pull-request";
const DOCS_UPDATE: &str = "https://docs.github.com/rest/pulls/pulls#update-a-pull-request";

/// A JSON response.
fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

/// A GitHub error body.
fn error(status: StatusCode, message: &str, documentation_url: &str) -> Response {
    json_response(
        status,
        &json!({
            "message": message,
            "documentation_url": documentation_url,
            "status": status.as_u16().to_string(),
        }),
    )
}

/// 422 `Validation Failed` with one entry in `errors`.
fn validation_failed(entry: Value, documentation_url: &str) -> Response {
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({
            "message": "Validation Failed",
            "errors": Value::Array(vec![entry]),
            "documentation_url": documentation_url,
            "status": "422",
        }),
    )
}

/// A `{"resource": "PullRequest", "field", "code"}` validation entry.
fn field_error(field: &str, code: &str) -> Value {
    json!({ "resource": "PullRequest", "field": field, "code": code })
}

/// A `{"resource": "PullRequest", "code": "custom", "message"}` validation entry.
fn custom_error(message: &str) -> Value {
    json!({ "resource": "PullRequest", "code": "custom", "message": message })
}

/// Runs blocking git work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

/// Handles one REST request; `path` is without the `/api/v3` prefix.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if !auth::api_token_ok(headers, &shared.token) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS);
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["repos", owner, repo, rest @ ..] = segments.as_slice() else {
        return error(StatusCode::NOT_FOUND, "Not Found", DOCS);
    };
    let Some(repo_dir) = repos::existing_repo(&shared.root, owner, repo) else {
        return error(StatusCode::NOT_FOUND, "Not Found", DOCS_REPO);
    };
    let (owner, repo) = ((*owner).to_owned(), (*repo).to_owned());
    match (method, rest) {
        (&Method::GET, []) => get_repo(&shared, repo_dir, &owner, &repo).await,
        (&Method::GET, ["pulls"]) => list(&shared, repo_dir, &owner, &repo, query).await,
        (&Method::POST, ["pulls"]) => create(&shared, repo_dir, &owner, &repo, &body).await,
        (&Method::GET | &Method::PATCH, ["pulls", number]) => {
            let Ok(number) = number.parse::<u64>() else {
                return error(StatusCode::NOT_FOUND, "Not Found", DOCS_GET);
            };
            if method == Method::GET {
                get_pull(&shared, repo_dir, &owner, &repo, number).await
            } else {
                update(&shared, repo_dir, &owner, &repo, number, &body).await
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found", DOCS),
    }
}

impl Shared {
    /// The URLs JSON objects refer to.
    fn urls(&self) -> Urls<'_> {
        Urls {
            web: &self.git_url,
            api: &self.api_url,
        }
    }

    /// Pull requests of owner/repo passing `keep`.
    fn stored_pulls(&self, owner: &str, repo: &str, keep: impl Fn(&StoredPull) -> bool) -> Vec<StoredPull> {
        self.pulls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|stored| stored.pull.owner == owner && stored.pull.repo == repo && keep(stored))
            .cloned()
            .collect()
    }
}

/// The repository's default branch and the pull requests with their head/base shas brought up to date.
async fn refreshed(repo_dir: PathBuf, mut stored: Vec<StoredPull>) -> (String, Vec<StoredPull>) {
    blocking(move || {
        for entry in &mut stored {
            refresh(&repo_dir, entry);
        }
        (repos::default_branch(&repo_dir).unwrap_or_default(), stored)
    })
    .await
    .unwrap_or_default()
}

/// Updates the shas of `stored` from the branches, where they still exist.
fn refresh(repo_dir: &Path, stored: &mut StoredPull) {
    if let Some(sha) = repos::branch_head(repo_dir, &stored.pull.head) {
        stored.head_sha = sha;
    }
    if let Some(sha) = repos::branch_head(repo_dir, &stored.pull.base) {
        stored.base_sha = sha;
    }
}

/// Stores the refreshed shas back (the numbers identify the entries).
fn save_shas(shared: &Shared, fresh: &[StoredPull]) {
    let mut all = shared.pulls.lock().unwrap_or_else(PoisonError::into_inner);
    for entry in fresh {
        if let Some(target) = all.iter_mut().find(|stored| {
            stored.pull.owner == entry.pull.owner
                && stored.pull.repo == entry.pull.repo
                && stored.pull.number == entry.pull.number
        }) {
            target.head_sha.clone_from(&entry.head_sha);
            target.base_sha.clone_from(&entry.base_sha);
        }
    }
}

/// `GET /repos/{owner}/{repo}`.
async fn get_repo(shared: &Shared, repo_dir: PathBuf, owner: &str, repo: &str) -> Response {
    let default_branch = blocking(move || repos::default_branch(&repo_dir))
        .await
        .flatten()
        .unwrap_or_default();
    json_response(
        StatusCode::OK,
        &pulls::repo_json(&shared.urls(), owner, repo, &default_branch),
    )
}

/// `GET /repos/{owner}/{repo}/pulls?state=&head=&base=&direction=`.
async fn list(shared: &Shared, repo_dir: PathBuf, owner: &str, repo: &str, query: Option<&str>) -> Response {
    let mut filter = ListFilter::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = value.into_owned();
        match key.as_ref() {
            "state" => filter.state = Some(value),
            "head" => filter.head = Some(value),
            "base" => filter.base = Some(value),
            "direction" => filter.direction = Some(value),
            _ => {}
        }
    }
    if let Some(state) = filter.state.as_deref()
        && !matches!(state, "open" | "closed" | "all")
    {
        return validation_failed(field_error("state", "invalid"), DOCS_LIST);
    }
    let mut matching = shared.stored_pulls(owner, repo, |stored| filter.matches(stored));
    if !filter.ascending() {
        matching.reverse();
    }
    let (default_branch, matching) = refreshed(repo_dir, matching).await;
    save_shas(shared, &matching);
    let urls = shared.urls();
    let array: Vec<Value> = matching
        .iter()
        .map(|stored| pulls::pull_json(&urls, stored, &default_branch))
        .collect();
    json_response(StatusCode::OK, &Value::Array(array))
}

/// `GET /repos/{owner}/{repo}/pulls/{number}`.
async fn get_pull(shared: &Shared, repo_dir: PathBuf, owner: &str, repo: &str, number: u64) -> Response {
    let found = shared.stored_pulls(owner, repo, |stored| stored.pull.number == number);
    if found.is_empty() {
        return error(StatusCode::NOT_FOUND, "Not Found", DOCS_GET);
    }
    let (default_branch, found) = refreshed(repo_dir, found).await;
    save_shas(shared, &found);
    match found.first() {
        Some(stored) => json_response(
            StatusCode::OK,
            &pulls::pull_json(&shared.urls(), stored, &default_branch),
        ),
        None => error(StatusCode::NOT_FOUND, "Not Found", DOCS_GET),
    }
}

/// The body as a JSON object, or GitHub's 400.
#[allow(clippy::result_large_err)] // the error is the ready response
fn json_object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(error(StatusCode::BAD_REQUEST, "Problems parsing JSON", DOCS)),
    }
}

/// `field` of `object` as a string: `Ok(None)` if absent or null, `Err` if another type.
fn string_field<'a>(object: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ()> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(()),
    }
}

/// What git says about a proposed head/base pair.
struct Branches {
    head_sha: Option<String>,
    base_sha: Option<String>,
    no_commits: bool,
    default_branch: String,
}

/// Looks up `head` and `base` in the repository.
async fn branches(repo_dir: PathBuf, head: String, base: String) -> Branches {
    blocking(move || {
        let head_sha = repos::branch_head(&repo_dir, &head);
        let base_sha = repos::branch_head(&repo_dir, &base);
        let no_commits = match (&head_sha, &base_sha) {
            (Some(head), Some(base)) => repos::no_commits_between(&repo_dir, base, head),
            _ => false,
        };
        Branches {
            head_sha,
            base_sha,
            no_commits,
            default_branch: repos::default_branch(&repo_dir).unwrap_or_default(),
        }
    })
    .await
    .unwrap_or(Branches {
        head_sha: None,
        base_sha: None,
        no_commits: false,
        default_branch: String::new(),
    })
}

/// `POST /repos/{owner}/{repo}/pulls` with `{title, head, base, body?, draft?}`.
async fn create(shared: &Shared, repo_dir: PathBuf, owner: &str, repo: &str, body: &[u8]) -> Response {
    let object = match json_object(body) {
        Ok(object) => object,
        Err(response) => return response,
    };
    let mut fields = [None; 4];
    for (slot, name) in fields.iter_mut().zip(["title", "head", "base", "body"]) {
        match string_field(&object, name) {
            Ok(value) => *slot = value,
            Err(()) => return validation_failed(field_error(name, "invalid"), DOCS_CREATE),
        }
    }
    let [title, head, base, pr_body] = fields;
    let draft = match object.get("draft") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(draft)) => *draft,
        Some(_) => return validation_failed(field_error("draft", "invalid"), DOCS_CREATE),
    };
    for (name, value) in [("title", title), ("head", head), ("base", base)] {
        if value.is_none_or(|value| value.trim().is_empty()) {
            return validation_failed(field_error(name, "missing_field"), DOCS_CREATE);
        }
    }
    let (title, head, base) = (
        title.unwrap_or_default(),
        head.unwrap_or_default(),
        base.unwrap_or_default(),
    );
    // `head` is `branch` or `owner:branch`; there are no forks here, so the owner must be the repository's.
    let head_branch = match head.split_once(':') {
        Some((head_owner, branch)) if head_owner.eq_ignore_ascii_case(owner) => branch,
        Some(_) => return validation_failed(field_error("head", "invalid"), DOCS_CREATE),
        None => head,
    };
    let found = branches(repo_dir, head_branch.to_owned(), base.to_owned()).await;
    let Some(base_sha) = found.base_sha else {
        return validation_failed(field_error("base", "invalid"), DOCS_CREATE);
    };
    let Some(head_sha) = found.head_sha else {
        return validation_failed(field_error("head", "invalid"), DOCS_CREATE);
    };

    let stored = {
        let mut all = shared.pulls.lock().unwrap_or_else(PoisonError::into_inner);
        let in_repo = |stored: &&StoredPull| stored.pull.owner == owner && stored.pull.repo == repo;
        if all.iter().filter(in_repo).any(|stored| {
            stored.pull.state == "open" && stored.pull.head == head_branch && stored.pull.base == base
        }) {
            return validation_failed(
                custom_error(&format!(
                    "A pull request already exists for {owner}:{head_branch}."
                )),
                DOCS_CREATE,
            );
        }
        if found.no_commits {
            return validation_failed(
                custom_error(&format!("No commits between {base} and {head_branch}")),
                DOCS_CREATE,
            );
        }
        let number = all.iter().filter(in_repo).count() as u64 + 1;
        let stored = StoredPull {
            pull: PullRequest {
                owner: owner.to_owned(),
                repo: repo.to_owned(),
                number,
                title: title.to_owned(),
                body: pr_body.unwrap_or_default().to_owned(),
                head: head_branch.to_owned(),
                base: base.to_owned(),
                state: "open".to_owned(),
                html_url: format!("{}/{owner}/{repo}/pull/{number}", shared.git_url),
                updates: 0,
            },
            draft,
            has_body: pr_body.is_some(),
            head_sha,
            base_sha,
        };
        all.push(stored.clone());
        stored
    };
    tracing::debug!(
        owner,
        repo,
        number = stored.pull.number,
        "fake github: pull request created"
    );
    let value = pulls::pull_json(&shared.urls(), &stored, &found.default_branch);
    let mut response = json_response(StatusCode::CREATED, &value);
    if let Some(location) = value["url"]
        .as_str()
        .and_then(|url| HeaderValue::from_str(url).ok())
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `PATCH /repos/{owner}/{repo}/pulls/{number}` with `{title?, body?, state?, base?}`.
async fn update(
    shared: &Shared,
    repo_dir: PathBuf,
    owner: &str,
    repo: &str,
    number: u64,
    body: &[u8],
) -> Response {
    let object = match json_object(body) {
        Ok(object) => object,
        Err(response) => return response,
    };
    let Some(current) = shared
        .stored_pulls(owner, repo, |stored| stored.pull.number == number)
        .into_iter()
        .next()
    else {
        return error(StatusCode::NOT_FOUND, "Not Found", DOCS_UPDATE);
    };
    let mut fields = [None; 4];
    for (slot, name) in fields.iter_mut().zip(["title", "body", "state", "base"]) {
        match string_field(&object, name) {
            Ok(value) => *slot = value,
            Err(()) => return validation_failed(field_error(name, "invalid"), DOCS_UPDATE),
        }
    }
    let [title, pr_body, state, base] = fields;
    if state.is_some_and(|state| !matches!(state, "open" | "closed")) {
        return validation_failed(field_error("state", "invalid"), DOCS_UPDATE);
    }
    if title.is_some_and(|title| title.trim().is_empty()) {
        return validation_failed(field_error("title", "missing_field"), DOCS_UPDATE);
    }
    let new_base = base.unwrap_or(&current.pull.base).to_owned();
    let found = branches(repo_dir, current.pull.head.clone(), new_base.clone()).await;
    if base.is_some() && found.base_sha.is_none() {
        return validation_failed(field_error("base", "invalid"), DOCS_UPDATE);
    }

    let updated = {
        let mut all = shared.pulls.lock().unwrap_or_else(PoisonError::into_inner);
        let same = |stored: &StoredPull| stored.pull.owner == owner && stored.pull.repo == repo;
        let reopening_onto_open = state.unwrap_or(&current.pull.state) == "open"
            && all.iter().any(|other| {
                same(other)
                    && other.pull.number != number
                    && other.pull.state == "open"
                    && other.pull.head == current.pull.head
                    && other.pull.base == new_base
            });
        if reopening_onto_open {
            return validation_failed(
                custom_error(&format!(
                    "A pull request already exists for {owner}:{}.",
                    current.pull.head
                )),
                DOCS_UPDATE,
            );
        }
        let Some(stored) = all
            .iter_mut()
            .find(|stored| same(stored) && stored.pull.number == number)
        else {
            return error(StatusCode::NOT_FOUND, "Not Found", DOCS_UPDATE);
        };
        if let Some(title) = title {
            title.clone_into(&mut stored.pull.title);
        }
        if let Some(pr_body) = pr_body {
            pr_body.clone_into(&mut stored.pull.body);
            stored.has_body = true;
        }
        if let Some(state) = state {
            state.clone_into(&mut stored.pull.state);
        }
        stored.pull.base = new_base;
        if let Some(sha) = found.head_sha {
            stored.head_sha = sha;
        }
        if let Some(sha) = found.base_sha {
            stored.base_sha = sha;
        }
        stored.pull.updates += 1;
        stored.clone()
    };
    json_response(
        StatusCode::OK,
        &pulls::pull_json(&shared.urls(), &updated, &found.default_branch),
    )
}

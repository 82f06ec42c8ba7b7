//! The pull-request store and its JSON rendering in the shape of GitHub's REST API.

use serde_json::{Value, json};

use crate::PullRequest;

/// One stored pull request: the public view plus what only the JSON shows.
#[derive(Debug, Clone)]
pub(crate) struct StoredPull {
    /// What [`crate::FakeGithub::pulls`] returns.
    pub(crate) pull: PullRequest,
    /// `draft` as created.
    pub(crate) draft: bool,
    /// Whether a body was ever given (GitHub renders a missing body as `null`).
    pub(crate) has_body: bool,
    /// Last known sha of the head branch (kept if the branch is deleted later).
    pub(crate) head_sha: String,
    /// Last known sha of the base branch.
    pub(crate) base_sha: String,
}

/// URLs a pull request's JSON refers to.
pub(crate) struct Urls<'a> {
    /// Base URL of the git side (`html_url`s hang off it).
    pub(crate) web: &'a str,
    /// Base URL of the REST API.
    pub(crate) api: &'a str,
}

/// Filters of `GET /repos/{owner}/{repo}/pulls`.
#[derive(Debug, Default)]
pub(crate) struct ListFilter {
    /// `open` (default), `closed` or `all`.
    pub(crate) state: Option<String>,
    /// `owner:branch` (or just `branch`).
    pub(crate) head: Option<String>,
    /// Base branch name.
    pub(crate) base: Option<String>,
    /// `asc` or `desc` (GitHub's default for the default `created` sort).
    pub(crate) direction: Option<String>,
}

impl ListFilter {
    /// Whether `stored` passes every filter.
    pub(crate) fn matches(&self, stored: &StoredPull) -> bool {
        let pull = &stored.pull;
        let state_ok = match self.state.as_deref().unwrap_or("open") {
            "all" => true,
            state => pull.state == state,
        };
        let head_ok = self
            .head
            .as_deref()
            .is_none_or(|head| match head.split_once(':') {
                Some((owner, branch)) => owner.eq_ignore_ascii_case(&pull.owner) && branch == pull.head,
                None => head == pull.head,
            });
        let base_ok = self.base.as_deref().is_none_or(|base| base == pull.base);
        state_ok && head_ok && base_ok
    }

    /// Whether results go oldest first.
    pub(crate) fn ascending(&self) -> bool {
        self.direction.as_deref() == Some("asc")
    }
}

/// A repository object (the `repo` of `head`/`base`, and `GET /repos/{owner}/{repo}`).
pub(crate) fn repo_json(urls: &Urls<'_>, owner: &str, repo: &str, default_branch: &str) -> Value {
    json!({
        "name": repo,
        "full_name": format!("{owner}/{repo}"),
        "private": true,
        "owner": { "login": owner, "type": "Organization" },
        "html_url": format!("{}/{owner}/{repo}", urls.web),
        "url": format!("{}/repos/{owner}/{repo}", urls.api),
        "clone_url": format!("{}/{owner}/{repo}.git", urls.web),
        "default_branch": default_branch,
    })
}

/// The pull-request object.
pub(crate) fn pull_json(urls: &Urls<'_>, stored: &StoredPull, default_branch: &str) -> Value {
    let pull = &stored.pull;
    let (owner, repo, number) = (&pull.owner, &pull.repo, pull.number);
    let repository = repo_json(urls, owner, repo, default_branch);
    json!({
        "id": number,
        "number": number,
        "url": format!("{}/repos/{owner}/{repo}/pulls/{number}", urls.api),
        "html_url": pull.html_url,
        "state": pull.state,
        "locked": false,
        "title": pull.title,
        "body": if stored.has_body || !pull.body.is_empty() { Value::from(pull.body.as_str()) } else { Value::Null },
        "draft": stored.draft,
        "merged": false,
        "user": { "login": "x-access-token" },
        "head": {
            "label": format!("{owner}:{}", pull.head),
            "ref": pull.head,
            "sha": stored.head_sha,
            "repo": repository,
        },
        "base": {
            "label": format!("{owner}:{}", pull.base),
            "ref": pull.base,
            "sha": stored.base_sha,
            "repo": repository,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(head: &str, base: &str, state: &str) -> StoredPull {
        StoredPull {
            pull: PullRequest {
                owner: "octo".into(),
                repo: "demo".into(),
                number: 1,
                title: "t".into(),
                body: String::new(),
                head: head.into(),
                base: base.into(),
                state: state.into(),
                html_url: "http://x/octo/demo/pull/1".into(),
                updates: 0,
            },
            draft: false,
            has_body: false,
            head_sha: "a".repeat(40),
            base_sha: "b".repeat(40),
        }
    }

    #[test]
    fn filters() {
        let open = stored("feature", "main", "open");
        let closed = stored("feature", "main", "closed");
        let all = ListFilter::default();
        assert!(all.matches(&open) && !all.matches(&closed));
        let any_state = ListFilter {
            state: Some("all".into()),
            ..ListFilter::default()
        };
        assert!(any_state.matches(&closed));
        let head = |head: &str| ListFilter {
            head: Some(head.into()),
            ..ListFilter::default()
        };
        assert!(head("octo:feature").matches(&open));
        assert!(head("feature").matches(&open));
        assert!(!head("other:feature").matches(&open));
        assert!(!head("octo:main").matches(&open));
        let base = ListFilter {
            base: Some("dev".into()),
            ..ListFilter::default()
        };
        assert!(!base.matches(&open));
    }

    #[test]
    fn json_shape() {
        let urls = Urls {
            web: "http://w",
            api: "http://w/api/v3",
        };
        let value = pull_json(&urls, &stored("feature", "main", "open"), "main");
        assert_eq!(value["number"], 1);
        assert_eq!(value["url"], "http://w/api/v3/repos/octo/demo/pulls/1");
        assert_eq!(value["head"]["label"], "octo:feature");
        assert_eq!(value["head"]["ref"], "feature");
        assert_eq!(value["base"]["ref"], "main");
        assert_eq!(value["base"]["repo"]["full_name"], "octo/demo");
        assert_eq!(value["body"], Value::Null);
    }
}

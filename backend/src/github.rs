//! The GitHub REST call the control plane makes for a run (agents never hold the token): open a pull request
//! for the run's branch, or update the one that is already open.

use serde::Deserialize;
use serde_json::json;

/// A failed GitHub call.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// The request did not get an answer.
    #[error("GitHub did not answer: {0}")]
    Transport(#[from] reqwest::Error),
    /// GitHub answered with an error.
    #[error("GitHub answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
}

/// A pull request as the runner needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Its web address.
    pub html_url: String,
}

/// A GitHub API client with the owner's token.
pub struct Github {
    client: reqwest::Client,
    api_url: String,
    token: String,
}

impl Github {
    /// A client for `api_url` (`https://api.github.com`) over `client`.
    pub fn new(client: reqwest::Client, api_url: &str, token: String) -> Self {
        Self {
            client,
            api_url: api_url.trim_end_matches('/').to_owned(),
            token,
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<serde_json::Value, GithubError> {
        let response = request
            .bearer_auth(&self.token)
            .header("user-agent", concat!("agentfarm/", env!("CARGO_PKG_VERSION")))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status.is_success() {
            Ok(body)
        } else {
            let message = body["message"].as_str().unwrap_or("no message").to_owned();
            Err(GithubError::Status {
                status: status.as_u16(),
                message,
            })
        }
    }

    /// Opens a pull request from `head` into `base`, or updates the open one for `head`. True when updated.
    pub async fn open_or_update(
        &self,
        owner: &str,
        repo: &str,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<(PullRequest, bool), GithubError> {
        let pulls = format!("{}/repos/{owner}/{repo}/pulls", self.api_url);
        let label = format!("{owner}:{head}");
        let open = self
            .call(self.client.get(&pulls).query(&[
                ("state", "open"),
                ("head", label.as_str()),
                ("base", base),
            ]))
            .await?;
        let existing: Vec<PullRequest> = serde_json::from_value(open).unwrap_or_default();
        let content = json!({"title": title, "body": body});
        let (value, updated) = match existing.first() {
            Some(pull) => (
                self.call(
                    self.client
                        .patch(format!("{pulls}/{}", pull.number))
                        .json(&content),
                )
                .await?,
                true,
            ),
            None => {
                let create = json!({"title": title, "body": body, "head": head, "base": base});
                (self.call(self.client.post(&pulls).json(&create)).await?, false)
            }
        };
        let pull = serde_json::from_value(value).map_err(|err| GithubError::Status {
            status: 200,
            message: format!("unexpected pull request shape: {err}"),
        })?;
        Ok((pull, updated))
    }
}

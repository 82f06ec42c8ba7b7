//! The runner's one call to the control plane: open or update the run's pull request. The control plane,
//! which holds the GitHub token, makes the GitHub call; the runner shows only the run's capability.

use agentfarm_shared::runner::{PULL_REQUEST_ROUTE, PullRequestAnswer, PullRequestAsk};

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The request did not get an answer.
    #[error("the control plane did not answer: {0}")]
    Transport(#[from] reqwest::Error),
    /// The control plane answered with an error.
    #[error("the control plane answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
}

/// The control plane, as the run's agent reaches it.
pub struct Control {
    client: reqwest::Client,
    url: String,
    capability: String,
}

impl Control {
    /// The control plane at `url`, with the run's capability.
    pub fn new(url: &str, capability: String) -> Result<Self, ControlError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("agentfarm-runner/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            url: url.trim_end_matches('/').to_owned(),
            capability,
        })
    }

    /// Opens the pull request of the run's branch into `ask.base`, or updates the open one.
    pub async fn pull_request(&self, ask: &PullRequestAsk) -> Result<PullRequestAnswer, ControlError> {
        let response = self
            .client
            .post(format!("{}{PULL_REQUEST_ROUTE}", self.url))
            .bearer_auth(&self.capability)
            .json(ask)
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let message = body
            .pointer("/error/message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("no message")
            .to_owned();
        Err(ControlError::Status {
            status: status.as_u16(),
            message,
        })
    }
}

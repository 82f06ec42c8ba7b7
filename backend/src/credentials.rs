//! The owner's credentials, which only the control plane holds: the Claude token the model proxy sends and the
//! GitHub token the git proxy and pull requests use. Each comes from a file (a mounted Secret, read on every
//! use so that a rotated Secret takes effect) or else from the server's environment.

use std::path::PathBuf;

/// Why a credential is not at hand.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Missing(String);

/// Where one of the owner's credentials is read from.
#[derive(Debug, Clone)]
pub struct OwnerCredential {
    /// What it is, for errors ("the Claude token").
    what: &'static str,
    /// A file holding it, when one is named.
    file: Option<PathBuf>,
    /// The server's variable holding it otherwise.
    variable: &'static str,
}

impl OwnerCredential {
    /// `what`, read from `file` when given, else from the server's variable `variable`.
    pub fn new(what: &'static str, file: Option<PathBuf>, variable: &'static str) -> Self {
        Self { what, file, variable }
    }

    /// The credential, trimmed; never logged.
    pub async fn get(&self) -> Result<String, Missing> {
        let value = match &self.file {
            Some(path) => tokio::fs::read_to_string(path).await.map_err(|err| {
                Missing(format!(
                    "{} cannot be read from {}: {err}",
                    self.what,
                    path.display()
                ))
            })?,
            None => std::env::var(self.variable).unwrap_or_default(),
        };
        let value = value.trim();
        if value.is_empty() {
            let place = self.file.as_ref().map_or_else(
                || format!("the server's {}", self.variable),
                |path| path.display().to_string(),
            );
            return Err(Missing(format!("{} is not set: {place} is empty", self.what)));
        }
        Ok(value.to_owned())
    }

    /// The value now, for masking agent output; `None` when it is not set.
    pub fn current(&self) -> Option<String> {
        let value = match &self.file {
            Some(path) => std::fs::read_to_string(path).ok()?,
            None => std::env::var(self.variable).ok()?,
        };
        let value = value.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }
}

/// Both of the owner's credentials.
#[derive(Debug, Clone)]
pub struct OwnerCredentials {
    /// The `claude setup-token` token.
    pub claude: OwnerCredential,
    /// The GitHub token.
    pub github: OwnerCredential,
}

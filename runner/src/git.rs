//! Running git with the GitHub token supplied by a credential helper that reads it from this process's
//! environment: the token is never in a URL, never in `.git/config`, never on a command line.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

/// The variable the credential helper reads the token from; set only on the git processes the runner starts.
pub const TOKEN_ENV: &str = "AGENTFARM_GIT_TOKEN";

/// A credential helper given inline (`-c`, so never written to a config file). Git runs it through the
/// shell with `get`, `store` or `erase`; only `get` answers.
const CREDENTIAL_HELPER: &str = "!f() { test \"$1\" = get || exit 0; echo username=x-access-token; echo \"password=$AGENTFARM_GIT_TOKEN\"; }; f";

/// A git command that failed.
#[derive(Debug, thiserror::Error)]
#[error("git {command} failed: {message}")]
pub struct GitError {
    /// The subcommand and its arguments.
    pub command: String,
    /// Git's error output, or why it could not run.
    pub message: String,
}

/// Runs git, with credentials when a token is known.
#[derive(Debug, Clone)]
pub struct Git {
    token: Option<String>,
}

impl Git {
    /// Git with this token for HTTPS remotes (none: anonymous).
    pub fn new(token: Option<String>) -> Self {
        Self { token }
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new("git");
        command
            .current_dir(dir)
            // Forget helpers from system or user config, then use ours; never run the repo's hooks.
            .args(["-c", "credential.helper=", "-c"])
            .arg(format!("credential.helper={CREDENTIAL_HELPER}"))
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "protocol.file.allow=never",
            ])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        match &self.token {
            Some(token) => command.env(TOKEN_ENV, token),
            None => command.env_remove(TOKEN_ENV),
        };
        command
    }

    /// Runs `git ARGS` in `dir`; its trimmed stdout on success.
    pub async fn run(&self, dir: &Path, args: &[&str]) -> Result<String, GitError> {
        let (success, stdout, stderr) = self.output(dir, args).await?;
        if success {
            Ok(stdout)
        } else {
            Err(GitError {
                command: args.join(" "),
                message: stderr,
            })
        }
    }

    /// Runs `git ARGS` in `dir`; whether it exited 0 (for commands that answer with their status).
    pub async fn check(&self, dir: &Path, args: &[&str]) -> Result<bool, GitError> {
        Ok(self.output(dir, args).await?.0)
    }

    async fn output(&self, dir: &Path, args: &[&str]) -> Result<(bool, String, String), GitError> {
        let output = self.command(dir, args).output().await.map_err(|err| GitError {
            command: args.join(" "),
            message: format!("cannot run git: {err}"),
        })?;
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_owned();
        Ok((
            output.status.success(),
            text(&output.stdout),
            text(&output.stderr),
        ))
    }
}

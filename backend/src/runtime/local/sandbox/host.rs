//! The host commands the sandbox is set up with (`ip`, `nft`, `runsc`): run one, and say what it answered
//! when it fails.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::runtime::RuntimeError;

/// Runs `program` with `args`; its stdout, or an error with what it wrote to stderr.
pub async fn run(program: &str, args: &[&str]) -> Result<String, RuntimeError> {
    output(program, args, None).await
}

/// [`run`], with `input` on stdin.
pub async fn run_with_input(program: &str, args: &[&str], input: &str) -> Result<(), RuntimeError> {
    output(program, args, Some(input)).await.map(drop)
}

/// Runs a command whose failure means there was nothing to do (removing what is already gone).
pub async fn run_quietly(program: &str, args: &[&str]) {
    if let Err(err) = run(program, args).await {
        tracing::debug!(%err, "nothing to clean up");
    }
}

async fn output(program: &str, args: &[&str], input: Option<&str>) -> Result<String, RuntimeError> {
    let failed = |detail: String| RuntimeError::Failed(format!("{program} {}: {detail}", args.join(" ")));
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|err| failed(err.to_string()))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(|err| failed(err.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|err| failed(err.to_string()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(failed(format!(
            "{} ({})",
            String::from_utf8_lossy(&output.stderr).trim(),
            output.status
        )))
    }
}

//! Claude Code, headless: its command line, and starting it.

use std::path::Path;
use std::process::Stdio;

use agentfarm_shared::runner::RunnerSpec;
use tokio::process::{Child, Command};

/// Variables Claude (and so every tool it runs) must not see: the GitHub token is the runner's alone.
pub const HIDDEN_FROM_CLAUDE: [&str; 3] = [
    agentfarm_shared::runner::RUN_TOKEN_ENV,
    "GITHUB_TOKEN",
    crate::git::TOKEN_ENV,
];

/// Claude Code's arguments for `spec` (after the program name). The prompt is not among them: it goes to
/// stdin as the first stream-json user message. Nor is the turn limit: the CLI's `--max-turns` is not a
/// documented flag (absent from `claude --help`), so the session enforces `max_turns` itself.
pub fn args(spec: &RunnerSpec) -> Vec<String> {
    let mut args: Vec<String> = [
        "-p",
        "--output-format",
        "stream-json",
        "--input-format",
        "stream-json",
        "--verbose",
        "--replay-user-messages",
        // Nobody is there to approve a tool call; the sandbox around the agent is the safety.
        "--permission-mode",
        "bypassPermissions",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut flag = |name: &str, value: String| {
        args.push(name.to_owned());
        args.push(value);
    };
    flag("--session-id", spec.session_id.clone());
    flag("--model", spec.model.clone());
    if let Some(budget) = spec.budget_usd {
        flag("--max-budget-usd", budget.to_string());
    }
    if !spec.system_prompt.trim().is_empty() {
        flag("--append-system-prompt", spec.system_prompt.clone());
    }
    args
}

/// Starts Claude in `dir` with piped stdio, without the runner's secrets in its environment.
pub fn spawn(spec: &RunnerSpec, dir: &Path) -> std::io::Result<Child> {
    let mut command = Command::new(&spec.claude_command);
    command
        .args(args(spec))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in HIDDEN_FROM_CLAUDE {
        command.env_remove(name);
    }
    command.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> RunnerSpec {
        RunnerSpec {
            run_id: "r1".into(),
            title: "Fix bugs".into(),
            session_id: "0b0e4a4c-7f0e-4a55-9c1b-5d8a0b9f3c11".into(),
            prompt: "the task".into(),
            system_prompt: "Be brief.".into(),
            model: "sonnet".into(),
            max_turns: 10,
            budget_usd: Some(1.5),
            repos: vec![],
            branch: "agentfarm/r1".into(),
            git_url: "https://github.com".into(),
            control_url: "http://127.0.0.1:8080".into(),
            claude_command: "claude".into(),
            idle_timeout_secs: None,
        }
    }

    #[test]
    fn flags_follow_the_spec_and_the_prompt_stays_off_the_command_line() {
        let args = args(&spec()).join(" ");
        assert!(args.starts_with("-p --output-format stream-json --input-format stream-json --verbose"));
        assert!(args.contains("--model sonnet --max-budget-usd 1.5"));
        assert!(args.ends_with("--append-system-prompt Be brief."));
        assert!(!args.contains("the task"));
    }
}

//! The command line an agent runs: Claude Code, headless, speaking stream-json both ways.

use std::ffi::OsString;

use super::RunSpec;

/// The arguments for `claude` (after the program name) for one run.
///
/// The task prompt is not among them: it goes to stdin as the first stream-json user message, and follow-ups
/// follow it there.
pub fn claude_args(spec: &RunSpec) -> Vec<OsString> {
    let config = &spec.config;
    let mut args: Vec<OsString> = [
        "-p",
        "--output-format",
        "stream-json",
        "--input-format",
        "stream-json",
        "--verbose",
        "--replay-user-messages",
        // Agents work unattended: nobody is there to approve a tool call. Safety comes from the sandbox.
        "--permission-mode",
        "bypassPermissions",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    let mut flag = |name: &str, value: String| {
        args.push(name.into());
        args.push(value.into());
    };
    flag("--session-id", spec.session_id.clone());
    flag("--model", config.model.clone());
    flag("--max-turns", config.max_turns.to_string());
    if let Some(budget) = config.budget_usd {
        flag("--max-budget-usd", budget.to_string());
    }
    if !config.system_prompt.trim().is_empty() {
        flag("--append-system-prompt", config.system_prompt.clone());
    }
    args
}

#[cfg(test)]
mod tests {
    use agentfarm_shared::config::ConfigSpec;

    use super::*;

    #[test]
    fn flags_follow_the_config() {
        let mut config = ConfigSpec::new("a", "task");
        config.budget_usd = Some(2.5);
        config.system_prompt = "Be brief.".into();
        let spec = RunSpec {
            run_id: "r".into(),
            config_id: "a".into(),
            config_version: 1,
            config,
            prompt: "task".into(),
            session_id: "0000".into(),
        };
        let args: Vec<String> = claude_args(&spec)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        assert!(joined.starts_with("-p --output-format stream-json --input-format stream-json --verbose"));
        assert!(joined.contains("--model sonnet --max-turns 100 --max-budget-usd 2.5"));
        assert!(args.ends_with(&["--append-system-prompt".into(), "Be brief.".into()]));
        assert!(!joined.contains("task"), "the prompt goes to stdin, not argv");
    }
}

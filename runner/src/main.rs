//! `agentfarm-runner`: runs one agent. See the library docs for what it does.

use std::path::PathBuf;

use agentfarm_runner::output::Output;
use agentfarm_runner::session::Session;
use agentfarm_shared::redact::Redactor;
use agentfarm_shared::runner::RunnerSpec;
use anyhow::Context;
use clap::Parser;

/// Runs one agent: clone, Claude Code headless, follow-ups on stdin, push, pull request.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The run spec (JSON). Without it, the spec is read from the AGENTFARM_RUN_SPEC variable.
    #[arg(long, env = "AGENTFARM_RUN_SPEC_FILE")]
    spec: Option<PathBuf>,
}

/// Variables whose values are masked in everything the runner prints.
const SECRET_VARIABLES: [&str; 4] = [
    "GITHUB_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
];

fn main() {
    let args = Args::parse();
    let code = match setup(&args) {
        Ok((spec, token, out)) => match tokio::runtime::Runtime::new() {
            Ok(runtime) => {
                let code = runtime.block_on(async {
                    let workspace = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                    Session::new(spec, token, out).run(&workspace).await
                });
                // The stdin reader blocks in a thread that only returns at EOF, and a pod's stdin never
                // closes: dropping the runtime would wait for it forever.
                runtime.shutdown_background();
                code
            }
            Err(err) => {
                eprintln!("agentfarm-runner: cannot start: {err}");
                agentfarm_runner::EXIT_SETUP
            }
        },
        Err(err) => {
            eprintln!("agentfarm-runner: {err:#}");
            agentfarm_runner::EXIT_SETUP
        }
    };
    std::process::exit(code);
}

fn setup(args: &Args) -> anyhow::Result<(RunnerSpec, Option<String>, Output)> {
    // Only fails if another provider was installed first, which nothing here does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let json = match &args.spec {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading the spec {}", path.display()))?
        }
        None => std::env::var("AGENTFARM_RUN_SPEC").context("no --spec and no AGENTFARM_RUN_SPEC")?,
    };
    let spec: RunnerSpec = serde_json::from_str(&json).context("the run spec is not valid")?;
    let token = match std::env::var("GITHUB_TOKEN_FILE") {
        Ok(path) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading {path}"))?
                .trim()
                .to_owned(),
        ),
        Err(_) => std::env::var("GITHUB_TOKEN").ok(),
    }
    .filter(|token| !token.is_empty());
    let secrets = SECRET_VARIABLES
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .chain(token.clone());
    Ok((spec, token, Output::new(Redactor::new(secrets))))
}

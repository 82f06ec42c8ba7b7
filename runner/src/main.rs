//! `agentfarm-runner`: runs one agent. See the library docs for what it does.

use std::path::PathBuf;

use agentfarm_runner::output::Output;
use agentfarm_runner::session::Session;
use agentfarm_shared::redact::Redactor;
use agentfarm_shared::runner::{RUN_TOKEN_ENV, RunnerSpec};
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
const SECRET_VARIABLES: [&str; 5] = [
    RUN_TOKEN_ENV,
    "GITHUB_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
];

fn main() {
    let args = Args::parse();
    let code = match setup(&args) {
        Ok((spec, credentials, out)) => match tokio::runtime::Runtime::new() {
            Ok(runtime) => {
                let code = runtime.block_on(async {
                    let workspace = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                    Session::new(spec, credentials.git, credentials.capability, out)
                        .run(&workspace)
                        .await
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

/// The credentials the runner was given.
struct Credentials {
    /// What git authenticates with: the owner's GitHub token in the debugging mode that hands it out, else
    /// the run's capability (for the control plane's git proxy).
    git: Option<String>,
    /// The run's capability, for the control plane.
    capability: Option<String>,
}

fn setup(args: &Args) -> anyhow::Result<(RunnerSpec, Credentials, Output)> {
    // Only fails if another provider was installed first, which nothing here does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let json = match &args.spec {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading the spec {}", path.display()))?
        }
        None => std::env::var("AGENTFARM_RUN_SPEC").context("no --spec and no AGENTFARM_RUN_SPEC")?,
    };
    let spec: RunnerSpec = serde_json::from_str(&json).context("the run spec is not valid")?;
    let set = |name| {
        std::env::var(name)
            .ok()
            .filter(|value: &String| !value.is_empty())
    };
    let capability = set(RUN_TOKEN_ENV);
    let github_token = set("GITHUB_TOKEN");
    let secrets = SECRET_VARIABLES.iter().filter_map(|name| set(name));
    let credentials = Credentials {
        git: github_token.or_else(|| capability.clone()),
        capability,
    };
    Ok((spec, credentials, Output::new(Redactor::new(secrets))))
}

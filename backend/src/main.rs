//! The `agentfarm` command.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use agentfarm::settings::{KubeArgs, SandboxArgs, SandboxChoice, Settings};
use agentfarm_shared::api::{Check, CheckStatus, DoctorReport};

/// A self-hosted control plane for a fleet of Claude Code agents.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the live stream and the web app.
    Serve(Box<Settings>),
    /// Check that the cluster has what the Kubernetes runtime needs (with `--sandbox gvisor`: that this
    /// machine has what the local runtime's sandbox needs); exits non-zero when something fails.
    Doctor(Box<DoctorArgs>),
    /// Copy the database to a file, safely while the server runs, and check the copy (`PRAGMA
    /// integrity_check`); exits non-zero when no sound copy was written.
    Backup(BackupArgs),
}

/// Arguments of `agentfarm doctor`.
#[derive(clap::Args)]
struct DoctorArgs {
    /// The local runtime's sandbox: with `gvisor`, this machine is checked instead of the cluster.
    #[command(flatten)]
    sandbox: SandboxArgs,
    /// The cluster's settings.
    #[command(flatten)]
    kube: KubeArgs,
}

/// Arguments of `agentfarm backup`.
#[derive(clap::Args)]
struct BackupArgs {
    /// The server's data dir (the one `serve` uses).
    #[arg(long, env = "AGENTFARM_DATA_DIR", default_value = agentfarm::settings::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Replace DEST if it exists.
    #[arg(long)]
    force: bool,
    /// The file to write.
    dest: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    // The one process-wide TLS choice, made once, here: ring for every outgoing HTTPS client (the library
    // never installs it). Installing fails only when a provider is installed already, and nothing ran yet.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Serve(settings) => serve(*settings).await,
        Command::Doctor(args) => doctor(&args).await,
        Command::Backup(args) => backup(&args),
    }
}

fn backup(args: &BackupArgs) -> anyhow::Result<()> {
    let source = agentfarm::store::db_path(&args.data_dir);
    agentfarm::store::backup::backup(&source, &args.dest, args.force)?;
    let _ = writeln!(
        std::io::stdout(),
        "backed up {} to {}; integrity_check: ok",
        source.display(),
        args.dest.display()
    );
    Ok(())
}

async fn serve(mut settings: Settings) -> anyhow::Result<()> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let addr = listener.local_addr()?;
    settings.listen = addr;
    let app = agentfarm::server::start(&settings).await?;
    let url = match &settings.public_url {
        Some(public) => format!("{public} (listening on http://{addr})"),
        None => format!("http://{addr}"),
    };
    // Ignore a closed stdout (e.g. piped into `head`): the server keeps serving.
    let runtime = app.farm.runtime().info();
    let _ = writeln!(
        std::io::stdout(),
        "agentfarm is serving at {url}\ndata dir: {}; runtime: {}: {}\nmetrics: http://{}{}",
        settings.data_dir.display(),
        runtime.kind,
        runtime.description,
        app.metrics_addr()?,
        agentfarm_shared::api::routes::METRICS,
    );
    agentfarm::server::serve(app, listener, shutdown_signal()).await?;
    Ok(())
}

async fn doctor(args: &DoctorArgs) -> anyhow::Result<()> {
    let report = if args.sandbox.kind == SandboxChoice::Gvisor {
        agentfarm::doctor::sandbox::run(&args.sandbox.runsc).await
    } else {
        cluster_report(&args.kube).await
    };
    let _ = write!(std::io::stdout(), "{}", agentfarm::doctor::render(&report));
    if report.failed() {
        std::process::exit(1);
    }
    Ok(())
}

async fn cluster_report(kube: &KubeArgs) -> DoctorReport {
    match kube::Client::try_default().await {
        Ok(client) => agentfarm::doctor::run(&client, &kube.doctor_spec()).await,
        Err(err) => DoctorReport {
            checks: vec![Check {
                name: "API server".into(),
                status: CheckStatus::Fail,
                detail: format!("no cluster configuration: {err}"),
                fix: Some("run inside the cluster, or point KUBECONFIG at a kubeconfig for it".into()),
            }],
        },
    }
}

async fn shutdown_signal() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(err) => {
            tracing::warn!(%err, "cannot listen for SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}

//! `agentfarm-cluster`: brings the test cluster up and down, builds and imports its images; under the name
//! `runsc-wrapper` (a link in the cluster's `bin/`), it is the runsc that containerd's runc shim runs.
//!
//! ```text
//! agentfarm-cluster up --kubernetes BIN [--state DIR]     prints the admin kubeconfig's path
//! agentfarm-cluster images [--state DIR] [--cache DIR]    builds both images; imports them when a cluster is up
//! agentfarm-cluster down [--state DIR] [--keep-logs]      fails, naming them, if anything was left behind
//! ```

use std::path::PathBuf;

use agentfarm_real_cluster::images::{Builder, DEFAULT_CACHE};
use agentfarm_real_cluster::layout::{DEFAULT_STATE, Layout};
use agentfarm_real_cluster::{containerd, process, runsc};
use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args();
    let invoked = args.next().unwrap_or_default();
    if invoked.rsplit('/').next() == Some(runsc::WRAPPER) {
        let rest: Vec<String> = args.collect();
        std::process::exit(runsc::wrap(&rest));
    }
    let command = args.next().unwrap_or_default();
    let mut state = PathBuf::from(DEFAULT_STATE);
    let mut cache = PathBuf::from(DEFAULT_CACHE);
    let mut kubernetes: Option<PathBuf> = None;
    let mut keep_logs = false;
    let mut rest = args;
    while let Some(arg) = rest.next() {
        let mut value = |flag: &str| rest.next().with_context(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--state" => state = value("--state")?.into(),
            "--cache" => cache = value("--cache")?.into(),
            "--kubernetes" => kubernetes = Some(value("--kubernetes")?.into()),
            "--keep-logs" => keep_logs = true,
            other => bail!("unknown argument {other:?} (see the crate's README: up, images, down)"),
        }
    }
    let layout = Layout::new(state);
    match command.as_str() {
        "up" => {
            let kubernetes =
                kubernetes.context("up needs --kubernetes BIN (cargo xtask cluster build makes it)")?;
            let wrapper = std::env::current_exe().context("this program's path")?;
            let kubeconfig = agentfarm_real_cluster::up(&layout, &kubernetes, &wrapper)?;
            println!("{}", kubeconfig.display());
        }
        "images" => {
            let repo = std::env::current_dir().context("the repository (run from its root)")?;
            let archives = Builder::new(repo, cache).build()?;
            if process::running(&layout, "containerd")? {
                for archive in &archives {
                    containerd::import(&layout, archive)?;
                }
            }
            for archive in archives {
                println!("{}", archive.display());
            }
        }
        "down" => agentfarm_real_cluster::down(&layout, keep_logs)?,
        _ => bail!(
            "usage: agentfarm-cluster up --kubernetes BIN | images | down [--state DIR] [--cache DIR] [--keep-logs]"
        ),
    }
    Ok(())
}

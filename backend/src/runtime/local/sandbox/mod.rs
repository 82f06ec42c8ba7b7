//! The local runtime's sandbox (`--sandbox gvisor`): each agent runs in a gVisor sandbox of its own (`runsc`,
//! as the cluster's default RuntimeClass does), with a root of read-only host program directories, its work
//! dir and home as the only writable mounts, a network namespace whose egress follows the cluster's rule,
//! and its config's CPU and memory as cgroup limits. No cluster needed: one Linux host with runsc, `ip` and
//! `nft`, and the server running as root to set them up.
//!
//! - [`bundle`]: the OCI bundle of one agent.
//! - [`network`]: the bridge, the per-agent namespaces and the nftables rules.

pub mod bundle;
mod host;
pub mod network;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use nix::sys::signal::Signal;

use self::bundle::{Agent, Bundle};
use self::host::{run, run_quietly};
use self::network::SandboxNetwork;
use crate::runtime::RuntimeError;

/// How the server sets up its sandboxes.
#[derive(Debug, Clone)]
pub struct GvisorSettings {
    /// The runsc program.
    pub runsc: PathBuf,
    /// runsc's state directory (`--root`): this server's sandboxes, and only them.
    pub state_dir: PathBuf,
    /// The agents' subnet (a /24): the gateway (`.1`) is this machine, where agents reach the proxies.
    pub subnet: Ipv4Net,
}

/// The server's gVisor sandboxes and their network.
#[derive(Debug)]
pub struct Gvisor {
    runsc: String,
    state_dir: String,
    network: SandboxNetwork,
}

impl Gvisor {
    /// Checks that runsc runs, removes the sandboxes and namespaces a previous server left (their runs are
    /// `lost`), and brings the bridge up. The rules come with [`Gvisor::allow_proxies`], once the proxies'
    /// port is known.
    pub async fn start(settings: &GvisorSettings) -> Result<Gvisor, RuntimeError> {
        let runsc = settings.runsc.to_string_lossy().into_owned();
        run(&runsc, &["--version"])
            .await
            .map_err(|err| RuntimeError::Failed(format!("--sandbox gvisor needs gVisor's runsc: {err}")))?;
        let mut state = tokio::fs::DirBuilder::new();
        state.recursive(true).mode(0o700);
        state.create(&settings.state_dir).await.map_err(|err| {
            RuntimeError::Failed(format!("cannot create {}: {err}", settings.state_dir.display()))
        })?;
        let gvisor = Gvisor {
            runsc,
            state_dir: settings.state_dir.to_string_lossy().into_owned(),
            network: SandboxNetwork::new(settings.subnet)?,
        };
        gvisor.remove_sandboxes().await;
        gvisor.network.bring_up().await?;
        Ok(gvisor)
    }

    /// Where agents reach this machine: the proxies listen there.
    pub fn gateway(&self) -> Ipv4Addr {
        self.network.gateway()
    }

    /// Installs the egress rules, with `proxy_port` on the gateway the one place on this machine agents reach.
    pub async fn allow_proxies(&self, proxy_port: u16) -> Result<(), RuntimeError> {
        self.network.install_rules(proxy_port).await
    }

    /// Prepares `run_id`'s sandbox (its namespace and bundle) and returns the `runsc run` that starts it in
    /// the foreground: the runner's stdio are the command's.
    pub async fn command(
        &self,
        run_id: &str,
        proxy_only: bool,
        agent: &Agent,
    ) -> Result<tokio::process::Command, RuntimeError> {
        let namespace = self.network.attach(run_id, proxy_only).await?;
        let bundle = Bundle {
            agent,
            namespace: &namespace,
            nameservers: self.network.nameservers(),
            cgroup: format!("/agentfarm-{run_id}"),
        };
        let dir = match bundle.write().await {
            Ok(dir) => dir,
            Err(err) => {
                self.network.detach(run_id).await;
                return Err(err);
            }
        };
        let mut command = tokio::process::Command::new(&self.runsc);
        command
            .args(self.global_flags())
            .arg("run")
            .arg("--bundle")
            .arg(dir)
            .arg(run_id);
        Ok(command)
    }

    /// Sends `signal` to every process in `run_id`'s sandbox.
    pub async fn signal(&self, run_id: &str, signal: Signal) {
        let number = (signal as i32).to_string();
        let mut args = self.global_flags();
        args.extend(["kill", "--all", run_id, &number]);
        run_quietly(&self.runsc, &args).await;
    }

    /// Removes `run_id`'s sandbox (whatever still runs in it) and its namespace, once its runner has exited.
    pub async fn clean_up(&self, run_id: &str) {
        let mut args = self.global_flags();
        args.extend(["delete", "--force", run_id]);
        run_quietly(&self.runsc, &args).await;
        self.network.detach(run_id).await;
    }

    /// Removes every sandbox of this server, their namespaces, the rules and the bridge.
    pub async fn shut_down(&self) {
        self.remove_sandboxes().await;
        self.network.tear_down().await;
    }

    fn global_flags(&self) -> Vec<&str> {
        // Host networking inside the agent's own namespace: gVisor's netstack is not needed for isolation
        // there, and Debian's 2022 runsc cannot start it in some VMs.
        vec!["--root", &self.state_dir, "--network=host"]
    }

    async fn remove_sandboxes(&self) {
        let mut list = self.global_flags();
        list.extend(["list", "--quiet"]);
        let ids = run(&self.runsc, &list).await.unwrap_or_default();
        for id in ids.lines().map(str::trim).filter(|id| !id.is_empty()) {
            let mut delete = self.global_flags();
            delete.extend(["delete", "--force", id]);
            run_quietly(&self.runsc, &delete).await;
        }
    }
}

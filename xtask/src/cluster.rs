//! `cargo xtask cluster build | up | images | bench | down`: the real Kubernetes of the test suite
//! (`tests/real-cluster`), with its upstream binary built from `tests/kubernetes` by the Go toolchain and
//! cached outside the clone, as the cargo build is.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run_step;

/// The upstream release the cluster runs: the Go module's `k8s.io/kubernetes` version.
const KUBERNETES_VERSION: &str = "v1.35.4";

/// Where the Go build caches modules and objects and puts the binary: `$AGENTFARM_GO_CACHE`, else a fixed
/// directory outside the clone.
fn go_cache() -> PathBuf {
    std::env::var_os("AGENTFARM_GO_CACHE")
        .map_or_else(|| PathBuf::from("/var/tmp/agentfarm-go"), PathBuf::from)
}

/// The cluster's state directory (`$AGENTFARM_CLUSTER_STATE`, else the cluster's default).
pub fn state_dir() -> PathBuf {
    std::env::var_os("AGENTFARM_CLUSTER_STATE")
        .map_or_else(|| PathBuf::from("/var/tmp/agentfarm-cluster"), PathBuf::from)
}

/// Builds the multi-call Kubernetes binary from `tests/kubernetes` (a no-op in seconds when nothing changed);
/// its path.
pub fn build_kubernetes(root: &Path) -> Result<PathBuf> {
    let cache = go_cache();
    let binary = cache.join("bin/kubernetes");
    let version = Command::new("go").arg("version").output();
    if !version.is_ok_and(|out| out.status.success()) {
        bail!(
            "Go 1.25 or newer is needed to build the test cluster's Kubernetes (`.ci/run` installs one from the \
             Go module proxy when the machine has none)"
        );
    }
    let mut ldflags = String::from("-s -w");
    for package in ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"] {
        let minor = KUBERNETES_VERSION.split('.').nth(1).unwrap_or_default();
        ldflags.push_str(&format!(
            " -X {package}.gitVersion={KUBERNETES_VERSION} -X {package}.gitMajor=1 -X {package}.gitMinor={minor}"
        ));
    }
    let mut build = Command::new("go");
    build
        .args(["build", "-trimpath", "-ldflags", &ldflags, "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(root.join("tests/kubernetes"))
        .env("GOMODCACHE", cache.join("mod"))
        .env("GOCACHE", cache.join("cache"))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=readonly")
        .env("CGO_ENABLED", "0");
    run_step(
        &mut build,
        &format!(
            "building Kubernetes {KUBERNETES_VERSION} for the test cluster (go build; about 10 minutes cold, cached after)"
        ),
    )?;
    Ok(binary)
}

/// Builds `agentfarm-cluster` (debug, as the tests are); its path.
fn build_cluster_tool(root: &Path) -> Result<PathBuf> {
    let mut build = Command::new("cargo");
    build
        .args([
            "build",
            "--package",
            "agentfarm-real-cluster",
            "--bin",
            "agentfarm-cluster",
        ])
        .current_dir(root);
    run_step(&mut build, "building the cluster tool (agentfarm-cluster)")?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("debug/agentfarm-cluster"))
}

/// A test cluster this process brought up: take it [`Cluster::down`] when done.
pub struct Cluster {
    root: PathBuf,
    tool: PathBuf,
}

impl Cluster {
    /// Brings the cluster up with both images imported (a cluster a crashed run left behind is taken down
    /// first). The web app must be built (`frontend/dist`): the control-plane image holds it.
    pub fn up(root: &Path) -> Result<Cluster> {
        let kubernetes = build_kubernetes(root)?;
        let cluster = Cluster {
            root: root.to_owned(),
            tool: build_cluster_tool(root)?,
        };
        if state_dir().exists() {
            cluster.down().context("a cluster left by an earlier run")?;
        }
        let kubernetes = kubernetes.display().to_string();
        cluster.tool(
            &["up", "--kubernetes", &kubernetes],
            "bringing the test cluster up",
        )?;
        let imported = cluster.tool(
            &["images"],
            "building the agent and control-plane images from their Dockerfiles (buildah) into the cluster",
        );
        if let Err(err) = imported {
            let _ = cluster.down();
            return Err(err);
        }
        Ok(cluster)
    }

    /// The cluster brought up before, by this process or another.
    fn existing(root: &Path) -> Result<Cluster> {
        Ok(Cluster {
            root: root.to_owned(),
            tool: build_cluster_tool(root)?,
        })
    }

    /// Takes the cluster down (its logs kept beside the state directory); fails if anything of it is left.
    pub fn down(&self) -> Result<()> {
        self.tool(&["down", "--keep-logs"], "taking the test cluster down")
    }

    /// Runs `agentfarm-cluster` with `args` (and the state directory) from the repository root.
    fn tool(&self, args: &[&str], what: &str) -> Result<()> {
        let mut command = Command::new(&self.tool);
        command
            .args(args)
            .arg("--state")
            .arg(state_dir())
            .current_dir(&self.root);
        run_step(&mut command, what)
    }
}

/// `cargo xtask cluster TASK`.
pub fn task(root: &Path, rest: &[String]) -> Result<()> {
    match rest.first().map(String::as_str) {
        Some("build") => {
            let binary = build_kubernetes(root)?;
            println!("{}", binary.display());
            Ok(())
        }
        Some("up") => {
            crate::build_web(root)?;
            Cluster::up(root)?;
            println!(
                "export KUBECONFIG={}",
                state_dir().join("kubeconfig/admin.kubeconfig").display()
            );
            Ok(())
        }
        Some("down") => Cluster::existing(root)?.down(),
        Some("bench") => {
            crate::build_web(root)?;
            let cluster = Cluster::up(root)?;
            let mut bench = Command::new("cargo");
            bench
                .args(["bench", "-p", "agentfarm-real-cluster", "--bench", "launch"])
                .env("AGENTFARM_CLUSTER_STATE", state_dir())
                .current_dir(root);
            let measured = run_step(
                &mut bench,
                "launch → pod running under gVisor and runc (benches/launch.rs)",
            );
            let taken_down = cluster.down();
            measured.and(taken_down)
        }
        Some("images") => {
            crate::build_web(root)?;
            Cluster::existing(root)?.tool(
                &["images"],
                "building the agent and control-plane images (buildah); imported when a cluster is up",
            )
        }
        _ => bail!("usage: cargo xtask cluster build | up | images | bench | down"),
    }
    .context("cargo xtask cluster")
}

//! A one-node Kubernetes on this machine, for the tests: the upstream components built from release sources
//! (`tests/kubernetes`, one binary), Debian's containerd with runc and gVisor's `runsc`, a bridge of our own
//! for the pods, everything under one state directory; and `down`, which leaves the host as it was and proves
//! it. The images the cluster runs are built from the project's Dockerfiles without a registry ([`images`]).
//!
//! - [`layout`]: the state directory, the names and addresses.
//! - [`pki`]: the CA, certificates and kubeconfigs.
//! - [`process`]: the processes, their records, stop and restart.
//! - [`network`]: the bridge, the CNI configuration, and removing both with their iptables rules.
//! - [`containerd`]: the private containerd, image import.
//! - [`runsc`]: Debian's gVisor behind runc's shim.
//! - [`components`]: etcd, the API server, the controllers, the kubelet, kube-proxy.
//! - [`oci`]: the pause and busybox images, by hand.
//! - [`images`]: the base images from Debian and the project's images from their Dockerfiles.
//! - [`host`]: what the cluster changes on the host, and the census of leftovers.

pub mod components;
pub mod containerd;
pub mod host;
pub mod images;
pub mod layout;
pub mod network;
pub mod oci;
pub mod pki;
pub mod process;
pub mod runsc;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::components::{COMPONENTS, kubectl};
use crate::layout::Layout;

/// What went wrong bringing the cluster up or down.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A program or package the cluster needs is not installed.
    #[error("missing: {0}")]
    Missing(String),
    /// A program could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A step failed; the message says which and why.
    #[error("{0}")]
    Failed(String),
    /// Reading or writing a file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Encoding or decoding JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Making a certificate.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// The programs the cluster runs besides the Kubernetes binary, with the Debian package of each.
const PROGRAMS: [(&str, &str); 10] = [
    ("containerd", "containerd"),
    ("containerd-shim-runc-v2", "containerd"),
    ("ctr", "containerd"),
    ("runc", "runc"),
    ("runsc", "runsc"),
    ("ip", "iproute2"),
    ("iptables", "iptables"),
    ("tar", "tar"),
    ("buildah", "buildah"),
    ("debootstrap", "debootstrap"),
];

/// Fails, naming everything missing and how to install it, unless this machine can host the cluster.
pub fn check_host() -> Result<(), Error> {
    let mut missing: Vec<String> = PROGRAMS
        .iter()
        .filter(|(program, _)| !on_path(program))
        .map(|(program, package)| format!("{program} (Debian package {package})"))
        .collect();
    if !Path::new(network::CNI_BIN).join("bridge").is_file() {
        missing.push(format!(
            "the CNI bridge plugin in {} (containernetworking-plugins)",
            network::CNI_BIN
        ));
    }
    if !nix::unistd::Uid::effective().is_root() {
        missing.push("root (the cluster makes network interfaces, mounts and cgroups)".to_owned());
    }
    if !Path::new("/sys/fs/cgroup/memory").is_dir()
        && !Path::new("/sys/fs/cgroup/cgroup.controllers").is_file()
    {
        missing.push("cgroups (/sys/fs/cgroup)".to_owned());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Missing(missing.join(", ")))
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The host's address towards the internet (what the kubelet reports as the node's), else loopback.
fn node_ip() -> Ipv4Addr {
    process::output("ip", &["-4", "route", "get", "1.1.1.1"])
        .ok()
        .and_then(|route| {
            let words: Vec<&str> = route.split_whitespace().collect();
            words
                .windows(2)
                .find(|pair| pair[0] == "src")
                .and_then(|pair| pair[1].parse().ok())
        })
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

/// Brings the cluster up under `layout` with the Kubernetes binary `kubernetes`; the admin's kubeconfig.
/// `wrapper` is the program that acts as the runsc wrapper (this crate's binary).
pub fn up(layout: &Layout, kubernetes: &Path, wrapper: &Path) -> Result<PathBuf, Error> {
    check_host()?;
    if !kubernetes.is_file() {
        return Err(Error::Missing(format!(
            "the Kubernetes binary {} (cargo xtask cluster build)",
            kubernetes.display()
        )));
    }
    if layout.state.exists() {
        return Err(Error::Failed(format!(
            "{} exists: a cluster is up, or one was not taken down (agentfarm-cluster down)",
            layout.state.display()
        )));
    }
    std::fs::create_dir_all(&layout.state)?;
    std::fs::write(
        layout.host_before(),
        serde_json::to_vec_pretty(&host::Before::read())?,
    )?;
    let result = bring_up(layout, kubernetes, wrapper);
    if result.is_err() {
        // Leave nothing half made; the logs are kept for the error's reader.
        let _ = down(layout, true);
    }
    result
}

fn bring_up(layout: &Layout, kubernetes: &Path, wrapper: &Path) -> Result<PathBuf, Error> {
    components::link_binaries(layout, kubernetes)?;
    std::os::unix::fs::symlink(wrapper, layout.bin().join(runsc::WRAPPER))?;
    let node_ip = node_ip();
    pki::write(layout, node_ip)?;
    network::set_up(layout)?;
    containerd::start(layout)?;
    for archive in oci::write_images(&layout.state.join("images"))? {
        containerd::import(layout, &archive)?;
    }
    components::start_etcd(layout)?;
    components::start_apiserver(layout)?;
    components::start_controllers(layout)?;
    components::start_node(layout, node_ip)?;
    volumes(layout)?;
    Ok(layout.admin_kubeconfig())
}

/// The control plane's two PersistentVolumes (its data and its backups), host directories under the state
/// directory owned by its user, as a storage provisioner would offer them.
fn volumes(layout: &Layout) -> Result<(), Error> {
    for (claim, size) in [("agentfarm-data", "10Gi"), ("agentfarm-backups", "10Gi")] {
        let dir = layout.volumes().join(claim);
        std::fs::create_dir_all(&dir)?;
        nix::unistd::chown(&dir, Some(10001.into()), Some(10001.into()))
            .map_err(|err| Error::Failed(format!("chown {}: {err}", dir.display())))?;
        let volume = serde_json::json!({
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": claim},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "claimRef": {"namespace": "agentfarm-system", "name": claim},
                "hostPath": {"path": dir, "type": "Directory"},
            },
        });
        let file = layout.volumes().join(format!("{claim}.json"));
        std::fs::write(&file, serde_json::to_vec(&volume)?)?;
        kubectl(layout, &["apply", "-f", &file.display().to_string()])?;
    }
    Ok(())
}

/// Takes the cluster under `layout` down and checks that nothing of it is left on the host; with `keep_logs`,
/// the logs stay in `<state>.logs`. Safe to run when it is half up, or not up at all.
pub fn down(layout: &Layout, keep_logs: bool) -> Result<(), Error> {
    if !layout.state.exists() {
        return Ok(());
    }
    // 1. Pods first, while the kubelet and containerd run, so that every sandbox goes through the CRI: the
    //    CNI plugins remove its veth, address and rules, and its network namespace goes.
    if process::running(layout, "kubelet")? && kubectl(layout, &["get", "--raw", "/readyz"]).is_ok() {
        let _ = kubectl(
            layout,
            &[
                "delete",
                "pods",
                "--all",
                "--all-namespaces",
                "--grace-period=0",
                "--force",
                "--wait=false",
            ],
        );
        process::wait_until(Duration::from_secs(30), || !containerd::any_task_running(layout));
    }
    // 2. The components, the datastore last.
    let mut components: Vec<&str> = COMPONENTS.to_vec();
    components.reverse();
    process::stop(
        layout,
        &components[..components.len() - 1],
        Duration::from_secs(15),
    )?;
    process::stop(layout, &["etcd"], Duration::from_secs(15))?;
    // 3. What containers are left, then containerd.
    if process::running(layout, "containerd")? {
        let _ = containerd::kill_tasks(layout);
    }
    process::stop(layout, &["containerd"], Duration::from_secs(15))?;
    // Shims and gVisor sandboxes outlive containerd: end ours, and the socket each shim leaves behind.
    for pid in host::processes_of(layout) {
        let command = host::command_line(pid);
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        if let Some(id) = command
            .split_whitespace()
            .skip_while(|word| *word != "-id")
            .nth(1)
        {
            containerd::remove_shim_socket(layout, id);
        }
    }
    process::wait_until(Duration::from_secs(10), || host::processes_of(layout).is_empty());
    // 4. Mounts under the state directory (rootfs overlays, shm, network namespaces, volumes), deepest first.
    for mount in host::mounts_under(layout) {
        if nix::mount::umount(mount.as_str()).is_err() {
            let _ = nix::mount::umount2(mount.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
    // 5. The network.
    network::tear_down()?;
    // 6. The kubelet's cgroups.
    for root in host::cgroup_roots() {
        for tree in ["kubepods", "kubepods.slice"] {
            remove_cgroups(&root.join(tree));
        }
    }
    // 7. Sysctls and the hard-wired paths.
    if let Ok(before) = std::fs::read(layout.host_before()) {
        serde_json::from_slice::<host::Before>(&before)?.restore(layout)?;
    }
    let leftovers = host::leftovers(layout);
    if keep_logs {
        let kept = layout.state.with_extension("logs");
        let _ = std::fs::remove_dir_all(&kept);
        let _ = std::fs::rename(layout.state.join("logs"), &kept);
    }
    if leftovers.is_empty() {
        std::fs::remove_dir_all(&layout.state)?;
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "the cluster left these behind:\n  {}",
            leftovers.join("\n  ")
        )))
    }
}

/// Removes a cgroup directory tree, deepest first (a cgroup directory is removed with rmdir, when empty of
/// processes).
fn remove_cgroups(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            remove_cgroups(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

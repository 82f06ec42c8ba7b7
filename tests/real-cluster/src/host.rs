//! What the cluster changes on the host outside its state directory, and the proof that `down` undid it: the
//! sysctls the kubelet and the bridge plugin set, the few paths the kubelet and containerd hard-wire, and a
//! census of what could be left behind (processes, mounts, interfaces, namespaces, iptables rules, cgroups).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::layout::{BRIDGE, Layout, POD_CIDR};
use crate::process::output;

/// Sysctls the kubelet (and the CNI bridge plugin) change.
const SYSCTLS: [&str; 10] = [
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
];

/// Paths outside the state directory that the kubelet, containerd or libcni create (and which may exist
/// before, for someone else).
const HARD_WIRED: [&str; 4] = [
    "/run/containerd",
    "/var/log/containers",
    "/var/lib/cni",
    "/var/lib/kubelet",
];

/// The host before `up`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Before {
    sysctls: BTreeMap<String, String>,
    existing: Vec<String>,
}

impl Before {
    /// Reads the host now.
    pub fn read() -> Before {
        let sysctls = SYSCTLS
            .iter()
            .filter_map(|name| Some(((*name).to_owned(), read_sysctl(name)?)))
            .collect();
        let existing = HARD_WIRED
            .iter()
            .filter(|path| Path::new(path).exists())
            .map(|path| (*path).to_owned())
            .collect();
        Before { sysctls, existing }
    }

    /// Puts the sysctls back and removes what the cluster created in the hard-wired paths: only its own
    /// entries where the path was there before.
    pub fn restore(&self, layout: &Layout) -> Result<(), Error> {
        for (name, value) in &self.sysctls {
            if read_sysctl(name).as_ref() != Some(value) {
                std::fs::write(sysctl_path(name), value)?;
            }
        }
        let had = |path: &str| self.existing.iter().any(|existing| existing == path);
        // Logs the kubelet linked for its containers.
        if let Ok(entries) = std::fs::read_dir("/var/log/containers") {
            for entry in entries.flatten() {
                if std::fs::read_link(entry.path()).is_ok_and(|target| layout.owns(&target)) {
                    std::fs::remove_file(entry.path())?;
                }
            }
        }
        if !had("/var/log/containers") {
            let _ = std::fs::remove_dir("/var/log/containers");
        }
        if !had("/var/lib/cni") {
            remove_tree("/var/lib/cni")?;
        }
        if had("/var/lib/kubelet") {
            let _ = std::fs::remove_file("/var/lib/kubelet/device-plugins/kubelet.sock");
        } else {
            remove_tree("/var/lib/kubelet")?;
        }
        if !had("/run/containerd") {
            // Empty unless another containerd uses it.
            let _ = std::fs::remove_dir("/run/containerd/s");
            let _ = std::fs::remove_dir("/run/containerd");
        }
        Ok(())
    }
}

fn sysctl_path(name: &str) -> String {
    format!("/proc/sys/{}", name.replace('.', "/"))
}

fn read_sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(sysctl_path(name))
        .ok()
        .map(|value| value.trim().to_owned())
}

fn remove_tree(path: &str) -> Result<(), Error> {
    match std::fs::remove_dir_all(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
        _ => Ok(()),
    }
}

/// Processes whose command line names the state directory (the components, shims, runsc sandboxes and
/// gofers), this process excepted.
pub fn processes_of(layout: &Layout) -> Vec<i32> {
    let state = layout.state.to_string_lossy().into_owned();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| u32::try_from(*pid).is_ok_and(|pid| pid != me))
        .filter(|pid| crate::process::alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&state))
        })
        .collect()
}

/// Mount points under the state directory, deepest first.
pub fn mounts_under(layout: &Layout) -> Vec<String> {
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .filter(|point| layout.owns(Path::new(point)))
        .map(str::to_owned)
        .collect();
    mounts.sort();
    mounts.reverse();
    mounts
}

/// Everything the cluster could leave behind that is still there, one line each; empty when the host is
/// as it was.
pub fn leftovers(layout: &Layout) -> Vec<String> {
    let mut found = Vec::new();
    found.extend(
        processes_of(layout)
            .into_iter()
            .map(|pid| format!("process {pid}: {}", command_line(pid))),
    );
    found.extend(
        mounts_under(layout)
            .into_iter()
            .map(|mount| format!("mount {mount}")),
    );
    if Path::new(&format!("/sys/class/net/{BRIDGE}")).exists() {
        found.push(format!("interface {BRIDGE}"));
    }
    let network = POD_CIDR.rsplit_once('.').map_or(POD_CIDR, |(network, _)| network);
    for tool in ["iptables", "ip6tables"] {
        for table in ["raw", "mangle", "nat", "filter"] {
            let rules = output(tool, &["-w", "-t", table, "-S"]).unwrap_or_default();
            found.extend(
                rules
                    .lines()
                    .filter(|rule| {
                        rule.contains("CNI-")
                            || rule.contains("KUBE-")
                            || rule.contains(BRIDGE)
                            || rule.contains(&format!("{network}."))
                    })
                    .map(|rule| format!("{tool} -t {table}: {rule}")),
            );
        }
    }
    for root in cgroup_roots() {
        if root.join("kubepods").exists() || root.join("kubepods.slice").exists() {
            found.push(format!("cgroup {}/kubepods", root.display()));
        }
    }
    found
}

/// The roots of the cgroup hierarchies (each v1 controller, and the v2 one of a hybrid setup).
pub fn cgroup_roots() -> Vec<std::path::PathBuf> {
    let mut roots = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.is_dir()),
        );
    }
    roots
}

/// A process's command line, for messages.
pub fn command_line(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .replace('\0', " ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

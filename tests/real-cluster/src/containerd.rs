//! A private containerd (Debian's 1.6): its own root, state and socket under the state directory, the CRI
//! with `runc` as the default handler and `runsc` (gVisor, through our wrapper behind runc's shim) as the
//! handler of RuntimeClass `gvisor`, images imported from OCI archives with `ctr`.

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::Error;
use crate::layout::{Layout, PAUSE_IMAGE};
use crate::network::CNI_BIN;
use crate::process::{self, output, run, wait_until};

/// The CRI's namespace of containerd.
const NAMESPACE: &str = "k8s.io";

/// Where containerd 1.6 puts every shim's socket, whatever its `--state`; shared with any other containerd
/// on the machine.
const SHIM_SOCKETS: &str = "/run/containerd/s";

/// Writes containerd's configuration and starts it; returns once it answers.
pub fn start(layout: &Layout) -> Result<(), Error> {
    let dir = layout.containerd();
    std::fs::create_dir_all(&dir)?;
    let socket = layout.containerd_socket();
    let state = &layout.state;
    let wrapper = layout.bin().join(crate::runsc::WRAPPER);
    let config = format!(
        r#"version = 2
root = "{dir}/root"
state = "{dir}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{dir}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  netns_mounts_under_state_dir = true
  # This VM withholds CAP_SYS_RESOURCE: no process may lower its oom_score_adj, so the pause container's
  # -998 would fail every sandbox. Clamped to containerd's own score instead.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/bin/runc"
        Root = "{state}/run/runc"
        SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc.options]
        BinaryName = "{wrapper}"
        Root = "{state}/run/runsc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{conf}"
    max_conf_num = 1
"#,
        dir = dir.display(),
        socket = socket.display(),
        state = state.display(),
        wrapper = wrapper.display(),
        conf = layout.cni_conf().display(),
    );
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, config)?;
    process::start(
        layout,
        "containerd",
        Path::new("containerd"),
        &["--config".to_owned(), config_path.display().to_string()],
    )?;
    let address = socket.display().to_string();
    if !wait_until(Duration::from_secs(30), || {
        output("ctr", &["--address", &address, "version"]).is_ok()
    }) {
        return Err(Error::Failed(format!(
            "containerd did not answer on {address} (log: {})",
            layout.log("containerd").display()
        )));
    }
    Ok(())
}

/// Imports the OCI archive `archive` into the CRI's image store.
pub fn import(layout: &Layout, archive: &Path) -> Result<(), Error> {
    run(
        "ctr",
        &[
            "--address",
            &layout.containerd_socket().display().to_string(),
            "-n",
            NAMESPACE,
            "images",
            "import",
            &archive.display().to_string(),
        ],
    )
}

/// Kills and deletes every task containerd still knows (what the kubelet did not stop).
pub fn kill_tasks(layout: &Layout) -> Result<(), Error> {
    let address = layout.containerd_socket().display().to_string();
    let ctr = |args: &[&str]| {
        let mut all = vec!["--address", address.as_str(), "-n", NAMESPACE];
        all.extend_from_slice(args);
        output("ctr", &all)
    };
    for task in ctr(&["tasks", "ls", "-q"])?.lines() {
        let _ = ctr(&["tasks", "kill", "-s", "SIGKILL", task]);
        let _ = ctr(&["tasks", "delete", "-f", task]);
    }
    Ok(())
}

/// Whether containerd runs any task.
pub fn any_task_running(layout: &Layout) -> bool {
    let address = layout.containerd_socket().display().to_string();
    output("ctr", &["--address", &address, "-n", NAMESPACE, "tasks", "ls"]).is_ok_and(|tasks| {
        tasks
            .lines()
            .any(|line| line.split_whitespace().nth(2) == Some("RUNNING"))
    })
}

/// Removes the socket a killed shim `id` of ours left in the shared socket directory (named
/// `sha256(<containerd address>/<namespace>/<id>)` by containerd 1.6).
pub fn remove_shim_socket(layout: &Layout, id: &str) {
    let name = format!("{}/{NAMESPACE}/{id}", layout.containerd_socket().display());
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    let _ = std::fs::remove_file(Path::new(SHIM_SOCKETS).join(hex));
}

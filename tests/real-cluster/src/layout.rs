//! Where the cluster keeps everything it writes (one state directory), and the fixed names and addresses it
//! uses on the host.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The state directory when none is given: outside any clone, like the build caches.
pub const DEFAULT_STATE: &str = "/var/tmp/agentfarm-cluster";

/// The node's name.
pub const NODE: &str = "agentfarm-node";
/// The CNI bridge: a name of our own, so that nothing else on the machine is touched.
pub const BRIDGE: &str = "afk0";
/// The pod network (one node, one /24).
pub const POD_CIDR: &str = "10.244.0.0/24";
/// The host's address on the bridge: pods reach the host's test servers here, and the API server advertises it.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);
/// The Services' range (hetzner-k3s's: the `kubernetes` Service is 10.43.0.1).
pub const SERVICE_CIDR: &str = "10.43.0.0/16";
/// The `kubernetes` Service's ClusterIP.
pub const API_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 1);
/// The API server's port on the host (not 6443, to stay clear of any other cluster on the machine).
pub const API_PORT: u16 = 16443;
/// etcd's client port (its peer port is the next one).
pub const ETCD_PORT: u16 = 23791;
/// gVisor's platform: Debian's runsc (2022) has no systrap, and its KVM platform hangs in this VM.
pub const RUNSC_PLATFORM: &str = "ptrace";
/// The sandbox image (the pod's pause container), made here from busybox.
pub const PAUSE_IMAGE: &str = "agentfarm.invalid/pause:1";
/// A small image with busybox, for tests that need a plain pod.
pub const BUSYBOX_IMAGE: &str = "agentfarm.invalid/busybox:1";

/// The paths under one state directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The state directory itself.
    pub state: PathBuf,
}

impl Layout {
    /// The layout under `state`.
    pub fn new(state: impl Into<PathBuf>) -> Layout {
        Layout { state: state.into() }
    }

    fn join(&self, path: &str) -> PathBuf {
        self.state.join(path)
    }

    /// Certificates and keys.
    pub fn pki(&self) -> PathBuf {
        self.join("pki")
    }

    /// The kubeconfig of user `name` (`admin`, `kubelet`, …).
    pub fn kubeconfig(&self, name: &str) -> PathBuf {
        self.join(&format!("kubeconfig/{name}.kubeconfig"))
    }

    /// The cluster admin's kubeconfig: what `up` prints and the tests use.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.kubeconfig("admin")
    }

    /// Symlinks to the Kubernetes binary under each component's name, and the runsc wrapper.
    pub fn bin(&self) -> PathBuf {
        self.join("bin")
    }

    /// One log file per process.
    pub fn log(&self, name: &str) -> PathBuf {
        self.join(&format!("logs/{name}.log"))
    }

    /// One record per process: how to start it again, and its pid.
    pub fn process_record(&self, name: &str) -> PathBuf {
        self.join(&format!("processes/{name}.json"))
    }

    /// The process records' directory.
    pub fn processes(&self) -> PathBuf {
        self.join("processes")
    }

    /// containerd's own directory (config, root, state).
    pub fn containerd(&self) -> PathBuf {
        self.join("containerd")
    }

    /// containerd's socket.
    pub fn containerd_socket(&self) -> PathBuf {
        self.join("containerd/containerd.sock")
    }

    /// The CNI configuration directory.
    pub fn cni_conf(&self) -> PathBuf {
        self.join("cni/net.d")
    }

    /// The kubelet's root directory.
    pub fn kubelet(&self) -> PathBuf {
        self.join("kubelet")
    }

    /// What the host looked like before `up`, for `down` to restore.
    pub fn host_before(&self) -> PathBuf {
        self.join("host-before.json")
    }

    /// Where the control plane's volumes live (hostPath PersistentVolumes of the `local` overlay).
    pub fn volumes(&self) -> PathBuf {
        self.join("volumes")
    }

    /// Whether `path` lies under the state directory.
    pub fn owns(&self, path: &Path) -> bool {
        path.starts_with(&self.state)
    }
}

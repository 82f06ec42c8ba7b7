//! The Kubernetes components, each a process of the one upstream binary (`tests/kubernetes`) under its own
//! name: etcd, the API server, the controller manager, the scheduler, the kubelet and kube-proxy, with the
//! flags a one-node test cluster needs.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use crate::Error;
use crate::layout::{API_PORT, ETCD_PORT, GATEWAY, Layout, NODE, POD_CIDR, SERVICE_CIDR};
use crate::process::{self, wait_until};

/// The components, in the order they start (and, reversed, stop).
pub const COMPONENTS: [&str; 6] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
];

/// Runs our `kubectl` as the cluster admin; its standard output.
pub fn kubectl(layout: &Layout, args: &[&str]) -> Result<String, Error> {
    let output = std::process::Command::new(layout.bin().join("kubectl"))
        .args(args)
        .env("KUBECONFIG", layout.admin_kubeconfig())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: "kubectl".to_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Failed(format!(
            "kubectl {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Starts `name` from the binary's symlink of that name.
fn start(layout: &Layout, name: &str, flags: &[String]) -> Result<(), Error> {
    process::start(layout, name, &layout.bin().join(name), flags).map(drop)
}

/// Fails with the end of `name`'s log when it is not running.
pub fn check_alive(layout: &Layout, name: &str) -> Result<(), Error> {
    if process::running(layout, name)? {
        return Ok(());
    }
    let log = std::fs::read_to_string(layout.log(name)).unwrap_or_default();
    let tail: Vec<&str> = log
        .lines()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(Error::Failed(format!("{name} exited:\n{}", tail.join("\n"))))
}

/// Waits up to `timeout` for `ready`; on time out, fails naming `what` and the end of `name`'s log.
fn wait_for(
    layout: &Layout,
    name: &str,
    what: &str,
    timeout: Duration,
    ready: impl FnMut() -> bool,
) -> Result<(), Error> {
    if wait_until(timeout, ready) {
        return Ok(());
    }
    check_alive(layout, name)?;
    Err(Error::Failed(format!(
        "{what} within {timeout:?} (log: {})",
        layout.log(name).display()
    )))
}

/// Starts etcd and waits until it is healthy.
pub fn start_etcd(layout: &Layout) -> Result<(), Error> {
    let data = layout.state.join("etcd");
    start(
        layout,
        "etcd",
        &[
            format!("--data-dir={}", data.display()),
            format!("--listen-client-url=http://127.0.0.1:{ETCD_PORT}"),
            format!("--listen-peer-url=http://127.0.0.1:{}", ETCD_PORT + 1),
            // A throwaway cluster: no fsync (much faster on a shared disk).
            "--unsafe-no-fsync".to_owned(),
        ],
    )?;
    wait_for(layout, "etcd", "etcd healthy", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", ETCD_PORT)).is_ok()
    })
}

/// The API server's flags (kept in its process record, so that a test can restart it as it was).
pub fn start_apiserver(layout: &Layout) -> Result<(), Error> {
    let pki = layout.pki();
    let file = |name: &str| pki.join(name).display().to_string();
    start(
        layout,
        "kube-apiserver",
        &[
            format!("--etcd-servers=http://127.0.0.1:{ETCD_PORT}"),
            format!("--secure-port={API_PORT}"),
            format!("--advertise-address={GATEWAY}"),
            format!("--tls-cert-file={}", file("apiserver.crt")),
            format!("--tls-private-key-file={}", file("apiserver.key")),
            format!("--client-ca-file={}", file("ca.crt")),
            format!(
                "--kubelet-client-certificate={}",
                file("apiserver-kubelet-client.crt")
            ),
            format!("--kubelet-client-key={}", file("apiserver-kubelet-client.key")),
            format!("--kubelet-certificate-authority={}", file("ca.crt")),
            "--kubelet-preferred-address-types=InternalIP".to_owned(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
            format!("--service-account-key-file={}", file("sa.pub")),
            format!("--service-account-signing-key-file={}", file("sa.key")),
            "--authorization-mode=Node,RBAC".to_owned(),
            // PodSecurity, ValidatingAdmissionPolicy, RuntimeClass and the rest of the defaults stay on.
            "--enable-admission-plugins=NodeRestriction".to_owned(),
            "--allow-privileged=true".to_owned(),
            "--profiling=false".to_owned(),
            format!("--cert-dir={}", layout.state.join("apiserver-certs").display()),
        ],
    )?;
    wait_apiserver(layout)
}

/// Waits until the API server answers `/readyz`.
pub fn wait_apiserver(layout: &Layout) -> Result<(), Error> {
    wait_for(
        layout,
        "kube-apiserver",
        "the API server ready",
        Duration::from_secs(120),
        || kubectl(layout, &["get", "--raw", "/readyz"]).is_ok(),
    )
}

/// Starts the controller manager and the scheduler.
pub fn start_controllers(layout: &Layout) -> Result<(), Error> {
    let pki = layout.pki();
    let file = |name: &str| pki.join(name).display().to_string();
    let kubeconfig = |user: &str| layout.kubeconfig(user).display().to_string();
    start(
        layout,
        "kube-controller-manager",
        &[
            format!("--kubeconfig={}", kubeconfig("controller-manager")),
            format!("--authentication-kubeconfig={}", kubeconfig("controller-manager")),
            format!("--authorization-kubeconfig={}", kubeconfig("controller-manager")),
            "--bind-address=127.0.0.1".to_owned(),
            "--leader-elect=false".to_owned(),
            "--use-service-account-credentials=true".to_owned(),
            format!("--service-account-private-key-file={}", file("sa.key")),
            format!("--root-ca-file={}", file("ca.crt")),
            format!("--cluster-signing-cert-file={}", file("ca.crt")),
            format!("--cluster-signing-key-file={}", file("ca.key")),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--profiling=false".to_owned(),
            format!(
                "--cert-dir={}",
                layout.state.join("controller-manager-certs").display()
            ),
        ],
    )?;
    start(
        layout,
        "kube-scheduler",
        &[
            format!("--kubeconfig={}", kubeconfig("scheduler")),
            format!("--authentication-kubeconfig={}", kubeconfig("scheduler")),
            format!("--authorization-kubeconfig={}", kubeconfig("scheduler")),
            "--bind-address=127.0.0.1".to_owned(),
            "--leader-elect=false".to_owned(),
            "--profiling=false".to_owned(),
        ],
    )
}

/// Writes the kubelet's configuration and starts it with kube-proxy (Services: the control plane in the
/// cluster reaches the API server through `kubernetes.default`); returns once the node is Ready.
pub fn start_node(layout: &Layout, node_ip: Ipv4Addr) -> Result<(), Error> {
    let pki = layout.pki();
    let file = |name: &str| pki.join(name).display().to_string();
    let root = layout.kubelet();
    std::fs::create_dir_all(&root)?;
    let config = format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# kubelet 1.35 and later refuse cgroup v1 otherwise; this machine is cgroup v1 (hybrid).
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://{socket}
imageServiceEndpoint: unix://{socket}
address: 0.0.0.0
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: {serving_crt}
tlsPrivateKeyFile: {serving_key}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca}}}
authorization: {{mode: Webhook}}
resolvConf: {resolv}
podLogsDir: {logs}
# Its default, /usr/libexec/kubernetes/..., would be created on the host.
volumePluginDir: {plugins}
failSwapOn: false
registerNode: true
serializeImagePulls: false
protectKernelDefaults: false
# A shared test machine: evict only when really short, never collect the images imported here.
evictionHard: {{memory.available: \"100Mi\", nodefs.available: \"1%\", imagefs.available: \"1%\"}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
",
        socket = layout.containerd_socket().display(),
        serving_crt = file("kubelet-serving.crt"),
        serving_key = file("kubelet-serving.key"),
        ca = file("ca.crt"),
        resolv = layout.state.join("resolv.conf").display(),
        logs = layout.state.join("pod-logs").display(),
        plugins = root.join("volume-plugins").display(),
    );
    let config_path = root.join("config.yaml");
    std::fs::write(&config_path, config)?;
    start(
        layout,
        "kubelet",
        &[
            format!("--config={}", config_path.display()),
            format!("--kubeconfig={}", layout.kubeconfig("kubelet").display()),
            format!("--root-dir={}", root.display()),
            format!("--hostname-override={NODE}"),
            format!("--node-ip={node_ip}"),
            format!("--cert-dir={}", root.join("pki").display()),
        ],
    )?;
    start(
        layout,
        "kube-proxy",
        &[
            format!("--kubeconfig={}", layout.kubeconfig("kube-proxy").display()),
            format!("--hostname-override={NODE}"),
            format!("--cluster-cidr={POD_CIDR}"),
            "--proxy-mode=iptables".to_owned(),
            "--conntrack-max-per-core=0".to_owned(),
            "--iptables-localhost-nodeports=false".to_owned(),
            "--metrics-bind-address=127.0.0.1:10249".to_owned(),
            "--healthz-bind-address=127.0.0.1:10256".to_owned(),
        ],
    )?;
    wait_for(
        layout,
        "kubelet",
        "the node Ready",
        Duration::from_secs(120),
        || {
            kubectl(
                layout,
                &[
                    "get",
                    "node",
                    NODE,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ],
            )
            .is_ok_and(|status| status == "True")
        },
    )
}

/// Links each component's name, and kubectl's, to the one Kubernetes binary.
pub fn link_binaries(layout: &Layout, kubernetes: &Path) -> Result<(), Error> {
    let bin = layout.bin();
    std::fs::create_dir_all(&bin)?;
    for name in COMPONENTS.iter().chain(&["kubectl"]) {
        std::os::unix::fs::symlink(kubernetes, bin.join(name))?;
    }
    Ok(())
}

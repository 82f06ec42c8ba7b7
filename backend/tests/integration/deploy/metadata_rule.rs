//! `infra/node/install-gvisor.sh`'s metadata rule, applied for real in network namespaces: one stands for a
//! node, one for a pod on the node's pod network, one for the Hetzner metadata service. The rule's own
//! commands (the `ExecStart` lines of the unit the script writes) run in the node's namespace. A process on
//! the pod network must not reach the metadata service; one on the node's own network (a `hostNetwork`
//! pod, as bootstrap makes the Hetzner CSI node plugin, which needs its server ID from there) must.
//! Needs root, `ip` (iproute2) and `iptables`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::harness::repo;

/// How long a dropped SYN is given before the connection counts as blocked.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Network namespaces made for one test, deleted (with their links and rules) when dropped.
struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    fn new(roles: &[&str]) -> Namespaces {
        let mut namespaces = Namespaces { names: Vec::new() };
        for role in roles {
            let name = format!("afm-{}-{role}", std::process::id());
            ip(&["netns", "add", &name]);
            namespaces.names.push(name);
        }
        namespaces
    }

    fn name(&self, role: &str) -> &str {
        self.names
            .iter()
            .find(|name| name.ends_with(&format!("-{role}")))
            .expect("a namespace of that role")
    }

    /// Runs `command` in the namespace of `role`; panics with its output if it fails.
    fn exec(&self, role: &str, command: &[&str]) {
        let mut args = vec!["netns", "exec", self.name(role)];
        args.extend_from_slice(command);
        ip(&args);
    }

    /// Runs `f` on a thread inside the namespace of `role`.
    fn within<T: Send>(&self, role: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name(role));
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let namespace = std::fs::File::open(&path).expect("open the namespace");
                    nix::sched::setns(&namespace, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                    f()
                })
                .join()
                .expect("the thread in the namespace")
        })
    }

    /// Whether a TCP connection from the namespace of `role` to `address` is made.
    fn connects(&self, role: &str, address: SocketAddr) -> bool {
        self.within(role, || {
            TcpStream::connect_timeout(&address, CONNECT_TIMEOUT).is_ok()
        })
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "delete", name]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("ip (iproute2) is needed: {err}"));
    assert!(
        output.status.success(),
        "ip {}: {}(network namespaces need root)",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The value of `NAME=` in the script (its first assignment).
fn script_variable<'a>(script: &'a str, name: &str) -> &'a str {
    script
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("install-gvisor.sh assigns {name}"))
}

#[test]
fn the_metadata_rule_spares_host_network_pods() {
    let script =
        std::fs::read_to_string(repo().join("infra/node/install-gvisor.sh")).expect("read the script");
    let pod_cidr = script_variable(&script, "POD_CIDR");
    let metadata_ip = script_variable(&script, "METADATA_IP");
    let rules: Vec<String> = script
        .lines()
        .filter_map(|line| line.strip_prefix("ExecStart="))
        .map(|command| {
            command
                .replace("$POD_CIDR", pod_cidr)
                .replace("$METADATA_IP", metadata_ip)
        })
        .collect();
    assert_eq!(
        rules.len(),
        2,
        "the unit drops in raw PREROUTING and in FORWARD: {rules:?}"
    );
    assert_eq!(pod_cidr, "10.244.0.0/16", "hetzner-k3s's cluster_cidr");

    // node: the pod network's gateway (10.244.0.1) and a link to the metadata service's network.
    let net = Namespaces::new(&["node", "pod", "meta"]);
    ip(&[
        "-n",
        net.name("node"),
        "link",
        "add",
        "pod0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        net.name("pod"),
    ]);
    ip(&[
        "-n",
        net.name("node"),
        "link",
        "add",
        "meta0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        net.name("meta"),
    ]);
    for (role, address, device) in [
        ("node", "10.244.0.1/24", "pod0"),
        ("node", "169.254.0.1/16", "meta0"),
        ("pod", "10.244.0.5/24", "eth0"),
        ("meta", &format!("{metadata_ip}/16"), "eth0"),
    ] {
        ip(&["-n", net.name(role), "addr", "add", address, "dev", device]);
        ip(&["-n", net.name(role), "link", "set", device, "up"]);
        ip(&["-n", net.name(role), "link", "set", "lo", "up"]);
    }
    ip(&[
        "-n",
        net.name("pod"),
        "route",
        "add",
        "default",
        "via",
        "10.244.0.1",
    ]);
    ip(&[
        "-n",
        net.name("meta"),
        "route",
        "add",
        "10.244.0.0/16",
        "via",
        "169.254.0.1",
    ]);
    net.exec("node", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);

    // The metadata service: a listening socket in its namespace (the handshake is all a connect needs).
    let metadata: SocketAddr = format!("{metadata_ip}:80").parse().expect("an address");
    let _listener = net.within("meta", || {
        TcpListener::bind(metadata).expect("listen as the metadata service")
    });
    assert!(
        net.connects("pod", metadata),
        "without the rule, the pod network reaches the metadata service (the setup routes)"
    );

    for rule in &rules {
        net.exec("node", &["sh", "-c", rule]);
    }
    // Applied twice, as the unit does at every restart: the rule is idempotent.
    for rule in &rules {
        net.exec("node", &["sh", "-c", rule]);
    }
    assert!(
        !net.connects("pod", metadata),
        "a pod on the pod network ({pod_cidr}) must not reach {metadata_ip}"
    );
    assert!(
        net.connects("node", metadata),
        "a host-network pod (the CSI node plugin after bootstrap) must reach {metadata_ip}: it reads its server ID there"
    );
}

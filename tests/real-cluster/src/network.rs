//! The pod network on the host: a bridge of our own with the gateway address, the CNI configuration that puts
//! pods on it (Debian's bridge, host-local, portmap plugins), and its removal: the bridge, veths left on it,
//! and every iptables rule and chain the CNI plugins, the kubelet or kube-proxy added.

use crate::Error;
use crate::layout::{BRIDGE, GATEWAY, Layout, POD_CIDR};
use crate::process::{output, run};

/// Debian's CNI plugins (`containernetworking-plugins`).
pub const CNI_BIN: &str = "/usr/lib/cni";

/// Makes the bridge with the gateway address (before any pod, so that the API server can advertise it and
/// the host's test servers can listen there), and writes the CNI configuration.
pub fn set_up(layout: &Layout) -> Result<(), Error> {
    let prefix = POD_CIDR.split_once('/').map_or("24", |(_, prefix)| prefix);
    run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
    run(
        "ip",
        &["addr", "add", &format!("{GATEWAY}/{prefix}"), "dev", BRIDGE],
    )?;
    run("ip", &["link", "set", BRIDGE, "up"])?;
    let conf = layout.cni_conf();
    std::fs::create_dir_all(&conf)?;
    let ipam_dir = layout.state.join("cni/ipam");
    std::fs::create_dir_all(&ipam_dir)?;
    let config = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "agentfarm-test",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": ipam_dir,
                    "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY.to_string()}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    std::fs::write(
        conf.join("10-agentfarm.conflist"),
        serde_json::to_vec_pretty(&config)?,
    )?;
    // No cluster DNS (there is no image for one): pods resolve nothing, and the tests use addresses.
    std::fs::write(
        layout.state.join("resolv.conf"),
        format!("nameserver {GATEWAY}\n"),
    )?;
    Ok(())
}

/// Removes the bridge, any veth still on it, and every iptables rule and chain of the cluster. Rules are
/// deleted one by one, not by restoring a filtered dump: other users of the machine may change the tables
/// meanwhile.
pub fn tear_down() -> Result<(), Error> {
    let _ = run("ip", &["link", "del", BRIDGE]);
    for veth in output("ip", &["-o", "link", "show", "type", "veth"])?.lines() {
        let Some(name) = veth.split(": ").nth(1).and_then(|name| name.split('@').next()) else {
            continue;
        };
        let master = std::fs::read_link(format!("/sys/class/net/{name}/master")).ok();
        if master.is_some_and(|master| master.ends_with(BRIDGE)) {
            let _ = run("ip", &["link", "del", name]);
        }
    }
    for tool in ["iptables", "ip6tables"] {
        for table in ["raw", "mangle", "nat", "filter"] {
            let Ok(rules) = output(tool, &["-w", "-t", table, "-S"]) else {
                continue;
            };
            for rule in rules.lines().filter_map(|line| line.strip_prefix("-A ")) {
                let chain = rule.split_whitespace().next().unwrap_or_default();
                if !ours(chain) && mentions_ours(rule) {
                    let words = split_rule(rule);
                    let mut args = vec!["-w", "-t", table, "-D"];
                    args.extend(words.iter().map(String::as_str));
                    run(tool, &args)?;
                }
            }
            let chains: Vec<&str> = rules
                .lines()
                .filter_map(|line| line.strip_prefix("-N "))
                .filter(|chain| ours(chain))
                .collect();
            for chain in &chains {
                run(tool, &["-w", "-t", table, "-F", chain])?;
            }
            for chain in &chains {
                run(tool, &["-w", "-t", table, "-X", chain])?;
            }
        }
    }
    Ok(())
}

/// The chains the CNI plugins, the kubelet and kube-proxy make.
fn ours(chain: &str) -> bool {
    chain.starts_with("CNI-") || chain.starts_with("KUBE-")
}

/// Whether a rule of another chain jumps to one of ours, or names the bridge or the pod network.
fn mentions_ours(rule: &str) -> bool {
    let words: Vec<&str> = rule.split_whitespace().collect();
    let jumps = words
        .windows(2)
        .any(|pair| matches!(pair[0], "-j" | "--jump" | "-g" | "--goto") && ours(pair[1]));
    let network = POD_CIDR.rsplit_once('.').map_or(POD_CIDR, |(network, _)| network);
    jumps || words.contains(&BRIDGE) || rule.contains(&format!("{network}."))
}

/// The words of an `iptables -S` rule, with double-quoted words (comments) kept whole.
fn split_rule(rule: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for character in rule.chars() {
        match character {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(character),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_recognised_as_ours_and_split_as_iptables_wrote_them() {
        assert!(mentions_ours(
            "FORWARD -m comment --comment \"kube\" -j KUBE-FORWARD"
        ));
        assert!(mentions_ours("POSTROUTING -s 10.244.0.0/24 -j MASQUERADE"));
        assert!(mentions_ours("FORWARD -i afk0 -j ACCEPT"));
        assert!(!mentions_ours("FORWARD -i docker0 -j ACCEPT"));
        assert!(!mentions_ours("POSTROUTING -s 10.24.0.0/16 -j MASQUERADE"));
        assert_eq!(
            split_rule("FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD"),
            [
                "FORWARD",
                "-m",
                "comment",
                "--comment",
                "kubernetes forwarding rules",
                "-j",
                "KUBE-FORWARD"
            ]
        );
    }
}

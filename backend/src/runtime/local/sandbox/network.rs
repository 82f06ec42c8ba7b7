//! The sandboxes' network: a bridge whose ports cannot reach each other, one network namespace and veth pair
//! per agent, and an nftables table of the server's whose egress rule is the cluster's: DNS and public HTTPS
//! only, never a private range, the tailnet or the metadata service; towards this machine, only the proxies.
//! What is refused is rejected (not dropped), so an agent learns at once that it may not go there.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ipnet::Ipv4Net;

use super::host::{run, run_quietly, run_with_input};
use crate::runtime::RuntimeError;

/// Where no agent may connect: private ranges (the host's LAN, the cluster's), the tailnet (100.64.0.0/10),
/// link-local (the metadata service, 169.254.169.254), loopback, and addresses that are not unicast.
pub const FORBIDDEN_RANGES: [&str; 10] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/3",
];

/// The server's sandbox network, named after its subnet so that servers with different subnets can share a
/// machine (and a restarted server finds what its predecessor left).
#[derive(Debug)]
pub struct SandboxNetwork {
    subnet: Ipv4Net,
    /// The bridge, its nftables table and the prefix of its namespaces and veth ends.
    name: String,
    /// The resolvers agents may ask (the host's, unless they are on loopback).
    nameservers: Vec<Ipv4Addr>,
    /// Host numbers in use, by run.
    hosts: Mutex<BTreeMap<String, u8>>,
}

impl SandboxNetwork {
    /// The network of `subnet` (a /24). Reads the host's resolvers.
    pub fn new(subnet: Ipv4Net) -> Result<SandboxNetwork, RuntimeError> {
        if subnet.prefix_len() != 24 {
            return Err(RuntimeError::Failed(format!(
                "the sandbox subnet must be a /24, not {subnet}"
            )));
        }
        let [a, b, c, _] = subnet.network().octets();
        Ok(SandboxNetwork {
            subnet: subnet.trunc(),
            name: format!("af{a:02x}{b:02x}{c:02x}"),
            nameservers: host_nameservers(),
            hosts: Mutex::default(),
        })
    }

    /// The address agents reach this machine at (the bridge's).
    pub fn gateway(&self) -> Ipv4Addr {
        self.address(1)
    }

    /// Host number `host`'s address in the subnet.
    fn address(&self, host: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.subnet.network().octets();
        Ipv4Addr::new(a, b, c, host)
    }

    /// The bridge's name (also the nftables table's).
    pub fn bridge(&self) -> &str {
        &self.name
    }

    /// The resolvers agents may ask, written into their `/etc/resolv.conf`.
    pub fn nameservers(&self) -> &[Ipv4Addr] {
        &self.nameservers
    }

    /// Creates the bridge with the gateway address (or keeps the one a previous server left), and removes the
    /// namespaces of agents that server left behind.
    pub async fn bring_up(&self) -> Result<(), RuntimeError> {
        let bridge = self.bridge();
        if !Path::new("/sys/class/net").join(bridge).exists() {
            run("ip", &["link", "add", bridge, "type", "bridge"]).await?;
        }
        let gateway = format!("{}/24", self.gateway());
        run("ip", &["addr", "replace", &gateway, "dev", bridge]).await?;
        run("ip", &["link", "set", bridge, "up"]).await?;
        self.remove_namespaces().await
    }

    /// Installs (or replaces, atomically) the server's nftables table: agents reach this machine only at
    /// `gateway:proxy_port`, nothing private, and the internet only for DNS and HTTPS; `proxy-only` agents
    /// (in the table's `proxy_only` set) nothing beyond the proxies.
    pub async fn install_rules(&self, proxy_port: u16) -> Result<(), RuntimeError> {
        let rules = self.ruleset(proxy_port);
        run_with_input("nft", &["-f", "-"], &rules).await
    }

    fn ruleset(&self, proxy_port: u16) -> String {
        let (table, bridge, gateway, subnet) = (&self.name, &self.name, self.gateway(), self.subnet);
        let forbidden = FORBIDDEN_RANGES.join(", ");
        let resolvers = if self.nameservers.is_empty() {
            String::new()
        } else {
            let list = self
                .nameservers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>();
            format!(
                "        iifname \"{bridge}\" ip daddr {{ {} }} meta l4proto {{ tcp, udp }} th dport 53 accept\n",
                list.join(", ")
            )
        };
        // The first two lines make the replacement atomic whether or not the table exists.
        format!(
            "table inet {table} {{}}
delete table inet {table}
table inet {table} {{
    set proxy_only {{
        type ipv4_addr
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname \"{bridge}\" ct state established,related accept
        iifname \"{bridge}\" ip daddr {gateway} tcp dport {proxy_port} accept
        iifname \"{bridge}\" reject with icmpx type admin-prohibited
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        oifname \"{bridge}\" ct state established,related accept
        oifname \"{bridge}\" drop
        iifname \"{bridge}\" meta nfproto ipv6 reject with icmpx type admin-prohibited
        iifname \"{bridge}\" ip saddr @proxy_only reject with icmpx type admin-prohibited
{resolvers}        iifname \"{bridge}\" ip daddr {{ {forbidden} }} reject with icmpx type admin-prohibited
        iifname \"{bridge}\" meta l4proto {{ tcp, udp }} th dport 53 accept
        iifname \"{bridge}\" tcp dport 443 accept
        iifname \"{bridge}\" reject with icmpx type admin-prohibited
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {subnet} oifname != \"{bridge}\" masquerade
    }}
}}
"
        )
    }

    /// Gives `run_id` a namespace with a veth pair on the bridge (a port isolated from the other agents'),
    /// an address, and a default route through the gateway; returns the namespace's path, which runsc joins.
    pub async fn attach(&self, run_id: &str, proxy_only: bool) -> Result<PathBuf, RuntimeError> {
        let host = self.allocate(run_id)?;
        let attached = self.set_up(run_id, host, proxy_only).await;
        if attached.is_err() {
            self.detach(run_id).await;
        }
        attached
    }

    async fn set_up(&self, run_id: &str, host: u8, proxy_only: bool) -> Result<PathBuf, RuntimeError> {
        let namespace = self.namespace(run_id);
        let veth = format!("{}v{host}", self.name);
        let address = self.address(host);
        run("ip", &["netns", "add", &namespace]).await?;
        run(
            "ip",
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &namespace,
            ],
        )
        .await?;
        run("ip", &["link", "set", &veth, "master", &self.name]).await?;
        run(
            "ip",
            &[
                "link",
                "set",
                "dev",
                &veth,
                "type",
                "bridge_slave",
                "isolated",
                "on",
            ],
        )
        .await?;
        run("ip", &["link", "set", &veth, "up"]).await?;
        let (inside, cidr, gateway) = (
            namespace.as_str(),
            format!("{address}/24"),
            self.gateway().to_string(),
        );
        run("ip", &["-n", inside, "link", "set", "lo", "up"]).await?;
        run("ip", &["-n", inside, "addr", "add", &cidr, "dev", "eth0"]).await?;
        run("ip", &["-n", inside, "link", "set", "eth0", "up"]).await?;
        run("ip", &["-n", inside, "route", "add", "default", "via", &gateway]).await?;
        if proxy_only {
            let element = format!("{{ {address} }}");
            run(
                "nft",
                &["add", "element", "inet", &self.name, "proxy_only", &element],
            )
            .await?;
        }
        Ok(Path::new("/run/netns").join(&namespace))
    }

    /// Removes `run_id`'s namespace (which takes its veth pair) and its place in the `proxy_only` set.
    pub async fn detach(&self, run_id: &str) {
        let host = self
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(run_id);
        let Some(host) = host else { return };
        let element = format!("{{ {} }}", self.address(host));
        // Absent when the agent was not proxy-only: nothing to remove.
        run_quietly(
            "nft",
            &["delete", "element", "inet", &self.name, "proxy_only", &element],
        )
        .await;
        run_quietly("ip", &["netns", "delete", &self.namespace(run_id)]).await;
    }

    /// Removes the namespaces of this network's agents, the table and the bridge.
    pub async fn tear_down(&self) {
        // Every agent has ended by now; their namespaces go whether or not this server made them.
        let _ = self.remove_namespaces().await;
        run_quietly("nft", &["delete", "table", "inet", &self.name]).await;
        run_quietly("ip", &["link", "delete", &self.name]).await;
    }

    /// The name of `run_id`'s network namespace.
    pub fn namespace(&self, run_id: &str) -> String {
        format!("{}-{run_id}", self.name)
    }

    async fn remove_namespaces(&self) -> Result<(), RuntimeError> {
        let prefix = format!("{}-", self.name);
        let entries = match std::fs::read_dir("/run/netns") {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(RuntimeError::Failed(format!("cannot list /run/netns: {err}"))),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                run_quietly("ip", &["netns", "delete", &name]).await;
            }
        }
        Ok(())
    }

    fn allocate(&self, run_id: &str) -> Result<u8, RuntimeError> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let free = (2..=254u8).find(|host| !hosts.values().any(|used| used == host));
        let host = free.ok_or_else(|| {
            RuntimeError::Failed(format!("the sandbox subnet {} has no free address", self.subnet))
        })?;
        hosts.insert(run_id.to_owned(), host);
        Ok(host)
    }
}

/// The host's IPv4 resolvers that an agent can reach (not loopback ones, such as systemd-resolved's stub:
/// then the ones it forwards to).
fn host_nameservers() -> Vec<Ipv4Addr> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|text| parse_nameservers(&text))
            .unwrap_or_default()
    };
    let direct = read("/etc/resolv.conf");
    if direct.is_empty() {
        read("/run/systemd/resolve/resolv.conf")
    } else {
        direct
    }
}

fn parse_nameservers(resolv_conf: &str) -> Vec<Ipv4Addr> {
    resolv_conf
        .lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<Ipv4Addr>().ok())
        .filter(|address| !address.is_loopback() && !address.is_unspecified())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_subnet_and_fit_an_interface_name() {
        let network = SandboxNetwork::new("10.213.7.0/24".parse().unwrap()).unwrap();
        assert_eq!(network.bridge(), "af0ad507");
        assert_eq!(network.gateway(), Ipv4Addr::new(10, 213, 7, 1));
        assert!(format!("{}v254", network.bridge()).len() <= 15);
        assert!(SandboxNetwork::new("10.213.0.0/16".parse().unwrap()).is_err());
    }

    #[test]
    fn resolvers_on_loopback_are_not_the_agents() {
        let conf = "# a comment\nnameserver 127.0.0.53\nnameserver 185.12.64.1\nnameserver 2a01:4ff:ff00::add:1\noptions edns0\n";
        assert_eq!(parse_nameservers(conf), vec![Ipv4Addr::new(185, 12, 64, 1)]);
    }

    #[test]
    fn the_rules_let_agents_reach_the_proxies_dns_and_https_only() {
        let network = SandboxNetwork::new("10.213.7.0/24".parse().unwrap()).unwrap();
        let rules = network.ruleset(8081);
        assert!(
            rules.contains("ip daddr 10.213.7.1 tcp dport 8081 accept"),
            "{rules}"
        );
        assert!(rules.contains("169.254.0.0/16") && rules.contains("100.64.0.0/10"));
        assert!(rules.contains("tcp dport 443 accept"));
        assert!(rules.contains("ip saddr 10.213.7.0/24 oifname != \"af0ad507\" masquerade"));
    }

    #[test]
    fn addresses_are_handed_out_and_taken_back() {
        let network = SandboxNetwork::new("10.213.7.0/24".parse().unwrap()).unwrap();
        assert_eq!(network.allocate("a").unwrap(), 2);
        assert_eq!(network.allocate("b").unwrap(), 3);
        network.hosts.lock().unwrap().remove("a");
        assert_eq!(network.allocate("c").unwrap(), 2);
    }
}

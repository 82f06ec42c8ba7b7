//! `infra/cluster.yaml` against hetzner-k3s v2.6's configuration schema (its `src/configuration` models):
//! no key the tool does not know, `config_format_version: "1"`, an odd number of masters with one location
//! each, current instance types and locations, sane autoscaling; and this project's own rules (no token in
//! the file, flannel with explicit encryption, the gVisor node setup embedded verbatim).

#![allow(
    dead_code,
    reason = "the schema names every key hetzner-k3s knows, so that unknown ones are refused; tests read only some"
)]

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::harness::repo;

/// Hetzner Cloud server types on sale (2026), and `external` for dedicated nodes (workers only). hetzner-k3s
/// checks the live list; this keeps the file from naming retired types (CX22/CX32 ended 2026-01-01).
const INSTANCE_TYPES: [&str; 19] = [
    "cx23", "cx33", "cx43", "cx53", "cpx12", "cpx22", "cpx32", "cpx42", "cpx52", "cpx62", "cax11", "cax21",
    "cax31", "cax41", "ccx13", "ccx23", "ccx33", "ccx43", "ccx53",
];

/// Hetzner Cloud locations.
const LOCATIONS: [&str; 6] = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    hetzner_token: Option<String>,
    cluster_name: String,
    kubeconfig_path: String,
    k3s_version: String,
    config_format_version: Option<String>,
    api_server_hostname: Option<String>,
    schedule_workloads_on_masters: Option<bool>,
    masters_pool: NodePool,
    #[serde(default)]
    worker_node_pools: Vec<NodePool>,
    additional_packages: Option<Vec<String>>,
    additional_pre_k3s_commands: Option<Vec<String>>,
    additional_post_k3s_commands: Option<Vec<String>>,
    kube_api_server_args: Option<Vec<String>>,
    kube_scheduler_args: Option<Vec<String>>,
    kube_controller_manager_args: Option<Vec<String>>,
    kube_cloud_controller_manager_args: Option<Vec<String>>,
    cluster_autoscaler_args: Option<Vec<String>>,
    kubelet_args: Option<Vec<String>>,
    kube_proxy_args: Option<Vec<String>>,
    image: Option<String>,
    autoscaling_image: Option<String>,
    snapshot_os: Option<String>,
    networking: Option<Networking>,
    datastore: Option<Datastore>,
    addons: Option<Addons>,
    include_instance_type_in_instance_name: Option<bool>,
    protect_against_deletion: Option<bool>,
    create_load_balancer_for_the_kubernetes_api: Option<bool>,
    k3s_upgrade_concurrency: Option<u32>,
    grow_root_partition_automatically: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodePool {
    name: Option<String>,
    instance_type: String,
    image: Option<String>,
    #[serde(default = "one")]
    instance_count: u32,
    /// Masters only.
    locations: Option<Vec<String>>,
    /// Workers only.
    location: Option<String>,
    #[serde(default)]
    labels: Vec<KeyValue>,
    #[serde(default)]
    taints: Vec<KeyValue>,
    autoscaling: Option<Autoscaling>,
    additional_packages: Option<Vec<String>>,
    additional_pre_k3s_commands: Option<Vec<String>>,
    additional_post_k3s_commands: Option<Vec<String>>,
    include_cluster_name_as_prefix: Option<bool>,
    grow_root_partition_automatically: Option<bool>,
    legacy_instance_type: Option<String>,
    external: Option<serde_json::Value>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyValue {
    key: String,
    value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Autoscaling {
    enabled: bool,
    min_instances: u32,
    max_instances: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Networking {
    ssh: Option<Ssh>,
    allowed_networks: Option<AllowedNetworks>,
    public_network: Option<PublicNetwork>,
    private_network: Option<PrivateNetwork>,
    cni: Option<Cni>,
    node_port_firewall_enabled: Option<bool>,
    node_port_range: Option<String>,
    cluster_cidr: Option<String>,
    service_cidr: Option<String>,
    cluster_dns: Option<String>,
    cluster_domain: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ssh {
    port: Option<u16>,
    use_agent: Option<bool>,
    use_private_ip: Option<bool>,
    public_key_path: Option<String>,
    private_key_path: Option<String>,
    existing_ssh_key_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowedNetworks {
    #[serde(default)]
    ssh: Vec<String>,
    #[serde(default)]
    api: Vec<String>,
    custom_firewall_rules: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicNetwork {
    ipv4: Option<bool>,
    ipv6: Option<bool>,
    hetzner_ips_query_server_url: Option<String>,
    use_local_firewall: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivateNetwork {
    enabled: Option<bool>,
    subnet: Option<String>,
    existing_network_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cni {
    enabled: Option<bool>,
    mode: Option<String>,
    encryption: Option<bool>,
    cilium: Option<serde_json::Value>,
    flannel: Option<Flannel>,
    cilium_egress_gateway: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Flannel {
    disable_kube_proxy: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Datastore {
    mode: Option<String>,
    external_datastore_endpoint: Option<String>,
    etcd: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Addons {
    csi_driver: Option<Addon>,
    cloud_controller_manager: Option<Addon>,
    system_upgrade_controller: Option<Addon>,
    cluster_autoscaler: Option<Addon>,
    traefik: Option<Addon>,
    servicelb: Option<Addon>,
    metrics_server: Option<Addon>,
    local_path_storage_class: Option<Addon>,
    embedded_registry_mirror: Option<Addon>,
}

/// One add-on: `enabled` and the settings some add-ons take.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Addon {
    enabled: Option<bool>,
    manifest_url: Option<String>,
    deployment_manifest_url: Option<String>,
    crd_manifest_url: Option<String>,
    local_manifest_path: Option<String>,
    container_image_tag: Option<String>,
    scan_interval: Option<String>,
    scale_down_delay_after_add: Option<String>,
    scale_down_delay_after_delete: Option<String>,
    scale_down_delay_after_failure: Option<String>,
    max_node_provision_time: Option<String>,
    private_registry_config: Option<String>,
}

impl ClusterConfig {
    /// `infra/cluster.yaml`, parsed against the schema.
    pub fn load() -> ClusterConfig {
        ClusterConfig::parse(
            &std::fs::read_to_string(repo().join("infra/cluster.yaml")).expect("read infra/cluster.yaml"),
        )
        .unwrap_or_else(|err| panic!("infra/cluster.yaml: {err}"))
    }

    fn parse(text: &str) -> Result<ClusterConfig, String> {
        let config: ClusterConfig = serde_norway::from_str(text).map_err(|err| err.to_string())?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems.join("; "))
        }
    }

    /// `(key, value)` of every label a worker pool puts on its nodes.
    pub fn worker_labels(&self) -> BTreeSet<(String, String)> {
        self.worker_node_pools
            .iter()
            .flat_map(|pool| pool.labels.iter())
            .map(|label| (label.key.clone(), label.value.clone()))
            .collect()
    }

    /// The pod network (`networking.cluster_cidr`).
    pub fn cluster_cidr(&self) -> Option<&str> {
        self.networking.as_ref()?.cluster_cidr.as_deref()
    }

    /// What hetzner-k3s would refuse.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.config_format_version.as_deref() != Some("1") {
            problems.push("config_format_version must be \"1\"".to_owned());
        }
        if self.cluster_name.is_empty() || self.kubeconfig_path.is_empty() {
            problems.push("cluster_name and kubeconfig_path are required".to_owned());
        }
        let version = self
            .k3s_version
            .strip_prefix('v')
            .and_then(|rest| rest.split_once("+k3s"));
        if !version.is_some_and(|(release, build)| {
            release.split('.').count() == 3
                && release.split('.').all(|part| part.parse::<u32>().is_ok())
                && build.parse::<u32>().is_ok()
        }) {
            problems.push(format!(
                "k3s_version {} is not a k3s release tag",
                self.k3s_version
            ));
        }
        let masters = &self.masters_pool;
        if masters.instance_count.is_multiple_of(2) {
            problems.push(format!(
                "{} masters: the count must be odd",
                masters.instance_count
            ));
        }
        let locations = masters.locations.clone().unwrap_or_else(|| vec!["fsn1".into()]);
        if locations.len() != masters.instance_count as usize {
            problems.push(format!(
                "{} masters in {} locations: one location per master",
                masters.instance_count,
                locations.len()
            ));
        }
        if masters.location.is_some() || masters.autoscaling.is_some() || masters.external.is_some() {
            problems.push("masters take `locations`, and neither autoscaling nor external nodes".to_owned());
        }
        problems.extend(
            locations
                .iter()
                .filter(|location| !LOCATIONS.contains(&location.as_str()))
                .map(|location| format!("unknown location {location}")),
        );
        problems.extend(instance_type_problem(&masters.instance_type, false));
        let mut names = BTreeSet::new();
        for pool in &self.worker_node_pools {
            let name = pool.name.clone().unwrap_or_default();
            if name.is_empty() || !names.insert(name.clone()) {
                problems.push(format!("worker pool names must be present and unique ({name:?})"));
            }
            if pool.locations.is_some() {
                problems.push(format!("worker pool {name} takes `location`, not `locations`"));
            }
            if let Some(location) = &pool.location
                && !LOCATIONS.contains(&location.as_str())
            {
                problems.push(format!("worker pool {name}: unknown location {location}"));
            }
            problems.extend(instance_type_problem(&pool.instance_type, true));
            if let Some(scaling) = &pool.autoscaling
                && scaling.enabled
                && (scaling.min_instances > scaling.max_instances || scaling.max_instances == 0)
            {
                problems.push(format!(
                    "worker pool {name}: autoscaling needs 0 ≤ min ≤ max, max ≥ 1"
                ));
            }
        }
        problems
    }
}

fn instance_type_problem(instance_type: &str, worker: bool) -> Option<String> {
    let known = INSTANCE_TYPES.contains(&instance_type) || (worker && instance_type == "external");
    (!known).then(|| format!("instance type {instance_type} is not one Hetzner sells"))
}

#[test]
fn the_cluster_config_follows_the_schema_and_this_projects_rules() {
    let config = ClusterConfig::load();
    assert!(
        config.hetzner_token.is_none(),
        "the token comes from HCLOUD_TOKEN, never the file"
    );
    assert_eq!(config.masters_pool.instance_type, "cx23");
    let workers: u32 = config
        .worker_node_pools
        .iter()
        .filter(|pool| pool.autoscaling.as_ref().is_none_or(|scaling| !scaling.enabled))
        .map(|pool| pool.instance_count)
        .sum();
    assert_eq!(workers, 2, "two static workers by default");
    let networking = config.networking.clone().unwrap_or_default();
    let cni = networking.cni.clone().expect("networking.cni is explicit");
    assert_eq!(
        cni.mode.as_deref(),
        Some("flannel"),
        "flannel keeps k3s's NetworkPolicy controller on"
    );
    assert!(
        cni.encryption.is_some(),
        "cni.encryption is explicit (docs and code disagree on the default)"
    );
    let private = networking.private_network.clone().expect("a private network");
    assert_eq!(private.enabled, Some(true));
    let open = |cidrs: &[String]| cidrs.iter().any(|cidr| cidr == "0.0.0.0/0" || cidr == "::/0");
    let allowed = networking.allowed_networks.expect("allowed_networks is explicit");
    assert!(
        !open(&allowed.api) && !open(&allowed.ssh),
        "the API and SSH are not open to everyone"
    );
    let addons = config.addons.clone().expect("addons");
    assert!(
        addons
            .embedded_registry_mirror
            .and_then(|addon| addon.enabled)
            .is_some(),
        "embedded_registry_mirror is explicit (docs and code disagree on the default)"
    );
    assert_eq!(
        networking.node_port_firewall_enabled,
        Some(false),
        "hetzner-k3s opens the NodePort range to the world unless told not to; nothing here uses a NodePort"
    );
    assert!(
        config
            .worker_node_pools
            .iter()
            .all(|pool| pool.autoscaling.as_ref().is_none_or(|scaling| !scaling.enabled)),
        "no autoscaled pool by default: its nodes' user-data would hold the k3s server token"
    );
    assert_eq!(
        addons.cluster_autoscaler.and_then(|addon| addon.enabled),
        Some(false),
        "the autoscaler only with the opt-in burst pool"
    );
}

/// Runs `infra/cluster-config.sh` on a copy of `infra/` with `inputs`; returns whether it succeeded, what it
/// printed, and the configuration it wrote (parsed against the schema), if any.
fn generate(inputs: &[(&str, &str)]) -> (bool, String, Option<Result<ClusterConfig, String>>) {
    let work = tempfile::tempdir().expect("temp dir");
    let infra = work.path().join("infra");
    for file in [
        "cluster-config.sh",
        "cluster.yaml",
        "lib.sh",
        "pools/agents-burst.yaml",
    ] {
        let target = infra.join(file);
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
        std::fs::copy(repo().join("infra").join(file), target).expect("copy");
    }
    let output = std::process::Command::new("bash")
        .arg(infra.join("cluster-config.sh"))
        .current_dir(work.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", work.path())
        .envs(inputs.iter().copied())
        .output()
        .expect("run infra/cluster-config.sh");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let written = std::fs::read_to_string(infra.join("site/cluster.yaml"))
        .ok()
        .map(|text| ClusterConfig::parse(&text));
    (output.status.success(), printed, written)
}

#[test]
fn the_site_config_carries_the_owners_addresses_and_key_and_the_burst_pool_only_when_asked() {
    let (ok, printed, written) = generate(&[
        ("AGENTFARM_ADMIN_CIDRS", "198.51.100.4/32,2001:db8::4/128"),
        ("AGENTFARM_SSH_KEY", "~/.ssh/agentfarm"),
        ("AGENTFARM_SSH_USE_AGENT", "1"),
    ]);
    assert!(ok, "cluster-config.sh failed:\n{printed}");
    let config = written
        .expect("infra/site/cluster.yaml written")
        .unwrap_or_else(|err| panic!("the site config breaks the schema: {err}"));
    let networking = config.networking.clone().unwrap_or_default();
    let allowed = networking.allowed_networks.clone().expect("allowed_networks");
    let owner = ["198.51.100.4/32".to_owned(), "2001:db8::4/128".to_owned()];
    assert_eq!(allowed.ssh, owner, "SSH from the owner's addresses only");
    assert_eq!(allowed.api, owner, "the API from the owner's addresses only");
    let ssh = networking.ssh.clone().expect("networking.ssh");
    assert_eq!(ssh.private_key_path.as_deref(), Some("~/.ssh/agentfarm"));
    assert_eq!(ssh.public_key_path.as_deref(), Some("~/.ssh/agentfarm.pub"));
    assert_eq!(ssh.use_agent, Some(true));
    assert_eq!(networking.node_port_firewall_enabled, Some(false));
    assert!(
        config
            .worker_node_pools
            .iter()
            .all(|pool| pool.autoscaling.is_none()),
        "no burst pool unless asked"
    );
    let script =
        std::fs::read_to_string(repo().join("infra/node/install-gvisor.sh")).expect("read the script");
    assert!(config.additional_post_k3s_commands.as_deref() == Some(&[script.clone()][..]));

    assert_eq!(config.masters_pool.instance_type, "cx23");
    assert!(
        config
            .worker_node_pools
            .iter()
            .all(|pool| pool.instance_type == "cx33")
    );

    let (ok, printed, written) = generate(&[
        ("AGENTFARM_ADMIN_CIDRS", "198.51.100.4/32"),
        ("AGENTFARM_BURST_POOL", "1"),
        ("AGENTFARM_EXISTING_SSH_KEY_NAME", "laptop"),
        ("AGENTFARM_WORKER_TYPE", "cpx32"),
    ]);
    assert!(ok, "cluster-config.sh failed:\n{printed}");
    let config = written
        .expect("infra/site/cluster.yaml written")
        .unwrap_or_else(|err| panic!("the site config with the burst pool breaks the schema: {err}"));
    let burst: Vec<&NodePool> = config
        .worker_node_pools
        .iter()
        .filter(|pool| pool.autoscaling.as_ref().is_some_and(|scaling| scaling.enabled))
        .collect();
    assert_eq!(
        burst.len(),
        1,
        "the burst pool, once: {:?}",
        config.worker_node_pools
    );
    assert!(
        burst[0]
            .labels
            .iter()
            .any(|label| label.key == "agentfarm.dev/role" && label.value == "agents"),
        "burst nodes are agent nodes"
    );
    assert!(
        burst[0].additional_post_k3s_commands.is_none(),
        "the burst pool keeps the root-level gVisor setup"
    );
    assert!(
        config
            .worker_node_pools
            .iter()
            .all(|pool| pool.instance_type == "cpx32"),
        "every worker pool, the burst pool included, takes the chosen type"
    );
    assert_eq!(config.masters_pool.instance_type, "cx23");
    let addons = config.addons.clone().expect("addons");
    assert_eq!(
        addons.cluster_autoscaler.and_then(|addon| addon.enabled),
        Some(true)
    );
    let ssh = config
        .networking
        .clone()
        .unwrap_or_default()
        .ssh
        .expect("networking.ssh");
    assert_eq!(ssh.existing_ssh_key_name.as_deref(), Some("laptop"));
    assert!(config.additional_post_k3s_commands.as_deref() == Some(&[script][..]));

    for (inputs, expected) in [
        (vec![], "AGENTFARM_ADMIN_CIDRS is not set"),
        (vec![("AGENTFARM_ADMIN_CIDRS", "0.0.0.0/0")], "to everyone"),
        (
            vec![("AGENTFARM_ADMIN_CIDRS", "198.51.100.4/32,::/0")],
            "to everyone",
        ),
        (vec![("AGENTFARM_ADMIN_CIDRS", "198.51.100.4")], "prefix length"),
        (
            vec![
                ("AGENTFARM_ADMIN_CIDRS", "198.51.100.4/32"),
                ("AGENTFARM_BURST_POOL", "yes"),
            ],
            "AGENTFARM_BURST_POOL",
        ),
        (
            vec![
                ("AGENTFARM_ADMIN_CIDRS", "198.51.100.4/32"),
                ("AGENTFARM_SSH_KEY", "~/my key"),
            ],
            "AGENTFARM_SSH_KEY",
        ),
        (
            vec![
                ("AGENTFARM_ADMIN_CIDRS", "198.51.100.4/32"),
                ("AGENTFARM_SERVER_TYPE", "big-one"),
            ],
            "AGENTFARM_SERVER_TYPE",
        ),
    ] {
        let (ok, printed, written) = generate(&inputs);
        assert!(!ok, "{inputs:?} was accepted:\n{printed}");
        assert!(
            printed.contains(expected),
            "{inputs:?}: expected `{expected}` in:\n{printed}"
        );
        assert!(written.is_none(), "{inputs:?}: nothing is written");
    }
}

/// Where `infra/node/install-gvisor.sh` is embedded: the file, the lines that open the block, and the
/// block's indentation.
const EMBEDDINGS: [(&str, &str, usize); 2] = [
    ("infra/cluster.yaml", "additional_post_k3s_commands:\n  - |\n", 4),
    (
        "infra/pools/kvm-robot.yaml",
        "    additional_post_k3s_commands:\n      - |\n",
        8,
    ),
];

/// `AGENTFARM_UPDATE_GOLDEN=1` copies the script into `file`: the block after `opener`, indented by
/// `indent` spaces, up to the next line indented less.
fn embed_script(script: &str, file: &str, opener: &str, indent: usize) {
    let path = repo().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {file}: {err}"));
    let start = text
        .find(opener)
        .unwrap_or_else(|| panic!("{file}: the embedded script's opening lines"))
        + opener.len();
    let rest = &text[start..];
    let margin = " ".repeat(indent);
    let end = rest
        .split_inclusive('\n')
        .take_while(|line| line.starts_with(&margin) || line.trim().is_empty())
        .map(str::len)
        .sum::<usize>();
    let block: String = script
        .split_inclusive('\n')
        .map(|line| {
            if line.trim().is_empty() {
                "\n".to_owned()
            } else {
                format!("{margin}{line}")
            }
        })
        .collect();
    let after = &rest[end..];
    let gap = if after.is_empty() { "" } else { "\n" };
    std::fs::write(&path, format!("{}{block}{gap}{after}", &text[..start]))
        .unwrap_or_else(|err| panic!("write {file}: {err}"));
}

/// The KVM pool of `infra/pools/kvm-robot.yaml`, parsed as hetzner-k3s would read it in a config.
fn kvm_pool() -> NodePool {
    let text = std::fs::read_to_string(repo().join("infra/pools/kvm-robot.yaml")).expect("read the KVM pool");
    let mut pools: Vec<NodePool> =
        serde_norway::from_str(&text).unwrap_or_else(|err| panic!("infra/pools/kvm-robot.yaml: {err}"));
    assert_eq!(pools.len(), 1);
    pools.remove(0)
}

#[test]
fn every_node_installs_gvisor_from_the_script_verbatim() {
    let script =
        std::fs::read_to_string(repo().join("infra/node/install-gvisor.sh")).expect("read the script");
    if std::env::var_os("AGENTFARM_UPDATE_GOLDEN").is_some() {
        for (file, opener, indent) in EMBEDDINGS {
            embed_script(&script, file, opener, indent);
        }
    }
    let config = ClusterConfig::load();
    assert!(
        config.additional_post_k3s_commands.as_deref() == Some(&[script.clone()][..]),
        "infra/cluster.yaml's additional_post_k3s_commands must be infra/node/install-gvisor.sh, byte for byte \
         (AGENTFARM_UPDATE_GOLDEN=1 copies it)"
    );
    for pool in std::iter::once(&config.masters_pool).chain(&config.worker_node_pools) {
        assert!(
            pool.additional_post_k3s_commands.is_none(),
            "pool {:?} would replace the root post commands (pool values override, not merge)",
            pool.name
        );
    }
    assert!(
        kvm_pool().additional_post_k3s_commands.as_deref() == Some(&[script][..]),
        "infra/pools/kvm-robot.yaml's additional_post_k3s_commands must be install-gvisor.sh, byte for byte \
         (AGENTFARM_UPDATE_GOLDEN=1 copies it)"
    );
}

/// hetzner-k3s gives an external (Robot) pool neither the root-level packages nor the root-level post-k3s
/// commands: a dedicated KVM node would get no runsc, no nfs-common and no metadata rule unless its pool
/// names them itself. It must also carry the labels that make it an agent node and a KVM node.
#[test]
fn a_dedicated_kvm_node_brings_its_own_packages_and_node_setup() {
    let config = ClusterConfig::load();
    let pool = kvm_pool();
    assert_eq!(pool.instance_type, "external");
    assert_eq!(
        pool.external
            .as_ref()
            .and_then(|external| external["provider"].as_str()),
        Some("robot")
    );
    let root_packages = config.additional_packages.unwrap_or_default();
    assert!(!root_packages.is_empty(), "the root level installs nfs-common");
    assert_eq!(
        pool.additional_packages.as_ref(),
        Some(&root_packages),
        "the pool repeats the root-level packages"
    );
    assert!(
        pool.additional_post_k3s_commands.is_some(),
        "the pool runs install-gvisor.sh itself"
    );
    let labels: BTreeSet<(String, String)> = pool
        .labels
        .iter()
        .map(|label| (label.key.clone(), label.value.clone()))
        .collect();
    for wanted in [("agentfarm.dev/role", "agents"), ("agentfarm.dev/kvm", "true")] {
        assert!(
            labels.contains(&(wanted.0.to_owned(), wanted.1.to_owned())),
            "{wanted:?} in {labels:?}"
        );
    }
    // A site config with the pool pasted in still follows the schema.
    let mut text = std::fs::read_to_string(repo().join("infra/cluster.yaml")).expect("read cluster.yaml");
    let marker = "  # agentfarm: opt-in worker pools go here";
    let marker_at = text.find(marker).expect("the pools marker");
    let at = marker_at + text[marker_at..].find('\n').expect("a line end") + 1;
    text.insert_str(
        at,
        &std::fs::read_to_string(repo().join("infra/pools/kvm-robot.yaml")).expect("read the KVM pool"),
    );
    ClusterConfig::parse(&text).unwrap_or_else(|err| panic!("with the KVM pool: {err}"));
}

#[test]
fn what_hetzner_k3s_refuses_is_refused() {
    let text = std::fs::read_to_string(repo().join("infra/cluster.yaml")).expect("read infra/cluster.yaml");
    let mut original: serde_json::Value = serde_norway::from_str(&text).expect("YAML");
    let refused = |change: &dyn Fn(&mut serde_json::Value), expected: &str| {
        let mut changed = original.clone();
        change(&mut changed);
        let err = ClusterConfig::parse(&serde_norway::to_string(&changed).unwrap()).unwrap_err();
        assert!(err.contains(expected), "expected `{expected}` in: {err}");
    };
    refused(
        &|config| config["config_format_version"] = "2".into(),
        "config_format_version",
    );
    refused(
        &|config| {
            config.as_object_mut().unwrap().remove("config_format_version");
        },
        "config_format_version",
    );
    refused(
        &|config| config["worker_node_pool"] = serde_json::json!([]),
        "unknown field `worker_node_pool`",
    );
    refused(
        &|config| {
            config["masters_pool"]["instance_count"] = 2.into();
            config["masters_pool"]["locations"] = serde_json::json!(["fsn1", "nbg1"]);
        },
        "odd",
    );
    refused(
        &|config| {
            config["masters_pool"]["instance_count"] = 3.into();
            config["masters_pool"]["locations"] = serde_json::json!(["fsn1"]);
        },
        "one location per master",
    );
    refused(
        &|config| config["masters_pool"]["instance_type"] = "cx22".into(),
        "cx22",
    );
    refused(
        &|config| config["worker_node_pools"][0]["instance_type"] = "cx31".into(),
        "cx31",
    );
    refused(&|config| config["k3s_version"] = "latest".into(), "k3s_version");
    original["masters_pool"]["locations"] = serde_json::json!(["fra1"]);
    assert!(
        ClusterConfig::parse(&serde_norway::to_string(&original).unwrap())
            .unwrap_err()
            .contains("fra1")
    );
}

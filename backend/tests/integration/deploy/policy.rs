//! Policy on the rendered manifests: pods only where `restricted` is enforced, RBAC exactly what `doctor`
//! checks (never list/watch on Secrets), agents without ingress and without egress to private ranges, the
//! control plane reachable only from the Tailscale proxy (on the app's port), agents (on the proxies') and
//! monitoring (on the metrics port), the Ingress never in front of `/metrics`, no Secret data anywhere in the
//! repository.

use std::collections::BTreeSet;

use agentfarm::doctor;
use agentfarm_shared::config::{EGRESS_LABEL, Egress};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, ServiceBackendPort,
};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::objects::{self, Object, every_rendering_parsed};
use super::render::{every_rendering, yaml_documents, yaml_files};
use super::restricted;
use super::settings::deployed_settings;
use crate::harness::repo;

/// Namespaces that may run pods outside `restricted`, and why.
const NOT_RESTRICTED: [(&str, &str); 1] = [(
    "agentfarm-nfs",
    "the opt-in NFS server needs a privileged container",
)];

/// Ranges agents must never reach: the private networks (nodes, API server, kubelets, pods, services), the
/// tailnet and link-local (the metadata service).
const FORBIDDEN_EGRESS: [&str; 5] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
];

#[test]
fn every_rendering_and_manifest_file_parses_strictly() {
    let renderings = every_rendering();
    assert!(
        renderings
            .iter()
            .any(|rendering| rendering.name == "overlays/hetzner")
    );
    for (name, objects) in every_rendering_parsed() {
        assert!(
            objects
                .iter()
                .any(|object| matches!(object, Object::Deployment(_))),
            "{name} renders no Deployment"
        );
    }
    // Files applied by hand (example Secrets, one-time pods) parse the same way; files of kustomizations
    // are checked as rendered above, and documents without a kind (Helm values, the cluster config) are not
    // Kubernetes objects.
    let mut checked = 0;
    let applied_by_hand = yaml_files("manifests")
        .into_iter()
        .chain(yaml_files("infra"))
        .filter(|path| {
            !path
                .ancestors()
                .skip(1)
                .take_while(|dir| *dir != repo())
                .any(|dir| dir.join("kustomization.yaml").exists())
        });
    for path in applied_by_hand {
        let text = std::fs::read_to_string(&path).expect("read manifest");
        let documents: Vec<_> = yaml_documents(&text)
            .into_iter()
            .filter(|document| document["kind"].is_string() && document["apiVersion"].is_string())
            .filter(|document| {
                !document["apiVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("kustomize.config.k8s.io/")
            })
            .collect();
        checked += objects::parse_all(&path.display().to_string(), &documents).len();
    }
    assert!(
        checked >= 4,
        "only {checked} objects applied by hand in manifests/ and infra/"
    );
}

#[test]
fn pods_run_only_in_namespaces_that_enforce_restricted() {
    for (name, objects) in every_rendering_parsed() {
        let settings = deployed_settings(name, objects);
        let enforced: BTreeSet<&str> = objects
            .iter()
            .filter_map(|object| match object {
                Object::Namespace(namespace) => {
                    let labels = namespace.metadata.labels.as_ref()?;
                    (labels
                        .get("pod-security.kubernetes.io/enforce")
                        .map(String::as_str)
                        == Some("restricted"))
                    .then(|| object.name())
                }
                _ => None,
            })
            .collect();
        assert!(
            enforced.contains(settings.kube.namespace.as_str()),
            "{name}: the agents' namespace {} must be rendered with Pod Security `restricted` enforced",
            settings.kube.namespace
        );
        for object in objects {
            let Some(spec) = object.pod_spec() else { continue };
            let namespace = object.namespace();
            if NOT_RESTRICTED.iter().any(|(exempt, _)| *exempt == namespace) {
                continue;
            }
            assert!(
                enforced.contains(namespace),
                "{name}: {} runs in a namespace that does not enforce `restricted`",
                object.describe()
            );
            let problems = restricted::violations(spec);
            assert!(problems.is_empty(), "{name}: {}: {problems:?}", object.describe());
        }
    }
}

/// One thing a role lets a subject do, in `doctor::Permission` terms: where (`""`: cluster-wide), what, and on
/// which object (`""`: any).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    namespace: String,
    verb: String,
    group: String,
    resource: String,
    name: String,
}

impl Grant {
    /// What `permission` needs, its namespace resolved (the agents' unless it names another).
    fn needed(permission: doctor::Permission<'_>, agents: &str) -> Grant {
        let resource = if permission.subresource.is_empty() {
            permission.resource.to_owned()
        } else {
            format!("{}/{}", permission.resource, permission.subresource)
        };
        let namespace = match (permission.cluster, permission.namespace) {
            (true, _) => "",
            (false, "") => agents,
            (false, other) => other,
        };
        Grant {
            namespace: namespace.to_owned(),
            verb: permission.verb.to_owned(),
            group: permission.group.to_owned(),
            resource,
            name: permission.name.to_owned(),
        }
    }
}

#[test]
fn rbac_grants_exactly_what_doctor_checks() {
    for (name, objects) in every_rendering_parsed() {
        let settings = deployed_settings(name, objects);
        let control_plane = control_plane_account(objects);
        let mut granted = BTreeSet::new();
        let mut problems = Vec::new();
        for object in objects {
            let (role_ref, subjects, binding_namespace) = match object {
                Object::RoleBinding(binding) => {
                    (&binding.role_ref, &binding.subjects, Some(object.namespace()))
                }
                Object::ClusterRoleBinding(binding) => (&binding.role_ref, &binding.subjects, None),
                _ => continue,
            };
            let subjects: Vec<(String, String)> = subjects
                .iter()
                .flatten()
                .map(|subject| {
                    let namespace = subject.namespace.clone().unwrap_or_default();
                    (format!("{}/{namespace}", subject.kind), subject.name.clone())
                })
                .collect();
            if subjects != [control_plane.clone()] {
                problems.push(format!("{} binds {subjects:?}", object.describe()));
                continue;
            }
            if binding_namespace.is_some_and(|namespace| {
                namespace != settings.kube.namespace && namespace != settings.kube.system_namespace
            }) {
                problems.push(format!(
                    "{} grants outside the agents' and the control plane's namespaces",
                    object.describe()
                ));
            }
            let rules = objects
                .iter()
                .find_map(|role| match (role, role_ref.kind.as_str()) {
                    (Object::Role(found), "Role")
                        if role.name() == role_ref.name && Some(role.namespace()) == binding_namespace =>
                    {
                        Some(found.rules.clone().unwrap_or_default())
                    }
                    (Object::ClusterRole(found), "ClusterRole") if role.name() == role_ref.name => {
                        Some(found.rules.clone().unwrap_or_default())
                    }
                    _ => None,
                });
            let Some(rules) = rules else {
                problems.push(format!(
                    "{} refers to a missing {}",
                    object.describe(),
                    role_ref.name
                ));
                continue;
            };
            for rule in &rules {
                expand(
                    rule,
                    binding_namespace.unwrap_or_default(),
                    &mut granted,
                    &mut problems,
                );
            }
        }
        let spec = settings.kube.doctor_spec();
        let needed: BTreeSet<Grant> = doctor::permissions(&spec)
            .into_iter()
            .map(|permission| Grant::needed(permission, &settings.kube.namespace))
            .collect();
        for grant in granted.difference(&needed) {
            problems.push(format!("granted but not needed: {grant:?}"));
        }
        for grant in needed.difference(&granted) {
            problems.push(format!("needed but not granted: {grant:?}"));
        }
        // Secrets: the owner's read by name only (in the control plane's namespace); in the agents' namespace,
        // each run's capability Secret made and removed, never a Secret read.
        for grant in granted.iter().filter(|grant| grant.resource == "secrets") {
            let reads = matches!(grant.verb.as_str(), "get" | "list" | "watch");
            let allowed = if grant.namespace == settings.kube.system_namespace {
                grant.verb == "get" && !grant.name.is_empty()
            } else {
                grant.namespace == settings.kube.namespace && !reads
            };
            if !allowed {
                problems.push(format!("a Secret permission beyond the owner's tokens by name and the runs' capabilities: {grant:?}"));
            }
        }
        for grant in granted
            .iter()
            .filter(|grant| grant.namespace == settings.kube.system_namespace)
        {
            if grant.resource != "secrets" {
                problems.push(format!(
                    "in the control plane's namespace only its tokens: {grant:?}"
                ));
            }
        }
        assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
    }
}

/// The control plane's service account as a subject: `("ServiceAccount/<namespace>", name)`.
fn control_plane_account(objects: &[Object]) -> (String, String) {
    objects
        .iter()
        .find_map(|object| match object {
            Object::Deployment(deployment) if object.name() == super::settings::DEPLOYMENT => {
                let account = deployment
                    .spec
                    .as_ref()?
                    .template
                    .spec
                    .as_ref()?
                    .service_account_name
                    .clone()?;
                Some((format!("ServiceAccount/{}", object.namespace()), account))
            }
            _ => None,
        })
        .expect("the control plane names its service account")
}

/// A rule as single grants; wildcards and non-resource URLs are problems.
/// The grants of `rule` in `namespace` (`""`: a ClusterRole's, cluster-wide).
fn expand(rule: &PolicyRule, namespace: &str, granted: &mut BTreeSet<Grant>, problems: &mut Vec<String>) {
    if rule
        .non_resource_urls
        .as_ref()
        .is_some_and(|urls| !urls.is_empty())
    {
        problems.push(format!("non-resource URLs granted: {rule:?}"));
    }
    let groups = rule.api_groups.clone().unwrap_or_default();
    let resources = rule.resources.clone().unwrap_or_default();
    let names = rule.resource_names.clone().unwrap_or_default();
    let names = if names.is_empty() {
        vec![String::new()]
    } else {
        names
    };
    for verb in &rule.verbs {
        for group in &groups {
            for resource in &resources {
                if [verb, group, resource].iter().any(|part| part.contains('*')) {
                    problems.push(format!("wildcard granted: {rule:?}"));
                }
                for name in &names {
                    granted.insert(Grant {
                        namespace: namespace.to_owned(),
                        verb: verb.clone(),
                        group: group.clone(),
                        resource: resource.clone(),
                        name: name.clone(),
                    });
                }
            }
        }
    }
}

#[test]
fn agents_accept_no_ingress_and_never_reach_private_ranges() {
    for (name, objects) in every_rendering_parsed() {
        let settings = deployed_settings(name, objects);
        let policies = policies_in(objects, &settings.kube.namespace);
        assert!(
            policies.iter().any(|policy| selects_every_pod(policy)
                && policy_types(policy).contains(&"Ingress".to_owned())
                && policy_types(policy).contains(&"Egress".to_owned())),
            "{name}: the agents' namespace needs a default-deny policy for ingress and egress"
        );
        let mut problems = Vec::new();
        for policy in &policies {
            let spec = policy.spec.clone().unwrap_or_default();
            let policy_name = policy.metadata.name.clone().unwrap_or_default();
            if spec.ingress.as_ref().is_some_and(|rules| !rules.is_empty()) {
                problems.push(format!("{policy_name} admits ingress to agents"));
            }
            for rule in spec.egress.iter().flatten() {
                let peers = rule.to.clone().unwrap_or_default();
                if peers.is_empty() {
                    problems.push(format!("{policy_name} allows egress to every address"));
                }
                let only_port = |number| only_port(rule.ports.as_ref(), number);
                for peer in &peers {
                    problems.extend(peer_problems(&policy_name, peer, only_port(53), only_port(8081)));
                }
            }
        }
        assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
    }
}

/// A config's `proxy-only` egress: its agents' pods (labelled so by the Job) are selected by no policy that
/// lets them reach an address block, so they reach only DNS and the control plane's proxies; an `open` agent
/// still reaches the internet.
#[test]
fn proxy_only_agents_reach_nothing_but_dns_and_the_proxies() {
    use std::collections::BTreeMap;
    let pod = |egress: &str| BTreeMap::from([(EGRESS_LABEL.to_owned(), egress.to_owned())]);
    for (name, objects) in every_rendering_parsed() {
        let settings = deployed_settings(name, objects);
        let reaching_addresses: Vec<NetworkPolicy> = policies_in(objects, &settings.kube.namespace)
            .into_iter()
            .filter(|policy| {
                policy
                    .spec
                    .iter()
                    .flat_map(|spec| spec.egress.iter().flatten())
                    .any(|rule| rule.to.iter().flatten().any(|peer| peer.ip_block.is_some()))
            })
            .collect();
        assert!(
            reaching_addresses
                .iter()
                .any(|policy| selects(policy, &pod(Egress::Open.as_str()))),
            "{name}: open agents reach the internet"
        );
        for policy in &reaching_addresses {
            assert!(
                !selects(policy, &pod(Egress::ProxyOnly.as_str())),
                "{name}: {:?} lets proxy-only agents reach addresses",
                policy.metadata.name
            );
        }
    }
}

/// Whether `policy`'s pod selector selects a pod with `labels` (matchLabels and matchExpressions).
fn selects(policy: &NetworkPolicy, labels: &std::collections::BTreeMap<String, String>) -> bool {
    let Some(selector) = policy.spec.as_ref().and_then(|spec| spec.pod_selector.as_ref()) else {
        return true;
    };
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let expressions_match = selector.match_expressions.iter().flatten().all(|expression| {
        let value = labels.get(&expression.key);
        let values = expression.values.clone().unwrap_or_default();
        match expression.operator.as_str() {
            "In" => value.is_some_and(|value| values.contains(value)),
            "NotIn" => value.is_none_or(|value| !values.contains(value)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("unknown selector operator {other}"),
        }
    });
    labels_match && expressions_match
}

/// Whether `ports` names ports and all of them are `number`.
fn only_port(ports: Option<&Vec<NetworkPolicyPort>>, number: i32) -> bool {
    ports.is_some_and(|ports| {
        !ports.is_empty()
            && ports.iter().all(|port| {
                port.port
                    == Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(
                        number,
                    ))
            })
    })
}

/// The namespace a peer's namespace selector names by `kubernetes.io/metadata.name`, if it does.
fn peer_namespace(peer: &NetworkPolicyPeer) -> Option<&str> {
    peer.namespace_selector
        .as_ref()
        .and_then(|selector| selector.match_labels.as_ref())
        .and_then(|labels| labels.get("kubernetes.io/metadata.name"))
        .map(String::as_str)
}

/// Why an egress peer of an agents' policy is too wide: in-cluster, agents reach DNS on port 53 and the
/// control plane's proxies on port 8081, nothing else.
fn peer_problems(policy: &str, peer: &NetworkPolicyPeer, only_dns: bool, only_proxies: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(block) = &peer.ip_block {
        let Some(cidr) = Cidr::parse(&block.cidr) else {
            return vec![format!(
                "{policy}: {} is not an IPv4 block this test can check",
                block.cidr
            )];
        };
        let excepted: Vec<Cidr> = block
            .except
            .iter()
            .flatten()
            .filter_map(|text| Cidr::parse(text))
            .collect();
        for text in FORBIDDEN_EGRESS {
            let forbidden = Cidr::parse(text).expect("valid range");
            let reachable =
                cidr.overlaps(&forbidden) && !excepted.iter().any(|except| except.contains(&forbidden));
            if reachable {
                problems.push(format!("{policy}: {} lets agents reach {text}", block.cidr));
            }
        }
    }
    if peer.namespace_selector.is_some() || peer.pod_selector.is_some() {
        let to_kube_dns = peer_namespace(peer) == Some("kube-system");
        let to_control_plane = peer_namespace(peer) == Some("agentfarm-system")
            && peer
                .pod_selector
                .as_ref()
                .and_then(|selector| selector.match_labels.as_ref())
                .and_then(|labels| labels.get("app.kubernetes.io/name"))
                .is_some_and(|name| name == "agentfarm-control-plane");
        if !(to_kube_dns && only_dns || to_control_plane && only_proxies) {
            problems.push(format!(
                "{policy}: agents may reach in-cluster pods other than DNS and the control plane's proxies"
            ));
        }
    }
    problems
}

/// The namespace whose Prometheus may scrape the control plane's metrics port.
const MONITORING: &str = "monitoring";

/// The control plane's ports, as its command line binds them: (app, proxies, metrics).
fn control_plane_ports(name: &str, settings: &agentfarm::settings::Settings) -> (i32, i32, i32) {
    let proxies = settings
        .proxy_listen
        .unwrap_or_else(|| panic!("{name}: on a cluster the proxies need a port of their own"));
    (
        i32::from(settings.listen.port()),
        i32::from(proxies.port()),
        i32::from(settings.metrics_listen.port()),
    )
}

#[test]
fn the_control_plane_accepts_traffic_only_from_the_tailscale_proxy_agents_and_monitoring() {
    for (name, objects) in every_rendering_parsed() {
        let settings = deployed_settings(name, objects);
        let (app, proxies, metrics) = control_plane_ports(name, &settings);
        let system = objects
            .iter()
            .find(|object| object.name() == super::settings::DEPLOYMENT)
            .map(|object| object.namespace().to_owned())
            .expect("the control plane");
        let policies = policies_in(objects, &system);
        assert!(
            policies
                .iter()
                .any(|policy| selects_every_pod(policy)
                    && policy_types(policy).contains(&"Ingress".to_owned())),
            "{name}: the control plane's namespace needs a default-deny ingress policy"
        );
        for policy in &policies {
            for rule in policy.spec.iter().flat_map(|spec| spec.ingress.iter().flatten()) {
                let peers = rule.from.clone().unwrap_or_default();
                let only = |port: i32| only_port(rule.ports.as_ref(), port);
                let allowed = |peer: &NetworkPolicyPeer| {
                    peer.ip_block.is_none()
                        && match peer_namespace(peer) {
                            Some("tailscale") => only(app),
                            Some(MONITORING) => only(metrics),
                            Some(namespace) => namespace == settings.kube.namespace && only(proxies),
                            None => false,
                        }
                };
                assert!(
                    !peers.is_empty() && peers.iter().all(allowed),
                    "{name}: {:?} admits more than the Tailscale proxy to the app, the agents to their \
                     proxies and monitoring to the metrics: {rule:?}",
                    policy.metadata.name
                );
            }
        }
    }
}

/// `/metrics` never reaches the tailnet: the metrics port is not the app's, every Ingress's backend is a
/// Service port whose target is the app's container port, and no NetworkPolicy admits namespace `tailscale`
/// to the metrics port; monitoring can scrape it (a Service port and a policy rule lead there).
#[test]
fn the_ingress_never_serves_metrics_and_monitoring_can_scrape_them() {
    let mut ingresses = 0;
    for (name, objects) in every_rendering_parsed() {
        let settings = deployed_settings(name, objects);
        let (app, _, metrics) = control_plane_ports(name, &settings);
        assert_ne!(app, metrics, "{name}: the app's port must not serve /metrics");
        let container_ports = super::settings::control_plane_ports(objects);
        let container_port = |port: &IntOrString| match port {
            IntOrString::Int(number) => Some(*number),
            IntOrString::String(port_name) => container_ports
                .iter()
                .find(|port| port.name.as_deref() == Some(port_name.as_str()))
                .map(|port| port.container_port),
        };
        let service_target = |service_name: &str, port: &ServiceBackendPort| {
            let service = objects.iter().find_map(|object| match object {
                Object::Service(service) if service.metadata.name.as_deref() == Some(service_name) => {
                    Some(service)
                }
                _ => None,
            });
            let ports = service.and_then(|service| service.spec.as_ref()?.ports.clone());
            let service_port = ports.iter().flatten().find(|candidate| match &port.name {
                Some(port_name) => candidate.name.as_deref() == Some(port_name.as_str()),
                None => Some(candidate.port) == port.number,
            });
            let service_port =
                service_port.unwrap_or_else(|| panic!("{name}: no port {port:?} on Service {service_name}"));
            let target = service_port
                .target_port
                .clone()
                .unwrap_or(IntOrString::Int(service_port.port));
            container_port(&target)
        };
        let monitored = objects.iter().any(|object| match object {
            Object::Service(service) => service
                .spec
                .iter()
                .flat_map(|spec| spec.ports.iter().flatten())
                .any(|port| port.target_port.as_ref().and_then(container_port) == Some(metrics)),
            _ => false,
        });
        assert!(
            monitored,
            "{name}: no Service port leads to the metrics port {metrics}"
        );
        for object in objects {
            let Object::Ingress(ingress) = object else {
                continue;
            };
            let spec = ingress.spec.as_ref().expect("an Ingress has a spec");
            let rule_backends = spec
                .rules
                .iter()
                .flatten()
                .flat_map(|rule| rule.http.iter().flat_map(|http| http.paths.iter()))
                .map(|path| &path.backend);
            for backend in spec.default_backend.iter().chain(rule_backends) {
                let service = backend
                    .service
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name}: an Ingress backend that is no Service"));
                let port = service.port.clone().unwrap_or_default();
                let target = service_target(&service.name, &port);
                assert_eq!(
                    target,
                    Some(app),
                    "{name}: the Ingress must lead to the app's port {app} only, never the metrics port \
                     {metrics}"
                );
                ingresses += 1;
            }
        }
        let system = objects
            .iter()
            .find(|object| object.name() == super::settings::DEPLOYMENT)
            .map(|object| object.namespace().to_owned())
            .expect("the control plane");
        let mut scrapable = false;
        for policy in policies_in(objects, &system) {
            for rule in policy.spec.iter().flat_map(|spec| spec.ingress.iter().flatten()) {
                let peers = rule.from.iter().flatten();
                let to_metrics = rule.ports.as_ref().is_none_or(|ports| {
                    ports.is_empty()
                        || ports
                            .iter()
                            .any(|port| port.port == Some(IntOrString::Int(metrics)))
                });
                for peer in peers {
                    assert!(
                        !(to_metrics && peer_namespace(peer) == Some("tailscale")),
                        "{name}: {:?} lets the Tailscale proxy reach /metrics",
                        policy.metadata.name
                    );
                    scrapable |= to_metrics && peer_namespace(peer) == Some(MONITORING);
                }
            }
        }
        assert!(
            scrapable,
            "{name}: no NetworkPolicy admits {MONITORING} to the metrics port"
        );
    }
    assert!(ingresses >= 1, "no rendering with an Ingress");
}

/// An overlay that puts the control plane on the tailnet through the Tailscale Ingress requires an allowed
/// login, and believes the identity header only from the pod network the Ingress proxy runs in (the
/// NetworkPolicy above keeps every other pod out).
#[test]
fn an_overlay_on_the_tailnet_requires_an_allowed_login_from_the_pod_network() {
    let cluster_cidr = super::cluster_config::ClusterConfig::load()
        .cluster_cidr()
        .expect("infra/cluster.yaml names its pod network")
        .to_owned();
    let mut checked = 0;
    for (name, objects) in every_rendering_parsed() {
        let on_the_tailnet = objects.iter().any(|object| match object {
            Object::Ingress(ingress) => {
                ingress
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.ingress_class_name.as_deref())
                    == Some("tailscale")
            }
            _ => false,
        });
        if !name.starts_with("overlays/") || !on_the_tailnet {
            continue;
        }
        checked += 1;
        let settings = deployed_settings(name, objects);
        assert!(
            !settings.allowed_logins.is_empty(),
            "{name}: no AGENTFARM_ALLOWED_LOGINS, so anyone on the tailnet who reaches the Ingress gets in"
        );
        let trusted: Vec<String> = settings.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(
            trusted,
            [cluster_cidr.as_str()],
            "{name}: identity headers believed from exactly the pod network"
        );
    }
    assert!(checked >= 1, "no overlay with the Tailscale Ingress");
}

#[test]
fn no_committed_secret_carries_data() {
    for (name, objects) in every_rendering_parsed() {
        for object in objects {
            assert!(
                !matches!(object, Object::Secret(_)),
                "{name}: Secrets are created by bootstrap, never rendered: {}",
                object.describe()
            );
        }
    }
    let mut secrets = 0;
    for path in yaml_files(".") {
        let text = std::fs::read_to_string(&path).expect("read YAML file");
        for document in yaml_documents(&text)
            .iter()
            .filter(|document| document["kind"] == "Secret")
        {
            secrets += 1;
            for field in ["data", "stringData"] {
                let value = &document[field];
                let empty = value.is_null() || value.as_object().is_some_and(serde_json::Map::is_empty);
                assert!(
                    empty,
                    "{} commits Secret {field} ({})",
                    path.strip_prefix(repo()).unwrap_or(&path).display(),
                    document["metadata"]["name"]
                );
            }
        }
    }
    assert!(secrets >= 3, "the example Secrets were not found");
}

/// The NetworkPolicies in `namespace`.
fn policies_in(objects: &[Object], namespace: &str) -> Vec<NetworkPolicy> {
    objects
        .iter()
        .filter_map(|object| match object {
            Object::NetworkPolicy(policy) if object.namespace() == namespace => Some(policy.clone()),
            _ => None,
        })
        .collect()
}

fn selects_every_pod(policy: &NetworkPolicy) -> bool {
    policy.spec.as_ref().is_some_and(|spec| {
        spec.pod_selector.as_ref().is_none_or(|selector| {
            selector
                .match_labels
                .as_ref()
                .is_none_or(|labels| labels.is_empty())
                && selector
                    .match_expressions
                    .as_ref()
                    .is_none_or(|list| list.is_empty())
        })
    })
}

fn policy_types(policy: &NetworkPolicy) -> Vec<String> {
    policy
        .spec
        .as_ref()
        .and_then(|spec| spec.policy_types.clone())
        .unwrap_or_default()
}

/// An IPv4 block.
#[derive(Debug, Clone, Copy)]
struct Cidr {
    address: u32,
    prefix: u32,
}

impl Cidr {
    fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix) = text.split_once('/')?;
        let address: std::net::Ipv4Addr = address.parse().ok()?;
        let prefix: u32 = prefix.parse().ok().filter(|prefix| *prefix <= 32)?;
        Some(Cidr {
            address: u32::from(address),
            prefix,
        })
    }

    fn mask(prefix: u32) -> u32 {
        u32::MAX.checked_shl(32 - prefix).unwrap_or(0)
    }

    /// Whether every address of `inner` is in `self`.
    fn contains(&self, inner: &Cidr) -> bool {
        let mask = Cidr::mask(self.prefix);
        self.prefix <= inner.prefix && (inner.address & mask) == (self.address & mask)
    }

    fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }
}

#[test]
fn cidr_containment() {
    let cidr = |text| Cidr::parse(text).unwrap();
    assert!(cidr("0.0.0.0/0").contains(&cidr("169.254.0.0/16")));
    assert!(cidr("10.0.0.0/8").contains(&cidr("10.43.0.0/16")));
    assert!(!cidr("10.43.0.0/16").contains(&cidr("10.0.0.0/8")));
    assert!(cidr("10.43.0.0/16").overlaps(&cidr("10.0.0.0/8")));
    assert!(!cidr("100.64.0.0/10").overlaps(&cidr("100.128.0.0/10")));
    assert!(Cidr::parse("::/0").is_none());
}

//! The Job the Kubernetes runtime makes, from the settings the manifests give the control plane: it passes
//! `restricted`, refers only to objects the manifests create (namespace, RuntimeClass, service account,
//! Secrets and keys, claims), lands on nodes the cluster config labels, and fits the agents' LimitRange and
//! ResourceQuota as many times as the server runs agents at once.

use std::collections::BTreeMap;

use agentfarm::runtime::RunSpec;
use agentfarm::runtime::kube::job::{capability_secret_name, job};
use agentfarm::server::kube_settings;
use agentfarm_shared::config::{ConfigSpec, CredentialMode};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::cluster_config::ClusterConfig;
use super::objects::{Object, every_rendering_parsed, parse_all};
use super::render::{yaml_documents, yaml_files};
use super::restricted;
use super::settings::deployed_settings;
use crate::harness::repo;

fn run(config: ConfigSpec) -> RunSpec {
    RunSpec {
        run_id: "01jz0000000000000000000000".into(),
        config_id: "fix-bugs".into(),
        config_version: 1,
        config,
        prompt: "Fix the bugs".into(),
        session_id: "00000000-0000-4000-8000-000000000000".into(),
        branch: "agentfarm/01jz0000000000000000000000".into(),
        capability: agentfarm::capability::Capability::mint().unwrap(),
    }
}

/// The Jobs a site with these objects makes: a token-mode config, and a shared-volume one where offered.
fn jobs(what: &str, objects: &[Object]) -> (agentfarm::settings::Settings, Vec<Job>) {
    let settings = deployed_settings(what, objects);
    let kube = kube_settings(&settings);
    let mut config = ConfigSpec::new("Fix bugs", "Fix the bugs");
    config.repos = vec!["octo/app".into()];
    let mut made = vec![job(&run(config.clone()), &kube).expect("a token-mode Job")];
    if kube.claude_home_claim.is_some() {
        config.credential_mode = CredentialMode::SharedVolume;
        made.push(job(&run(config), &kube).expect("a shared-volume Job"));
    }
    (settings, made)
}

#[test]
fn the_agent_job_refers_only_to_objects_the_manifests_create() {
    let example_secrets = example_secrets();
    let cluster = ClusterConfig::load();
    let mut shared_volume_checked = false;
    for (name, objects) in every_rendering_parsed() {
        let (settings, made) = jobs(name, objects);
        let doctor = settings.kube.doctor_spec();
        // The owner's tokens, which the control plane mounts: described for the owner and checked by doctor.
        for need in &doctor.secrets {
            assert!(
                example_secrets.contains(&(need.namespace.clone(), need.name.clone())),
                "{name}: doctor checks Secret {}/{}, which manifests/secrets/ does not describe",
                need.namespace,
                need.name
            );
        }
        shared_volume_checked |= made.len() > 1;
        for agent in &made {
            let namespace = agent.metadata.namespace.clone().expect("a namespaced Job");
            let pod = agent
                .spec
                .as_ref()
                .and_then(|spec| spec.template.spec.clone())
                .expect("a pod template");
            let problems = restricted::violations(&pod);
            assert!(
                problems.is_empty(),
                "{name}: the agent Job breaks `restricted`: {problems:?}"
            );

            let has = |kind: &str, object_namespace: &str, object_name: &str| {
                objects.iter().any(|object| {
                    object.kind() == kind
                        && object.namespace() == object_namespace
                        && object.name() == object_name
                })
            };
            assert!(
                has("Namespace", "", &namespace),
                "{name}: no Namespace {namespace}"
            );
            let class = pod.runtime_class_name.clone().expect("a RuntimeClass");
            assert!(has("RuntimeClass", "", &class), "{name}: no RuntimeClass {class}");
            let account = pod
                .service_account_name
                .clone()
                .unwrap_or_else(|| "default".into());
            assert!(
                has("ServiceAccount", &namespace, &account),
                "{name}: no ServiceAccount {account}"
            );
            assert_eq!(
                pod.automount_service_account_token,
                Some(false),
                "{name}: agents get no API token"
            );

            assert!(
                pod.volumes
                    .iter()
                    .flatten()
                    .all(|volume| volume.secret.is_none() && volume.projected.is_none()),
                "{name}: agents read Secrets only as the variables below"
            );
            // The one Secret a Job reads is its run's capability, which the runtime makes with the Job; the
            // owner's tokens never reach an agent.
            let capability = capability_secret_name("01jz0000000000000000000000");
            let read = secret_keys(&pod);
            assert!(
                read.iter().all(|(secret, _)| *secret == capability),
                "{name}: the Job reads {read:?}, not only its capability"
            );
            assert!(!read.is_empty(), "{name}: the agent gets its capability");
            for claim in pod
                .volumes
                .iter()
                .flatten()
                .filter_map(|volume| volume.persistent_volume_claim.as_ref())
            {
                let rendered = objects.iter().find_map(|object| match object {
                    Object::PersistentVolumeClaim(found)
                        if object.namespace() == namespace && object.name() == claim.claim_name =>
                    {
                        Some(found)
                    }
                    _ => None,
                });
                let rendered = rendered.unwrap_or_else(|| panic!("{name}: no PVC {}", claim.claim_name));
                let modes = rendered.spec.as_ref().and_then(|spec| spec.access_modes.clone());
                assert!(
                    modes.unwrap_or_default().contains(&"ReadWriteMany".to_owned()),
                    "{name}: {} is shared by agents on many nodes, so ReadWriteMany",
                    claim.claim_name
                );
            }
            for (key, value) in pod.node_selector.iter().flatten() {
                assert!(
                    cluster.worker_labels().contains(&(key.clone(), value.clone())),
                    "{name}: agents need nodes labelled {key}={value}, which infra/cluster.yaml's worker pools do not carry"
                );
            }
            fits_limits(name, objects, &namespace, &pod, settings.max_running);
        }
    }
    assert!(
        shared_volume_checked,
        "no rendering offers the shared-volume mode"
    );
}

#[test]
fn the_one_time_login_writes_where_shared_volume_agents_read() {
    let (name, objects) = every_rendering_parsed()
        .iter()
        .find(|(name, _)| name.contains("shared-claude-home"))
        .expect("a rendering with the shared-claude-home component");
    let (_, made) = jobs(name, objects);
    let agent = made
        .last()
        .and_then(|job| job.spec.clone()?.template.spec)
        .expect("a shared-volume Job");
    let path = repo().join("manifests/one-time/claude-login.yaml");
    let text = std::fs::read_to_string(&path).expect("read the login pod");
    let login = parse_all("claude-login.yaml", &yaml_documents(&text))
        .into_iter()
        .find_map(|object| match object {
            Object::Pod(pod) => pod.spec,
            _ => None,
        })
        .expect("the login pod");
    assert!(
        restricted::violations(&login).is_empty(),
        "{:?}",
        restricted::violations(&login)
    );
    assert_eq!(claude_home(&login), claude_home(&agent));
    assert_eq!(login.runtime_class_name, agent.runtime_class_name);
    let (_, production) = every_rendering_parsed()
        .iter()
        .find(|(name, _)| name == "overlays/hetzner")
        .expect("the hetzner overlay");
    let (_, production_jobs) = jobs("overlays/hetzner", production);
    let production_pod = production_jobs[0]
        .spec
        .clone()
        .and_then(|spec| spec.template.spec)
        .expect("a pod");
    assert_eq!(
        login.node_selector, production_pod.node_selector,
        "the login pod runs where agents run"
    );
}

/// Where a pod mounts its claim and where it points Claude Code: `(claim, mount path, CLAUDE_CONFIG_DIR)`.
fn claude_home(pod: &PodSpec) -> (String, String, String) {
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|volume| volume.persistent_volume_claim.is_some())
        .expect("a claim");
    let container = &pod.containers[0];
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|mount| mount.name == volume.name)
        .expect("the claim mounted");
    let config_dir = container
        .env
        .iter()
        .flatten()
        .find(|variable| variable.name == "CLAUDE_CONFIG_DIR")
        .and_then(|variable| variable.value.clone())
        .expect("CLAUDE_CONFIG_DIR");
    let claim = volume
        .persistent_volume_claim
        .clone()
        .expect("a claim")
        .claim_name;
    (claim, mount.mount_path.clone(), config_dir)
}

/// Every `(Secret, key)` the pod reads.
fn secret_keys(pod: &PodSpec) -> Vec<(String, String)> {
    let container_refs = pod.containers.iter().flat_map(|container| {
        container
            .env
            .iter()
            .flatten()
            .filter_map(|variable| variable.value_from.as_ref()?.secret_key_ref.clone())
            .map(|reference| (reference.name, reference.key))
    });
    container_refs.collect()
}

/// `(namespace, name)` of each example Secret under manifests/secrets/ (the Secrets bootstrap creates).
fn example_secrets() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for path in yaml_files("manifests/secrets") {
        let text = std::fs::read_to_string(&path).expect("read example Secret");
        for object in parse_all(&path.display().to_string(), &yaml_documents(&text)) {
            if let Object::Secret(_) = object {
                found.push((object.namespace().to_owned(), object.name().to_owned()));
            }
        }
    }
    assert!(
        !found.is_empty(),
        "no example Secrets in {}",
        repo().join("manifests/secrets").display()
    );
    found
}

/// The agent fits the namespace's LimitRange, and `max_running` of them fit its ResourceQuota.
fn fits_limits(name: &str, objects: &[Object], namespace: &str, pod: &PodSpec, max_running: u32) {
    let resources = pod.containers[0].resources.clone().unwrap_or_default();
    let requests = resources.requests.unwrap_or_default();
    let limits = resources.limits.unwrap_or_default();
    for object in objects.iter().filter(|object| object.namespace() == namespace) {
        match object {
            Object::LimitRange(range) => {
                let containers = range.spec.iter().flat_map(|spec| spec.limits.iter());
                for item in containers.filter(|item| item.type_ == "Container") {
                    for (resource, max) in item.max.iter().flatten() {
                        let used = limits.get(resource).map(amount).unwrap_or_default();
                        assert!(
                            used <= amount(max),
                            "{name}: the agent's {resource} limit is above the LimitRange's max {}",
                            max.0
                        );
                    }
                }
            }
            Object::ResourceQuota(quota) => {
                let hard = quota
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.hard.clone())
                    .unwrap_or_default();
                for (resource, each) in quota_use(&requests, &limits) {
                    if let Some(cap) = hard.get(&resource) {
                        assert!(
                            each * f64::from(max_running) <= amount(cap),
                            "{name}: {max_running} agents need {resource} {each} each, the ResourceQuota allows {}",
                            cap.0
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

/// What one agent counts against a ResourceQuota, by the quota's resource names.
fn quota_use(
    requests: &BTreeMap<String, Quantity>,
    limits: &BTreeMap<String, Quantity>,
) -> BTreeMap<String, f64> {
    let mut used = BTreeMap::from([("pods".to_owned(), 1.0), ("count/jobs.batch".to_owned(), 1.0)]);
    for (prefix, values) in [("requests", requests), ("limits", limits)] {
        for (resource, value) in values {
            used.insert(format!("{prefix}.{resource}"), amount(value));
        }
    }
    used
}

/// A quantity as a number (`500m` → 0.5, `2Gi` → 2·2³⁰).
fn amount(quantity: &Quantity) -> f64 {
    let text = quantity.0.trim();
    let suffixes: [(&str, f64); 11] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("m", 0.001),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, scale) = suffixes
        .iter()
        .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|number| (number, *scale)))
        .unwrap_or((text, 1.0));
    number
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("{text} is not a quantity this test reads"))
        * scale
}

#[test]
fn quantities_are_read_with_their_suffixes() {
    assert_eq!(amount(&Quantity("500m".into())), 0.5);
    assert_eq!(amount(&Quantity("2".into())), 2.0);
    assert_eq!(amount(&Quantity("2Gi".into())), 2.0 * 1024.0 * 1024.0 * 1024.0);
    assert_eq!(amount(&Quantity("1M".into())), 1e6);
}

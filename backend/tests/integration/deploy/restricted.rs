//! The Pod Security Standards' `restricted` profile (baseline included), as the API server's admission
//! checks a pod spec: the violations, named by field.

use k8s_openapi::api::core::v1::{Container, PodSpec, SecurityContext};

/// Volume types `restricted` allows.
const ALLOWED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Sysctls `baseline` allows.
const SAFE_SYSCTLS: [&str; 8] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
];

/// Every way `spec` breaks the `restricted` profile; empty when it passes.
pub fn violations(spec: &PodSpec) -> Vec<String> {
    let mut found = Vec::new();
    let pod = spec.security_context.clone().unwrap_or_default();
    for (flag, name) in [
        (spec.host_network, "hostNetwork"),
        (spec.host_pid, "hostPID"),
        (spec.host_ipc, "hostIPC"),
    ] {
        if flag == Some(true) {
            found.push(format!("{name} is true"));
        }
    }
    for volume in spec.volumes.iter().flatten() {
        let as_json = serde_json::to_value(volume).unwrap_or_default();
        for (field, _) in as_json.as_object().into_iter().flatten() {
            if field != "name" && !ALLOWED_VOLUMES.contains(&field.as_str()) {
                found.push(format!("volume {} is a {field} volume", volume.name));
            }
        }
    }
    for sysctl in pod.sysctls.iter().flatten() {
        if !SAFE_SYSCTLS.contains(&sysctl.name.as_str()) {
            found.push(format!("sysctl {} is not safe", sysctl.name));
        }
    }
    if pod.run_as_user == Some(0) {
        found.push("securityContext.runAsUser is 0".to_owned());
    }
    let pod_seccomp = pod.seccomp_profile.as_ref().map(|profile| profile.type_.as_str());
    if let Some(profile) = pod_seccomp
        && !matches!(profile, "RuntimeDefault" | "Localhost")
    {
        found.push(format!("securityContext.seccompProfile is {profile}"));
    }
    if pod.se_linux_options.as_ref().is_some_and(|options| {
        options.user.is_some()
            || options.role.is_some()
            || options.type_.as_deref().is_some_and(|kind| {
                !matches!(
                    kind,
                    "" | "container_t" | "container_init_t" | "container_kvm_t" | "container_engine_t"
                )
            })
    }) {
        found.push("securityContext.seLinuxOptions is not allowed".to_owned());
    }
    if pod
        .app_armor_profile
        .as_ref()
        .is_some_and(|profile| profile.type_ == "Unconfined")
    {
        found.push("securityContext.appArmorProfile is Unconfined".to_owned());
    }
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for container in containers {
        container_violations(container, pod.run_as_non_root, pod_seccomp.is_some(), &mut found);
    }
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|list| !list.is_empty())
    {
        found.push("ephemeral containers in a template".to_owned());
    }
    found
}

/// One container's violations, given what the pod sets for all of them.
fn container_violations(
    container: &Container,
    pod_run_as_non_root: Option<bool>,
    pod_has_seccomp: bool,
    found: &mut Vec<String>,
) {
    let name = &container.name;
    let context: SecurityContext = container.security_context.clone().unwrap_or_default();
    if context.privileged == Some(true) {
        found.push(format!("container {name} is privileged"));
    }
    if context.allow_privilege_escalation != Some(false) {
        found.push(format!(
            "container {name} does not set allowPrivilegeEscalation: false"
        ));
    }
    let non_root = context.run_as_non_root.or(pod_run_as_non_root);
    if non_root != Some(true) {
        found.push(format!("container {name} does not run as non-root"));
    }
    if context.run_as_user == Some(0) {
        found.push(format!("container {name} runs as uid 0"));
    }
    match context
        .seccomp_profile
        .as_ref()
        .map(|profile| profile.type_.as_str())
    {
        Some("RuntimeDefault" | "Localhost") => {}
        Some(other) => found.push(format!("container {name} has seccomp profile {other}")),
        None if pod_has_seccomp => {}
        None => found.push(format!("container {name} has no seccomp profile")),
    }
    let capabilities = context.capabilities.clone().unwrap_or_default();
    if !capabilities.drop.iter().flatten().any(|dropped| dropped == "ALL") {
        found.push(format!("container {name} does not drop ALL capabilities"));
    }
    for added in capabilities.add.iter().flatten() {
        if added != "NET_BIND_SERVICE" {
            found.push(format!("container {name} adds capability {added}"));
        }
    }
    if context
        .proc_mount
        .as_deref()
        .is_some_and(|mount| mount != "Default")
    {
        found.push(format!("container {name} has a non-default procMount"));
    }
    for port in container.ports.iter().flatten() {
        if port.host_port.is_some_and(|host| host != 0) {
            found.push(format!("container {name} uses host port {:?}", port.host_port));
        }
    }
}

#[test]
fn each_restricted_rule_is_enforced() {
    let passing: PodSpec = serde_json::from_value(serde_json::json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "c",
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
        }],
        "volumes": [{"name": "w", "emptyDir": {}}],
    }))
    .unwrap();
    assert_eq!(violations(&passing), Vec::<String>::new());
    let broken = |patch: serde_json::Value| {
        let mut spec = serde_json::to_value(&passing).unwrap();
        json_patch::merge(&mut spec, &patch);
        violations(&serde_json::from_value(spec).unwrap())
    };
    let cases = [
        (serde_json::json!({"hostNetwork": true}), "hostNetwork"),
        (
            serde_json::json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}),
            "hostPath",
        ),
        (
            serde_json::json!({"securityContext": {"runAsNonRoot": null}}),
            "non-root",
        ),
        (
            serde_json::json!({"securityContext": {"seccompProfile": null}}),
            "seccomp",
        ),
        (
            serde_json::json!({"securityContext": {"runAsUser": 0}}),
            "runAsUser is 0",
        ),
        (
            serde_json::json!({"containers": [{"name": "c", "securityContext": {"capabilities": {"drop": ["ALL"]}}}]}),
            "allowPrivilegeEscalation",
        ),
        (
            serde_json::json!({"containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}}}]}),
            "NET_ADMIN",
        ),
        (
            serde_json::json!({"containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false}}]}),
            "drop ALL",
        ),
    ];
    for (patch, expected) in cases {
        let found = broken(patch.clone());
        assert!(
            found.iter().any(|problem| problem.contains(expected)),
            "{patch} should break `{expected}`: {found:?}"
        );
    }
}

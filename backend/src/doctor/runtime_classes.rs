//! The RuntimeClasses configs use, and whether the Kata ones have nodes to run on.

use std::collections::{BTreeMap, BTreeSet};

use agentfarm_shared::api::{Check, CheckStatus};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::ObjectList;

use super::access::rbac_fix;
use super::{DoctorSpec, INFRA_README, KATA_CLASS_DIR, Problem, RUNTIME_CLASS_DIR, check};

/// The configured RuntimeClass names, each once, in order.
pub(super) fn configured_classes(spec: &DoctorSpec) -> Vec<&str> {
    let mut seen = BTreeSet::new();
    spec.runtime_classes
        .iter()
        .map(String::as_str)
        .filter(|name| seen.insert(*name))
        .collect()
}

/// Whether a RuntimeClass name is a Kata one (needs KVM nodes).
pub(super) fn is_kata(name: &str) -> bool {
    name.starts_with("kata")
}

/// How to create a missing RuntimeClass.
fn runtime_class_fix(name: &str, kvm_label: &str) -> String {
    if is_kata(name) {
        let file = format!("{KATA_CLASS_DIR}/runtimeclass-{name}.yaml");
        format!(
            "kubectl apply -f {file}; Kata needs KVM-capable nodes labelled {kvm_label} with kata-deploy \
             installed (see {INFRA_README})"
        )
    } else if name.starts_with("gvisor") || name == "runsc" {
        let file = format!("{RUNTIME_CLASS_DIR}/runtimeclass-{name}.yaml");
        format!("kubectl apply -f {file}; gVisor must be installed on the nodes (see {INFRA_README})")
    } else {
        format!(
            "create RuntimeClass {name} with a handler the nodes' container runtime is configured for \
             (see {INFRA_README})"
        )
    }
}

/// 4. A row per configured RuntimeClass and one for the others present.
pub(super) fn runtime_class_checks(
    spec: &DoctorSpec,
    answer: Result<ObjectList<RuntimeClass>, Problem>,
) -> Vec<Check> {
    let configured = configured_classes(spec);
    let present: BTreeMap<String, String> = match answer {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|class| class.metadata.name.map(|name| (name, class.handler)))
            .collect(),
        Err(problem) => {
            let fix = matches!(problem, Problem::Forbidden(_))
                .then(|| rbac_fix("list runtimeclasses.node.k8s.io (cluster-wide)"));
            let status = if configured.is_empty() {
                CheckStatus::Warn
            } else {
                CheckStatus::Fail
            };
            return vec![check(
                "RuntimeClasses",
                status,
                format!("cannot list them: {problem}"),
                fix,
            )];
        }
    };
    let mut checks = Vec::new();
    if configured.is_empty() {
        checks.push(check(
            "RuntimeClasses",
            CheckStatus::Warn,
            "none configured: agents run under the nodes' default runtime, not sandboxed",
            Some("set a default runtime class (gvisor works on any node)".to_owned()),
        ));
    }
    for name in &configured {
        checks.push(match present.get(*name) {
            Some(handler) => check(
                format!("RuntimeClass {name}"),
                CheckStatus::Pass,
                format!("present, handler {handler}"),
                None,
            ),
            None => check(
                format!("RuntimeClass {name}"),
                CheckStatus::Fail,
                "not found",
                Some(runtime_class_fix(name, &spec.kvm_label)),
            ),
        });
    }
    let others: Vec<String> = present
        .iter()
        .filter(|(name, _)| !configured.contains(&name.as_str()))
        .map(|(name, handler)| format!("{name} (handler {handler})"))
        .collect();
    let detail = if others.is_empty() {
        "none besides the configured ones".to_owned()
    } else {
        format!("present, not configured: {}", others.join(", "))
    };
    checks.push(check("Other RuntimeClasses", CheckStatus::Pass, detail, None));
    checks
}

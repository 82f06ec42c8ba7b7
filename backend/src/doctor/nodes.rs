//! The nodes with the KVM label, which Kata RuntimeClasses need.

use agentfarm_shared::api::{Check, CheckStatus};
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, ListParams, ObjectList};

use super::access::rbac_fix;
use super::runtime_classes::{configured_classes, is_kata};
use super::{DoctorSpec, INFRA_README, Problem, call, check};

/// 7. The nodes carrying the KVM label.
pub(super) async fn kvm_nodes(client: &Client, spec: &DoctorSpec) -> Check {
    if spec.kvm_label.is_empty() {
        return kvm_check(
            spec,
            Err(Problem::Other("no KVM node label configured".to_owned())),
        );
    }
    let nodes = Api::<Node>::all(client.clone());
    let answer = call(nodes.list(&ListParams::default().labels(&spec.kvm_label))).await;
    kvm_check(spec, answer)
}

/// The KVM row: informative, unless a Kata RuntimeClass is configured and no node can run it.
fn kvm_check(spec: &DoctorSpec, answer: Result<ObjectList<Node>, Problem>) -> Check {
    let name = "KVM nodes";
    let kata: Vec<&str> = configured_classes(spec)
        .into_iter()
        .filter(|class| is_kata(class))
        .collect();
    let label_fix = format!(
        "on each node with /dev/kvm (bare metal or nested virtualization): kubectl label node NODE {}; Kata \
         also needs kata-deploy on those nodes (see {INFRA_README})",
        spec.kvm_label
    );
    let nodes = match answer {
        Ok(list) => list.items,
        Err(problem) => {
            let fix = match problem {
                Problem::Forbidden(_) => Some(rbac_fix("list nodes (cluster-wide)")),
                _ => None,
            };
            return check(
                name,
                CheckStatus::Warn,
                format!("cannot tell which nodes have KVM: {problem}"),
                fix,
            );
        }
    };
    if nodes.is_empty() {
        let (status, detail) = if kata.is_empty() {
            (
                CheckStatus::Warn,
                format!(
                    "none labelled {}: Kata runtime classes can't run; gVisor works on any node",
                    spec.kvm_label
                ),
            )
        } else {
            (
                CheckStatus::Fail,
                format!(
                    "none labelled {}: the configured Kata runtime class {} can't run",
                    spec.kvm_label,
                    kata.join(", ")
                ),
            )
        };
        return check(name, status, detail, Some(label_fix));
    }
    let described: Vec<String> = nodes
        .iter()
        .map(|node| {
            let name = node.metadata.name.clone().unwrap_or_default();
            let ready = node
                .status
                .as_ref()
                .and_then(|status| status.conditions.as_ref())
                .is_none_or(|conditions| {
                    conditions
                        .iter()
                        .any(|condition| condition.type_ == "Ready" && condition.status == "True")
                        || conditions.iter().all(|condition| condition.type_ != "Ready")
                });
            if ready {
                name
            } else {
                format!("{name} (not ready)")
            }
        })
        .collect();
    check(name, CheckStatus::Pass, described.join(", "), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::tests_support::spec;

    #[test]
    fn no_kvm_node_fails_only_with_a_kata_class() {
        let none = || {
            Ok(ObjectList {
                types: Default::default(),
                metadata: Default::default(),
                items: Vec::new(),
            })
        };
        assert_eq!(kvm_check(&spec(), none()).status, CheckStatus::Warn);
        let mut kata = spec();
        kata.runtime_classes.push("kata-fc".to_owned());
        let row = kvm_check(&kata, none());
        assert_eq!(row.status, CheckStatus::Fail);
        assert!(row.detail.contains("kata-fc"));
    }
}

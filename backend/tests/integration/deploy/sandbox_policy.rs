//! The agents' sandbox policy (`manifests/base/cluster/agent-sandbox-policy.yaml`), offline: in every
//! rendering that runs the control plane, the policy is bound with its parameters, and the parameters admit
//! exactly what the server makes: its RuntimeClass, every RuntimeClass the rendering defines for agents, its
//! node selector. (The policy itself is exercised by the real API server in the real-cluster suite.)

use std::collections::BTreeSet;

use super::objects::{Object, every_rendering_parsed};
use super::settings::deployed_settings;

const POLICY: &str = "agentfarm-agent-sandbox";
const PARAMETERS: &str = "agent-sandbox-policy";

#[test]
fn the_sandbox_policy_admits_exactly_what_the_server_makes() {
    let mut checked = 0;
    for (name, objects) in every_rendering_parsed() {
        if !objects.iter().any(|object| object.kind() == "Deployment") {
            continue;
        }
        checked += 1;
        let binding = objects
            .iter()
            .find_map(|object| match object {
                Object::ValidatingAdmissionPolicyBinding(binding) if object.name() == POLICY => {
                    binding.spec.clone()
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name}: the policy binding {POLICY}"));
        assert_eq!(binding.policy_name.as_deref(), Some(POLICY));
        assert_eq!(
            binding.validation_actions,
            Some(vec!["Deny".to_owned()]),
            "{name}"
        );
        let reference = binding.param_ref.expect("a parameter reference");
        assert_eq!(
            reference.parameter_not_found_action.as_deref(),
            Some("Deny"),
            "{name}"
        );
        let parameters = objects
            .iter()
            .find_map(|object| match object {
                Object::ConfigMap(map)
                    if Some(object.name()) == reference.name.as_deref()
                        && Some(object.namespace()) == reference.namespace.as_deref() =>
                {
                    map.data.clone()
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name}: the parameters {PARAMETERS}"));
        assert!(
            objects
                .iter()
                .any(|object| object.kind() == "ValidatingAdmissionPolicy" && object.name() == POLICY),
            "{name}: the policy"
        );

        let settings = deployed_settings(name, objects);
        let allowed: BTreeSet<&str> = parameters["runtimeClasses"].split(',').collect();
        assert!(
            allowed.contains(settings.kube.runtime_class.as_str()),
            "{name}: the server's RuntimeClass {} is admitted ({allowed:?})",
            settings.kube.runtime_class
        );
        for object in objects.iter().filter(|object| object.kind() == "RuntimeClass") {
            assert!(
                allowed.contains(object.name()),
                "{name}: RuntimeClass {} is offered to configs but refused by the policy",
                object.name()
            );
        }
        // The test cluster's overlay admits runc, for the journey that runs outside gVisor to compare; no
        // other rendering may.
        assert!(
            (name == "overlays/local" || !allowed.contains("runc")) && !allowed.contains(""),
            "{name}: never the unsandboxed runtime ({allowed:?})"
        );
        let selector: Vec<String> = settings
            .kube
            .node_selector
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        assert_eq!(
            parameters["nodeSelector"],
            selector.join(","),
            "{name}: the policy's node selector is the server's AGENTFARM_AGENT_NODE_SELECTOR"
        );
        assert_eq!(
            parameters["tolerationKeys"], "",
            "{name}: agents tolerate no pool's taint"
        );
    }
    assert!(checked >= 2, "the overlays that run the control plane");
}

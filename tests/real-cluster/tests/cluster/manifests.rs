//! The manifests on a real API server: the overlay applied server-side stands (the suite applies it), Pod
//! Security `restricted` refuses what it must, the agents' sandbox policy (a ValidatingAdmissionPolicy) holds
//! every pod and Job in the agents' namespace to its sandbox, and `agentfarm doctor`, run inside the control
//! plane with its own ServiceAccount, passes, and fails with its fix when a Secret or the RuntimeClass goes.

use serde_json::{Value, json};

use crate::suite::{AGENTS, SYSTEM, suite};

/// An agent-like pod that meets Pod Security `restricted` and the sandbox policy.
fn agent_pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": AGENTS},
        "spec": {
            "runtimeClassName": "gvisor",
            "automountServiceAccountToken": false,
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "agent",
                "image": agentfarm_real_cluster::layout::BUSYBOX_IMAGE,
                "command": ["true"],
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": true,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "resources": {
                    "requests": {"cpu": "50m", "memory": "32Mi", "ephemeral-storage": "16Mi"},
                    "limits": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "64Mi"},
                },
            }],
        },
    })
}

/// A Job around `pod`'s spec.
fn job_of(name: &str, pod: &Value) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": AGENTS},
        "spec": {"backoffLimit": 0, "template": {"spec": pod["spec"]}},
    })
}

/// Creates `object` as a server-side dry run (admission runs, nothing is stored); kubectl's error, if refused.
fn dry_run(object: &Value) -> Result<(), String> {
    suite()
        .try_kubectl_on(&["create", "--dry-run=server"], object)
        .map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_security_restricted_refuses_a_privileged_pod_in_both_namespaces() {
    let suite = suite();
    let _turn = suite.turn().await;
    for namespace in [AGENTS, SYSTEM] {
        let mut pod = agent_pod("privileged");
        pod["metadata"]["namespace"] = namespace.into();
        let context = &mut pod["spec"]["containers"][0]["securityContext"];
        context["privileged"] = true.into();
        // (A privileged container escalates: the API refuses the pair as invalid before Pod Security looks.)
        context["allowPrivilegeEscalation"] = true.into();
        let refused = dry_run(&pod).expect_err("a privileged pod is refused");
        assert!(
            refused.contains("violates PodSecurity \"restricted"),
            "{namespace}: {refused}"
        );
    }
}

/// Issue 15's sandbox policy, on the real API server: each way out of the sandbox is refused, on a pod and on
/// a Job, with the policy's own message; a pod that stays inside is admitted; without its parameters, the
/// policy denies everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_policy_keeps_every_agent_in_its_sandbox() {
    let suite = suite();
    let _turn = suite.turn().await;
    dry_run(&agent_pod("inside")).expect("an agent pod inside its sandbox is admitted");
    dry_run(&job_of("inside", &agent_pod("inside"))).expect("so is its Job");
    // A RuntimeClass that exists but is not one of the sandboxes (the admission plugin refuses one that does not
    // exist before the policy is asked).
    suite.apply(&json!({
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": "kata-fc"},
        "handler": "kata-fc",
    }));

    let escapes: [Escape; 6] = [
        (
            "no RuntimeClass",
            |pod| {
                pod["spec"]
                    .as_object_mut()
                    .map(|spec| spec.remove("runtimeClassName"));
            },
            "agents run only in a sandbox RuntimeClass",
        ),
        (
            "a RuntimeClass outside the set",
            |pod| pod["spec"]["runtimeClassName"] = "kata-fc".into(),
            "not kata-fc",
        ),
        (
            "a toleration for the server's taint",
            |pod| {
                pod["spec"]["tolerations"] = json!([{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]);
            },
            "agents tolerate no taint",
        ),
        (
            "a toleration of everything",
            |pod| pod["spec"]["tolerations"] = json!([{"operator": "Exists"}]),
            "agents tolerate no taint",
        ),
        (
            "a hostPath volume",
            |pod| {
                pod["spec"]["volumes"] = json!([{"name": "host", "hostPath": {"path": "/tmp"}}]);
                pod["spec"]["containers"][0]["volumeMounts"] =
                    json!([{"name": "host", "mountPath": "/host"}]);
            },
            "agents mount no hostPath volume",
        ),
        (
            "a ServiceAccount token",
            |pod| pod["spec"]["automountServiceAccountToken"] = true.into(),
            "agents get no ServiceAccount token",
        ),
    ];
    for (escape, change, message) in escapes {
        let mut pod = agent_pod("escape");
        change(&mut pod);
        for object in [pod.clone(), job_of("escape", &pod)] {
            let refused = dry_run(&object).expect_err(&format!("{escape}: refused"));
            let by_policy = refused.contains("agentfarm-agent-sandbox") && refused.contains(message);
            // Pod Security runs first and already refuses a pod with a hostPath volume; it only warns about a
            // Job, which the policy then refuses.
            let by_pod_security =
                object["kind"] == "Pod" && refused.contains("violates PodSecurity \"restricted");
            assert!(
                by_policy || by_pod_security,
                "{escape} ({}): {refused}",
                object["kind"]
            );
        }
    }

    suite.kubectl(&["delete", "runtimeclass", "kata-fc"]);

    // Fail closed: without its parameters the policy admits nothing.
    let parameters = suite.save(Some(SYSTEM), "configmap", "agent-sandbox-policy");
    suite.kubectl(&["-n", SYSTEM, "delete", "configmap", "agent-sandbox-policy"]);
    let refused = dry_run(&agent_pod("inside"));
    suite.recreate(&parameters);
    let refused = refused.expect_err("without parameters, even a pod inside its sandbox is refused");
    assert!(refused.contains("agentfarm-agent-sandbox"), "{refused}");
}

/// A way out of the sandbox: what it is, how it changes an agent pod, and what the policy says to it.
type Escape = (&'static str, fn(&mut Value), &'static str);

/// Runs `agentfarm doctor` inside the control plane, as the runbook does; its exit status and table.
fn doctor() -> (bool, String) {
    match suite().try_kubectl(&[
        "-n",
        SYSTEM,
        "exec",
        "deploy/agentfarm-control-plane",
        "--",
        "agentfarm",
        "doctor",
    ]) {
        Ok(table) => (true, table),
        Err(failure) => (false, failure),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_the_cluster_and_fails_with_its_fix_when_a_secret_or_the_runtime_class_goes() {
    let suite = suite();
    let _turn = suite.turn().await;
    let (passed, table) = doctor();
    assert!(passed, "{table}");
    for row in [
        "PASS    API server",
        "PASS    Namespace agentfarm-agents",
        "PASS    RBAC",
        "PASS    RuntimeClass gvisor",
        "PASS    Secret claude-token",
        "PASS    Secret github-token",
    ] {
        assert!(table.contains(row), "{row} in\n{table}");
    }
    assert!(table.contains("v1.35.4"), "the API server's version: {table}");

    let gvisor = suite.save(None, "runtimeclass", "gvisor");
    suite.kubectl(&["delete", "runtimeclass", "gvisor"]);
    let (passed, table) = doctor();
    suite.recreate(&gvisor);
    assert!(!passed, "no RuntimeClass gvisor fails:\n{table}");
    assert!(
        table.contains("FAIL    RuntimeClass gvisor") && table.contains("fix:"),
        "{table}"
    );

    suite.kubectl(&["-n", SYSTEM, "delete", "secret", "github-token"]);
    let (passed, table) = doctor();
    suite.set_secret("github-token", crate::suite::GITHUB_TOKEN);
    assert!(!passed, "no Secret github-token fails:\n{table}");
    assert!(
        table.contains("FAIL    Secret github-token") && table.contains("fix:"),
        "{table}"
    );

    let (passed, table) = doctor();
    assert!(passed, "restored:\n{table}");
}

//! `agentfarm doctor` against the fake Kubernetes API server: a ready cluster passes; a missing RuntimeClass,
//! Secret key, permission or bound PVC fails with its fix; Secret values never reach the report; an
//! unreachable API server is one failed row, reported promptly.

use std::future::Future;
use std::time::{Duration, Instant};

use agentfarm::doctor::{self, CALL_TIMEOUT, DoctorSpec, SecretNeed};
use agentfarm_fake_kube::{AccessRule, FakeKube};
use agentfarm_shared::api::{Check, CheckStatus, DoctorReport};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

const NS: &str = "agentfarm-agents";
const KVM_LABEL: &str = "agentfarm.dev/kvm=true";
/// A Secret value that must never appear in a report.
const CANARY: &str = "sk-ant-oat01-CANARY-7f3e9d-never-print-me";

/// Safety net only: every doctor run answers as soon as the fake has.
async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("doctor timed out")
}

fn spec() -> DoctorSpec {
    DoctorSpec {
        namespace: NS.to_owned(),
        runtime_classes: vec!["gvisor".to_owned()],
        secrets: vec![SecretNeed {
            namespace: NS.to_owned(),
            name: "claude-token".to_owned(),
            keys: vec!["token".to_owned()],
            purpose: "Claude Code OAuth token".to_owned(),
        }],
        pvcs: vec!["claude-home".to_owned()],
        kvm_label: KVM_LABEL.to_owned(),
        agent_image: format!("ghcr.io/owner/agentfarm-agent@sha256:{}", "0f".repeat(32)),
    }
}

fn runtime_class(name: &str, handler: &str) -> serde_json::Value {
    json!({
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": name},
        "handler": handler,
    })
}

fn secret(data: &serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "claude-token", "namespace": NS},
        "type": "Opaque",
        "data": data,
    })
}

fn pvc(phase: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "claude-home", "namespace": NS},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": phase, "capacity": {"storage": "1Gi"}},
    })
}

fn node(name: &str, kvm: bool) -> serde_json::Value {
    let labels = if kvm {
        json!({"kubernetes.io/hostname": name, "agentfarm.dev/kvm": "true"})
    } else {
        json!({"kubernetes.io/hostname": name})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    })
}

/// A cluster with everything [`spec`] needs, plus an unconfigured Kata class and a node without KVM.
async fn ready_cluster() -> FakeKube {
    let fake = FakeKube::start().await;
    fake.seed(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NS, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }));
    fake.seed(runtime_class("gvisor", "runsc"));
    fake.seed(runtime_class("kata-fc", "kata-fc"));
    fake.seed(secret(&json!({"token": STANDARD.encode(CANARY)})));
    fake.seed(pvc("Bound"));
    fake.seed(node("kvm-1", true));
    fake.seed(node("plain-1", false));
    fake
}

async fn doctor(fake: &FakeKube, spec: &DoctorSpec) -> DoctorReport {
    within(doctor::run(&fake.client(), spec)).await
}

fn row<'a>(report: &'a DoctorReport, name: &str) -> &'a Check {
    report
        .checks
        .iter()
        .find(|check| check.name == name)
        .unwrap_or_else(|| panic!("no row {name} in {report:#?}"))
}

/// Neither the value nor its base64 form is anywhere in the report, its JSON or its table.
fn assert_no_canary(report: &DoctorReport) {
    let encoded = STANDARD.encode(CANARY);
    let json = serde_json::to_string(report).unwrap();
    let table = doctor::render(report);
    for text in [&json, &table, &format!("{report:?}")] {
        assert!(!text.contains(CANARY), "secret value leaked: {text}");
        assert!(!text.contains(&encoded), "encoded secret value leaked: {text}");
        assert!(
            !text.contains("CANARY"),
            "part of the secret value leaked: {text}"
        );
    }
}

#[tokio::test]
async fn a_ready_cluster_passes_and_prints_every_check() {
    let fake = ready_cluster().await;
    let report = doctor(&fake, &spec()).await;

    assert!(!report.failed(), "{report:#?}");
    for check in &report.checks {
        assert_ne!(check.status, CheckStatus::Fail, "{check:?}");
    }
    let names = [
        "API server",
        "Namespace agentfarm-agents",
        "RBAC",
        "RuntimeClass gvisor",
        "Other RuntimeClasses",
        "Secret claude-token",
        "PVC claude-home",
        "KVM nodes",
        "agent image",
    ];
    let listed: Vec<&str> = report.checks.iter().map(|check| check.name.as_str()).collect();
    assert_eq!(listed, names);
    let table = doctor::render(&report);
    for name in names {
        assert!(table.contains(name), "{name} missing from\n{table}");
    }
    assert!(table.starts_with("STATUS  CHECK"), "{table}");
    assert!(row(&report, "API server").detail.contains("v1.34.0-fake"));
    assert_eq!(
        row(&report, "Namespace agentfarm-agents").status,
        CheckStatus::Pass
    );
    assert!(row(&report, "RBAC").detail.contains("all 22"), "{report:#?}");
    assert!(row(&report, "RuntimeClass gvisor").detail.contains("runsc"));
    assert!(row(&report, "Other RuntimeClasses").detail.contains("kata-fc"));
    let secret = row(&report, "Secret claude-token");
    assert_eq!(secret.status, CheckStatus::Pass);
    assert!(secret.detail.contains("token"));
    assert_eq!(row(&report, "PVC claude-home").status, CheckStatus::Pass);
    assert_eq!(row(&report, "agent image").status, CheckStatus::Pass);
    let kvm = row(&report, "KVM nodes");
    assert_eq!(kvm.status, CheckStatus::Pass);
    assert!(
        kvm.detail.contains("kvm-1") && !kvm.detail.contains("plain-1"),
        "{kvm:?}"
    );
    assert_no_canary(&report);

    // The doctor only reads and asks: it never lists Secrets.
    for request in fake.requests() {
        assert!(
            request.method == "GET" || request.path.contains("selfsubjectaccessreviews"),
            "{request:?}"
        );
        assert!(!request.path.ends_with("/secrets"), "{request:?}");
    }
}

#[tokio::test]
async fn a_missing_runtime_class_fails_with_how_to_install_it() {
    let fake = ready_cluster().await;
    let mut spec = spec();
    spec.runtime_classes = vec!["gvisor".to_owned(), "kata-qemu".to_owned(), "gvisor".to_owned()];
    fake.delete_without_event("", agentfarm_fake_kube::Kind::RuntimeClass, "gvisor");
    let report = doctor(&fake, &spec).await;

    assert!(report.failed());
    let gvisor: Vec<&Check> = report
        .checks
        .iter()
        .filter(|check| check.name == "RuntimeClass gvisor")
        .collect();
    assert_eq!(gvisor.len(), 1, "a class configured twice is checked once");
    assert_eq!(gvisor[0].status, CheckStatus::Fail);
    let fix = gvisor[0].fix.as_deref().unwrap();
    assert!(
        fix.contains("runtimeclass-gvisor.yaml") && fix.contains("gVisor"),
        "{fix}"
    );

    let kata = row(&report, "RuntimeClass kata-qemu");
    assert_eq!(kata.status, CheckStatus::Fail);
    let fix = kata.fix.as_deref().unwrap();
    assert!(
        fix.contains("runtimeclass-kata-qemu.yaml") && fix.contains("KVM"),
        "{fix}"
    );

    let table = doctor::render(&report);
    assert!(
        table.contains("fix: kubectl apply -f manifests/base/cluster/runtimeclass-gvisor.yaml"),
        "{table}"
    );
}

#[tokio::test]
async fn a_secret_without_the_key_fails_and_never_shows_values() {
    let fake = FakeKube::start().await;
    fake.seed(runtime_class("gvisor", "runsc"));
    fake.seed(secret(&json!({"other": STANDARD.encode(CANARY), "empty": ""})));
    let mut spec = spec();
    spec.secrets[0].keys = vec!["token".to_owned(), "empty".to_owned()];
    let report = doctor(&fake, &spec).await;

    let secret = row(&report, "Secret claude-token");
    assert_eq!(secret.status, CheckStatus::Fail);
    assert!(secret.detail.contains("missing key token"), "{secret:?}");
    assert!(secret.detail.contains("empty key empty"), "{secret:?}");
    assert!(
        secret.detail.contains("other"),
        "key names are listed: {secret:?}"
    );
    let fix = secret.fix.as_deref().unwrap();
    assert!(
        fix.contains("kubectl patch secret claude-token -n agentfarm-agents"),
        "{fix}"
    );
    assert_no_canary(&report);

    // Without the Secret at all: the create command, still without any value.
    fake.delete_without_event(NS, agentfarm_fake_kube::Kind::Secret, "claude-token");
    let report = doctor(&fake, &spec).await;
    let secret = row(&report, "Secret claude-token");
    assert_eq!(secret.status, CheckStatus::Fail);
    let fix = secret.fix.as_deref().unwrap();
    assert!(
        fix.contains("kubectl create secret generic claude-token -n agentfarm-agents --from-literal=token=…"),
        "{fix}"
    );
}

#[tokio::test]
async fn a_denied_verb_fails_rbac_naming_it() {
    let fake = ready_cluster().await;
    let deny = |verb: &str, resource: &str, subresource: &str| AccessRule {
        verb: Some(verb.to_owned()),
        resource: Some(resource.to_owned()),
        subresource: Some(subresource.to_owned()),
        allowed: false,
        ..AccessRule::default()
    };
    fake.set_access_rules(vec![deny("create", "pods", "attach"), deny("watch", "jobs", "")]);
    let report = doctor(&fake, &spec()).await;

    assert!(report.failed());
    let rbac = row(&report, "RBAC");
    assert_eq!(rbac.status, CheckStatus::Fail);
    assert!(rbac.detail.contains("create pods/attach"), "{rbac:?}");
    assert!(rbac.detail.contains("watch jobs.batch"), "{rbac:?}");
    assert!(!rbac.detail.contains("get pods/attach"), "{rbac:?}");
    assert!(rbac.fix.as_deref().unwrap().contains("manifests/"), "{rbac:?}");

    // Only the optional node permission missing: a warning.
    fake.set_access_rules(vec![deny("list", "nodes", "")]);
    let report = doctor(&fake, &spec()).await;
    let rbac = row(&report, "RBAC");
    assert_eq!(rbac.status, CheckStatus::Warn, "{rbac:?}");
    assert!(rbac.detail.contains("list nodes"), "{rbac:?}");
    assert!(!report.failed());
}

#[tokio::test]
async fn missing_namespace_unbound_pvc_and_no_kvm_node_for_kata_fail() {
    let fake = FakeKube::start().await;
    fake.seed(runtime_class("gvisor", "runsc"));
    fake.seed(runtime_class("kata-fc", "kata-fc"));
    fake.seed(secret(&json!({"token": STANDARD.encode(CANARY)})));
    fake.seed(pvc("Pending"));
    fake.seed(node("plain-1", false));
    let mut spec = spec();
    spec.runtime_classes.push("kata-fc".to_owned());
    let report = doctor(&fake, &spec).await;

    let namespace = row(&report, "Namespace agentfarm-agents");
    assert_eq!(namespace.status, CheckStatus::Fail);
    assert!(
        namespace.fix.as_deref().unwrap().contains("kubectl"),
        "{namespace:?}"
    );
    let claim = row(&report, "PVC claude-home");
    assert_eq!(claim.status, CheckStatus::Fail);
    assert!(claim.detail.contains("Pending"), "{claim:?}");
    let kvm = row(&report, "KVM nodes");
    assert_eq!(kvm.status, CheckStatus::Fail, "{kvm:?}");
    assert!(kvm.detail.contains("kata-fc"), "{kvm:?}");
    assert!(kvm.fix.as_deref().unwrap().contains(KVM_LABEL), "{kvm:?}");

    // Without a Kata class, no KVM node is only worth a warning.
    spec.runtime_classes = vec!["gvisor".to_owned()];
    let report = doctor(&fake, &spec).await;
    let kvm = row(&report, "KVM nodes");
    assert_eq!(kvm.status, CheckStatus::Warn, "{kvm:?}");
    assert!(kvm.detail.contains("gVisor works on any node"), "{kvm:?}");
}

#[tokio::test]
async fn an_unreachable_api_server_is_one_failed_row_reported_promptly() {
    // An API server answering every request with 500.
    let fake = ready_cluster().await;
    fake.fail_until_recovered(500);
    let started = Instant::now();
    let report = doctor(&fake, &spec()).await;
    assert!(started.elapsed() < CALL_TIMEOUT, "took {:?}", started.elapsed());
    assert_eq!(report.checks.len(), 1, "{report:#?}");
    let api = row(&report, "API server");
    assert_eq!(api.status, CheckStatus::Fail);
    assert!(api.detail.contains("500"), "{api:?}");
    assert!(api.fix.is_some());
    assert!(report.failed());
    let table = doctor::render(&report);
    assert!(
        table.contains("FAIL    API server") && table.contains("fix:"),
        "{table}"
    );

    // Nothing listening at all.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let config = kube::Config::new(format!("http://{closed}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let started = Instant::now();
    let report = within(doctor::run(&client, &spec())).await;
    assert!(started.elapsed() < CALL_TIMEOUT, "took {:?}", started.elapsed());
    assert_eq!(report.checks.len(), 1, "{report:#?}");
    assert_eq!(row(&report, "API server").status, CheckStatus::Fail);
}

//! `agentfarm doctor`: checks everything the Kubernetes runtime needs and says how to fix what is missing.
//!
//! [`run`] asks the API server, in order: is it reachable; does the agents namespace exist and enforce the
//! `restricted` pod security level; may the control plane do what the runtime does (one
//! SelfSubjectAccessReview per verb); do the configured RuntimeClasses exist; do the Secrets hold their keys;
//! are the PVCs bound; which nodes carry the KVM label. One failing check never stops the others; only an
//! unreachable API server ends the report early (every other check would fail the same way). [`render`]
//! prints the report as an aligned table with a `fix:` line under each failure or warning.
//!
//! Secret values are never read into anything but the response buffer: only key names (and whether each
//! value is empty) are kept.
//!
//! One file per group of checks: [`namespace`] (the API server, the namespace), [`access`] (RBAC),
//! [`runtime_classes`], [`secrets`], [`claims`], [`nodes`] (KVM), [`image`]; [`render`] prints a report.
//! [`sandbox`] checks this machine instead, for the local runtime's gVisor sandbox.

mod access;
mod claims;
mod image;
mod namespace;
mod nodes;
mod render;
mod runtime_classes;
pub mod sandbox;
mod secrets;

pub use access::{Permission, permissions};
pub use render::render;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use agentfarm_shared::api::{Check, CheckStatus, DoctorReport};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::Client;
use kube::api::{Api, ListParams};

/// How long one API call may take before its check fails as unanswered.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The pod security admission label whose value should be `restricted`.
const POD_SECURITY_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// The control plane's Role (agents namespace) and ClusterRole (RuntimeClasses, nodes).
const RBAC_MANIFEST: &str = "manifests/base/control-plane/rbac.yaml";

/// Where the agents namespace is defined.
const NAMESPACE_MANIFEST: &str = "manifests/base/cluster/namespace.yaml";

/// The directory of the gVisor RuntimeClass manifest (`runtimeclass-{name}.yaml`).
const RUNTIME_CLASS_DIR: &str = "manifests/base/cluster";

/// The directory of the Kata RuntimeClass manifests (`runtimeclass-{name}.yaml`).
const KATA_CLASS_DIR: &str = "manifests/components/kata";

/// The cluster setup guide (sandbox runtimes, node labels).
const INFRA_README: &str = "infra/README.md";

/// What the server's settings screen checks: the cluster agents run on, or this machine's gVisor sandbox.
#[derive(Clone)]
pub enum Doctor {
    /// `spec` on the cluster `client` talks to.
    Cluster {
        /// The cluster.
        client: Client,
        /// What the server uses there.
        spec: Box<DoctorSpec>,
    },
    /// The local runtime's sandbox, run by this runsc.
    Sandbox {
        /// The runsc program.
        runsc: std::path::PathBuf,
    },
}

impl Doctor {
    /// The report, now.
    pub async fn report(&self) -> DoctorReport {
        match self {
            Doctor::Cluster { client, spec } => run(client, spec).await,
            Doctor::Sandbox { runsc } => sandbox::run(runsc).await,
        }
    }
}

/// What the server is configured to use: what [`run`] checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorSpec {
    /// The agents namespace, e.g. `agentfarm-agents`.
    pub namespace: String,
    /// The default RuntimeClass and every one a config names, e.g. `["gvisor"]` (duplicates are checked once).
    pub runtime_classes: Vec<String>,
    /// Secrets the control plane reads (mounted as files): the owner's tokens.
    pub secrets: Vec<SecretNeed>,
    /// PVCs that must be `Bound` (e.g. `claude-home` in the shared-volume mode); may be empty.
    pub pvcs: Vec<String>,
    /// The label selector marking KVM-capable nodes, e.g. `agentfarm.dev/kvm=true`.
    pub kvm_label: String,
    /// The agent image as configured (`--agent-image`), e.g. `ghcr.io/you/agentfarm-agent@sha256:…`.
    pub agent_image: String,
}

/// A Secret the control plane needs: the owner's tokens, in its own namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretNeed {
    /// The Secret's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
    /// Keys that must be present and non-empty, e.g. `["token"]`.
    pub keys: Vec<String>,
    /// What it is for, for people, e.g. `Claude Code OAuth token (claude setup-token)`.
    pub purpose: String,
}

/// Runs every check against the cluster `client` talks to. Never fails: problems are rows.
pub async fn run(client: &Client, spec: &DoctorSpec) -> DoctorReport {
    let mut checks = Vec::new();
    let api = namespace::api_server(client).await;
    let reachable = api.status == CheckStatus::Pass;
    checks.push(api);
    if !reachable {
        return DoctorReport { checks };
    }
    let namespace = call(Api::<Namespace>::all(client.clone()).get(&spec.namespace)).await;
    checks.push(namespace::namespace_check(&spec.namespace, namespace));
    checks.push(access::rbac(client, spec).await);
    let classes = call(Api::<RuntimeClass>::all(client.clone()).list(&ListParams::default())).await;
    checks.extend(runtime_classes::runtime_class_checks(spec, classes));
    for need in &spec.secrets {
        let keys = secrets::secret_keys(client, &need.namespace, &need.name).await;
        checks.push(secrets::secret_check(need, keys));
    }
    for pvc in &spec.pvcs {
        let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &spec.namespace);
        checks.push(claims::pvc_check(
            &spec.namespace,
            pvc,
            call(claims.get(pvc)).await,
        ));
    }
    checks.push(nodes::kvm_nodes(client, spec).await);
    checks.push(image::agent_image_check(&spec.agent_image));
    DoctorReport { checks }
}

/// Why an API call gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    /// `404`: the object does not exist.
    NotFound,
    /// `403`, with the server's message.
    Forbidden(String),
    /// No answer within [`CALL_TIMEOUT`].
    Timeout,
    /// Any other error answer or transport failure.
    Other(String),
}

impl From<kube::Error> for Problem {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) if status.is_not_found() => Problem::NotFound,
            kube::Error::Api(status) if status.is_forbidden() => Problem::Forbidden(status.message),
            kube::Error::Api(status) => Problem::Other(format!(
                "HTTP {} {}: {}",
                status.code, status.reason, status.message
            )),
            other => Problem::Other(with_causes(&other)),
        }
    }
}

/// An error's message followed by its causes (kube's transport errors hide e.g. "connection refused" there).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotFound => f.write_str("not found"),
            Problem::Forbidden(message) if message.is_empty() => f.write_str("forbidden"),
            Problem::Forbidden(message) => write!(f, "forbidden: {message}"),
            Problem::Timeout => write!(f, "no answer within {} s", CALL_TIMEOUT.as_secs()),
            Problem::Other(message) => f.write_str(message),
        }
    }
}

/// Awaits one API call, bounded by [`CALL_TIMEOUT`].
async fn call<T>(request: impl Future<Output = kube::Result<T>>) -> Result<T, Problem> {
    match tokio::time::timeout(CALL_TIMEOUT, request).await {
        Ok(answer) => answer.map_err(Problem::from),
        Err(_elapsed) => Err(Problem::Timeout),
    }
}

/// The failing row of an object that could not be read, with `fix` when one is known.
fn unreadable(name: String, problem: &Problem, fix: Option<String>) -> Check {
    check(name, CheckStatus::Fail, format!("cannot read it: {problem}"), fix)
}

/// A row.
fn check(
    name: impl Into<String>,
    status: CheckStatus,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        fix,
    }
}

#[cfg(test)]
mod tests_support {
    use super::DoctorSpec;

    pub fn spec() -> DoctorSpec {
        DoctorSpec {
            namespace: "agents".to_owned(),
            runtime_classes: vec!["gvisor".to_owned()],
            secrets: Vec::new(),
            pvcs: Vec::new(),
            kvm_label: "agentfarm.dev/kvm=true".to_owned(),
            agent_image: "ghcr.io/owner/agentfarm-agent:0.1.0".to_owned(),
        }
    }
}

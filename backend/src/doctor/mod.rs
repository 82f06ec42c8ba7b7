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
//! [`sandbox`] checks this machine instead, for the local runtime's gVisor sandbox.

pub mod sandbox;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::time::Duration;

use agentfarm_shared::api::{Check, CheckStatus, DoctorReport};
use futures_util::future::join_all;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolumeClaim, Secret};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{Api, GetParams, ListParams, ObjectList, PostParams};
use kube::{Client, Resource};
use serde::Deserialize;

use crate::runtime::kube::image::ImageRef;

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
    let api = api_server(client).await;
    let reachable = api.status == CheckStatus::Pass;
    checks.push(api);
    if !reachable {
        return DoctorReport { checks };
    }
    let namespace = call(Api::<Namespace>::all(client.clone()).get(&spec.namespace)).await;
    checks.push(namespace_check(&spec.namespace, namespace));
    checks.push(rbac(client, spec).await);
    let classes = call(Api::<RuntimeClass>::all(client.clone()).list(&ListParams::default())).await;
    checks.extend(runtime_class_checks(spec, classes));
    for need in &spec.secrets {
        let keys = secret_keys(client, &need.namespace, &need.name).await;
        checks.push(secret_check(need, keys));
    }
    for pvc in &spec.pvcs {
        let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &spec.namespace);
        checks.push(pvc_check(&spec.namespace, pvc, call(claims.get(pvc)).await));
    }
    checks.push(kvm_nodes(client, spec).await);
    checks.push(agent_image_check(&spec.agent_image));
    DoctorReport { checks }
}

/// The report as an aligned plain-text table (`STATUS  CHECK  DETAIL`), a `fix:` line under each failure or
/// warning that has one, and a closing count.
pub fn render(report: &DoctorReport) -> String {
    let one_line = |text: &str| text.replace(['\n', '\r', '\t'], " ");
    let status_width = "STATUS".len();
    let name_width = report
        .checks
        .iter()
        .map(|check| one_line(&check.name).chars().count())
        .chain(["CHECK".len()])
        .max()
        .unwrap_or_default();
    let indent = " ".repeat(status_width + 2 + name_width + 2);
    let mut lines = vec![format!(
        "{:<status_width$}  {:<name_width$}  DETAIL",
        "STATUS", "CHECK"
    )];
    for check in &report.checks {
        let line = format!(
            "{:<status_width$}  {:<name_width$}  {}",
            check.status.label(),
            one_line(&check.name),
            one_line(&check.detail)
        );
        lines.push(line.trim_end().to_owned());
        if check.status != CheckStatus::Pass
            && let Some(fix) = &check.fix
        {
            lines.push(format!("{indent}fix: {}", one_line(fix)));
        }
    }
    let count = |status| {
        report
            .checks
            .iter()
            .filter(|check| check.status == status)
            .count()
    };
    lines.push(String::new());
    lines.push(format!(
        "{} passed, {} warned, {} failed",
        count(CheckStatus::Pass),
        count(CheckStatus::Warn),
        count(CheckStatus::Fail)
    ));
    let mut out = lines.join("\n");
    out.push('\n');
    out
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

/// The fix for a `403` on something the runtime needs.
fn rbac_fix(what: &str) -> String {
    format!("grant the control plane {what} in {RBAC_MANIFEST}, then kubectl apply -f {RBAC_MANIFEST}")
}

/// 1. `GET /version`.
async fn api_server(client: &Client) -> Check {
    match call(client.apiserver_version()).await {
        Ok(info) => check(
            "API server",
            CheckStatus::Pass,
            format!("reachable, Kubernetes {} ({})", info.git_version, info.platform),
            None,
        ),
        Err(problem) => check(
            "API server",
            CheckStatus::Fail,
            format!("no usable answer: {problem}; the other checks were skipped"),
            Some(
                "check the address and credentials agentfarm uses: in the cluster, the control plane's pod \
                 needs its service account token mounted; outside, check KUBECONFIG and the current context \
                 (kubectl cluster-info)"
                    .to_owned(),
            ),
        ),
    }
}

/// 2. The agents namespace and its pod security level.
fn namespace_check(namespace: &str, answer: Result<Namespace, Problem>) -> Check {
    let name = format!("Namespace {namespace}");
    let label_fix =
        format!("kubectl label namespace {namespace} {POD_SECURITY_LABEL}=restricted --overwrite");
    match answer {
        Ok(object) => {
            if object.metadata.deletion_timestamp.is_some() {
                return check(
                    name,
                    CheckStatus::Fail,
                    "being deleted",
                    Some(format!(
                        "wait for the deletion to finish, then kubectl apply -f {NAMESPACE_MANIFEST}"
                    )),
                );
            }
            let level = object
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(POD_SECURITY_LABEL));
            match level.map(String::as_str) {
                Some("restricted") => check(
                    name,
                    CheckStatus::Pass,
                    "exists; pod security enforces restricted",
                    None,
                ),
                Some(other) => check(
                    name,
                    CheckStatus::Warn,
                    format!("exists; pod security enforces {other}, not restricted"),
                    Some(label_fix),
                ),
                None => check(
                    name,
                    CheckStatus::Warn,
                    format!("exists; no {POD_SECURITY_LABEL} label (the cluster default applies)"),
                    Some(label_fix),
                ),
            }
        }
        Err(Problem::NotFound) => check(
            name,
            CheckStatus::Fail,
            "does not exist",
            Some(format!(
                "kubectl apply -f {NAMESPACE_MANIFEST} (or kubectl create namespace {namespace}, then {label_fix})"
            )),
        ),
        // The control plane's Role is namespaced: reading Namespace objects is normally not granted. The
        // namespaced checks below still show whether the namespace is there and usable.
        Err(Problem::Forbidden(_)) => check(
            name,
            CheckStatus::Warn,
            "cannot read Namespace objects (forbidden; expected with a namespaced Role), so its pod security \
             level is unchecked",
            Some(format!(
                "check by hand: kubectl get namespace {namespace} --show-labels should show \
                 {POD_SECURITY_LABEL}=restricted"
            )),
        ),
        Err(problem) => check(
            name,
            CheckStatus::Fail,
            format!("cannot read it: {problem}"),
            None,
        ),
    }
}

/// One permission the control plane needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission<'a> {
    /// E.g. `create`.
    pub verb: &'a str,
    /// API group (`""` for core).
    pub group: &'a str,
    /// Resource plural.
    pub resource: &'a str,
    /// Subresource, e.g. `log`.
    pub subresource: &'a str,
    /// Cluster-scoped (asked without a namespace); otherwise in the agents namespace.
    pub cluster: bool,
    /// In this namespace instead of the agents namespace (`""`: the agents namespace).
    pub namespace: &'a str,
    /// Missing it fails the check (otherwise it warns).
    pub required: bool,
    /// One named object (a Role may grant `resourceNames` only); `""`: any.
    pub name: &'a str,
}

impl<'a> Permission<'a> {
    /// A permission in the agents namespace.
    const fn namespaced(verb: &'a str, group: &'a str, resource: &'a str) -> Permission<'a> {
        Permission {
            verb,
            group,
            resource,
            subresource: "",
            cluster: false,
            namespace: "",
            required: true,
            name: "",
        }
    }

    /// The same on a subresource.
    const fn sub(self, subresource: &'a str) -> Permission<'a> {
        Permission { subresource, ..self }
    }

    /// The same, cluster-scoped.
    const fn cluster(self) -> Permission<'a> {
        Permission {
            cluster: true,
            ..self
        }
    }

    /// The same, in `namespace` rather than the agents namespace.
    const fn within(self, namespace: &'a str) -> Permission<'a> {
        Permission { namespace, ..self }
    }

    /// The same, on the object named `name` only.
    const fn named(self, name: &'a str) -> Permission<'a> {
        Permission { name, ..self }
    }

    /// The same, only warned about when missing.
    const fn optional(self) -> Permission<'a> {
        Permission {
            required: false,
            ..self
        }
    }

    /// `verb resource[/sub][.group]`, as `kubectl auth can-i` takes it.
    fn describe(&self) -> String {
        let mut resource = self.resource.to_owned();
        if !self.subresource.is_empty() {
            resource = format!("{resource}/{}", self.subresource);
        }
        if !self.group.is_empty() {
            resource = format!("{resource}.{}", self.group);
        }
        if !self.name.is_empty() {
            resource = format!("{resource}/{}", self.name);
        }
        let scope = if self.cluster {
            " (cluster-wide)".to_owned()
        } else if !self.namespace.is_empty() {
            format!(" (in {})", self.namespace)
        } else {
            String::new()
        };
        format!("{} {resource}{scope}", self.verb)
    }
}

/// Everything the Kubernetes runtime does, as permissions (besides `get` on each Secret it reads, by name).
const RUNTIME_PERMISSIONS: [Permission<'static>; 20] = [
    job("create"),
    job("get"),
    job("list"),
    job("watch"),
    job("delete"),
    job("patch"),
    pod("get"),
    pod("list"),
    pod("watch"),
    pod("delete"),
    pod("patch"),
    pod("get").sub("log"),
    // kubectl and kube use POST or GET for the attach WebSocket upgrade, depending on the version.
    pod("create").sub("attach"),
    pod("get").sub("attach"),
    // Each run's capability Secret: created, refreshed and handed to its Job, deleted with it. (A Role cannot
    // grant `create` by name.)
    Permission::namespaced("create", "", "secrets"),
    Permission::namespaced("patch", "", "secrets"),
    Permission::namespaced("delete", "", "secrets"),
    Permission::namespaced("get", "", "persistentvolumeclaims"),
    Permission::namespaced("list", "node.k8s.io", "runtimeclasses").cluster(),
    // Only the informative KVM check lists nodes.
    Permission::namespaced("list", "", "nodes").cluster().optional(),
];

/// A Job permission in the agents namespace.
const fn job(verb: &'static str) -> Permission<'static> {
    Permission::namespaced(verb, "batch", "jobs")
}

/// A Pod permission in the agents namespace.
const fn pod(verb: &'static str) -> Permission<'static> {
    Permission::namespaced(verb, "", "pods")
}

/// Asks the API server whether the control plane may do `permission`.
async fn may(client: &Client, namespace: &str, permission: Permission<'_>) -> Result<bool, Problem> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(permission.verb.to_owned()),
                group: Some(permission.group.to_owned()),
                resource: Some(permission.resource.to_owned()),
                subresource: (!permission.subresource.is_empty()).then(|| permission.subresource.to_owned()),
                name: (!permission.name.is_empty()).then(|| permission.name.to_owned()),
                namespace: (!permission.cluster).then(|| {
                    if permission.namespace.is_empty() {
                        namespace.to_owned()
                    } else {
                        permission.namespace.to_owned()
                    }
                }),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let reviews = Api::<SelfSubjectAccessReview>::all(client.clone());
    let answer = call(reviews.create(&PostParams::default(), &review)).await?;
    Ok(answer.status.is_some_and(|status| status.allowed))
}

/// Everything the control plane does with the API (the Kubernetes runtime and these checks): what its RBAC
/// must grant, and all it needs (`manifests/base/control-plane/rbac.yaml` grants exactly this).
pub fn permissions(spec: &DoctorSpec) -> Vec<Permission<'_>> {
    // `get` on each Secret by name only: the runtime never lists them, and a Role grants them by name.
    let secret_gets = spec.secrets.iter().map(|secret| {
        Permission::namespaced("get", "", "secrets")
            .named(&secret.name)
            .within(&secret.namespace)
    });
    let namespace_get = Permission::namespaced("get", "", "namespaces")
        .cluster()
        .named(&spec.namespace);
    RUNTIME_PERMISSIONS
        .iter()
        .copied()
        .chain(secret_gets)
        .chain([namespace_get])
        .collect()
}

/// 3. One SelfSubjectAccessReview per permission, summarised in one row.
async fn rbac(client: &Client, spec: &DoctorSpec) -> Check {
    let namespace = &spec.namespace;
    let permissions = permissions(spec);
    let answers = join_all(
        permissions
            .iter()
            .map(|permission| may(client, namespace, *permission)),
    )
    .await;
    rbac_check(namespace, permissions.into_iter().zip(answers))
}

/// The RBAC row from each permission's answer.
fn rbac_check<'a>(
    namespace: &str,
    answers: impl IntoIterator<Item = (Permission<'a>, Result<bool, Problem>)>,
) -> Check {
    let mut total = 0;
    let mut missing = Vec::new();
    let mut optional = Vec::new();
    let mut unknown = Vec::new();
    for (permission, answer) in answers {
        total += 1;
        match answer {
            Ok(true) => {}
            Ok(false) if permission.required => missing.push(permission.describe()),
            Ok(false) => optional.push(permission.describe()),
            Err(problem) => unknown.push(format!("{} ({problem})", permission.describe())),
        }
    }
    let fix = |what: &[String]| {
        Some(format!(
            "{}; list what it may do with kubectl auth can-i --list -n {namespace} \
             --as=system:serviceaccount:CONTROL_PLANE_NAMESPACE:SERVICE_ACCOUNT",
            rbac_fix(&what.join(", "))
        ))
    };
    if !missing.is_empty() {
        let mut detail = format!("missing in {namespace}: {}", missing.join(", "));
        if !optional.is_empty() {
            detail.push_str(&format!("; also missing (optional): {}", optional.join(", ")));
        }
        let mut all = missing;
        all.extend(optional);
        return check("RBAC", CheckStatus::Fail, detail, fix(&all));
    }
    if !unknown.is_empty() {
        return check(
            "RBAC",
            CheckStatus::Warn,
            format!("could not ask about: {}", unknown.join(", ")),
            Some(
                "allow SelfSubjectAccessReviews (granted to every authenticated user by default)".to_owned(),
            ),
        );
    }
    if !optional.is_empty() {
        return check(
            "RBAC",
            CheckStatus::Warn,
            format!(
                "{} of {total} granted; missing {} (only the KVM node check needs it)",
                total - optional.len(),
                optional.join(", ")
            ),
            fix(&optional),
        );
    }
    check(
        "RBAC",
        CheckStatus::Pass,
        format!("all {total} permissions the runtime uses are granted"),
        None,
    )
}

/// The configured RuntimeClass names, each once, in order.
fn configured_classes(spec: &DoctorSpec) -> Vec<&str> {
    let mut seen = BTreeSet::new();
    spec.runtime_classes
        .iter()
        .map(String::as_str)
        .filter(|name| seen.insert(*name))
        .collect()
}

/// Whether a RuntimeClass name is a Kata one (needs KVM nodes).
fn is_kata(name: &str) -> bool {
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
fn runtime_class_checks(spec: &DoctorSpec, answer: Result<ObjectList<RuntimeClass>, Problem>) -> Vec<Check> {
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

/// Whether a Secret value is non-empty; decoding keeps nothing of the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Filled(bool);

impl<'de> Deserialize<'de> for Filled {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Looks at a value's length only.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Filled;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Filled, E> {
                Ok(Filled(!value.is_empty()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Filled, E> {
                Ok(Filled(false))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The part of a Secret the doctor reads: key names, and whether each value is non-empty.
#[derive(Debug, Deserialize)]
struct SecretKeys {
    /// Key → non-empty.
    #[serde(default)]
    data: Option<BTreeMap<String, Filled>>,
}

/// Reads a Secret's key names (and which are empty) without keeping or logging its values: the raw answer
/// is decoded here (not by kube, which logs bodies it cannot decode) and dropped at once.
async fn secret_keys(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, bool>, Problem> {
    let request = kube::core::Request::new(Secret::url_path(&(), Some(namespace)))
        .get(name, &GetParams::default())
        .map_err(|error| Problem::Other(error.to_string()))?;
    let text = call(client.request_text(request)).await?;
    let decoded = serde_json::from_str::<SecretKeys>(&text);
    drop(text);
    match decoded {
        Ok(secret) => Ok(secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(key, filled)| (key, filled.0))
            .collect()),
        // The decoder's message could quote a value: say only that it was not a Secret.
        Err(_) => Err(Problem::Other("the answer is not a readable Secret".to_owned())),
    }
}

/// 5. A Secret holds every needed key, non-empty. Names keys only, never values.
fn secret_check(need: &SecretNeed, answer: Result<BTreeMap<String, bool>, Problem>) -> Check {
    let namespace = &need.namespace;
    let name = format!("Secret {}", need.name);
    let purpose = if need.purpose.is_empty() {
        String::new()
    } else {
        format!(" ({})", need.purpose)
    };
    let literals: Vec<String> = need
        .keys
        .iter()
        .map(|key| format!("--from-literal={key}=…"))
        .collect();
    let create = format!(
        "kubectl create secret generic {} -n {namespace} {} (or --from-file=KEY=PATH){purpose}",
        need.name,
        literals.join(" ")
    );
    match answer {
        Ok(keys) => {
            let missing: Vec<&str> = need
                .keys
                .iter()
                .filter(|key| !keys.contains_key(*key))
                .map(String::as_str)
                .collect();
            let empty: Vec<&str> = need
                .keys
                .iter()
                .filter(|key| keys.get(*key) == Some(&false))
                .map(String::as_str)
                .collect();
            let names: Vec<&str> = keys.keys().map(String::as_str).collect();
            let has = if names.is_empty() {
                "no keys".to_owned()
            } else {
                format!("keys {}", names.join(", "))
            };
            if missing.is_empty() && empty.is_empty() {
                return check(name, CheckStatus::Pass, format!("has {has}{purpose}"), None);
            }
            let mut problems = Vec::new();
            if !missing.is_empty() {
                problems.push(format!("missing key {}", missing.join(", ")));
            }
            if !empty.is_empty() {
                problems.push(format!("empty key {}", empty.join(", ")));
            }
            let patch: Vec<String> = missing
                .iter()
                .chain(&empty)
                .map(|key| format!("\"{key}\":\"…\""))
                .collect();
            check(
                name,
                CheckStatus::Fail,
                format!("{}; has {has}{purpose}", problems.join("; ")),
                Some(format!(
                    "kubectl patch secret {} -n {namespace} -p '{{\"stringData\":{{{}}}}}'",
                    need.name,
                    patch.join(",")
                )),
            )
        }
        Err(Problem::NotFound) => check(
            name,
            CheckStatus::Fail,
            format!("not found in {namespace}{purpose}"),
            Some(create),
        ),
        Err(problem @ Problem::Forbidden(_)) => check(
            name,
            CheckStatus::Fail,
            format!("cannot read it: {problem}"),
            Some(rbac_fix(&format!("get secrets in {namespace}"))),
        ),
        Err(problem) => check(
            name,
            CheckStatus::Fail,
            format!("cannot read it: {problem}"),
            None,
        ),
    }
}

/// 6. A PVC is `Bound`.
fn pvc_check(namespace: &str, pvc: &str, answer: Result<PersistentVolumeClaim, Problem>) -> Check {
    let name = format!("PVC {pvc}");
    match answer {
        Ok(claim) => {
            let status = claim.status.unwrap_or_default();
            let phase = status.phase.unwrap_or_else(|| "unknown".to_owned());
            if phase == "Bound" {
                let size = status
                    .capacity
                    .and_then(|capacity| capacity.get("storage").map(|quantity| quantity.0.clone()))
                    .map(|size| format!(", {size}"))
                    .unwrap_or_default();
                check(name, CheckStatus::Pass, format!("Bound{size}"), None)
            } else {
                check(
                    name,
                    CheckStatus::Fail,
                    format!("phase {phase}, not Bound"),
                    Some(format!(
                        "kubectl describe pvc {pvc} -n {namespace} shows why (no matching volume or \
                         provisioner; a WaitForFirstConsumer storage class binds only once a pod uses it)"
                    )),
                )
            }
        }
        Err(Problem::NotFound) => check(
            name,
            CheckStatus::Fail,
            format!("not found in {namespace}"),
            Some(format!("create PVC {pvc} in {namespace} (see {INFRA_README})")),
        ),
        Err(problem @ Problem::Forbidden(_)) => check(
            name,
            CheckStatus::Fail,
            format!("cannot read it: {problem}"),
            Some(rbac_fix(&format!("get persistentvolumeclaims in {namespace}"))),
        ),
        Err(problem) => check(
            name,
            CheckStatus::Fail,
            format!("cannot read it: {problem}"),
            None,
        ),
    }
}

/// 7. The nodes carrying the KVM label.
async fn kvm_nodes(client: &Client, spec: &DoctorSpec) -> Check {
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

/// 8. The agent image: the site's own, pinned by digest.
fn agent_image_check(image: &str) -> Check {
    // Whoever can move a tag decides what every agent runs with its credentials.
    let name = "agent image";
    let pin_fix = |example: &str| {
        format!(
            "set AGENTFARM_AGENT_IMAGE to your image by digest, e.g. {example}@sha256:… (the images workflow \
             prints it; or docker buildx imagetools inspect IMAGE:TAG); {INFRA_README}, \"The images\""
        )
    };
    match ImageRef::parse(image) {
        Err(problem) => check(
            name,
            CheckStatus::Fail,
            problem,
            Some(pin_fix("ghcr.io/you/agentfarm-agent")),
        ),
        Ok(reference) if reference.is_placeholder() => check(
            name,
            CheckStatus::Fail,
            format!("{image} is the default placeholder, in no registry: agents cannot start"),
            Some(pin_fix("ghcr.io/you/agentfarm-agent")),
        ),
        Ok(reference) if !reference.is_pinned() => check(
            name,
            CheckStatus::Warn,
            format!(
                "{image} names a tag without a digest: whoever can push that tag decides what agents run"
            ),
            Some(pin_fix(reference.repository())),
        ),
        Ok(_) => check(
            name,
            CheckStatus::Pass,
            format!("{image} (pinned by digest)"),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DoctorSpec {
        DoctorSpec {
            namespace: "agents".to_owned(),
            runtime_classes: vec!["gvisor".to_owned()],
            secrets: Vec::new(),
            pvcs: Vec::new(),
            kvm_label: "agentfarm.dev/kvm=true".to_owned(),
            agent_image: "ghcr.io/owner/agentfarm-agent:0.1.0".to_owned(),
        }
    }

    #[test]
    fn the_agent_image_fails_as_the_placeholder_and_warns_without_a_digest() {
        let placeholder = agent_image_check("agentfarm.invalid/agentfarm-agent");
        assert_eq!(placeholder.status, CheckStatus::Fail);
        assert!(
            placeholder
                .fix
                .as_deref()
                .is_some_and(|fix| fix.contains("AGENTFARM_AGENT_IMAGE"))
        );
        let tagged = agent_image_check("ghcr.io/owner/agentfarm-agent:0.1.0");
        assert_eq!(tagged.status, CheckStatus::Warn);
        assert!(tagged.detail.contains("without a digest"), "{}", tagged.detail);
        assert!(
            tagged
                .fix
                .as_deref()
                .is_some_and(|fix| fix.contains("ghcr.io/owner/agentfarm-agent@sha256:")),
            "the fix names this repository: {:?}",
            tagged.fix
        );
        let pinned = agent_image_check(&format!(
            "ghcr.io/owner/agentfarm-agent@sha256:{}",
            "ab".repeat(32)
        ));
        assert_eq!(pinned.status, CheckStatus::Pass);
    }

    #[test]
    fn a_forbidden_namespace_read_warns_instead_of_failing() {
        let row = namespace_check("agents", Err(Problem::Forbidden("no".to_owned())));
        assert_eq!(row.status, CheckStatus::Warn);
        assert!(
            row.fix
                .unwrap()
                .contains("kubectl get namespace agents --show-labels")
        );
    }

    #[test]
    fn a_missing_namespace_fails() {
        let row = namespace_check("agents", Err(Problem::NotFound));
        assert_eq!(row.status, CheckStatus::Fail);
    }

    #[test]
    fn secret_values_are_reduced_to_non_emptiness() {
        let secret: SecretKeys =
            serde_json::from_str(r#"{"kind":"Secret","data":{"a":"c2VjcmV0","b":""},"type":"Opaque"}"#)
                .unwrap();
        let data = secret.data.unwrap();
        assert_eq!(data.get("a"), Some(&Filled(true)));
        assert_eq!(data.get("b"), Some(&Filled(false)));
        let empty: SecretKeys = serde_json::from_str(r#"{"kind":"Secret"}"#).unwrap();
        assert!(empty.data.is_none());
    }

    #[test]
    fn an_empty_key_fails_and_names_only_the_key() {
        let need = SecretNeed {
            namespace: "system".to_owned(),
            name: "claude".to_owned(),
            keys: vec!["token".to_owned()],
            purpose: "Claude token".to_owned(),
        };
        let row = secret_check(&need, Ok(BTreeMap::from([("token".to_owned(), false)])));
        assert_eq!(row.status, CheckStatus::Fail);
        assert!(row.detail.contains("empty key token"), "{}", row.detail);
    }

    #[test]
    fn only_optional_permissions_missing_warns() {
        let spec = spec();
        let answers = permissions(&spec)
            .into_iter()
            .map(|permission| (permission, Ok(permission.required)));
        let row = rbac_check("agents", answers);
        assert_eq!(row.status, CheckStatus::Warn);
        assert!(row.detail.contains("list nodes (cluster-wide)"), "{}", row.detail);
    }

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

    #[test]
    fn render_aligns_columns_and_adds_fix_lines() {
        let report = DoctorReport {
            checks: vec![
                check("API server", CheckStatus::Pass, "ok", None),
                check(
                    "RuntimeClass gvisor",
                    CheckStatus::Fail,
                    "not found\nreally",
                    Some("apply it".to_owned()),
                ),
            ],
        };
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "STATUS  CHECK                DETAIL");
        assert_eq!(lines[1], "PASS    API server           ok");
        assert_eq!(lines[2], "FAIL    RuntimeClass gvisor  not found really");
        assert_eq!(lines[3], "                             fix: apply it");
        assert!(text.ends_with("1 passed, 0 warned, 1 failed\n"));
        assert!(report.failed());
    }
}

//! Strict typed parsing: each document into its k8s-openapi type, refusing fields the type does not have
//! (k8s-openapi ignores unknown fields, so every document is parsed, written back and compared).

use k8s_openapi::Resource;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, PersistentVolumeClaim, Pod, PodSpec, ResourceQuota, Secret, Service,
    ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Declares [`Object`] and its parser over the kinds the manifests may contain.
macro_rules! kinds {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// A Kubernetes object of a kind the deploy kit uses.
        #[derive(Debug, Clone)]
        #[allow(clippy::large_enum_variant, reason = "every kind is a large object; a test holds a few hundred")]
        pub enum Object {
            $($variant($ty),)*
        }

        /// Parses one document into its typed object; an unknown kind or field is an error.
        pub fn parse(document: &Value) -> Result<Object, String> {
            let api_version = document["apiVersion"].as_str().unwrap_or_default();
            let kind = document["kind"].as_str().unwrap_or_default();
            $(
                if api_version == <$ty as Resource>::API_VERSION && kind == <$ty as Resource>::KIND {
                    return strict::<$ty>(document).map(Object::$variant);
                }
            )*
            Err(format!("{api_version} {kind} is not a kind the deploy kit should contain"))
        }

        impl Object {
            /// The object's kind, e.g. `Deployment`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Object::$variant(_) => <$ty as Resource>::KIND,)*
                }
            }

            /// The object's metadata.
            pub fn metadata(&self) -> &ObjectMeta {
                match self {
                    $(Object::$variant(object) => &object.metadata,)*
                }
            }
        }
    };
}

kinds! {
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    ConfigMap(ConfigMap),
    CronJob(CronJob),
    DaemonSet(DaemonSet),
    Deployment(Deployment),
    Ingress(Ingress),
    Job(Job),
    LimitRange(LimitRange),
    Namespace(Namespace),
    NetworkPolicy(NetworkPolicy),
    PersistentVolumeClaim(PersistentVolumeClaim),
    Pod(Pod),
    ResourceQuota(ResourceQuota),
    Role(Role),
    RoleBinding(RoleBinding),
    RuntimeClass(RuntimeClass),
    Secret(Secret),
    Service(Service),
    ServiceAccount(ServiceAccount),
    StatefulSet(StatefulSet),
    StorageClass(StorageClass),
    ValidatingAdmissionPolicy(ValidatingAdmissionPolicy),
    ValidatingAdmissionPolicyBinding(ValidatingAdmissionPolicyBinding),
}

impl Object {
    /// The pod spec of a pod-running object.
    pub fn pod_spec(&self) -> Option<&PodSpec> {
        match self {
            Object::Pod(pod) => pod.spec.as_ref(),
            Object::Deployment(deployment) => deployment.spec.as_ref()?.template.spec.as_ref(),
            Object::StatefulSet(set) => set.spec.as_ref()?.template.spec.as_ref(),
            Object::DaemonSet(set) => set.spec.as_ref()?.template.spec.as_ref(),
            Object::Job(job) => job.spec.as_ref()?.template.spec.as_ref(),
            Object::CronJob(cron) => cron
                .spec
                .as_ref()?
                .job_template
                .spec
                .as_ref()?
                .template
                .spec
                .as_ref(),
            _ => None,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// The object's namespace (`""` when cluster-scoped).
    pub fn namespace(&self) -> &str {
        self.metadata().namespace.as_deref().unwrap_or_default()
    }

    /// `Kind/namespace/name`, for messages.
    pub fn describe(&self) -> String {
        format!("{}/{}/{}", self.kind(), self.namespace(), self.name())
    }
}

/// Parses every document of a rendering, panicking with every problem at once.
pub fn parse_all(what: &str, documents: &[Value]) -> Vec<Object> {
    let (objects, problems): (Vec<_>, Vec<_>) = documents
        .iter()
        .map(|document| {
            parse(document).map_err(|problem| {
                format!(
                    "{what}: {} {}: {problem}",
                    document["kind"].as_str().unwrap_or("?"),
                    document["metadata"]["name"].as_str().unwrap_or("?")
                )
            })
        })
        .partition(Result::is_ok);
    assert!(
        problems.is_empty(),
        "{}",
        problems
            .into_iter()
            .filter_map(Result::err)
            .collect::<Vec<_>>()
            .join("\n")
    );
    objects.into_iter().filter_map(Result::ok).collect()
}

/// `document` as `T`, or the paths of the fields `T` does not have.
fn strict<T: DeserializeOwned + Serialize>(document: &Value) -> Result<T, String> {
    let typed: T = serde_json::from_value(document.clone()).map_err(|err| err.to_string())?;
    let written = serde_json::to_value(&typed).map_err(|err| err.to_string())?;
    let mut unknown = Vec::new();
    dropped(document, &written, "", &mut unknown);
    if unknown.is_empty() {
        Ok(typed)
    } else {
        Err(format!("unknown fields {}", unknown.join(", ")))
    }
}

/// Collects the paths in `original` that are missing from `written`.
fn dropped(original: &Value, written: &Value, path: &str, unknown: &mut Vec<String>) {
    match (original, written) {
        (Value::Object(fields), Value::Object(kept)) => {
            for (name, value) in fields {
                let here = format!("{path}.{name}");
                match kept.get(name) {
                    Some(kept_value) => dropped(value, kept_value, &here, unknown),
                    None => unknown.push(here),
                }
            }
        }
        (Value::Array(items), Value::Array(kept)) => {
            for (index, item) in items.iter().enumerate() {
                match kept.get(index) {
                    Some(kept_item) => dropped(item, kept_item, &format!("{path}[{index}]"), unknown),
                    None => unknown.push(format!("{path}[{index}]")),
                }
            }
        }
        // Scalars may change form (a quantity `1` is written back as "1"); structure may not.
        (Value::Object(_) | Value::Array(_), _) => unknown.push(path.to_owned()),
        _ => {}
    }
}

#[test]
fn a_field_the_type_does_not_have_is_refused() {
    let document = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "agentfarm-system"},
        "data": {"A": "1"},
    });
    assert!(parse(&document).is_ok());
    let mut misspelt = document;
    misspelt["metadata"]["lables"] = serde_json::json!({"a": "b"});
    let problem = parse(&misspelt).unwrap_err();
    assert!(problem.contains(".metadata.lables"), "{problem}");
    let mut nested = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p"},
        "spec": {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "exept": []}}]}]},
    });
    let problem = parse(&nested).unwrap_err();
    assert!(
        problem.contains(".spec.egress[0].to[0].ipBlock.exept"),
        "{problem}"
    );
    nested["kind"] = "NetworkPolicyy".into();
    assert!(parse(&nested).unwrap_err().contains("not a kind"));
}

/// Every rendering's objects (see [`super::render::every_rendering`]), parsed once.
pub fn every_rendering_parsed() -> &'static [(String, Vec<Object>)] {
    static PARSED: std::sync::OnceLock<Vec<(String, Vec<Object>)>> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| {
        super::render::every_rendering()
            .iter()
            .map(|rendering| {
                let objects = parse_all(&rendering.name, &rendering.documents);
                (rendering.name.clone(), objects)
            })
            .collect()
    })
}

/// The parsed objects of the rendering `name` (e.g. `overlays/hetzner`).
pub fn rendering(name: &str) -> &'static [Object] {
    every_rendering_parsed()
        .iter()
        .find(|(rendering, _)| rendering == name)
        .map(|(_, objects)| objects.as_slice())
        .unwrap_or_else(|| panic!("no rendering {name}"))
}

//! Whether the control plane may do what the runtime does: one SelfSubjectAccessReview per verb.

use agentfarm_shared::api::{Check, CheckStatus};
use futures_util::future::join_all;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};

use super::{DoctorSpec, Problem, RBAC_MANIFEST, call, check};

/// The fix for a `403` on something the runtime needs.
pub(super) fn rbac_fix(what: &str) -> String {
    format!("grant the control plane {what} in {RBAC_MANIFEST}, then kubectl apply -f {RBAC_MANIFEST}")
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
pub(super) async fn rbac(client: &Client, spec: &DoctorSpec) -> Check {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::tests_support::spec;

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
}

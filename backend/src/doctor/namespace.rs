//! The first checks: the API server answers, and the agents namespace exists and enforces Pod Security
//! `restricted`.

use agentfarm_shared::api::{Check, CheckStatus};
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;

use super::{NAMESPACE_MANIFEST, POD_SECURITY_LABEL, Problem, call, check, unreadable};

/// 1. `GET /version`.
pub(super) async fn api_server(client: &Client) -> Check {
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
pub(super) fn namespace_check(namespace: &str, answer: Result<Namespace, Problem>) -> Check {
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
        Err(problem) => unreadable(name, &problem, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! The PersistentVolumeClaims the server needs, bound.

use agentfarm_shared::api::{Check, CheckStatus};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use super::access::rbac_fix;
use super::{INFRA_README, Problem, check, unreadable};

/// 6. A PVC is `Bound`.
pub(super) fn pvc_check(namespace: &str, pvc: &str, answer: Result<PersistentVolumeClaim, Problem>) -> Check {
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
        Err(problem @ Problem::Forbidden(_)) => unreadable(
            name,
            &problem,
            Some(rbac_fix(&format!("get persistentvolumeclaims in {namespace}"))),
        ),
        Err(problem) => unreadable(name, &problem, None),
    }
}

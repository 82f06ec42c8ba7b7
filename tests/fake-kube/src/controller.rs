//! What the Job controller and the kubelet would do: a created Job gets its Pod, and the test drives Pod
//! phases and Job conditions (each a MODIFIED event).

use serde_json::{Value, json};

use crate::kind::Kind;
use crate::status::ApiError;
use crate::store::{Store, random_suffix, timestamp};
use crate::{ContainerState, JobCondition, PodPhase};

/// After Job `job` was created: creates its Pod (`{job}-xxxxx`, template labels plus `job-name`,
/// `controller-uid` and their `batch.kubernetes.io/` forms, an owner reference) and marks the Job active.
pub(crate) fn job_created(store: &mut Store, job: &Value) -> Result<(), ApiError> {
    let namespace = job
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = job
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let uid = job.pointer("/metadata/uid").cloned().unwrap_or(Value::Null);
    let template = job
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut labels = template
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if !labels.is_object() {
        labels = json!({});
    }
    for (key, value) in [
        ("job-name", json!(name)),
        ("batch.kubernetes.io/job-name", json!(name)),
        ("controller-uid", uid.clone()),
        ("batch.kubernetes.io/controller-uid", uid.clone()),
    ] {
        labels[key] = value;
    }
    let pod = json!({
        "metadata": {
            "name": format!("{name}-{}", random_suffix(5)),
            "labels": labels,
            "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or_else(|| json!({})),
            "finalizers": template.pointer("/metadata/finalizers").cloned().unwrap_or_else(|| json!([])),
            "ownerReferences": [{
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": name,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
        "status": {"phase": "Pending"},
    });
    store.create(Kind::Pod, namespace, pod)?;
    let mut job = store.get(Kind::Job, namespace, name)?.clone();
    job["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    job["status"] = json!({"active": 1, "startTime": timestamp(), "ready": 0});
    store.update(Kind::Job, job)?;
    Ok(())
}

/// Sets a Pod's phase and its (first) container's state.
pub(crate) fn set_pod_phase(
    store: &mut Store,
    namespace: &str,
    pod: &str,
    phase: PodPhase,
    container: &ContainerState,
) -> Result<Value, ApiError> {
    let mut object = store.get(Kind::Pod, namespace, pod)?.clone();
    let container_name = object
        .pointer("/spec/containers/0/name")
        .and_then(Value::as_str)
        .unwrap_or("main")
        .to_owned();
    let image = object
        .pointer("/spec/containers/0/image")
        .cloned()
        .unwrap_or(Value::Null);
    let now = timestamp();
    let (state, ready) = match container {
        ContainerState::Waiting { reason } => (json!({"waiting": {"reason": reason}}), false),
        ContainerState::Running => (json!({"running": {"startedAt": now}}), true),
        ContainerState::Terminated { exit_code, reason } => (
            json!({"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": now, "finishedAt": now}}),
            false,
        ),
    };
    let status = &mut object["status"];
    if !status.is_object() {
        *status = json!({});
    }
    status["phase"] = json!(phase.as_str());
    if status.get("startTime").is_none() {
        status["startTime"] = json!(now);
    }
    status["containerStatuses"] = json!([{
        "name": container_name,
        "image": image,
        "imageID": "",
        "ready": ready,
        "started": matches!(container, ContainerState::Running),
        "restartCount": 0,
        "state": state,
    }]);
    status["conditions"] = json!([{"type": "Ready", "status": if ready { "True" } else { "False" }}]);
    store.update(Kind::Pod, object)
}

/// Adds a terminal condition to a Job and updates its counters.
pub(crate) fn set_job_condition(
    store: &mut Store,
    namespace: &str,
    job: &str,
    condition: &JobCondition,
) -> Result<Value, ApiError> {
    let mut object = store.get(Kind::Job, namespace, job)?.clone();
    let now = timestamp();
    let (kind, reason, message) = match condition {
        JobCondition::Complete => ("Complete", "Completed", String::new()),
        JobCondition::Failed { reason, message } => ("Failed", reason.as_str(), message.clone()),
    };
    let status = &mut object["status"];
    if !status.is_object() {
        *status = json!({});
    }
    let mut conditions = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    conditions.push(json!({
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    }));
    status["conditions"] = json!(conditions);
    status["active"] = json!(0);
    status["ready"] = json!(0);
    if kind == "Complete" {
        status["succeeded"] = json!(1);
        status["completionTime"] = json!(now);
    } else {
        status["failed"] = json!(1);
    }
    store.update(Kind::Job, object)
}

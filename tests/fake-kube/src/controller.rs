//! What the Job controller and the kubelet would do: a created Job gets its Pod, and the test (or the process
//! kubelet) drives Pod phases and Job conditions (each a MODIFIED event).

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
    let now = timestamp();
    let state = match container {
        ContainerState::Waiting { reason } => json!({"waiting": {"reason": reason}}),
        ContainerState::Running => json!({"running": {"startedAt": now}}),
        ContainerState::Terminated { exit_code, reason } => {
            json!({"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": now, "finishedAt": now}})
        }
    };
    set_container_state(store, namespace, pod, phase, &state, &[])
}

/// Sets a Pod's phase and its (first) container's `state` (`{"waiting": …}`, `{"running": …}` or
/// `{"terminated": …}`; ready and started while running), plus `extra` top-level status fields (e.g.
/// `podIP`).
pub(crate) fn set_container_state(
    store: &mut Store,
    namespace: &str,
    pod: &str,
    phase: PodPhase,
    state: &Value,
    extra: &[(&str, Value)],
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
    let running = state.get("running").is_some();
    let status = &mut object["status"];
    if !status.is_object() {
        *status = json!({});
    }
    status["phase"] = json!(phase.as_str());
    if status.get("startTime").is_none() {
        status["startTime"] = json!(timestamp());
    }
    for (key, value) in extra {
        status[*key] = value.clone();
    }
    status["containerStatuses"] = json!([{
        "name": container_name,
        "image": image,
        "imageID": "",
        "ready": running,
        "started": running,
        "restartCount": 0,
        "state": state,
    }]);
    status["conditions"] = json!([{"type": "Ready", "status": if running { "True" } else { "False" }}]);
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

/// The name of the Job that controls `pod` (its controller owner reference, else its `job-name` label) and
/// the Job's uid if the owner reference names it.
pub(crate) fn job_of(pod: &Value) -> Option<(String, Option<Value>)> {
    let owner = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|owners| {
            owners.iter().find(|owner| {
                owner.get("kind").and_then(Value::as_str) == Some("Job")
                    && owner.get("controller").and_then(Value::as_bool) == Some(true)
            })
        });
    if let Some(owner) = owner {
        let name = owner.get("name").and_then(Value::as_str)?;
        return Some((name.to_owned(), owner.get("uid").cloned()));
    }
    pod.pointer("/metadata/labels/job-name")
        .and_then(Value::as_str)
        .map(|name| (name.to_owned(), None))
}

/// The Job controlling `pod`, if it still exists (the same Job: its uid matches the owner reference).
pub(crate) fn controlling_job<'a>(store: &'a Store, pod: &Value) -> Option<&'a Value> {
    let (namespace, _) = crate::store::name_of(pod);
    let (name, uid) = job_of(pod)?;
    let job = store.get(Kind::Job, &namespace, &name).ok()?;
    uid.is_none_or(|uid| job.pointer("/metadata/uid") == Some(&uid))
        .then_some(job)
}

/// Whether a Job has a `Complete` or `Failed` condition.
pub(crate) fn job_finished(job: &Value) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|condition| {
                matches!(
                    condition.get("type").and_then(Value::as_str),
                    Some("Complete" | "Failed")
                ) && condition.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// What the Job controller does when `pod` ends: its (unfinished) Job gets `condition`. Nothing if the pod
/// has no Job, the Job is gone, or it already has a terminal condition.
pub(crate) fn pod_ended(store: &mut Store, pod: &Value, condition: &JobCondition) -> Result<(), ApiError> {
    let Some(job) = controlling_job(store, pod) else {
        return Ok(());
    };
    if job_finished(job) {
        return Ok(());
    }
    let (namespace, name) = crate::store::name_of(job);
    set_job_condition(store, &namespace, &name, condition)?;
    Ok(())
}

/// What the Job controller does when `pod` becomes ready (or stops being ready): the Job's `status.ready`.
pub(crate) fn pod_ready(store: &mut Store, pod: &Value, ready: bool) -> Result<(), ApiError> {
    let Some(job) = controlling_job(store, pod) else {
        return Ok(());
    };
    if job_finished(job) {
        return Ok(());
    }
    let mut job = job.clone();
    if !job["status"].is_object() {
        job["status"] = json!({});
    }
    job["status"]["ready"] = json!(i32::from(ready));
    store.update(Kind::Job, job)?;
    Ok(())
}

//! What a run's Job and pod say about its agent, in the run's terms: waiting (and why), unable to start,
//! running, ended (and how), or gone. Pure, so every reason the owner may see is tested here.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::job::CONTAINER;
use crate::runtime::ExitOutcome;

/// What is known of one kind of object: not listed yet, absent, or present.
#[derive(Debug, Clone, Default)]
pub enum Known<T> {
    /// Not listed yet.
    #[default]
    Unknown,
    /// Listed, and not there.
    Absent,
    /// There.
    Present(T),
}

impl<T> Known<T> {
    /// The object, when present.
    pub fn present(&self) -> Option<&T> {
        match self {
            Known::Present(object) => Some(object),
            _ => None,
        }
    }
}

/// Where an agent is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Not enough is known yet.
    Unknown,
    /// Not running yet; why, when there is something to say.
    Waiting(Option<String>),
    /// It never will start, and why (a bad image, a missing Secret).
    Unstartable(String),
    /// The agent's container runs.
    Running,
    /// It ended. `has_log`: the pod is still there, so its log can be read to the end first.
    Ended {
        /// How.
        outcome: ExitOutcome,
        /// Whether the pod (and so its log) is still there.
        has_log: bool,
    },
    /// Neither its Job nor its pod exist.
    Vanished,
}

/// Container waiting reasons that never clear up on their own.
const FATAL_WAITING: [&str; 6] = [
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// The phase the Job and pod show.
pub fn phase(job: &Known<Job>, pod: &Known<Pod>) -> Phase {
    let job_failure = job.present().and_then(job_failure);
    match (job, pod) {
        (_, Known::Present(pod)) => pod_phase(pod, job_failure),
        (Known::Present(job), Known::Absent) => match job_failure {
            Some((reason, message)) => Phase::Ended {
                outcome: failed_job_outcome(&reason, &message),
                has_log: false,
            },
            None if job_complete(job) => Phase::Ended {
                outcome: ExitOutcome {
                    code: Some(0),
                    ..ExitOutcome::default()
                },
                has_log: false,
            },
            None => Phase::Waiting(None),
        },
        (Known::Absent, Known::Absent) => Phase::Vanished,
        _ => Phase::Unknown,
    }
}

fn pod_phase(pod: &Pod, job_failure: Option<(String, String)>) -> Phase {
    let status = pod.status.as_ref();
    let container = status
        .and_then(|status| status.container_statuses.as_ref())
        .and_then(|statuses| {
            statuses
                .iter()
                .find(|c| c.name == CONTAINER)
                .or_else(|| statuses.first())
        });
    let pod_reason = status.and_then(|s| s.reason.clone());
    let pod_message = status.and_then(|s| s.message.clone()).unwrap_or_default();
    let deleting = pod.metadata.deletion_timestamp.is_some();
    let state = container.and_then(|c| c.state.as_ref());
    if let Some(terminated) = state.and_then(|s| s.terminated.as_ref()) {
        let mut outcome = ExitOutcome {
            code: Some(terminated.exit_code),
            signal: terminated.signal,
            ..ExitOutcome::default()
        };
        match terminated.reason.as_deref() {
            Some("OOMKilled") => {
                outcome.error = Some(format!(
                    "OOMKilled: the agent used more memory than its limit{}",
                    memory_limit(pod).map(|m| format!(" ({m})")).unwrap_or_default()
                ));
            }
            _ if pod_reason.as_deref() == Some("Evicted") => {
                outcome.error = Some(format!("evicted by the node: {pod_message}"));
            }
            _ => {}
        }
        if let Some((reason, message)) = job_failure {
            apply_job_failure(&mut outcome, &reason, &message);
        }
        return Phase::Ended {
            outcome,
            has_log: true,
        };
    }
    if state.and_then(|s| s.running.as_ref()).is_some() {
        return Phase::Running;
    }
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    if phase == "Failed" || phase == "Succeeded" || deleting || job_failure.is_some() {
        // Over without a container that ran to the end: evicted before it started, deleted while pending,
        // or stopped by the Job's deadline.
        let mut outcome = ExitOutcome {
            code: (phase == "Succeeded").then_some(0),
            ..ExitOutcome::default()
        };
        if pod_reason.as_deref() == Some("Evicted") {
            outcome.error = Some(format!("evicted by the node: {pod_message}"));
        } else if phase != "Succeeded" {
            outcome.error = Some("the pod was deleted before the agent started".into());
        }
        if let Some((reason, message)) = job_failure {
            apply_job_failure(&mut outcome, &reason, &message);
        }
        return Phase::Ended {
            outcome,
            has_log: container.is_some_and(ran),
        };
    }
    if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
        let reason = waiting.reason.clone().unwrap_or_default();
        let message = waiting.message.clone().unwrap_or_default();
        let text = if message.is_empty() {
            reason.clone()
        } else {
            format!("{reason}: {message}")
        };
        if FATAL_WAITING.contains(&reason.as_str()) {
            return Phase::Unstartable(text);
        }
        return match reason.as_str() {
            "ContainerCreating" | "PodInitializing" | "" => {
                Phase::Waiting(Some("starting the container".into()))
            }
            "ErrImagePull" => Phase::Waiting(Some(format!("pulling the image failed, retrying: {message}"))),
            _ => Phase::Waiting(Some(text)),
        };
    }
    let unschedulable = status.and_then(|s| s.conditions.as_ref()).and_then(|conditions| {
        conditions.iter().find(|c| {
            c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
        })
    });
    match unschedulable {
        Some(condition) => Phase::Waiting(Some(format!(
            "waiting for a node with room (Unschedulable): {}",
            condition.message.clone().unwrap_or_default()
        ))),
        None => Phase::Waiting(None),
    }
}

/// Whether a container ever ran (so it may have written a log).
fn ran(container: &ContainerStatus) -> bool {
    container.started == Some(true)
        || container
            .last_state
            .as_ref()
            .is_some_and(|s| s.terminated.is_some() || s.running.is_some())
}

fn memory_limit(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let container = spec.containers.iter().find(|c| c.name == CONTAINER)?;
    Some(
        container
            .resources
            .as_ref()?
            .limits
            .as_ref()?
            .get("memory")?
            .0
            .clone(),
    )
}

/// The Job's verdict of failure: reason and message. Kubernetes 1.31 and later first set `FailureTarget` (its
/// reason already final, such as `DeadlineExceeded`) and terminate the pods, and set `Failed` only once they
/// are gone, so the agent's container ends under `FailureTarget`.
fn job_failure(job: &Job) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Failed" || c.type_ == "FailureTarget") && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

fn job_complete(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        })
}

fn failed_job_outcome(reason: &str, message: &str) -> ExitOutcome {
    let mut outcome = ExitOutcome::default();
    apply_job_failure(&mut outcome, reason, message);
    if outcome.error.is_none() && !outcome.timed_out {
        outcome.error = Some(format!("the Job failed: {reason}: {message}"));
    }
    outcome
}

/// The Job's verdict outranks the container's: a deadline kill is a timeout, not an exit code.
fn apply_job_failure(outcome: &mut ExitOutcome, reason: &str, message: &str) {
    if reason == "DeadlineExceeded" {
        outcome.timed_out = true;
        outcome.error = None;
    } else if outcome.error.is_none() && outcome.code.is_none_or(|code| code == 0) {
        outcome.error = Some(format!("the Job failed: {reason}: {message}"));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn pod(status: &Value) -> Known<Pod> {
        Known::Present(serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).unwrap())
    }

    fn job(conditions: &Value) -> Known<Job> {
        Known::Present(
            serde_json::from_value(json!({"metadata": {"name": "j"}, "status": {"conditions": conditions}}))
                .unwrap(),
        )
    }

    fn container(state: &Value) -> Value {
        json!({"phase": "Running", "containerStatuses": [{"name": "agent", "image": "i", "imageID": "", "ready": true, "restartCount": 0, "started": true, "state": state}]})
    }

    fn ended(phase: Phase) -> ExitOutcome {
        match phase {
            Phase::Ended { outcome, .. } => outcome,
            other => panic!("not ended: {other:?}"),
        }
    }

    #[test]
    fn unknown_until_both_are_listed_then_gone_when_both_are_absent() {
        assert_eq!(phase(&Known::Unknown, &Known::Absent), Phase::Unknown);
        assert_eq!(phase(&Known::Absent, &Known::Unknown), Phase::Unknown);
        assert_eq!(phase(&Known::Absent, &Known::Absent), Phase::Vanished);
        assert_eq!(phase(&job(&json!([])), &Known::Absent), Phase::Waiting(None));
    }

    #[test]
    fn waiting_reasons_the_owner_sees() {
        let unschedulable = pod(
            &json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory."}]}),
        );
        let Phase::Waiting(Some(why)) = phase(&Known::Unknown, &unschedulable) else {
            panic!("waiting")
        };
        assert!(
            why.contains("Unschedulable") && why.contains("Insufficient memory"),
            "{why}"
        );
        let pulling = pod(
            &json!({"phase": "Pending", "containerStatuses": [{"name": "agent", "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x:1\""}}}]}),
        );
        assert_eq!(
            phase(&Known::Unknown, &pulling),
            Phase::Unstartable("ImagePullBackOff: Back-off pulling image \"x:1\"".into())
        );
    }

    #[test]
    fn how_agents_end() {
        let running = pod(&container(&json!({"running": {}})));
        assert_eq!(phase(&job(&json!([])), &running), Phase::Running);

        let oom = pod(&container(
            &json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
        ));
        let outcome = ended(phase(&job(&json!([])), &oom));
        assert_eq!(outcome.code, Some(137));
        assert!(outcome.error.unwrap().starts_with("OOMKilled"));

        let killed = pod(&container(
            &json!({"terminated": {"exitCode": 143, "reason": "Error"}}),
        ));
        let deadline = job(
            &json!([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]),
        );
        let outcome = ended(phase(&deadline, &killed));
        assert!(outcome.timed_out && outcome.error.is_none());
        assert!(ended(phase(&deadline, &Known::Absent)).timed_out);
        // While the Job controller terminates the pod, the deadline is only its failure target.
        let terminating = job(
            &json!([{"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]),
        );
        let outcome = ended(phase(&terminating, &killed));
        assert!(outcome.timed_out && outcome.error.is_none());

        let evicted = pod(
            &json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: ephemeral-storage."}),
        );
        let outcome = ended(phase(&job(&json!([])), &evicted));
        assert!(outcome.error.unwrap().contains("low on resource"));

        let complete = job(&json!([{"type": "Complete", "status": "True"}]));
        assert_eq!(ended(phase(&complete, &Known::Absent)).code, Some(0));
    }
}

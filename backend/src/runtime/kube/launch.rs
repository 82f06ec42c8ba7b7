//! Creating a run's agent: its capability's Secret first (the pod reads it at start), then its Job, then the
//! Secret handed to the Job as its owner, so that the cluster deletes it with the Job. Every step may be
//! repeated: a second attempt never makes a second Job, and refreshes the Secret.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::KubeSettings;
use super::job::{self, JobError};
use crate::runtime::RunSpec;

/// What the cluster gets for one run.
#[derive(Debug, Clone)]
pub struct Agent {
    /// The Job.
    pub job: Job,
    /// The Secret with the run's capability.
    pub capability: Secret,
}

impl Agent {
    /// The objects for `spec`.
    pub fn new(spec: &RunSpec, settings: &KubeSettings) -> Result<Agent, JobError> {
        Ok(Agent {
            job: job::job(spec, settings)?,
            capability: job::capability_secret(spec),
        })
    }

    /// Creates the Secret, the Job, and makes the Job the Secret's owner.
    pub async fn create(&self, jobs: &Api<Job>, secrets: &Api<Secret>) -> Result<(), kube::Error> {
        let secret_name = self.capability.metadata.name.clone().unwrap_or_default();
        match secrets.create(&PostParams::default(), &self.capability).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let data = json!({"stringData": self.capability.string_data});
                secrets
                    .patch(&secret_name, &PatchParams::default(), &Patch::Merge(&data))
                    .await?;
            }
            Err(err) => return Err(err),
        }
        let job_name = self.job.metadata.name.clone().unwrap_or_default();
        let created = match jobs.create(&PostParams::default(), &self.job).await {
            Ok(job) => job,
            // Already there: an earlier attempt got through. Never a second Job for one run.
            Err(kube::Error::Api(status)) if status.code == 409 => jobs.get(&job_name).await?,
            Err(err) => return Err(err),
        };
        let owner = json!({"metadata": {"ownerReferences": [{
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": job_name,
            "uid": created.metadata.uid,
            "blockOwnerDeletion": false,
        }]}});
        secrets
            .patch(&secret_name, &PatchParams::default(), &Patch::Merge(&owner))
            .await?;
        Ok(())
    }
}

//! Config commands: validate, then store a new version.

use agentfarm_shared::config::{AgentConfig, ConfigSpec, ConfigVersion};
use agentfarm_shared::validate::{self, Violations};
use chrono::Utc;

use super::Farm;
use crate::error::AppError;

impl Farm {
    /// Creates a config whose id is derived from its name.
    pub async fn create_config(&self, spec: ConfigSpec) -> Result<AgentConfig, AppError> {
        self.validate_config(&spec)?;
        let Some(id) = spec.derived_id() else {
            let mut v = Violations::default();
            v.push(
                "name",
                "must contain at least one ASCII letter or digit, from which the config id is made",
            );
            return Err(v.into());
        };
        Ok(self.store.create_config(id, spec, Utc::now()).await?)
    }

    /// Stores `spec` as the next version of config `id`.
    pub async fn update_config(&self, id: String, spec: ConfigSpec) -> Result<AgentConfig, AppError> {
        path_id("config", &id)?;
        self.validate_config(&spec)?;
        Ok(self.store.update_config(id, spec, Utc::now()).await?)
    }

    /// Every field's own rules, and no credential in the owner's texts.
    fn validate_config(&self, spec: &ConfigSpec) -> Result<(), Violations> {
        let mut v = spec.validate().err().unwrap_or_default();
        self.refuse_credentials(
            &mut v,
            &[
                ("name", &spec.name),
                ("description", &spec.description),
                ("system_prompt", &spec.system_prompt),
                ("task_prompt", &spec.task_prompt),
            ],
        );
        v.finish()
    }

    /// Deletes config `id`; refused while any of its runs has not ended.
    pub async fn delete_config(&self, id: String) -> Result<(), AppError> {
        path_id("config", &id)?;
        Ok(self.store.delete_config(id, Utc::now()).await?)
    }

    /// Config `id`.
    pub async fn config(&self, id: String) -> Result<AgentConfig, AppError> {
        path_id("config", &id)?;
        Ok(self.store.config(id).await?)
    }

    /// Every config.
    pub async fn configs(&self) -> Result<Vec<AgentConfig>, AppError> {
        Ok(self.store.configs().await?)
    }

    /// Every version of config `id`, newest first.
    pub async fn config_versions(&self, id: String) -> Result<Vec<ConfigVersion>, AppError> {
        path_id("config", &id)?;
        Ok(self.store.config_versions(id).await?)
    }
}

/// An id taken from a URL path: anything that is not an RFC 1123 label cannot exist.
pub(super) fn path_id(kind: &str, id: &str) -> Result<(), AppError> {
    validate::rfc1123_label(id).map_err(|_| AppError::NotFound(format!("{kind} {id:?}")))
}

//! Agent configs: the template the owner edits. Every edit makes a new immutable [`ConfigVersion`]; a run
//! records the version it was launched from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::tagged::Fields;

use crate::validate::{self, Violations};

/// How an agent authenticates to Claude.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialMode {
    /// A `claude setup-token` token passed as `CLAUDE_CODE_OAUTH_TOKEN`, with a private config dir per agent.
    #[default]
    Token,
    /// Opt-in: a shared `~/.claude` volume. Risky: rotating refresh tokens log agents out, and one agent can
    /// plant hooks that run in the others.
    SharedVolume,
}

/// Where an agent may connect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Egress {
    /// DNS, the control plane's proxies and HTTPS to the public internet (never private ranges, the tailnet or
    /// the metadata service).
    #[default]
    Open,
    /// Nothing but the control plane's proxies (and DNS): no package registry either, unless the site runs a
    /// mirror the policy lets agents reach. Enforced by a NetworkPolicy on Kubernetes; the local runtime
    /// cannot enforce it.
    ProxyOnly,
}

impl Egress {
    /// The wire name, also the value of the pod label [`EGRESS_LABEL`].
    pub fn as_str(self) -> &'static str {
        match self {
            Egress::Open => "open",
            Egress::ProxyOnly => "proxy-only",
        }
    }
}

/// The label that tells an agent's pod's egress level to the NetworkPolicies.
pub const EGRESS_LABEL: &str = "agentfarm.dev/egress";

/// Size limits of a config's text fields, in bytes.
pub mod limits {
    /// Display name.
    pub const NAME: usize = 100;
    /// Description.
    pub const DESCRIPTION: usize = 2_000;
    /// System prompt appended to Claude's own.
    pub const SYSTEM_PROMPT: usize = 32 * 1024;
    /// Task prompt (and a launch's prompt override, and a follow-up message).
    pub const PROMPT: usize = 64 * 1024;
    /// Repositories per config.
    pub const REPOS: usize = 20;
    /// Highest `max_turns`.
    pub const MAX_TURNS: u64 = 1_000;
    /// Longest timeout, in minutes (one day).
    pub const TIMEOUT_MINUTES: u64 = 24 * 60;
    /// Highest budget, in US dollars.
    pub const BUDGET_USD: u32 = 1_000;
}

/// The editable content of a config: what the owner sends to create or update one, and what each version
/// stores. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    /// Display name; a new config's id is derived from it.
    pub name: String,
    /// What this agent is for.
    #[serde(default)]
    pub description: String,
    /// GitHub repositories to clone, `owner/repo` or `owner/repo@branch`.
    #[serde(default)]
    pub repos: Vec<String>,
    /// Appended to Claude Code's system prompt.
    #[serde(default)]
    pub system_prompt: String,
    /// The task, sent as the first user message.
    pub task_prompt: String,
    /// Claude model name or alias.
    #[serde(default = "defaults::model")]
    pub model: String,
    /// CPU, as a Kubernetes quantity (`"2"`, `"500m"`).
    #[serde(default = "defaults::cpu")]
    pub cpu: String,
    /// Memory, as a Kubernetes quantity (`"4Gi"`).
    #[serde(default = "defaults::memory")]
    pub memory: String,
    /// Agent image tag; the server's default when absent.
    #[serde(default)]
    pub image_tag: Option<String>,
    /// Kubernetes RuntimeClass (`gvisor`, `kata-clh`, …); the server's default when absent.
    #[serde(default)]
    pub runtime_class: Option<String>,
    /// Most agentic turns Claude may take (`--max-turns`).
    #[serde(default = "defaults::max_turns")]
    pub max_turns: u32,
    /// Spending cap in US dollars (`--max-budget-usd`), none when absent.
    #[serde(default)]
    pub budget_usd: Option<f64>,
    /// Wall-clock limit of a run, in minutes.
    #[serde(default = "defaults::timeout_minutes")]
    pub timeout_minutes: u32,
    /// How the agent authenticates to Claude.
    #[serde(default)]
    pub credential_mode: CredentialMode,
    /// Where its agent may connect.
    #[serde(default)]
    pub egress: Egress,
    /// When a run stops on the subscription's usage limit, queue its continuation (same branch and pull
    /// request), which starts when the limit resets. Off: the run offers "Resume after reset" instead.
    #[serde(default)]
    pub auto_resume: bool,
}

mod defaults {
    pub fn model() -> String {
        "sonnet".into()
    }
    pub fn cpu() -> String {
        "1".into()
    }
    pub fn memory() -> String {
        "2Gi".into()
    }
    pub fn max_turns() -> u32 {
        100
    }
    pub fn timeout_minutes() -> u32 {
        120
    }
}

impl ConfigSpec {
    /// A spec with the given name and task and every other field at its default.
    pub fn new(name: impl Into<String>, task_prompt: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            repos: Vec::new(),
            system_prompt: String::new(),
            task_prompt: task_prompt.into(),
            model: defaults::model(),
            cpu: defaults::cpu(),
            memory: defaults::memory(),
            image_tag: None,
            runtime_class: None,
            max_turns: defaults::max_turns(),
            budget_usd: None,
            timeout_minutes: defaults::timeout_minutes(),
            credential_mode: CredentialMode::Token,
            egress: Egress::Open,
            auto_resume: false,
        }
    }

    /// Checks every field, returning all that are wrong.
    pub fn validate(&self) -> Result<(), Violations> {
        use validate::{bounded, required_text, text};
        let mut v = Violations::default();
        v.check("name", required_text(&self.name, limits::NAME, true));
        v.check("description", text(&self.description, limits::DESCRIPTION, false));
        if self.repos.len() > limits::REPOS {
            v.push("repos", format!("at most {} repositories", limits::REPOS));
        }
        for (i, repo) in self.repos.iter().enumerate() {
            v.check(format!("repos[{i}]"), validate::repo_ref(repo));
            if self.repos[..i].contains(repo) {
                v.push(format!("repos[{i}]"), format!("{repo} is listed twice"));
            }
        }
        v.check(
            "system_prompt",
            text(&self.system_prompt, limits::SYSTEM_PROMPT, false),
        );
        v.check(
            "task_prompt",
            required_text(&self.task_prompt, limits::PROMPT, false),
        );
        v.check("model", validate::model(&self.model));
        v.check("cpu", validate::cpu_millis(&self.cpu).map(drop));
        v.check("memory", validate::memory_bytes(&self.memory).map(drop));
        if let Some(tag) = &self.image_tag {
            v.check("image_tag", validate::image_tag(tag));
        }
        if let Some(class) = &self.runtime_class {
            v.check("runtime_class", validate::rfc1123_label(class));
        }
        v.check("max_turns", bounded(self.max_turns.into(), 1, limits::MAX_TURNS));
        if let Some(budget) = self.budget_usd {
            v.check("budget_usd", validate::budget_usd(budget, limits::BUDGET_USD));
        }
        v.check(
            "timeout_minutes",
            bounded(self.timeout_minutes.into(), 1, limits::TIMEOUT_MINUTES),
        );
        v.finish()
    }

    /// The config id a new config with this name gets.
    pub fn derived_id(&self) -> Option<String> {
        validate::slugify(&self.name)
    }
}

/// A config as the API returns it: its id, its current version and that version's spec (flattened). Decoded
/// by hand (see [`crate::tagged`]), to the same JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentConfig {
    /// RFC 1123 label, fixed at creation.
    pub id: String,
    /// The current version (1 for a new config; +1 for every update).
    pub version: u32,
    /// When the config was first created.
    #[serde(deserialize_with = "crate::stamp::de")]
    pub created_at: DateTime<Utc>,
    /// When the current version was made.
    #[serde(deserialize_with = "crate::stamp::de")]
    pub updated_at: DateTime<Utc>,
    /// The current version's content.
    #[serde(flatten)]
    pub spec: ConfigSpec,
}

impl<'de> Deserialize<'de> for AgentConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = Fields::read(deserializer)?;
        let (id, version) = (f.req("id")?, f.req("version")?);
        let created_at = crate::stamp::parse(&f.req::<String, _>("created_at")?)?;
        let updated_at = crate::stamp::parse(&f.req::<String, _>("updated_at")?)?;
        // The rest is the spec (which refuses unknown fields, as it does on its own).
        let rest = f.without(&["id", "version", "created_at", "updated_at"]);
        let spec = ConfigSpec::deserialize(&rest).map_err(serde::de::Error::custom)?;
        Ok(AgentConfig {
            id,
            version,
            created_at,
            updated_at,
            spec,
        })
    }
}

/// One immutable version of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigVersion {
    /// The config's id.
    pub config_id: String,
    /// This version's number.
    pub version: u32,
    /// When this version was made.
    #[serde(deserialize_with = "crate::stamp::de")]
    pub created_at: DateTime<Utc>,
    /// The content of this version.
    pub spec: ConfigSpec,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(spec: &ConfigSpec) -> Vec<String> {
        spec.validate()
            .err()
            .map(|v| v.into_errors().into_iter().map(|e| e.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ConfigSpec::new("Fix bugs", "Fix the bugs").validate(), Ok(()));
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut spec = ConfigSpec::new("", "");
        spec.repos = vec!["ok/repo".into(), "../x".into(), "ok/repo".into()];
        spec.cpu = "-1".into();
        spec.memory = "99999999Gi".into();
        spec.model = "".into();
        spec.max_turns = 0;
        spec.budget_usd = Some(f64::NAN);
        spec.runtime_class = Some("Kata".into());
        assert_eq!(
            fields(&spec),
            [
                "name",
                "repos[1]",
                "repos[2]",
                "task_prompt",
                "model",
                "cpu",
                "memory",
                "runtime_class",
                "max_turns",
                "budget_usd"
            ]
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            serde_json::from_str::<ConfigSpec>(r#"{"name":"a","task_prompt":"b","evil":1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `evil`"), "{err}");
    }

    #[test]
    fn egress_wire_names() {
        for egress in [Egress::Open, Egress::ProxyOnly] {
            assert_eq!(serde_json::to_value(egress).unwrap(), egress.as_str());
        }
        let spec: ConfigSpec = serde_json::from_str(r#"{"name":"n","task_prompt":"t"}"#).unwrap();
        assert_eq!(spec.egress, Egress::Open);
    }

    #[test]
    fn credential_mode_wire_names() {
        assert_eq!(
            serde_json::to_string(&CredentialMode::SharedVolume).unwrap(),
            r#""shared-volume""#
        );
    }
}

//! The config editor's model, free of the browser: the form's text fields, turning them into a
//! [`ConfigSpec`] (numbers parsed, blanks made `None`, then the shared validation), resource presets, and
//! which error goes under which field.

use agentfarm_shared::config::{ConfigSpec, CredentialMode, Egress};
use agentfarm_shared::validate::FieldError;

/// Every field the editor shows, by its wire name (also the inputs' `id` and `name`).
pub const FIELDS: [&str; 16] = [
    "name",
    "description",
    "repos",
    "system_prompt",
    "task_prompt",
    "model",
    "cpu",
    "memory",
    "image_tag",
    "runtime_class",
    "max_turns",
    "budget_usd",
    "timeout_minutes",
    "credential_mode",
    "egress",
    "auto_resume",
];

/// A resource preset: name, CPU, memory.
pub const PRESETS: [(&str, &str, &str); 3] = [
    ("Small", "1", "2Gi"),
    ("Medium", "2", "4Gi"),
    ("Large", "4", "8Gi"),
];

/// Runtime classes offered (`""`: the server's default).
pub const RUNTIME_CLASSES: [(&str, &str); 4] = [
    ("", "Server default"),
    ("gvisor", "gVisor"),
    ("kata-clh", "Kata (Cloud Hypervisor)"),
    ("kata-qemu", "Kata (QEMU)"),
];

/// Model names suggested (any name or alias is accepted).
pub const MODELS: [&str; 3] = ["sonnet", "opus", "haiku"];

/// The form as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    /// Display name.
    pub name: String,
    /// What the agent is for.
    pub description: String,
    /// Repositories, one chip each.
    pub repos: Vec<String>,
    /// The repository being typed.
    pub repo_draft: String,
    /// Appended to Claude's system prompt.
    pub system_prompt: String,
    /// The task.
    pub task_prompt: String,
    /// Model name or alias.
    pub model: String,
    /// CPU quantity.
    pub cpu: String,
    /// Memory quantity.
    pub memory: String,
    /// Image tag (blank: default).
    pub image_tag: String,
    /// Runtime class (blank: default).
    pub runtime_class: String,
    /// Most turns.
    pub max_turns: String,
    /// Budget in US dollars (blank: none).
    pub budget_usd: String,
    /// Timeout in minutes.
    pub timeout_minutes: String,
    /// How the agent authenticates.
    pub credential_mode: CredentialMode,
    /// Where the agent may connect.
    pub egress: Egress,
    /// Resume by itself after the usage limit resets.
    pub auto_resume: bool,
}

impl Default for Form {
    fn default() -> Self {
        Form::from_spec(&ConfigSpec::new("", ""))
    }
}

impl Form {
    /// The form showing a spec.
    pub fn from_spec(spec: &ConfigSpec) -> Self {
        Form {
            name: spec.name.clone(),
            description: spec.description.clone(),
            repos: spec.repos.clone(),
            repo_draft: String::new(),
            system_prompt: spec.system_prompt.clone(),
            task_prompt: spec.task_prompt.clone(),
            model: spec.model.clone(),
            cpu: spec.cpu.clone(),
            memory: spec.memory.clone(),
            image_tag: spec.image_tag.clone().unwrap_or_default(),
            runtime_class: spec.runtime_class.clone().unwrap_or_default(),
            max_turns: spec.max_turns.to_string(),
            budget_usd: spec
                .budget_usd
                .map(|b| serde_json::to_string(&b).unwrap_or_default())
                .unwrap_or_default(),
            timeout_minutes: spec.timeout_minutes.to_string(),
            credential_mode: spec.credential_mode,
            egress: spec.egress,
            auto_resume: spec.auto_resume,
        }
    }

    /// Sets a text field by its wire name (unknown names are ignored).
    pub fn set(&mut self, field: &str, value: String) {
        match field {
            "name" => self.name = value,
            "description" => self.description = value,
            "repos" => self.repo_draft = value,
            "system_prompt" => self.system_prompt = value,
            "task_prompt" => self.task_prompt = value,
            "model" => self.model = value,
            "cpu" => self.cpu = value,
            "memory" => self.memory = value,
            "image_tag" => self.image_tag = value,
            "runtime_class" => self.runtime_class = value,
            "max_turns" => self.max_turns = value,
            "budget_usd" => self.budget_usd = value,
            "timeout_minutes" => self.timeout_minutes = value,
            "credential_mode" => {
                self.credential_mode = if value == "shared-volume" {
                    CredentialMode::SharedVolume
                } else {
                    CredentialMode::Token
                }
            }
            "egress" => {
                self.egress = if value == Egress::ProxyOnly.as_str() {
                    Egress::ProxyOnly
                } else {
                    Egress::Open
                }
            }
            "auto_resume" => self.auto_resume = value == "automatic",
            _ => {}
        }
    }

    /// Adds the typed repository as a chip (trimmed; blanks and repeats ignored). True when added.
    pub fn add_repo(&mut self) -> bool {
        let repo = self.repo_draft.trim().to_owned();
        if repo.is_empty() {
            return false;
        }
        self.repo_draft.clear();
        if self.repos.contains(&repo) {
            return false;
        }
        self.repos.push(repo);
        true
    }

    /// Removes the chip at `index`.
    pub fn remove_repo(&mut self, index: usize) {
        if index < self.repos.len() {
            self.repos.remove(index);
        }
    }

    /// Applies a preset by name.
    pub fn preset(&mut self, name: &str) {
        if let Some((_, cpu, memory)) = PRESETS.iter().find(|(n, _, _)| *n == name) {
            self.cpu = (*cpu).to_owned();
            self.memory = (*memory).to_owned();
        }
    }

    /// The preset the resources match, if any.
    pub fn current_preset(&self) -> Option<&'static str> {
        PRESETS
            .iter()
            .find(|(_, cpu, memory)| self.cpu.trim() == *cpu && self.memory.trim() == *memory)
            .map(|(name, _, _)| *name)
    }

    /// The spec the form describes, or every field that is wrong (checked with the server's own rules).
    pub fn to_spec(&self) -> Result<ConfigSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut number = |field: &str, text: &str| -> Option<u32> {
            match text.trim().parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(FieldError {
                        field: field.to_owned(),
                        message: "must be a whole number".to_owned(),
                    });
                    None
                }
            }
        };
        let max_turns = number("max_turns", &self.max_turns);
        let timeout_minutes = number("timeout_minutes", &self.timeout_minutes);
        let budget_usd = match self.budget_usd.trim() {
            "" => None,
            text => match dollars(text) {
                Some(budget) => Some(budget),
                None => {
                    errors.push(FieldError {
                        field: "budget_usd".to_owned(),
                        message: "must be an amount in US dollars, e.g. 5 or 2.50".to_owned(),
                    });
                    None
                }
            },
        };
        let mut repos = self.repos.clone();
        let draft = self.repo_draft.trim();
        if !draft.is_empty() && !repos.iter().any(|r| r == draft) {
            // A repository typed but not yet added still counts.
            repos.push(draft.to_owned());
        }
        let blank_none = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        let spec = ConfigSpec {
            name: self.name.trim().to_owned(),
            description: self.description.clone(),
            repos,
            system_prompt: self.system_prompt.clone(),
            task_prompt: self.task_prompt.clone(),
            model: self.model.trim().to_owned(),
            cpu: self.cpu.trim().to_owned(),
            memory: self.memory.trim().to_owned(),
            image_tag: blank_none(&self.image_tag),
            runtime_class: blank_none(&self.runtime_class),
            max_turns: max_turns.unwrap_or(1),
            budget_usd,
            timeout_minutes: timeout_minutes.unwrap_or(1),
            credential_mode: self.credential_mode,
            egress: self.egress,
            auto_resume: self.auto_resume,
        };
        if let Err(violations) = spec.validate() {
            for error in violations.into_errors() {
                if !errors.iter().any(|e| e.field == error.field) {
                    errors.push(error);
                }
            }
        }
        if errors.is_empty() { Ok(spec) } else { Err(errors) }
    }
}

/// Field errors sorted for display: by field (`repos[1]` stays its own key) and the rest (unknown fields).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldErrors {
    /// Errors of fields the form shows, as (wire name, message), the first per field, in arrival order.
    pub by_field: Vec<(String, String)>,
    /// Errors of fields the form does not show, as `field: message`.
    pub other: Vec<String>,
}

impl FieldErrors {
    /// Sorts errors by field.
    pub fn new(errors: &[FieldError]) -> Self {
        let mut out = FieldErrors::default();
        for error in errors {
            if is_form_field(&error.field) {
                if out.get(&error.field).is_none() {
                    out.by_field.push((error.field.clone(), error.message.clone()));
                }
            } else if error.field.is_empty() {
                out.other.push(error.message.clone());
            } else {
                out.other.push(format!("{}: {}", error.field, error.message));
            }
        }
        out
    }

    /// The error under a field, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.by_field
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, message)| message.as_str())
    }

    /// Errors of the repository chips (`repos[i]`), with their field names.
    pub fn repo_errors(&self) -> Vec<(&str, &str)> {
        self.by_field
            .iter()
            .filter(|(field, _)| field.starts_with("repos["))
            .map(|(field, message)| (field.as_str(), message.as_str()))
            .collect()
    }
}

/// A dollar amount (`5`, `2.50`, `$12.5`, `.75`) as a number, without the standard float parser, whose
/// tables are several KB of wasm. At most 15 digits, so the digits and the power of ten are exact doubles and
/// their one division rounds as `str::parse::<f64>` does.
fn dollars(text: &str) -> Option<f64> {
    let text = text.strip_prefix('$').unwrap_or(text);
    let (whole, cents) = text.split_once('.').unwrap_or((text, ""));
    let digits = || whole.bytes().chain(cents.bytes());
    if !(1..=15).contains(&(whole.len() + cents.len())) || !digits().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mantissa = digits().fold(0u64, |n, digit| n * 10 + u64::from(digit - b'0'));
    let scale = cents.bytes().fold(1.0, |scale: f64, _| scale * 10.0);
    Some(mantissa as f64 / scale)
}

/// True for a field the form shows: one of [`FIELDS`] or `repos[<n>]`.
pub fn is_form_field(field: &str) -> bool {
    FIELDS.contains(&field)
        || field
            .strip_prefix("repos[")
            .and_then(|rest| rest.strip_suffix(']'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Form {
        Form {
            name: "Fix bugs".into(),
            task_prompt: "Fix them".into(),
            ..Form::default()
        }
    }

    #[test]
    fn round_trips_a_spec() {
        let mut spec = ConfigSpec::new("A", "do it");
        spec.repos = vec!["o/r@main".into()];
        spec.budget_usd = Some(2.5);
        spec.runtime_class = Some("gvisor".into());
        spec.credential_mode = CredentialMode::SharedVolume;
        assert_eq!(Form::from_spec(&spec).to_spec(), Ok(spec));
    }

    #[test]
    fn blanks_become_defaults_and_numbers_are_checked() {
        let mut form = valid();
        form.image_tag = "  ".into();
        assert_eq!(form.to_spec().map(|s| s.image_tag), Ok(None));
        form.max_turns = "many".into();
        form.budget_usd = "lots".into();
        form.cpu = "-1".into();
        let fields: Vec<String> = form.to_spec().unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["max_turns", "budget_usd", "cpu"]);
    }

    #[test]
    fn dollar_amounts_parse_as_the_standard_parser_would() {
        for text in [
            "5",
            "2.50",
            "0.1",
            ".75",
            "5.",
            "19.99",
            "0.00000000000001",
            "999999999999999",
        ] {
            assert_eq!(dollars(text), text.parse::<f64>().ok(), "{text}");
        }
        assert_eq!(dollars("$12.5"), Some(12.5));
        for text in [
            "",
            ".",
            "$",
            "lots",
            "1e3",
            "-5",
            "+5",
            "inf",
            "1.2.3",
            "1 000",
            "1234567890123456",
        ] {
            assert_eq!(dollars(text), None, "{text}");
        }
    }

    #[test]
    fn repos_chips() {
        let mut form = valid();
        form.set("repos", " o/r ".into());
        assert!(form.add_repo());
        form.set("repos", "o/r".into());
        assert!(!form.add_repo(), "repeats are ignored");
        form.set("repos", "x/y@dev".into());
        assert_eq!(
            form.to_spec().unwrap().repos,
            ["o/r", "x/y@dev"],
            "a typed repo counts"
        );
        form.repo_draft = "not a repo".into();
        let errors = form.to_spec().unwrap_err();
        assert_eq!(errors[0].field, "repos[1]");
        form.remove_repo(0);
        form.remove_repo(9);
        assert_eq!(form.repos, Vec::<String>::new());
    }

    #[test]
    fn presets() {
        let mut form = valid();
        assert_eq!(form.current_preset(), Some("Small"));
        form.preset("Large");
        assert_eq!((form.cpu.as_str(), form.memory.as_str()), ("4", "8Gi"));
        form.cpu = "3".into();
        assert_eq!(form.current_preset(), None);
    }

    #[test]
    fn errors_go_under_their_fields() {
        let errors = FieldErrors::new(&[
            FieldError {
                field: "repos[1]".into(),
                message: "bad repo".into(),
            },
            FieldError {
                field: "cpu".into(),
                message: "bad cpu".into(),
            },
            FieldError {
                field: "evil".into(),
                message: "unknown field".into(),
            },
        ]);
        assert_eq!(errors.get("cpu"), Some("bad cpu"));
        assert_eq!(errors.repo_errors(), [("repos[1]", "bad repo")]);
        assert_eq!(errors.other, ["evil: unknown field"]);
        assert!(!is_form_field("repos[x]"));
        assert!(is_form_field("timeout_minutes"));
    }
}

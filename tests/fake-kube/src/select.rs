//! Label and field selectors (equality-based: `a=b`, `a==b`, `a!=b`, `a`, `!a`).

use serde_json::Value;

use crate::status::ApiError;

/// One selector term.
#[derive(Debug, Clone)]
enum Term {
    /// `key=value` / `key==value`.
    Equals(String, String),
    /// `key!=value`.
    NotEquals(String, String),
    /// `key` (labels only).
    Exists(String),
    /// `!key` (labels only).
    Missing(String),
}

/// A parsed selector; empty matches everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    terms: Vec<Term>,
}

impl Selector {
    /// Parses `a=b,c!=d,e,!f`. Set-based terms (`in`, `notin`) are rejected with `400`.
    pub(crate) fn parse(text: &str) -> Result<Selector, ApiError> {
        let mut terms = Vec::new();
        for raw in text.split(',').map(str::trim).filter(|raw| !raw.is_empty()) {
            if raw.contains(" in ") || raw.contains(" notin ") || raw.contains('(') {
                return Err(ApiError::bad_request(format!(
                    "fake kube: unsupported set-based selector {raw:?}"
                )));
            }
            let term = if let Some((key, value)) = raw.split_once("!=") {
                Term::NotEquals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some((key, value)) = raw.split_once("==").or_else(|| raw.split_once('=')) {
                Term::Equals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some(key) = raw.strip_prefix('!') {
                Term::Missing(key.trim().to_owned())
            } else {
                Term::Exists(raw.to_owned())
            };
            terms.push(term);
        }
        Ok(Selector { terms })
    }

    /// Whether the object's `metadata.labels` match.
    pub(crate) fn matches_labels(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|labels| labels.get(key)).and_then(Value::as_str);
        self.terms.iter().all(|term| match term {
            Term::Equals(key, value) => label(key) == Some(value.as_str()),
            Term::NotEquals(key, value) => label(key) != Some(value.as_str()),
            Term::Exists(key) => label(key).is_some(),
            Term::Missing(key) => label(key).is_none(),
        })
    }

    /// Whether the object's fields (dotted paths like `metadata.name`, `status.phase`) match.
    pub(crate) fn matches_fields(&self, object: &Value) -> bool {
        let field = |path: &str| {
            let pointer = format!("/{}", path.replace('.', "/"));
            match object.pointer(&pointer) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            }
        };
        self.terms.iter().all(|term| match term {
            Term::Equals(path, value) => field(path) == *value,
            Term::NotEquals(path, value) => field(path) != *value,
            Term::Exists(_) | Term::Missing(_) => false,
        })
    }
}

//! The Secrets the control plane reads: their keys present and non-empty, their values never kept.

use std::collections::BTreeMap;
use std::fmt;

use agentfarm_shared::api::{Check, CheckStatus};
use k8s_openapi::api::core::v1::Secret;
use kube::api::GetParams;
use kube::{Client, Resource};
use serde::Deserialize;

use super::access::rbac_fix;
use super::{Problem, SecretNeed, call, check, unreadable};

/// Whether a Secret value is non-empty; decoding keeps nothing of the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Filled(bool);

impl<'de> Deserialize<'de> for Filled {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Looks at a value's length only.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Filled;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Filled, E> {
                Ok(Filled(!value.is_empty()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Filled, E> {
                Ok(Filled(false))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The part of a Secret the doctor reads: key names, and whether each value is non-empty.
#[derive(Debug, Deserialize)]
struct SecretKeys {
    /// Key → non-empty.
    #[serde(default)]
    data: Option<BTreeMap<String, Filled>>,
}

/// Reads a Secret's key names (and which are empty) without keeping or logging its values: the raw answer
/// is decoded here (not by kube, which logs bodies it cannot decode) and dropped at once.
pub(super) async fn secret_keys(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, bool>, Problem> {
    let request = kube::core::Request::new(Secret::url_path(&(), Some(namespace)))
        .get(name, &GetParams::default())
        .map_err(|error| Problem::Other(error.to_string()))?;
    let text = call(client.request_text(request)).await?;
    let decoded = serde_json::from_str::<SecretKeys>(&text);
    drop(text);
    match decoded {
        Ok(secret) => Ok(secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(key, filled)| (key, filled.0))
            .collect()),
        // The decoder's message could quote a value: say only that it was not a Secret.
        Err(_) => Err(Problem::Other("the answer is not a readable Secret".to_owned())),
    }
}

/// 5. A Secret holds every needed key, non-empty. Names keys only, never values.
pub(super) fn secret_check(need: &SecretNeed, answer: Result<BTreeMap<String, bool>, Problem>) -> Check {
    let namespace = &need.namespace;
    let name = format!("Secret {}", need.name);
    let purpose = if need.purpose.is_empty() {
        String::new()
    } else {
        format!(" ({})", need.purpose)
    };
    let literals: Vec<String> = need
        .keys
        .iter()
        .map(|key| format!("--from-literal={key}=…"))
        .collect();
    let create = format!(
        "kubectl create secret generic {} -n {namespace} {} (or --from-file=KEY=PATH){purpose}",
        need.name,
        literals.join(" ")
    );
    match answer {
        Ok(keys) => {
            let missing: Vec<&str> = need
                .keys
                .iter()
                .filter(|key| !keys.contains_key(*key))
                .map(String::as_str)
                .collect();
            let empty: Vec<&str> = need
                .keys
                .iter()
                .filter(|key| keys.get(*key) == Some(&false))
                .map(String::as_str)
                .collect();
            let names: Vec<&str> = keys.keys().map(String::as_str).collect();
            let has = if names.is_empty() {
                "no keys".to_owned()
            } else {
                format!("keys {}", names.join(", "))
            };
            if missing.is_empty() && empty.is_empty() {
                return check(name, CheckStatus::Pass, format!("has {has}{purpose}"), None);
            }
            let mut problems = Vec::new();
            if !missing.is_empty() {
                problems.push(format!("missing key {}", missing.join(", ")));
            }
            if !empty.is_empty() {
                problems.push(format!("empty key {}", empty.join(", ")));
            }
            let patch: Vec<String> = missing
                .iter()
                .chain(&empty)
                .map(|key| format!("\"{key}\":\"…\""))
                .collect();
            check(
                name,
                CheckStatus::Fail,
                format!("{}; has {has}{purpose}", problems.join("; ")),
                Some(format!(
                    "kubectl patch secret {} -n {namespace} -p '{{\"stringData\":{{{}}}}}'",
                    need.name,
                    patch.join(",")
                )),
            )
        }
        Err(Problem::NotFound) => check(
            name,
            CheckStatus::Fail,
            format!("not found in {namespace}{purpose}"),
            Some(create),
        ),
        Err(problem @ Problem::Forbidden(_)) => unreadable(
            name,
            &problem,
            Some(rbac_fix(&format!("get secrets in {namespace}"))),
        ),
        Err(problem) => unreadable(name, &problem, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_reduced_to_non_emptiness() {
        let secret: SecretKeys =
            serde_json::from_str(r#"{"kind":"Secret","data":{"a":"c2VjcmV0","b":""},"type":"Opaque"}"#)
                .unwrap();
        let data = secret.data.unwrap();
        assert_eq!(data.get("a"), Some(&Filled(true)));
        assert_eq!(data.get("b"), Some(&Filled(false)));
        let empty: SecretKeys = serde_json::from_str(r#"{"kind":"Secret"}"#).unwrap();
        assert!(empty.data.is_none());
    }

    #[test]
    fn an_empty_key_fails_and_names_only_the_key() {
        let need = SecretNeed {
            namespace: "system".to_owned(),
            name: "claude".to_owned(),
            keys: vec!["token".to_owned()],
            purpose: "Claude token".to_owned(),
        };
        let row = secret_check(&need, Ok(BTreeMap::from([("token".to_owned(), false)])));
        assert_eq!(row.status, CheckStatus::Fail);
        assert!(row.detail.contains("empty key token"), "{}", row.detail);
    }
}

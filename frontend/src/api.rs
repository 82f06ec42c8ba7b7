//! The typed REST client: same-origin `fetch` with JSON bodies (`Content-Type: application/json`), errors
//! decoded from the API's one shape (`{"error": {code, message, field?, fields?}}`) so forms can put each
//! message under its field.

use agentfarm_shared::api::{
    ApiError, Check, CheckStatus, DayRuns, DoctorReport, ErrorBody, ServerInfo, routes,
};
use agentfarm_shared::config::{AgentConfig, ConfigSpec, ConfigVersion};
use agentfarm_shared::run::{FollowUp, LaunchRequest, Run};
use agentfarm_shared::usage::{UsageWindow, WindowPart};
use gloo_net::http::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A failed request: the HTTP status (0 when the server was not reached) and the API's error.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The HTTP status, 0 for a network failure.
    pub status: u16,
    /// What went wrong.
    pub error: ApiError,
}

impl Failure {
    fn local(code: &str, message: String) -> Self {
        Failure {
            status: 0,
            error: ApiError {
                code: code.to_owned(),
                message,
                field: None,
                fields: Vec::new(),
            },
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error.message)
    }
}

/// Reads an error response: the API's error shape, or a generic error naming the status.
pub fn decode_error(status: u16, body: &str) -> ApiError {
    match crate::json::decode::<ErrorBody>(body) {
        Ok(body) => body.error,
        Err(_) => {
            let text = body.trim();
            let message = if text.is_empty() || text.len() > 300 || text.starts_with('<') {
                format!("The server answered {status}")
            } else {
                format!("The server answered {status}: {text}")
            };
            ApiError {
                code: format!("http_{status}"),
                message,
                field: None,
                fields: Vec::new(),
            }
        }
    }
}

async fn call(method: Method, url: &str, body: Option<String>) -> Result<String, Failure> {
    let request = RequestBuilder::new(url)
        .method(method)
        .header("Accept", "application/json");
    let request = match body {
        Some(body) => request
            .header("Content-Type", "application/json")
            .body(body)
            .map_err(|e| Failure::local("client", e.to_string()))?,
        None => request
            .build()
            .map_err(|e| Failure::local("client", e.to_string()))?,
    };
    let response = request.send().await.map_err(|_| {
        Failure::local(
            "network",
            "Could not reach the server. Check the connection and try again.".to_owned(),
        )
    })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if response.ok() {
        Ok(text)
    } else {
        Err(Failure {
            status,
            error: decode_error(status, &text),
        })
    }
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
    crate::json::decode(text)
        .map_err(|e| Failure::local("decode", format!("Unexpected answer from the server: {e}")))
}

fn json<B: Serialize>(body: &B) -> Result<String, Failure> {
    serde_json::to_string(body).map_err(|e| Failure::local("client", e.to_string()))
}

async fn get<T: DeserializeOwned>(url: &str) -> Result<T, Failure> {
    parse(&call(Method::GET, url, None).await?)
}

async fn send<B: Serialize, T: DeserializeOwned>(method: Method, url: &str, body: &B) -> Result<T, Failure> {
    parse(&call(method, url, Some(json(body)?)).await?)
}

/// `GET /api/info`.
pub async fn info() -> Result<ServerInfo, Failure> {
    get(routes::INFO).await
}

/// `GET /api/usage`: the subscription's usage window, if the model ever stated one.
pub async fn usage() -> Result<Option<UsageWindow>, Failure> {
    let text = call(Method::GET, routes::USAGE, None).await?;
    let value = serde_json::from_str::<Value>(&text).map_err(|_| {
        Failure::local(
            "decode",
            "Unexpected answer from the server: not a usage window".to_owned(),
        )
    })?;
    Ok(usage_window(&value))
}

/// Reads a [`UsageWindow`] by hand (`null`: none), as [`doctor_report`] does, for the same reason.
fn usage_window(value: &Value) -> Option<UsageWindow> {
    let time = |value: &Value, key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            // Strict RFC 3339, as shared's decoders read timestamps: chrono's parsers cost several KB.
            .and_then(agentfarm_shared::stamp::rfc3339)
    };
    let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let part = |key: &str| {
        let part = value.get(key).unwrap_or(&Value::Null);
        WindowPart {
            status: text(part, "status"),
            resets_at: time(part, "resets_at"),
            utilization: part.get("utilization").and_then(Value::as_f64),
        }
    };
    Some(UsageWindow {
        status: text(value, "status")?,
        resets_at: time(value, "resets_at"),
        representative_claim: text(value, "representative_claim"),
        five_hour: part("five_hour"),
        seven_day: part("seven_day"),
        observed_at: time(value, "observed_at")?,
    })
}

/// `GET /api/history`: how runs ended, day by day.
pub async fn history() -> Result<Vec<DayRuns>, Failure> {
    let text = call(Method::GET, routes::HISTORY, None).await?;
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|value| run_history(&value))
        .ok_or_else(|| {
            Failure::local(
                "decode",
                "Unexpected answer from the server: not a run history".to_owned(),
            )
        })
}

/// Reads a [`agentfarm_shared::api::RunHistory`]'s days by hand, as [`doctor_report`] does, for the same
/// reason.
fn run_history(value: &Value) -> Option<Vec<DayRuns>> {
    let count = |day: &Value, key: &str| day.get(key)?.as_u64().and_then(|n| u32::try_from(n).ok());
    value
        .get("days")?
        .as_array()?
        .iter()
        .map(|day| {
            Some(DayRuns {
                day: day.get("day")?.as_str()?.to_owned(),
                succeeded: count(day, "succeeded")?,
                failed: count(day, "failed")?,
                stopped: count(day, "stopped")?,
                cost_usd: day.get("cost_usd")?.as_f64()?,
            })
        })
        .collect()
}

/// `GET /api/doctor`: the cluster checks.
pub async fn doctor() -> Result<DoctorReport, Failure> {
    let text = call(Method::GET, routes::DOCTOR, None).await?;
    serde_json::from_str::<Value>(&text)
        .ok()
        .as_ref()
        .and_then(doctor_report)
        .ok_or_else(|| {
            Failure::local(
                "decode",
                "Unexpected answer from the server: not a doctor report".to_owned(),
            )
        })
}

/// Reads a [`DoctorReport`] by hand: serde's derived decoders for it and its rows cost more wasm than this.
fn doctor_report(value: &Value) -> Option<DoctorReport> {
    let text = |row: &Value, key: &str| row.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut checks = Vec::new();
    for row in value.get("checks")?.as_array()? {
        checks.push(Check {
            name: text(row, "name")?,
            status: match row.get("status")?.as_str()? {
                "pass" => CheckStatus::Pass,
                "warn" => CheckStatus::Warn,
                "fail" => CheckStatus::Fail,
                _ => return None,
            },
            detail: text(row, "detail")?,
            fix: text(row, "fix"),
        });
    }
    Some(DoctorReport { checks })
}

/// `GET /api/configs`.
pub async fn configs() -> Result<Vec<AgentConfig>, Failure> {
    get(routes::CONFIGS).await
}

/// `GET /api/configs/{id}`.
pub async fn config(id: &str) -> Result<AgentConfig, Failure> {
    get(&routes::with_id(routes::CONFIG, &encode(id))).await
}

/// `GET /api/configs/{id}/versions`, newest first.
pub async fn config_versions(id: &str) -> Result<Vec<ConfigVersion>, Failure> {
    get(&routes::with_id(routes::CONFIG_VERSIONS, &encode(id))).await
}

/// `POST /api/configs`.
pub async fn create_config(spec: &ConfigSpec) -> Result<AgentConfig, Failure> {
    send(Method::POST, routes::CONFIGS, spec).await
}

/// `PUT /api/configs/{id}`: a new version.
pub async fn update_config(id: &str, spec: &ConfigSpec) -> Result<AgentConfig, Failure> {
    send(Method::PUT, &routes::with_id(routes::CONFIG, &encode(id)), spec).await
}

/// `DELETE /api/configs/{id}`.
pub async fn delete_config(id: &str) -> Result<(), Failure> {
    call(
        Method::DELETE,
        &routes::with_id(routes::CONFIG, &encode(id)),
        None,
    )
    .await
    .map(drop)
}

/// `GET /api/runs?limit=`, newest first.
pub async fn runs(limit: u32) -> Result<Vec<Run>, Failure> {
    get(&format!("{}?limit={limit}", routes::RUNS)).await
}

/// `GET /api/runs/{id}`.
pub async fn run(id: &str) -> Result<Run, Failure> {
    get(&routes::with_id(routes::RUN, &encode(id))).await
}

/// `POST /api/runs`: launches a config's current version (its own task, or the request's; a new branch, or
/// the one of the run it continues).
pub async fn launch(request: &LaunchRequest) -> Result<Run, Failure> {
    send(Method::POST, routes::RUNS, &LaunchBody(request)).await
}

/// `POST /api/runs/{id}/stop`.
pub async fn stop(id: &str) -> Result<Run, Failure> {
    parse(
        &call(
            Method::POST,
            &routes::with_id(routes::RUN_STOP, &encode(id)),
            None,
        )
        .await?,
    )
}

/// `POST /api/runs/{id}/messages`: a follow-up.
pub async fn send_message(id: &str, text: &str) -> Result<Run, Failure> {
    let body = FollowUp {
        text: text.to_owned(),
    };
    send(
        Method::POST,
        &routes::with_id(routes::RUN_MESSAGES, &encode(id)),
        &body,
    )
    .await
}

/// `DELETE /api/runs/{id}`.
pub async fn delete_run(id: &str) -> Result<(), Failure> {
    call(Method::DELETE, &routes::with_id(routes::RUN, &encode(id)), None)
        .await
        .map(drop)
}

/// A launch body with only the fields that are set (the server refuses nothing here, but stays terse).
struct LaunchBody<'a>(&'a LaunchRequest);

impl Serialize for LaunchBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("config_id", &self.0.config_id)?;
        if let Some(prompt) = &self.0.prompt {
            map.serialize_entry("prompt", prompt)?;
        }
        if let Some(run) = &self.0.continue_run {
            map.serialize_entry("continue_run", run)?;
        }
        map.end()
    }
}

/// Percent-encodes a path segment (ids are RFC 1123 labels or ULIDs, but a typed URL may hold anything).
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_keep_their_fields() {
        let body = r#"{"error":{"code":"invalid","message":"2 fields are invalid","field":"cpu","fields":[{"field":"cpu","message":"bad"},{"field":"repos[1]","message":"worse"}]}}"#;
        let error = decode_error(400, body);
        assert_eq!(error.code, "invalid");
        assert_eq!(error.field.as_deref(), Some("cpu"));
        assert_eq!(error.fields[1].field, "repos[1]");
    }

    #[test]
    fn other_errors_name_the_status() {
        assert_eq!(decode_error(502, "").message, "The server answered 502");
        assert_eq!(decode_error(502, "<html>…").code, "http_502");
        assert_eq!(decode_error(500, "oops").message, "The server answered 500: oops");
    }

    #[test]
    fn launch_body_is_terse_and_segments_are_encoded() {
        let request = LaunchRequest {
            config_id: "hello".into(),
            prompt: None,
            continue_run: None,
        };
        assert_eq!(
            serde_json::to_string(&LaunchBody(&request)).unwrap(),
            r#"{"config_id":"hello"}"#
        );
        assert_eq!(encode("a b/../c"), "a%20b%2F..%2Fc");
        assert_eq!(encode("01jabc-x"), "01jabc-x");
    }

    #[test]
    fn usage_windows_decode_by_hand_as_serde_writes_them() {
        let headers: Vec<(String, String)> = [
            ("status", "rejected"),
            ("reset", "1800000600"),
            ("representative-claim", "five_hour"),
            ("5h-status", "rejected"),
            ("5h-reset", "1800000600"),
            ("5h-utilization", "1.0"),
            ("7d-utilization", "0.35"),
        ]
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
        let observed = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let window = UsageWindow::from_headers(&headers, observed).unwrap();
        let value = serde_json::to_value(&window).unwrap();
        assert_eq!(usage_window(&value), Some(window));
        assert_eq!(usage_window(&Value::Null), None);
    }

    #[test]
    fn doctor_reports_decode_by_hand_as_serde_writes_them() {
        let report = DoctorReport {
            checks: vec![
                Check {
                    name: "API server".into(),
                    status: CheckStatus::Pass,
                    detail: "reachable".into(),
                    fix: None,
                },
                Check {
                    name: "RuntimeClass gvisor".into(),
                    status: CheckStatus::Fail,
                    detail: "missing".into(),
                    fix: Some("kubectl apply -k manifests/overlays/hetzner".into()),
                },
                Check {
                    name: "Runtime".into(),
                    status: CheckStatus::Warn,
                    detail: "local".into(),
                    fix: None,
                },
            ],
        };
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(doctor_report(&value), Some(report));
        assert_eq!(
            doctor_report(&serde_json::json!({"checks": [{"name": "x", "status": "odd", "detail": ""}]})),
            None
        );
        assert_eq!(doctor_report(&serde_json::json!({})), None);
    }

    #[test]
    fn run_histories_decode_by_hand_as_serde_writes_them() {
        let history = agentfarm_shared::api::RunHistory {
            days: vec![
                DayRuns {
                    day: "2026-12-06".into(),
                    ..DayRuns::default()
                },
                DayRuns {
                    day: "2026-12-07".into(),
                    succeeded: 3,
                    failed: 1,
                    stopped: 2,
                    cost_usd: 1.25,
                },
            ],
        };
        let value = serde_json::to_value(&history).unwrap();
        assert_eq!(run_history(&value), Some(history.days));
        assert_eq!(run_history(&serde_json::json!({"days": [{"day": "x"}]})), None);
    }
}

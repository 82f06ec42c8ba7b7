//! Bad input gets a 4xx with a JSON error naming the field, and nothing is created.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestServer, respond};

fn config(overrides: &Value) -> Value {
    let mut body = json!({"name": "Fix bugs", "task_prompt": "Fix the bugs", "repos": ["octo/repo"]});
    for (key, value) in overrides.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// Every refused case: the body, and the field the error must name.
fn cases() -> Vec<(Value, &'static str)> {
    let long_repo = format!("octo/{}", "r".repeat(101));
    vec![
        (config(&json!({"name": ""})), "name"),
        (config(&json!({"name": "   "})), "name"),
        (config(&json!({"name": "n".repeat(101)})), "name"),
        (config(&json!({"name": "two\nlines"})), "name"),
        (config(&json!({"name": "日本語"})), "name"),
        (config(&json!({"repos": ["../x"]})), "repos[0]"),
        (config(&json!({"repos": ["-u"]})), "repos[0]"),
        (config(&json!({"repos": ["a/b/c"]})), "repos[0]"),
        (config(&json!({"repos": ["a/b.git"]})), "repos[0]"),
        (config(&json!({"repos": ["octo/ok", "a /b"]})), "repos[1]"),
        (config(&json!({"repos": ["a/b\t"]})), "repos[0]"),
        (config(&json!({"repos": ["ä/b"]})), "repos[0]"),
        (config(&json!({"repos": [long_repo]})), "repos[0]"),
        (config(&json!({"repos": "octo/repo"})), "repos"),
        (config(&json!({"cpu": "-1"})), "cpu"),
        (config(&json!({"cpu": "1e3"})), "cpu"),
        (config(&json!({"cpu": "NaN"})), "cpu"),
        (config(&json!({"memory": "99999999Gi"})), "memory"),
        (config(&json!({"memory": "-1"})), "memory"),
        (config(&json!({"max_turns": -1})), "max_turns"),
        (config(&json!({"max_turns": 0})), "max_turns"),
        (config(&json!({"budget_usd": 0})), "budget_usd"),
        (config(&json!({"budget_usd": "NaN"})), "budget_usd"),
        (config(&json!({"timeout_minutes": 1e9})), "timeout_minutes"),
        (config(&json!({"runtime_class": "Kata QEMU"})), "runtime_class"),
        (config(&json!({"image_tag": "-latest"})), "image_tag"),
        (
            config(&json!({"model": "--dangerously-skip-permissions"})),
            "model",
        ),
        (config(&json!({"credential_mode": "root"})), "credential_mode"),
        (config(&json!({"evil": true})), "evil"),
        (json!({"task_prompt": "no name"}), "name"),
    ]
}

/// Each bad config is a 400 naming its field; none is stored.
#[tokio::test]
async fn bad_configs_are_refused_and_not_stored() {
    let server = TestServer::start().await;
    for (body, field) in cases() {
        let (status, error) = server.post("/api/configs", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {error}");
        assert_eq!(error["error"]["code"], "invalid", "{error}");
        assert_eq!(error["error"]["field"], field, "{body} -> {error}");
        assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(server.get("/api/configs").await, (StatusCode::OK, json!([])));
}

/// Several bad fields at once are all named.
#[tokio::test]
async fn every_bad_field_is_named_at_once() {
    let server = TestServer::start().await;
    let body = config(&json!({"repos": ["../x", "ok/ok"], "cpu": "1e3", "memory": "NaN"}));
    let (status, error) = server.post("/api/configs", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> = error["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["repos[0]", "cpu", "memory"]);
}

/// Wrong content type, cross-site requests and oversized bodies are refused before anything happens.
#[tokio::test]
async fn transport_level_refusals() {
    let server = TestServer::start().await;
    let url = format!("{}/api/configs", server.url);
    let valid = config(&json!({})).to_string();
    let plain = crate::harness::client_builder().build().unwrap();

    let (status, error) = respond(
        plain
            .post(&url)
            .header("content-type", "text/plain")
            .header("origin", &server.url)
            .body(valid.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{error}");
    assert_eq!(error["error"]["code"], "unsupported_media_type");

    let (status, _) = respond(plain.post(&url).body(valid.clone())).await;
    assert_eq!(
        status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "a body without a content type"
    );

    let cross_origin = plain
        .post(&url)
        .header("content-type", "application/json")
        .header("origin", "https://evil.example");
    let (status, error) = respond(cross_origin.body(valid.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert_eq!(error["error"]["code"], "forbidden");

    let cross_site = plain
        .post(&url)
        .header("content-type", "application/json")
        .header("sec-fetch-site", "cross-site");
    assert_eq!(
        respond(cross_site.body(valid.clone())).await.0,
        StatusCode::FORBIDDEN
    );

    let rebinding = plain
        .get(format!("{}/api/configs", server.url))
        .header("host", "evil.example");
    assert_eq!(
        respond(rebinding).await.0,
        StatusCode::FORBIDDEN,
        "an unknown Host is refused"
    );

    let huge = config(&json!({"task_prompt": "x".repeat(300 * 1024)}));
    let (status, error) = server.post("/api/configs", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert_eq!(error["error"]["code"], "payload_too_large");

    let (status, error) = respond(
        server
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, _) = respond(
        server
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(deep),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "deep nesting is refused, not a stack overflow"
    );

    assert_eq!(server.get("/api/configs").await, (StatusCode::OK, json!([])));
    assert_eq!(server.get("/healthz").await.0, StatusCode::OK);
}

/// Runs: an unknown config, a bad prompt or a bad filter are refused, naming the field; nothing is queued.
#[tokio::test]
async fn bad_run_requests() {
    let server = TestServer::start().await;
    let id = server.create_config("Fix bugs", "Fix the bugs").await;
    for (body, field) in [
        (json!({"config_id": "nope"}), "config_id"),
        (json!({"config_id": "Not An Id"}), "config_id"),
        (json!({"config_id": id, "prompt": " "}), "prompt"),
        (
            json!({"config_id": id, "prompt": "x".repeat(70 * 1024)}),
            "prompt",
        ),
        (json!({"config_id": id, "extra": 1}), "extra"),
        (json!({}), "config_id"),
    ] {
        let (status, error) = server.post("/api/runs", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {error}");
        assert_eq!(error["error"]["field"], field, "{body} -> {error}");
    }
    let (status, error) = server.get("/api/runs?state=done").await;
    assert_eq!(
        (status, &error["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("state"))
    );
    assert_eq!(server.get("/api/runs").await, (StatusCode::OK, json!([])));
    assert_eq!(
        server.get("/api/runs/does-not-exist").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/api/runs/..%2F..%2Fetc").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = server
        .post("/api/runs/does-not-exist/messages", json!({"text": "hi"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The WebSocket upgrade is refused (403, no upgrade) for a foreign or missing Origin.
#[tokio::test]
async fn websocket_origin_is_checked_before_the_upgrade() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start().await;
    for origin in [Some("https://evil.example"), None] {
        let mut request = format!("{}/api/ws", server.url.replace("http://", "ws://"))
            .into_client_request()
            .unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
            other => panic!("origin {origin:?}: expected 403, got {other:?}"),
        }
    }
    server.socket().await;
}

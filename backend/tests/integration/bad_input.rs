//! Bad input gets a 4xx with a JSON error naming the field, and nothing is created.

use reqwest::StatusCode;
use serde_json::{Value, json};

use agentfarm_shared::ws::ServerFrame;

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

/// CI-07 (CSRF): a foreign `Origin` and `Sec-Fetch-Site: cross-site` are 403, JSON sent as `text/plain` (a
/// "simple" request any page may send) is 415, our own origin with JSON is 201; no response, a preflight
/// included, carries a CORS header, and only the allowed request created anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_07_csrf() {
    let server = TestServer::start().await;
    let url = format!("{}/api/configs", server.url);
    let valid = config(&json!({})).to_string();
    let plain = crate::harness::client_builder().build().unwrap();
    let json_post = || plain.post(&url).header("content-type", "application/json");
    let requests = [
        (
            "(a) a foreign Origin",
            json_post().header("origin", "https://evil.example"),
            StatusCode::FORBIDDEN,
        ),
        (
            "(b) no Origin, Sec-Fetch-Site: cross-site",
            json_post().header("sec-fetch-site", "cross-site"),
            StatusCode::FORBIDDEN,
        ),
        (
            "(c) JSON as text/plain",
            plain
                .post(&url)
                .header("content-type", "text/plain")
                .header("origin", &server.url),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "(c) a body without a content type",
            plain.post(&url),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "(d) our own origin with JSON",
            json_post()
                .header("origin", &server.url)
                .header("sec-fetch-site", "same-origin"),
            StatusCode::CREATED,
        ),
    ];
    for (case, request, expected) in requests {
        let response = request.body(valid.clone()).send().await.unwrap();
        let status = response.status();
        assert_no_cors(case, response.headers());
        let body = response.text().await.unwrap();
        assert_eq!(status, expected, "{case}: {body}");
        if status == StatusCode::FORBIDDEN {
            assert!(body.contains(r#""code":"forbidden""#), "{case}: {body}");
        }
    }
    let preflight = plain
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_no_cors("a CORS preflight", preflight.headers());
    assert!(!preflight.status().is_success(), "a preflight is never approved");
    let (_, stored) = server.get("/api/configs").await;
    assert_eq!(
        stored.as_array().map(Vec::len),
        Some(1),
        "only (d) created a config"
    );
}

fn assert_no_cors(case: &str, headers: &reqwest::header::HeaderMap) {
    let cors: Vec<&str> = headers
        .keys()
        .map(reqwest::header::HeaderName::as_str)
        .filter(|name| name.starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{case}: CORS headers {cors:?}");
}

/// A Host that is not ours (DNS rebinding) and a body that is not JSON are refused before anything happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_level_refusals() {
    let server = TestServer::start().await;
    let url = format!("{}/api/configs", server.url);
    let plain = crate::harness::client_builder().build().unwrap();

    let rebinding = plain
        .get(format!("{}/api/configs", server.url))
        .header("host", "evil.example");
    assert_eq!(
        respond(rebinding).await.0,
        StatusCode::FORBIDDEN,
        "an unknown Host is refused"
    );

    let (status, error) = respond(
        server
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");

    assert_eq!(server.get("/api/configs").await, (StatusCode::OK, json!([])));
}

/// What the server answers to a JSON POST of `/api/configs` announcing `length` bytes, read before sending
/// any of them.
async fn too_large_answer(url: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/configs HTTP/1.1\r\nHost: {address}\r\nOrigin: {url}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may keep the connection open to drain what it refused: read until the JSON error has come.
    let mut answer = Vec::new();
    crate::harness::within(async {
        let mut chunk = [0; 4096];
        while !String::from_utf8_lossy(&answer).ends_with("}}") {
            let read = stream.read(&mut chunk).await.unwrap();
            assert!(
                read > 0,
                "closed without an answer: {}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&chunk[..read]);
        }
    })
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// CI-11 (size and shape limits): a 3 MB body gets 413, JSON nested 10,000 deep 400 (not a stack overflow),
/// a prompt over its limit 400 naming the field, a WebSocket frame over the limit a close with 1009; nothing
/// is created and the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_11_size_and_shape_limits() {
    let server = TestServer::start().await;
    let url = format!("{}/api/configs", server.url);

    // Answered from the head alone, before a byte of the body: a client still sending 3 MB could otherwise
    // see the connection close under it instead of the answer.
    let head = too_large_answer(&server.url, 3 * 1024 * 1024).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("payload_too_large"), "{head}");

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, error) = respond(
        server
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(deep),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");

    let long_prompt = config(&json!({"task_prompt": "x".repeat(100 * 1024)}));
    let (status, error) = server.post("/api/configs", long_prompt).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["error"]["field"], "task_prompt", "{error}");

    let mut socket = server.socket().await;
    assert!(matches!(socket.next().await, ServerFrame::Snapshot { .. }));
    socket
        .send_text("x".repeat(agentfarm_shared::ws::MAX_CLIENT_FRAME_BYTES + 1))
        .await;
    assert_eq!(socket.close_code().await, 1009, "message too big");

    assert_eq!(server.get("/api/configs").await, (StatusCode::OK, json!([])));
    assert_eq!(server.get("/healthz").await.0, StatusCode::OK);
    let mut socket = server.socket().await;
    assert!(matches!(socket.next().await, ServerFrame::Snapshot { .. }));
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

/// CI-08 (cross-site WebSocket hijacking): the upgrade is refused with 403, before any upgrade, for a foreign
/// Origin, a missing one and a cross-site fetch; our own origin gets 101 Switching Protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_08_websocket_origin() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start().await;
    let request = |origin: Option<&str>, fetch_site: Option<&str>| {
        let mut request = format!("{}/api/ws", server.url.replace("http://", "ws://"))
            .into_client_request()
            .unwrap();
        for (name, value) in [("origin", origin), ("sec-fetch-site", fetch_site)] {
            if let Some(value) = value {
                request.headers_mut().insert(name, value.parse().unwrap());
            }
        }
        request
    };
    let refused = [
        request(Some("https://evil.example"), None),
        request(None, None),
        request(Some(&server.url), Some("cross-site")),
    ];
    for attempt in refused {
        let described = format!("{:?}", attempt.headers());
        match tokio_tungstenite::connect_async(attempt).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{described}");
            }
            other => panic!("{described}: expected 403, got {other:?}"),
        }
    }
    let (_, response) = tokio_tungstenite::connect_async(request(Some(&server.url), None))
        .await
        .expect("our own origin upgrades");
    assert_eq!(response.status(), 101);
}

/// Posts one config per value of `field`, each expecting 400 naming `field`; then checks nothing was stored.
async fn refused_values(server: &TestServer, field: &str, values: &[&str]) {
    for value in values {
        let (status, error) = server
            .post("/api/configs", config(&json!({ field: value })))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value:?} -> {error}");
        assert_eq!(error["error"]["field"], field, "{field}={value:?} -> {error}");
    }
    assert_eq!(server.get("/api/configs").await, (StatusCode::OK, json!([])));
}

/// CI-03 (image reference): a config names only a tag of the server's one agent image (the repository is a
/// server setting, so it is the whole allowlist); another registry or repository, a 129-character tag,
/// whitespace, a digest or a tag+digest pair are refused, and a valid tag is kept as sent.
#[tokio::test]
async fn ci_03_image_reference() {
    let server = TestServer::start().await;
    let long = "a".repeat(129);
    let digest = format!("1.0@sha256:{}", "a".repeat(64));
    let plain_digest = format!("sha256:{}", "b".repeat(64));
    refused_values(
        &server,
        "image_tag",
        &[
            "evil.io/x:1",
            "evil.io/x",
            "x:1",
            &long,
            " 1.0",
            "1.0 ",
            "1.0\n",
            "1 0",
            &digest,
            &plain_digest,
            ".hidden",
            "-x",
            "",
        ],
    )
    .await;
    let (status, created) = server
        .post("/api/configs", config(&json!({"image_tag": "1.2.3-rc_1"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["image_tag"], "1.2.3-rc_1");
}

/// CI-04 (resource quantities): negative, exponent, exabyte, sub-millicore, NaN, overflowing and spaced
/// quantities are refused naming the field, nothing is created; in-range values are kept in the canonical
/// forms the validator admits (which Kubernetes parses as written).
#[tokio::test]
async fn ci_04_resource_quantities() {
    let server = TestServer::start().await;
    refused_values(
        &server,
        "cpu",
        &[
            "-1",
            "1e3",
            "0.0001m",
            "0.0001",
            "NaN",
            "inf",
            " 1",
            "1 ",
            "1 m",
            "99999999999",
            "1Gi",
            "",
        ],
    )
    .await;
    refused_values(
        &server,
        "memory",
        &[
            "-1Gi",
            "1e3",
            "1Ei",
            "1.5Gi",
            "NaN",
            "99999999999Gi",
            " 1Gi",
            "1Gi ",
            "1 Gi",
            "1gb",
            "",
        ],
    )
    .await;
    for (cpu, memory) in [("500m", "512Mi"), ("1.5", "4Gi"), ("2", "1G")] {
        let (status, created) = server
            .post(
                "/api/configs",
                config(&json!({"name": format!("q {cpu} {memory}"), "cpu": cpu, "memory": memory})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{cpu} {memory}: {created}");
        assert_eq!(
            (&created["cpu"], &created["memory"]),
            (&json!(cpu), &json!(memory))
        );
    }
}

/// CI-01 (repository names): every case of the list — path traversal, option-looking names, extra path
/// parts, `.git`, dot names, over-long repo and owner, a double hyphen in the owner, Unicode, an encoded
/// slash, a newline, empty — gets 400 naming `repos[0]` and creates nothing, so no agent can ever be
/// launched with one; `a-b/c.d_e` is accepted. (The runner passes the clone URL after `--`: its own test.)
#[tokio::test]
async fn ci_01_repo_names() {
    let server = TestServer::start().await;
    let long_repo = format!("octo/{}", "r".repeat(101));
    let long_owner = format!("{}/repo", "o".repeat(40));
    let cases = [
        "../x",
        "-u",
        "--upload-pack=x",
        "a/b/c",
        "a/b.git",
        "a/.",
        "a/..",
        &long_repo,
        &long_owner,
        "a--b/repo",
        "ä/b",
        "a/b\u{301}",
        "a%2Fb/c",
        "a/b%2F..",
        "a/b\n",
        "\na/b",
        "",
        "/",
        "a/",
        "/b",
        "a/b@",
        "a/b@-x",
    ];
    for case in cases {
        let (status, error) = server
            .post("/api/configs", config(&json!({ "repos": [case] })))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case:?} -> {error}");
        assert_eq!(error["error"]["field"], "repos[0]", "{case:?} -> {error}");
    }
    assert_eq!(server.get("/api/configs").await, (StatusCode::OK, json!([])));
    assert_eq!(server.get("/api/runs").await, (StatusCode::OK, json!([])));
    let (status, created) = server
        .post("/api/configs", config(&json!({"repos": ["a-b/c.d_e"]})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

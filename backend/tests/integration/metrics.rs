//! `/metrics` on the metrics listener after a real run: every metric, with plausible values and nothing of
//! the run's own (its id, its prompt); the app's port never serves it.

use agentfarm_shared::run::RunState;
use reqwest::StatusCode;

use crate::harness::{TestServer, sample, web_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_run_on_their_own_port_only() {
    let server = TestServer::start_with(|s| s.web_dir = Some(web_dir())).await;
    let config = server.create_config("metered", "task").await;
    let mut socket = server.socket().await;
    let prompt = "say hi [[bash:echo hi]]";
    let run = server.launch(&config, prompt).await;
    assert_eq!(socket.until_ended(&run.id).await.state, RunState::Succeeded);

    let http = reqwest::Client::new();
    let response = http
        .get(format!("{}/metrics", server.metrics_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let value = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));

    assert_eq!(value(r#"agentfarm_runs{state="succeeded"}"#), 1.0);
    assert_eq!(value(r#"agentfarm_runs{state="running"}"#), 0.0);
    assert!(value("agentfarm_launches_total") >= 1.0);
    assert!(value("agentfarm_launch_to_running_seconds_count") >= 1.0);
    assert!(value("agentfarm_run_duration_seconds_count") >= 1.0);
    assert!(value("agentfarm_run_duration_seconds_sum") > 0.0);
    assert_eq!(value("agentfarm_run_model_tokens_count"), 1.0);
    assert!(value("agentfarm_run_model_tokens_sum") > 0.0);
    assert!(value("agentfarm_log_lines_stored_total") > 0.0);
    assert_eq!(value("agentfarm_websocket_clients"), 1.0);
    assert!(value("agentfarm_store_commit_seconds_count") > 0.0);
    for outcome in ["sent", "gone", "dropped", "retried"] {
        assert_eq!(
            value(&format!(
                r#"agentfarm_push_deliveries_total{{outcome="{outcome}"}}"#
            )),
            0.0
        );
    }
    assert_eq!(value("agentfarm_kube_watch_restarts_total"), 0.0);
    assert!(value(r#"agentfarm_model_tokens_total{kind="input"}"#) > 0.0);
    assert!(value(r#"agentfarm_model_tokens_total{kind="output"}"#) > 0.0);
    // Bounded labels only: nothing of the run itself.
    assert!(!text.contains(&run.id) && !text.contains(&config), "{text}");
    assert!(!text.contains("echo hi"), "{text}");

    // The metrics listener serves nothing else.
    let (status, body) = crate::harness::respond(http.get(format!("{}/api/runs", server.metrics_url))).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &"not_found".into())
    );

    // The app's port (where the Ingress points) answers /metrics with the API's JSON 404, not the web app.
    let response = server
        .http
        .get(format!("{}/metrics", server.url))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    drop(socket);
}

//! What agents print reaches clients as data, never as markup or terminal control: CI-12.

use agentfarm_shared::log::{LogLine, LogPage, MAX_LINE_BYTES};
use agentfarm_shared::run::RunState;
use agentfarm_shared::ws::ServerFrame;
use reqwest::StatusCode;

use crate::harness::{TestServer, web_dir};

/// The lines the stand-in agent prints, in order, as the server should keep them.
fn printed() -> Vec<String> {
    vec![
        "<script>alert(document.cookie)</script>".to_owned(),
        "\u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7} bell".to_owned(),
        "y".repeat(10 * 1024),
        "z".repeat(300 * 1024),
    ]
}

/// CI-12 (output encoding): an agent printing markup, ANSI escapes, a 10 KB line and a 300 KiB line. Every
/// frame is JSON with control characters escaped (no raw ESC or BEL byte on the wire), each line decodes to
/// exactly what was printed, the long one cut at the line limit and marked `truncated`, and the page the PWA
/// loads sets a Content-Security-Policy whose scripts are only the app's own (no `'unsafe-inline'`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_12_output_encoding() {
    let scripts = tempfile::tempdir().unwrap();
    let agent = scripts.path().join("agent.sh");
    std::fs::write(
        &agent,
        "#!/bin/sh\n\
         printf '%s\\n' '<script>alert(document.cookie)</script>'\n\
         printf '\\033[31mred\\033[0m \\033]0;title\\007 bell\\n'\n\
         head -c 10240 /dev/zero | tr '\\000' y; echo\n\
         head -c 307200 /dev/zero | tr '\\000' z; echo\n",
    )
    .unwrap();
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let server = TestServer::start_with(|settings| {
        settings.agent_command = agent.clone();
        settings.web_dir = Some(web_dir());
    })
    .await;
    let config = server.create_config("Printer", "Print").await;
    let mut socket = server.socket().await;
    let run = server.launch(&config, "Print").await;
    socket.subscribe(&run.id, 0).await;
    let mut lines: Vec<LogLine> = Vec::new();
    while lines.len() < printed().len() {
        let (frame, text) = socket.next_with_text().await;
        if let ServerFrame::Log { run_id, lines: more } = frame
            && run_id == run.id
        {
            assert!(!text.bytes().any(|b| b < 0x20), "a control byte on the wire");
            lines.extend(more);
        }
    }
    let expected = printed();
    assert_eq!(lines[0].text, expected[0]);
    assert_eq!(lines[1].text, expected[1]);
    assert_eq!(
        (lines[2].text.as_str(), lines[2].truncated),
        (expected[2].as_str(), false)
    );
    assert!(lines[3].truncated, "the 300 KiB line is marked as cut");
    assert!(lines[3].text.len() <= MAX_LINE_BYTES && expected[3].starts_with(&lines[3].text));
    socket.until_state(&run.id, RunState::Succeeded).await;

    let page: LogPage =
        serde_json::from_value(server.get(&format!("/api/runs/{}/logs", run.id)).await.1).unwrap();
    let stored: Vec<&str> = page.lines.iter().map(|line| line.text.as_str()).collect();
    let streamed: Vec<&str> = lines.iter().map(|line| line.text.as_str()).collect();
    assert_eq!(stored, streamed, "the REST page holds what the socket sent");

    let response = server.http.get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|directive| directive.starts_with("script-src"))
        .unwrap_or_else(|| panic!("no script-src in {csp}"));
    assert!(!script_src.contains("'unsafe-inline'"), "{csp}");
    assert!(
        csp.contains("default-src 'self'") || csp.contains("default-src 'none'"),
        "{csp}"
    );
}

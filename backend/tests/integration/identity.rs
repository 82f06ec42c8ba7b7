//! CI-09 (identity spoofing): with `--allowed-login`, only the allowlisted Tailscale login, in the header a
//! trusted proxy sets, gets in; with `--tailscale-whois`, only when tailscaled (here `agentfarm-fake-tailscale`)
//! says the forwarded tailnet address is that login's. Health endpoints stay open.

use agentfarm::settings::Settings;
use agentfarm::tailscale::WhoisEndpoint;
use agentfarm_fake_tailscale::{FakeTailscale, LOCAL_API_HOST};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{TestServer, respond, within};

const OWNER: &str = "owner@example.com";
const OWNER_IP: &str = "100.101.102.103";
const INTRUDER: &str = "intruder@example.com";
const INTRUDER_IP: &str = "100.101.102.104";

/// Settings allowing only [`OWNER`], confirmed by `whois`.
fn owner_only(settings: &mut Settings, whois: WhoisEndpoint) {
    settings.allowed_logins = vec![OWNER.into()];
    settings.tailscale_whois = Some(whois);
}

fn tcp(fake: &FakeTailscale) -> WhoisEndpoint {
    WhoisEndpoint::Tcp(fake.url().trim_start_matches("http://").parse().unwrap())
}

/// `GET path` with the given identity headers (`None`: header absent).
async fn get_as(
    server: &TestServer,
    path: &str,
    login: Option<&str>,
    forwarded_for: Option<&str>,
) -> (StatusCode, Value) {
    let plain = crate::harness::client_builder().build().unwrap();
    let mut request = plain.get(format!("{}{path}", server.url));
    if let Some(login) = login {
        request = request
            .header("tailscale-user-login", login)
            .header("tailscale-user-name", "Someone");
    }
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    respond(request).await
}

/// The status and `error.code`, after checking the error has a message.
fn outcome((status, body): (StatusCode, Value)) -> (StatusCode, Option<String>) {
    let code = body["error"]["code"].as_str().map(str::to_owned);
    if code.is_some() {
        assert!(
            body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    (status, code)
}

fn refused(status: StatusCode) -> (StatusCode, Option<String>) {
    let code = if status == StatusCode::UNAUTHORIZED {
        "unauthorized"
    } else {
        "forbidden"
    };
    (status, Some(code.to_owned()))
}

/// A WebSocket upgrade with our own origin and these identity headers: `Ok(101)` or the refusal's status.
async fn upgrade_as(server: &TestServer, login: &str, forwarded_for: &str) -> Result<u16, u16> {
    let mut request = format!("{}/api/ws", server.url.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    for (name, value) in [
        ("origin", server.url.as_str()),
        ("tailscale-user-login", login),
        ("x-forwarded-for", forwarded_for),
    ] {
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => Ok(response.status().as_u16()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("the upgrade neither succeeded nor was refused: {other:?}"),
    }
}

/// Every CI-09 case: a spoofed header from an untrusted peer (403), no login (401), a login not on the
/// allowlist (403), a login whois disagrees with or cannot confirm (403), whois unreachable (403), the
/// WebSocket upgrade refused before upgrading (403); the allowlisted login through a trusted proxy with a
/// matching whois gets 200 (over tailscaled's TCP form and its Unix socket), and health endpoints stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_09_identity_spoofing() {
    let tailscaled = FakeTailscale::start().await;
    tailscaled.add_peer(OWNER_IP.parse().unwrap(), OWNER);
    tailscaled.add_peer(INTRUDER_IP.parse().unwrap(), INTRUDER);

    // The test client connects from 127.0.0.1: trusted by default, as `tailscale serve` on this machine is.
    let server = TestServer::start_with(|settings| owner_only(settings, tcp(&tailscaled))).await;
    let cases = [
        (
            "the allowlisted login with a matching whois",
            Some(OWNER),
            Some(OWNER_IP),
            (StatusCode::OK, None),
        ),
        (
            "the allowlisted login in another case, with spaces",
            Some(" Owner@Example.COM "),
            Some(OWNER_IP),
            (StatusCode::OK, None),
        ),
        (
            "no login",
            None,
            Some(OWNER_IP),
            refused(StatusCode::UNAUTHORIZED),
        ),
        (
            "a login not on the allowlist",
            Some(INTRUDER),
            Some(INTRUDER_IP),
            refused(StatusCode::FORBIDDEN),
        ),
        (
            "whois disagreeing with the header",
            Some(OWNER),
            Some(INTRUDER_IP),
            refused(StatusCode::FORBIDDEN),
        ),
        (
            "an address whois does not know (404)",
            Some(OWNER),
            Some("100.64.0.99"),
            refused(StatusCode::FORBIDDEN),
        ),
        (
            "no X-Forwarded-For to ask whois about",
            Some(OWNER),
            None,
            refused(StatusCode::FORBIDDEN),
        ),
        (
            "a spoofed address before the proxy's own",
            Some(OWNER),
            Some(&format!("{OWNER_IP}, {INTRUDER_IP}")),
            refused(StatusCode::FORBIDDEN),
        ),
    ];
    for (case, login, forwarded_for, expected) in cases {
        let answer = get_as(&server, "/api/configs", login, forwarded_for).await;
        assert_eq!(outcome(answer.clone()), expected, "{case}: {answer:?}");
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            get_as(&server, path, None, None).await.0,
            StatusCode::OK,
            "{path}"
        );
        assert_eq!(
            get_as(&server, path, Some(INTRUDER), None).await.0,
            StatusCode::OK,
            "{path} with a login not allowed"
        );
    }
    let (status, body) = get_as(&server, "/api/configs", Some(INTRUDER), Some(INTRUDER_IP)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"].as_str().unwrap().contains(INTRUDER),
        "the refusal names the login: {body}"
    );
    assert_eq!(upgrade_as(&server, INTRUDER, INTRUDER_IP).await, Err(403));
    assert_eq!(upgrade_as(&server, OWNER, INTRUDER_IP).await, Err(403));
    assert_eq!(upgrade_as(&server, OWNER, OWNER_IP).await, Ok(101));

    // What whois was asked: the forwarded address as IP:0, with the LocalAPI's Host, never a login.
    let asked = tailscaled.requests();
    assert!(!asked.is_empty());
    for request in &asked {
        assert_eq!(request.header("host"), Some(LOCAL_API_HOST), "{request:?}");
        assert!(request.header("origin").is_none(), "{request:?}");
        assert!(!request.path.contains('@'), "{request:?}");
    }
    assert_eq!(asked[0].addr.as_deref(), Some("100.101.102.103:0"));
    let asked_before = asked.len();

    // A peer outside --trusted-proxy: the real client (127.0.0.1) is not 127.0.0.9, so its headers are a
    // spoof, refused without asking whois.
    let untrusted = TestServer::start_with(|settings| {
        owner_only(settings, tcp(&tailscaled));
        settings.trusted_proxies = vec!["127.0.0.9/32".parse().unwrap()];
    })
    .await;
    assert_eq!(
        outcome(get_as(&untrusted, "/api/configs", Some(OWNER), Some(OWNER_IP)).await),
        refused(StatusCode::FORBIDDEN),
        "the allowlisted login from an untrusted peer"
    );
    assert_eq!(
        outcome(get_as(&untrusted, "/api/configs", None, None).await),
        refused(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(upgrade_as(&untrusted, OWNER, OWNER_IP).await, Err(403));
    assert_eq!(get_as(&untrusted, "/healthz", None, None).await.0, StatusCode::OK);
    assert_eq!(
        tailscaled.requests().len(),
        asked_before,
        "an untrusted peer's headers are never looked up"
    );

    // tailscaled's Unix socket, as on a machine running `tailscale serve`.
    let socket = TestServer::start_with(|settings| {
        owner_only(settings, WhoisEndpoint::Socket(tailscaled.socket().to_owned()));
    })
    .await;
    assert_eq!(
        get_as(&socket, "/api/configs", Some(OWNER), Some(OWNER_IP))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        outcome(get_as(&socket, "/api/configs", Some(OWNER), Some(INTRUDER_IP)).await),
        refused(StatusCode::FORBIDDEN)
    );

    // whois unreachable: refused, fail closed.
    let nowhere = tempfile::tempdir().unwrap();
    let unreachable = TestServer::start_with(|settings| {
        owner_only(
            settings,
            WhoisEndpoint::Socket(nowhere.path().join("tailscaled.sock")),
        );
    })
    .await;
    let (status, body) = get_as(&unreachable, "/api/configs", Some(OWNER), Some(OWNER_IP)).await;
    assert_eq!(
        outcome((status, body.clone())),
        refused(StatusCode::FORBIDDEN),
        "{body}"
    );
    assert!(
        !body.to_string().contains(&nowhere.path().display().to_string()),
        "no local path in the answer: {body}"
    );
}

/// The binary refuses a bad identity flag or variable at start, naming the flag; started on a non-loopback
/// address without an allowlist, it warns that anyone who reaches it can use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_settings_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentfarm"));
        command
            .arg("serve")
            .args(args)
            .env_clear()
            .env("AGENTFARM_DATA_DIR", dir.path().join("data"))
            .env("AGENTFARM_RUNTIME", "local")
            .env("AGENTFARM_METRICS_LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    };
    for (args, env, flag) in [
        (
            &["--trusted-proxy", "10.0.0.0/33"][..],
            &[][..],
            "--trusted-proxy",
        ),
        (
            &[][..],
            &[("AGENTFARM_TRUSTED_PROXIES", "10.244.0.0/16,not-an-address")][..],
            "--trusted-proxy",
        ),
        (
            &[][..],
            &[("AGENTFARM_ALLOWED_LOGINS", "owner@example.com,two words")][..],
            "--allowed-login",
        ),
        (
            &["--tailscale-whois", "/var/run/tailscale/tailscaled.sock"][..],
            &[][..],
            "--allowed-login",
        ),
    ] {
        let output = within(serve(args, env).output()).await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} {env:?} names {flag}: {stderr}");
    }

    let mut open = serve(&["--listen", "0.0.0.0:0"], &[("RUST_LOG", "warn")])
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(open.stderr.take().unwrap()).lines();
    let warning = within(async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("--allowed-login") {
                return line;
            }
        }
        panic!("the server stopped without warning");
    })
    .await;
    assert!(warning.contains("WARN"), "{warning}");
    open.kill().await.unwrap();
}

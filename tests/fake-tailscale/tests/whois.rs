//! The fake answers as tailscaled's LocalAPI does, row by row of its documented table, on both its port and
//! its Unix socket.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use agentfarm_fake_tailscale::{FakeTailscale, LOCAL_API_HOST};
use serde_json::Value;

fn client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy()
}

async fn get(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn whois_answers_and_refuses_as_tailscaled_does() {
    let fake = FakeTailscale::start().await;
    fake.add_peer("100.101.102.103".parse().unwrap(), "owner@example.com");
    fake.add_peer("fd7a:115c:a1e0::1".parse().unwrap(), "other@example.com");
    let http = client().build().unwrap();
    let whois = format!("{}/localapi/v0/whois", fake.url());
    let host = [("host", LOCAL_API_HOST)];

    let (status, body) = get(&http, &format!("{whois}?addr=100.101.102.103:0"), &host).await;
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["UserProfile"]["LoginName"], "owner@example.com");
    assert_eq!(json["Node"]["Addresses"][0], "100.101.102.103/32");
    let (status, body) = get(
        &http,
        &format!("{whois}?addr=%5Bfd7a:115c:a1e0::1%5D:41641"),
        &host,
    )
    .await;
    assert_eq!(status, 200, "a peer matches on any port: {body}");
    let (status, body) = get(&http, &format!("{whois}?addr=fd7a:115c:a1e0::1"), &host).await;
    assert_eq!(
        (status, body.contains("other@example.com")),
        (200, true),
        "{body}"
    );

    for (url, headers, expected) in [
        (
            format!("{whois}?addr=100.64.0.9"),
            &host[..],
            (404, "no match for IP:port\n"),
        ),
        (
            format!("{whois}?addr=nope"),
            &host[..],
            (400, "invalid 'addr' parameter\n"),
        ),
        (whois.clone(), &host[..], (400, "missing 'addr' parameter\n")),
        (
            format!("{}/localapi/v0/status", fake.url()),
            &host[..],
            (404, "404 page not found\n"),
        ),
        (
            format!("{whois}?addr=100.101.102.103"),
            &[][..],
            (403, "invalid localapi request\n"),
        ),
        (
            format!("{whois}?addr=100.101.102.103"),
            &[("host", LOCAL_API_HOST), ("origin", "https://evil.example")][..],
            (403, "invalid localapi request\n"),
        ),
    ] {
        assert_eq!(
            get(&http, &url, headers).await,
            (expected.0, expected.1.to_owned()),
            "{url}"
        );
    }

    let unix = client().unix_socket(fake.socket()).build().unwrap();
    let (status, body) = get(
        &unix,
        &format!("http://{LOCAL_API_HOST}/localapi/v0/whois?addr=100.101.102.103"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "over the Unix socket: {body}");

    let recorded = fake.requests();
    assert_eq!(recorded.len(), 10);
    assert_eq!(recorded[0].addr.as_deref(), Some("100.101.102.103:0"));
    assert_eq!(recorded[1].addr.as_deref(), Some("[fd7a:115c:a1e0::1]:41641"));
    assert_eq!(recorded[9].header("host"), Some(LOCAL_API_HOST));
}

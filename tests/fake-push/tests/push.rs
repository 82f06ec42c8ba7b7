//! End-to-end checks of the fake push service with a real HTTP client: correct messages decrypt (also RFC
//! 8291's own example), broken ones are refused as real services refuse them, scripted answers come in order.

// Test code: a failed unwrap is a failed test. (`allow-*-in-tests` does not cover helpers outside `#[test]`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use agentfarm_fake_push::testing::{self, VapidKey};
use agentfarm_fake_push::{FakePush, Scripted, Subscriber, VapidClaims};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const SUB: &str = "mailto:ops@example.invalid";

// RFC 8291 Appendix A (the example of §5), verbatim.
const RFC_PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
const RFC_AS_PUBLIC: &str =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
const RFC_AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
const RFC_UA_PUBLIC: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const RFC_UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
const RFC_SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
const RFC_AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const RFC_BODY: &str = concat!(
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
);

fn b64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The headers a correct sender sends: TTL, aes128gcm, VAPID signed by `key` with `claims`.
fn headers(key: &VapidKey, claims: &Value) -> Vec<(&'static str, String)> {
    vec![
        ("ttl", "60".to_owned()),
        ("content-encoding", "aes128gcm".to_owned()),
        ("content-type", "application/octet-stream".to_owned()),
        ("authorization", key.authorization(claims)),
    ]
}

/// `headers` with `name` dropped.
fn without(mut headers: Vec<(&'static str, String)>, name: &str) -> Vec<(&'static str, String)> {
    headers.retain(|(key, _)| *key != name);
    headers
}

/// POSTs `body` to `url`; the status and response headers.
async fn post(url: &str, headers: &[(&'static str, String)], body: Vec<u8>) -> (u16, HeaderMap) {
    let mut request = client().post(url).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.headers().clone())
}

/// A correct push of `plaintext` to `sub`, signed by a fresh key; the status.
async fn push_ok(sub: &Subscriber, plaintext: &[u8]) -> (u16, HeaderMap) {
    let key = VapidKey::generate();
    let claims = testing::claims(&sub.endpoint, SUB);
    post(
        &sub.endpoint,
        &headers(&key, &claims),
        testing::encrypt(sub, plaintext),
    )
    .await
}

/// The refusal recorded for the last request.
fn last_refusal(push: &FakePush) -> String {
    push.requests().last().unwrap().refusal.clone().unwrap()
}

#[tokio::test]
async fn a_correct_message_is_decrypted_with_its_headers_and_claims() {
    let push = FakePush::start().await;
    let sub = push.subscribe();
    assert!(sub.endpoint.starts_with(&format!("{}/push/", push.origin())));
    assert_eq!(b64(&sub.p256dh).len(), 65);
    assert_eq!(b64(&sub.p256dh)[0], 0x04);
    assert_eq!(b64(&sub.auth).len(), 16);
    assert_eq!(
        sub.json(),
        json!({"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}})
    );

    let key = VapidKey::generate();
    let claims = testing::claims(&sub.endpoint, SUB);
    let message = json!({"title": "Run finished", "url": "/runs/42"});
    let mut sent = headers(&key, &claims);
    sent.push(("urgency", "high".to_owned()));
    sent.push(("topic", "run-42".to_owned()));
    let body = testing::encrypt(&sub, message.to_string().as_bytes());

    let ((status, answer), delivered) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(post(&sub.endpoint, &sent, body), push.wait_for(&sub, 1))
    })
    .await
    .unwrap();
    assert_eq!(status, 201);
    let location = answer.get("location").unwrap().to_str().unwrap();
    assert!(location.starts_with(&format!("{}/message/", push.origin())));

    assert_eq!(delivered.len(), 1);
    let delivery = &delivered[0];
    assert_eq!(delivery.plaintext, message.to_string().into_bytes());
    assert_eq!(delivery.ttl, Some(60));
    assert_eq!(delivery.urgency.as_deref(), Some("high"));
    assert_eq!(delivery.topic.as_deref(), Some("run-42"));
    assert_eq!(
        delivery.vapid,
        VapidClaims {
            aud: push.origin(),
            exp: claims["exp"].as_u64().unwrap(),
            sub: SUB.to_owned(),
        }
    );
    assert_eq!(delivery.vapid_key, key.public_key());
    assert_eq!(push.cleartext_json(&sub), vec![message]);

    let requests = push.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].status, 201);
    assert_eq!(requests[0].refusal, None);
    assert_eq!(requests[0].header("TTL"), Some("60"));
}

#[tokio::test]
async fn the_rfc_8291_example_decrypts_and_is_reproduced() {
    let push = FakePush::start().await;
    let ua_private: [u8; 32] = b64(RFC_UA_PRIVATE).try_into().unwrap();
    let auth: [u8; 16] = b64(RFC_AUTH).try_into().unwrap();
    let sub = push.subscribe_with_keys(ua_private, auth);
    assert_eq!(sub.p256dh, RFC_UA_PUBLIC);
    assert_eq!(sub.auth, RFC_AUTH);

    // The spec's body, byte for byte, decrypts with the spec's subscriber keys.
    let key = VapidKey::generate();
    let claims = testing::claims(&sub.endpoint, SUB);
    let (status, _) = post(&sub.endpoint, &headers(&key, &claims), b64(RFC_BODY)).await;
    assert_eq!(status, 201, "{:?}", push.requests());
    assert_eq!(
        push.received(&sub)[0].plaintext,
        RFC_PLAINTEXT.as_bytes().to_vec()
    );

    // And the test-support encryption produces exactly that body from the spec's sender key and salt.
    let as_private: [u8; 32] = b64(RFC_AS_PRIVATE).try_into().unwrap();
    let salt: [u8; 16] = b64(RFC_SALT).try_into().unwrap();
    let body = testing::encrypt_with(
        RFC_UA_PUBLIC,
        RFC_AUTH,
        RFC_PLAINTEXT.as_bytes(),
        as_private,
        salt,
    );
    assert_eq!(URL_SAFE_NO_PAD.encode(body), RFC_BODY);
    assert_eq!(VapidKey::from_private(as_private).public_key(), RFC_AS_PUBLIC);
}

#[tokio::test]
async fn a_wrong_auth_secret_or_altered_body_is_refused_with_400() {
    let push = FakePush::start().await;
    let sub = push.subscribe();
    let key = VapidKey::generate();
    let claims = testing::claims(&sub.endpoint, SUB);

    let other_auth = URL_SAFE_NO_PAD.encode([7u8; 16]);
    let body = testing::encrypt_with(
        &sub.p256dh,
        &other_auth,
        b"hello",
        b64(RFC_AS_PRIVATE).try_into().unwrap(),
        [1; 16],
    );
    let (status, _) = post(&sub.endpoint, &headers(&key, &claims), body).await;
    assert_eq!(status, 400);
    assert!(
        last_refusal(&push).contains("does not decrypt"),
        "{}",
        last_refusal(&push)
    );

    let mut body = testing::encrypt(&sub, b"hello");
    let last = body.len() - 1;
    body[last] ^= 1;
    let (status, _) = post(&sub.endpoint, &headers(&key, &claims), body).await;
    assert_eq!(status, 400);

    let (status, _) = post(
        &sub.endpoint,
        &headers(&key, &claims),
        b"not encrypted at all".to_vec(),
    )
    .await;
    assert_eq!(status, 400);

    let mut sent = headers(&key, &claims);
    sent[1].1 = "aesgcm".to_owned();
    let (status, _) = post(&sub.endpoint, &sent, testing::encrypt(&sub, b"hello")).await;
    assert_eq!(status, 400);
    assert!(last_refusal(&push).contains("Content-Encoding"));

    assert!(push.received(&sub).is_empty());
    assert_eq!(push.requests().len(), 4);
}

#[tokio::test]
async fn vapid_credentials_are_verified() {
    let push = FakePush::start().await;
    let sub = push.subscribe();
    let key = VapidKey::generate();
    let body = || testing::encrypt(&sub, b"hi");
    let good = testing::claims(&sub.endpoint, SUB);

    // Signed by another key than k= names.
    let impostor = VapidKey::generate();
    let mut sent = headers(&key, &good);
    sent[3].1 = testing::authorization(&impostor.jwt(&good), &key.public_key());
    assert_eq!(post(&sub.endpoint, &sent, body()).await.0, 403);
    assert!(last_refusal(&push).contains("signature"));

    // aud of another origin.
    let claims = json!({"aud": "https://push.example.invalid", "exp": good["exp"], "sub": SUB});
    assert_eq!(post(&sub.endpoint, &headers(&key, &claims), body()).await.0, 403);
    assert!(last_refusal(&push).contains("aud"));

    // exp more than 24 h ahead, and in the past.
    let now = testing::unix_now();
    for exp in [now + 24 * 3600 + 120, now - 60] {
        let claims = json!({"aud": push.origin(), "exp": exp, "sub": SUB});
        assert_eq!(post(&sub.endpoint, &headers(&key, &claims), body()).await.0, 403);
        assert!(last_refusal(&push).contains("exp"));
    }

    // No sub, or one that is no contact.
    for claims in [
        json!({"aud": push.origin(), "exp": good["exp"]}),
        json!({"aud": push.origin(), "exp": good["exp"], "sub": "ops@example.invalid"}),
    ] {
        assert_eq!(post(&sub.endpoint, &headers(&key, &claims), body()).await.0, 403);
        assert!(last_refusal(&push).contains("sub"));
    }

    // No Authorization, or another scheme.
    let sent = without(headers(&key, &good), "authorization");
    assert_eq!(post(&sub.endpoint, &sent, body()).await.0, 401);
    let mut sent = headers(&key, &good);
    sent[3].1 = format!("WebPush {}", key.jwt(&good));
    assert_eq!(post(&sub.endpoint, &sent, body()).await.0, 401);

    // An https: sub and an exp just under 24 h ahead are fine.
    let claims = json!({"aud": push.origin(), "exp": now + 24 * 3600 - 5, "sub": "https://example.invalid"});
    assert_eq!(post(&sub.endpoint, &headers(&key, &claims), body()).await.0, 201);
    assert_eq!(push.received(&sub).len(), 1);
}

#[tokio::test]
async fn a_subscription_bound_to_a_server_key_refuses_other_keys() {
    let push = FakePush::start().await;
    let key = VapidKey::generate();
    let sub = push.subscribe_for(&key.public_key());
    let claims = testing::claims(&sub.endpoint, SUB);

    let other = VapidKey::generate();
    let (status, _) = post(
        &sub.endpoint,
        &headers(&other, &claims),
        testing::encrypt(&sub, b"x"),
    )
    .await;
    assert_eq!(status, 403);
    assert!(last_refusal(&push).contains("application server key"));

    let (status, _) = post(
        &sub.endpoint,
        &headers(&key, &claims),
        testing::encrypt(&sub, b"x"),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn the_message_headers_and_size_are_checked() {
    let push = FakePush::start().await;
    let sub = push.subscribe();
    let key = VapidKey::generate();
    let claims = testing::claims(&sub.endpoint, SUB);

    let sent = without(headers(&key, &claims), "ttl");
    let (status, _) = post(&sub.endpoint, &sent, testing::encrypt(&sub, b"x")).await;
    assert_eq!(status, 400);
    assert!(last_refusal(&push).contains("TTL"));

    for (name, value) in [("ttl", "soon"), ("urgency", "urgent"), ("topic", "has spaces")] {
        let mut sent = without(headers(&key, &claims), name);
        sent.push((name, value.to_owned()));
        let (status, _) = post(&sub.endpoint, &sent, testing::encrypt(&sub, b"x")).await;
        assert_eq!(status, 400, "{name}: {value}");
    }

    // 4096 bytes of body is the most a service must take; one more is refused.
    let fits = testing::encrypt(&sub, &vec![b'a'; 4096 - 86 - 17]);
    assert_eq!(fits.len(), 4096);
    let (status, _) = post(&sub.endpoint, &headers(&key, &claims), fits).await;
    assert_eq!(status, 201);
    let too_big = testing::encrypt(&sub, &vec![b'a'; 4096 - 86 - 16]);
    let (status, _) = post(&sub.endpoint, &headers(&key, &claims), too_big).await;
    assert_eq!(status, 413);

    // A push without payload.
    let sent = without(headers(&key, &claims), "content-encoding");
    let (status, _) = post(&sub.endpoint, &sent, Vec::new()).await;
    assert_eq!(status, 201);
    let received = push.received(&sub);
    assert_eq!(received.len(), 2);
    assert!(received[1].plaintext.is_empty());

    // Unknown and forgotten endpoints, and other methods.
    let unknown = format!("{}/push/0123456789abcdef", push.origin());
    let (status, _) = post(&unknown, &headers(&key, &claims), testing::encrypt(&sub, b"x")).await;
    assert_eq!(status, 404);
    let response = client().get(&sub.endpoint).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    push.unsubscribe(&sub);
    let (status, _) = post(
        &sub.endpoint,
        &headers(&key, &claims),
        testing::encrypt(&sub, b"x"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(push.received(&sub).is_empty());
}

#[tokio::test]
async fn scripted_answers_come_in_order_then_201() {
    let push = FakePush::start().await;
    let sub = push.subscribe();
    let other = push.subscribe();
    push.answer_next(
        &sub,
        vec![Scripted::Status(410), Scripted::TooMany { retry_after_secs: 7 }],
    );
    push.answer_next(&sub, vec![Scripted::Status(503)]);

    // Another subscriber is not affected.
    assert_eq!(push_ok(&other, b"0").await.0, 201);

    let (status, _) = push_ok(&sub, b"1").await;
    assert_eq!(status, 410);
    let (status, answer) = push_ok(&sub, b"2").await;
    assert_eq!(status, 429);
    assert_eq!(answer.get("retry-after").unwrap(), "7");
    let (status, _) = push_ok(&sub, b"3").await;
    assert_eq!(status, 503);
    let (status, _) = push_ok(&sub, b"4").await;
    assert_eq!(status, 201);

    let received = push.received(&sub);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].plaintext, b"4".to_vec());
    let requests = push.requests();
    let statuses: Vec<u16> = requests.iter().map(|request| request.status).collect();
    assert_eq!(statuses, [201, 410, 429, 503, 201]);
    assert_eq!(requests[2].refusal.as_deref(), Some("scripted 429"));
    assert!(requests.windows(2).all(|pair| pair[0].at <= pair[1].at));

    // A refused request does not take a scripted answer.
    push.answer_next(&sub, vec![Scripted::Status(410)]);
    let key = VapidKey::generate();
    let claims = testing::claims(&sub.endpoint, SUB);
    let sent = without(headers(&key, &claims), "ttl");
    assert_eq!(
        post(&sub.endpoint, &sent, testing::encrypt(&sub, b"5")).await.0,
        400
    );
    assert_eq!(push_ok(&sub, b"6").await.0, 410);

    let all = tokio::time::timeout(Duration::from_secs(10), push.wait_for_requests(7))
        .await
        .unwrap();
    assert_eq!(all.len(), 7);
}

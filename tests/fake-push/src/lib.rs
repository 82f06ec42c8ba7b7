//! A local fake Web Push service for tests: receives `POST <endpoint>` as Apple's, Google's or Mozilla's push
//! service would (RFC 8030), decrypts the `aes128gcm` body with the subscriber's keys (RFC 8291) and verifies the
//! VAPID `Authorization` (RFC 8292) itself, independently of whatever library the sender uses.
//!
//! [`FakePush::subscribe`] plays the browser: a fresh P-256 key pair and auth secret, and an endpoint
//! `http://127.0.0.1:<port>/push/<id>`; [`Subscriber::json`] is what `PushSubscription.toJSON()` gives. Each
//! `POST` to an endpoint is checked in this order, and refused the way real services refuse it:
//!
//! | check | refusal |
//! | --- | --- |
//! | the endpoint exists | `404` |
//! | method is `POST` | `405` |
//! | body ≤ 4096 bytes | `413` |
//! | `Authorization: vapid t=<JWT>, k=<key>` present and well-formed | `401` |
//! | JWT header `alg` `ES256` (`typ` `JWT` if given), ES256 signature by `k` (raw `r‖s`) | `403` |
//! | `aud` = the endpoint's origin, `exp` in the future and ≤ 24 h ahead, `sub` `mailto:` or `https:` | `403` |
//! | `k` = the subscription's application server key (only for [`FakePush::subscribe_for`]) | `403` |
//! | `TTL` present (a non-negative integer); `Urgency` and `Topic` valid if present | `400` |
//! | `Content-Encoding: aes128gcm` and a body that decrypts (an empty body is an empty message) | `400` |
//!
//! A request that passes gets the next [`Scripted`] answer of its subscriber ([`FakePush::answer_next`]) if
//! one is queued, else `201 Created` with a `Location` header. Every request is recorded
//! ([`FakePush::requests`], with the reason of a refusal); only the accepted ones are [`FakePush::received`].
//! The [`testing`] module builds correct messages for the fake's own tests and for tests of other senders.

mod ece;
mod server;
pub mod testing;
mod vapid;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use agentfarm_local_server::{LocalServer, Port};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::SecretKey;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::server::{Endpoint, Shared, State};

/// A browser's push subscription at the fake: what `PushSubscription.toJSON()` gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// `http://127.0.0.1:<port>/push/<id>`.
    pub endpoint: String,
    /// The subscriber's P-256 public key, uncompressed point (65 bytes), base64url without padding.
    pub p256dh: String,
    /// The 16-byte auth secret, base64url without padding.
    pub auth: String,
    /// The `<id>` of the endpoint.
    id: String,
}

impl Subscriber {
    /// `{"endpoint": …, "keys": {"p256dh": …, "auth": …}}`.
    pub fn json(&self) -> Value {
        json!({
            "endpoint": self.endpoint,
            "keys": { "p256dh": self.p256dh, "auth": self.auth },
        })
    }
}

/// An answer queued for a subscriber's next accepted request, instead of `201 Created`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    /// Answer with this status (e.g. `404`, `410` Gone, `500`, `503`). A 2xx status still delivers the message.
    Status(u16),
    /// `429 Too Many Requests` with `Retry-After: <retry_after_secs>`.
    TooMany {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
    },
    /// `302 Found` pointing at `location`, which a sender must not follow.
    Redirect {
        /// The `Location` header.
        location: String,
    },
}

/// The claims of a verified VAPID JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VapidClaims {
    /// Audience: the push service's origin, e.g. `http://127.0.0.1:41234`.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// The sender's contact, `mailto:…` or `https:…`.
    pub sub: String,
}

/// A message the fake accepted, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The decrypted message, padding removed.
    pub plaintext: Vec<u8>,
    /// The `TTL` header (always present: a request without one is refused).
    pub ttl: Option<u64>,
    /// The `Urgency` header (`very-low`, `low`, `normal` or `high`).
    pub urgency: Option<String>,
    /// The `Topic` header.
    pub topic: Option<String>,
    /// The claims of the verified VAPID JWT.
    pub vapid: VapidClaims,
    /// The `k=` of the `Authorization` header: the application server's public key (base64url).
    pub vapid_key: String,
    /// When it arrived.
    pub at: Instant,
}

/// One request received by the fake, accepted or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedPush {
    /// When it arrived.
    pub at: Instant,
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/push/0f3a…`.
    pub path: String,
    /// All request headers, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The (encrypted) body as received.
    pub body: Vec<u8>,
    /// The status answered.
    pub status: u16,
    /// Why it was not delivered (`None` if it was): the failed check, or `scripted <status>`.
    pub refusal: Option<String>,
}

impl RecordedPush {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        agentfarm_local_server::find_header(&self.headers, name)
    }
}

/// A running fake push service on `127.0.0.1:<random port>` (plain HTTP); stops when dropped.
pub struct FakePush {
    shared: Arc<Shared>,
    server: LocalServer,
}

impl FakePush {
    /// Starts the service on `127.0.0.1:0` in the current tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound (test support: a test cannot go on without its server).
    pub async fn start() -> FakePush {
        let port = Port::bind("fake push").await;
        let shared = Arc::new(Shared {
            origin: format!("http://{}", port.addr()),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        });
        let server = port.serve("fake push", server::router(Arc::clone(&shared)));
        FakePush { shared, server }
    }

    /// `http://127.0.0.1:<port>`: the origin every endpoint has, and so the `aud` VAPID JWTs must carry.
    pub fn origin(&self) -> String {
        self.shared.origin.clone()
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// A new subscriber: fresh P-256 key pair, 16-byte auth secret and endpoint. Any VAPID key may push to it.
    ///
    /// # Panics
    /// If the operating system's random source fails (test support).
    pub fn subscribe(&self) -> Subscriber {
        self.add(random_secret_key(), random_bytes(), None)
    }

    /// Like [`Self::subscribe`], but bound to `application_server_key` (base64url, as given to
    /// `pushManager.subscribe`): pushes whose `k=` is another key are refused with `403`, as FCM does.
    ///
    /// # Panics
    /// If the key is not base64url (test support: the test's setup is wrong), or the random source fails.
    #[allow(clippy::panic)] // test support; see "Panics"
    pub fn subscribe_for(&self, application_server_key: &str) -> Subscriber {
        let Ok(key) = URL_SAFE_NO_PAD.decode(application_server_key.trim_end_matches('=')) else {
            panic!("fake push: application server key {application_server_key:?} is not base64url");
        };
        self.add(random_secret_key(), random_bytes(), Some(key))
    }

    /// A subscriber with the given private key and auth secret (e.g. RFC 8291's example keys), so a known body
    /// can be checked; otherwise like [`Self::subscribe`].
    ///
    /// # Panics
    /// If `ua_private` is not a valid P-256 private key (test support), or the random source fails.
    #[allow(clippy::panic)] // test support; see "Panics"
    pub fn subscribe_with_keys(&self, ua_private: [u8; 32], auth: [u8; 16]) -> Subscriber {
        let Ok(secret) = SecretKey::from_slice(&ua_private) else {
            panic!("fake push: not a P-256 private key");
        };
        self.add(secret, auth, None)
    }

    fn add(&self, secret: SecretKey, auth: [u8; 16], server_key: Option<Vec<u8>>) -> Subscriber {
        let id = hex(&random_bytes::<16>());
        let public = secret.public_key().to_encoded_point(false).as_bytes().to_vec();
        let subscriber = Subscriber {
            endpoint: format!("{}/push/{id}", self.shared.origin),
            p256dh: URL_SAFE_NO_PAD.encode(&public),
            auth: URL_SAFE_NO_PAD.encode(auth),
            id: id.clone(),
        };
        let endpoint = Endpoint {
            secret,
            auth,
            server_key,
            script: VecDeque::new(),
            deliveries: Vec::new(),
        };
        self.state().endpoints.insert(id, endpoint);
        subscriber
    }

    /// Queues `responses` (after any already queued) as the answers to `sub`'s next accepted requests, one each;
    /// then the default `201 Created` again.
    pub fn answer_next(&self, sub: &Subscriber, responses: Vec<Scripted>) {
        if let Some(endpoint) = self.state().endpoints.get_mut(&sub.id) {
            endpoint.script.extend(responses);
        }
    }

    /// Forgets `sub`: its endpoint answers `404` from now on (as a push service does for an unknown one).
    pub fn unsubscribe(&self, sub: &Subscriber) {
        self.state().endpoints.remove(&sub.id);
    }

    /// The messages delivered to `sub` so far, in arrival order (refused requests are not included).
    pub fn received(&self, sub: &Subscriber) -> Vec<Delivery> {
        self.state()
            .endpoints
            .get(&sub.id)
            .map(|endpoint| endpoint.deliveries.clone())
            .unwrap_or_default()
    }

    /// Each delivery to `sub`'s plaintext parsed as JSON (`Value::Null` for one that is not JSON).
    pub fn cleartext_json(&self, sub: &Subscriber) -> Vec<Value> {
        self.received(sub)
            .iter()
            .map(|delivery| serde_json::from_slice(&delivery.plaintext).unwrap_or(Value::Null))
            .collect()
    }

    /// Waits until `sub` has at least `count` deliveries and returns them all. Never times out by itself: wrap it
    /// in `tokio::time::timeout`.
    pub async fn wait_for(&self, sub: &Subscriber, count: usize) -> Vec<Delivery> {
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let received = self.received(sub);
            if received.len() >= count {
                return received;
            }
            changed.await;
        }
    }

    /// Waits until at least `count` requests (any endpoint, refused ones too) arrived and returns them all. Never
    /// times out by itself.
    pub async fn wait_for_requests(&self, count: usize) -> Vec<RecordedPush> {
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            changed.await;
        }
    }

    /// Every request received so far (any endpoint, refused ones too), in arrival order.
    pub fn requests(&self) -> Vec<RecordedPush> {
        self.state().requests.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `N` bytes from the operating system's random source.
///
/// # Panics
/// If the random source fails (test support: nothing sensible can go on without it).
#[allow(clippy::panic)] // test support; see "Panics"
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if let Err(error) = getrandom::fill(&mut bytes) {
        panic!("fake push: no random bytes: {error}");
    }
    bytes
}

/// A fresh P-256 private key.
///
/// # Panics
/// If the random source fails.
pub(crate) fn random_secret_key() -> SecretKey {
    loop {
        // Out of range (zero or ≥ the group order) with probability ~2⁻³², then draw again.
        if let Ok(secret) = SecretKey::from_slice(&random_bytes::<32>()) {
            return secret;
        }
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

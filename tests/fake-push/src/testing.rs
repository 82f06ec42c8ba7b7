//! Test support: builds what a correct Web Push sender sends — an RFC 8291 `aes128gcm` body and an RFC 8292
//! VAPID `Authorization` header — so tests can reach the fake without a push library. Every function panics on
//! bad input (a test's setup is wrong), see each "Panics".

use std::time::{SystemTime, UNIX_EPOCH};

use aes_gcm::Aes128Gcm;
use aes_gcm::aead::{Aead as _, KeyInit as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::{PublicKey, SecretKey};
use serde_json::{Value, json};

use crate::{Subscriber, ece};

/// The record size [`encrypt`] uses (what browsers' and libraries' senders use), unless the message needs more.
pub const RECORD_SIZE: u32 = 4096;

/// How far ahead [`claims`] sets `exp`: 12 hours, as common senders do.
pub const JWT_LIFETIME_SECS: u64 = 12 * 60 * 60;

/// Encrypts `plaintext` for `subscriber` with a fresh ephemeral key and salt: an `aes128gcm` body of one record
/// (`plaintext ‖ 0x02`, no padding).
///
/// # Panics
/// If the subscriber's keys are not valid base64url P-256 / auth secret, or the random source fails.
pub fn encrypt(subscriber: &Subscriber, plaintext: &[u8]) -> Vec<u8> {
    let as_private = crate::random_secret_key().to_bytes().into();
    encrypt_with(
        &subscriber.p256dh,
        &subscriber.auth,
        plaintext,
        as_private,
        crate::random_bytes(),
    )
}

/// Encrypts `plaintext` for the subscription keys `p256dh` and `auth` (base64url, as in
/// `PushSubscription.toJSON()`) with the given application server private key and salt, deterministically
/// (RFC 8291 §3.4, Appendix A): `salt ‖ rs ‖ 65 ‖ as_public ‖ AES-128-GCM(plaintext ‖ 0x02)`, with `rs` =
/// [`RECORD_SIZE`] or, for a longer message, just enough for one record.
///
/// # Panics
/// If `p256dh` is not a base64url P-256 point, `auth` not base64url, or `as_private` not a P-256 private key.
#[allow(clippy::panic)] // test support; see "Panics"
pub fn encrypt_with(
    p256dh: &str,
    auth: &str,
    plaintext: &[u8],
    as_private: [u8; 32],
    salt: [u8; 16],
) -> Vec<u8> {
    let Some(ua_public) = decode(p256dh).and_then(|raw| PublicKey::from_sec1_bytes(&raw).ok()) else {
        panic!("fake push testing: p256dh {p256dh:?} is not a base64url P-256 point");
    };
    let Some(auth) = decode(auth) else {
        panic!("fake push testing: auth {auth:?} is not base64url");
    };
    let Ok(as_secret) = SecretKey::from_slice(&as_private) else {
        panic!("fake push testing: as_private is not a P-256 private key");
    };
    let as_public = ece::uncompressed(&as_secret.public_key());
    let secret = ece::ecdh(&as_secret, &ua_public);
    let Some(keys) = ece::derive(&secret, &auth, &ece::uncompressed(&ua_public), &as_public, &salt) else {
        panic!("fake push testing: key derivation failed");
    };
    let Ok(cipher) = Aes128Gcm::new_from_slice(&keys.cek) else {
        panic!("fake push testing: content-encryption key has the wrong length");
    };
    let mut record = plaintext.to_vec();
    record.push(0x02);
    let Ok(ciphertext) = cipher.encrypt(&keys.nonce.into(), record.as_slice()) else {
        panic!("fake push testing: AES-GCM refused the record");
    };
    let Ok(record_size) = u32::try_from(ciphertext.len()) else {
        panic!("fake push testing: message too long");
    };
    let mut body = salt.to_vec();
    body.extend_from_slice(&record_size.max(RECORD_SIZE).to_be_bytes());
    body.push(65);
    body.extend_from_slice(&as_public);
    body.extend_from_slice(&ciphertext);
    body
}

/// An application server's VAPID key pair (P-256), signing ES256 JWTs.
#[derive(Debug, Clone)]
pub struct VapidKey {
    signing: SigningKey,
}

impl VapidKey {
    /// A fresh key pair.
    ///
    /// # Panics
    /// If the random source fails.
    pub fn generate() -> VapidKey {
        VapidKey {
            signing: SigningKey::from(crate::random_secret_key()),
        }
    }

    /// The key pair of private key `private` (big-endian scalar).
    ///
    /// # Panics
    /// If `private` is not a P-256 private key.
    #[allow(clippy::panic)] // test support; see "Panics"
    pub fn from_private(private: [u8; 32]) -> VapidKey {
        let Ok(secret) = SecretKey::from_slice(&private) else {
            panic!("fake push testing: not a P-256 private key");
        };
        VapidKey {
            signing: SigningKey::from(secret),
        }
    }

    /// The public key, uncompressed point, base64url without padding: the `applicationServerKey` and the
    /// `k=` of the `Authorization` header.
    pub fn public_key(&self) -> String {
        let public = PublicKey::from(self.signing.verifying_key());
        URL_SAFE_NO_PAD.encode(ece::uncompressed(&public))
    }

    /// A JWT of `claims` with header `{"typ":"JWT","alg":"ES256"}`, signed ES256 (raw `r‖s`, base64url).
    pub fn jwt(&self, claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(json!({"typ": "JWT", "alg": "ES256"}).to_string());
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let signature: Signature = self.signing.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// `vapid t=<jwt of claims>, k=<public key>`: a whole `Authorization` header value.
    pub fn authorization(&self, claims: &Value) -> String {
        authorization(&self.jwt(claims), &self.public_key())
    }
}

/// `vapid t=<jwt>, k=<key>`.
pub fn authorization(jwt: &str, key: &str) -> String {
    format!("vapid t={jwt}, k={key}")
}

/// Valid claims for pushing to `endpoint`: `aud` its origin, `exp` [`JWT_LIFETIME_SECS`] from now, `sub`.
pub fn claims(endpoint: &str, sub: &str) -> Value {
    json!({"aud": origin(endpoint), "exp": unix_now() + JWT_LIFETIME_SECS, "sub": sub})
}

/// `scheme://host[:port]` of `url` (all of it if it has no path).
pub fn origin(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => url[..after_scheme + slash].to_owned(),
        None => url.to_owned(),
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Decodes base64url, with or without padding.
fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

//! What makes a notification deliverable: its payload encrypted for the device (RFC 8291, `aes128gcm`, by the
//! pure-Rust `web-push-native`) and the VAPID `Authorization` that signs it for the push service (RFC 8292).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{Claims, Duration, ECDSAP256KeyPairLike as _, ES256KeyPair};
use web_push_native::Auth;
use web_push_native::p256::PublicKey;

/// How long a VAPID token is good for; push services refuse more than 24 hours.
const TOKEN_LIFETIME_HOURS: u64 = 12;

/// Why a notification could not be sealed; the delivery drops it.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The device's `p256dh` is not a base64url P-256 point.
    #[error("the device's key is not a base64url P-256 point")]
    DeviceKey,
    /// The device's `auth` is not 16 bytes of base64url.
    #[error("the device's auth secret is not 16 bytes of base64url")]
    AuthSecret,
    /// Encryption failed.
    #[error("encrypting: {0}")]
    Encrypt(#[from] web_push_native::Error),
    /// The VAPID token could not be signed.
    #[error("signing the VAPID token: {0}")]
    Sign(jwt_simple::Error),
}

/// The application server's VAPID key pair (P-256).
pub struct VapidKey {
    pair: ES256KeyPair,
    /// The public key, uncompressed point, base64url: the `applicationServerKey` and each request's `k=`.
    public: String,
}

impl VapidKey {
    /// A fresh key pair.
    pub fn generate() -> VapidKey {
        VapidKey::new(ES256KeyPair::generate())
    }

    /// The key pair of a base64url private scalar; `None` when it is not one.
    pub fn from_base64(private: &str) -> Option<VapidKey> {
        let raw = URL_SAFE_NO_PAD.decode(private.trim()).ok()?;
        ES256KeyPair::from_bytes(&raw).ok().map(VapidKey::new)
    }

    fn new(pair: ES256KeyPair) -> VapidKey {
        let public = URL_SAFE_NO_PAD.encode(pair.key_pair().public_key().to_bytes_uncompressed());
        VapidKey { pair, public }
    }

    /// The private scalar, base64url, as stored.
    pub fn private_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.pair.to_bytes())
    }

    /// The public key, uncompressed point, base64url.
    pub fn public_base64(&self) -> &str {
        &self.public
    }

    /// `vapid t=<JWT>, k=<public key>`: a token for the push service at `origin` (`scheme://host[:port]`),
    /// naming `contact` (`mailto:` or `https:`), good for [`TOKEN_LIFETIME_HOURS`].
    pub fn authorization(&self, origin: &str, contact: &str) -> Result<String, SealError> {
        let claims = Claims::create(Duration::from_hours(TOKEN_LIFETIME_HOURS))
            .with_audience(origin)
            .with_subject(contact);
        let token = self.pair.sign(claims).map_err(SealError::Sign)?;
        Ok(format!("vapid t={token}, k={}", self.public))
    }
}

/// `payload` encrypted for the device whose subscription keys are `p256dh` and `auth` (base64url, as the
/// browser gave them): one `aes128gcm` record with a fresh ephemeral key and salt.
pub fn encrypt(p256dh: &str, auth: &str, payload: Vec<u8>) -> Result<Vec<u8>, SealError> {
    let device = decode(p256dh)
        .and_then(|raw| PublicKey::from_sec1_bytes(&raw).ok())
        .ok_or(SealError::DeviceKey)?;
    let auth: [u8; 16] = decode(auth)
        .and_then(|raw| raw.try_into().ok())
        .ok_or(SealError::AuthSecret)?;
    Ok(web_push_native::encrypt(payload, &device, &Auth::from(auth))?)
}

/// Base64url, with or without padding (browsers differ).
fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use jwt_simple::prelude::{ECDSAP256PublicKeyLike as _, NoCustomClaims, VerificationOptions};
    use web_push_native::p256::SecretKey;
    use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint as _;

    use super::*;

    /// RFC 8291 Appendix A: the user agent's private key and auth secret.
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

    fn device() -> (SecretKey, String) {
        let secret = SecretKey::from_slice(&decode(UA_PRIVATE).unwrap()).unwrap();
        let public = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
        (secret, public)
    }

    #[test]
    fn the_device_decrypts_what_is_encrypted_for_it() {
        let (secret, p256dh) = device();
        let body = encrypt(
            &p256dh,
            UA_AUTH,
            b"When I grow up, I want to be a watermelon".to_vec(),
        )
        .unwrap();
        assert_eq!(body[20], 65, "the key id is the sender's ephemeral public key");
        let auth = Auth::from(<[u8; 16]>::try_from(decode(UA_AUTH).unwrap()).unwrap());
        let plain = web_push_native::decrypt(body.clone(), &secret, &auth).unwrap();
        assert_eq!(plain, b"When I grow up, I want to be a watermelon");
        let again = encrypt(&p256dh, &format!("{UA_AUTH}=="), plain).unwrap();
        assert_ne!(again, body, "each message has its own key and salt");
    }

    #[test]
    fn bad_device_keys_are_refused() {
        let (_, p256dh) = device();
        assert!(matches!(
            encrypt("bm90IGEga2V5", UA_AUTH, vec![]),
            Err(SealError::DeviceKey)
        ));
        assert!(matches!(
            encrypt(&p256dh, "c2hvcnQ", vec![]),
            Err(SealError::AuthSecret)
        ));
        assert!(matches!(
            encrypt(&p256dh, "!!", vec![]),
            Err(SealError::AuthSecret)
        ));
    }

    #[test]
    fn the_authorization_is_signed_for_the_push_service_origin() {
        let key = VapidKey::generate();
        let again = VapidKey::from_base64(&key.private_base64()).unwrap();
        assert_eq!(again.public_base64(), key.public_base64());
        assert!(VapidKey::from_base64("not a key").is_none());

        let header = key
            .authorization("http://127.0.0.1:4567", "mailto:owner@example.com")
            .unwrap();
        let (token, public) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .unwrap();
        assert_eq!(public, key.public_base64());
        let options = VerificationOptions {
            allowed_audiences: Some(["http://127.0.0.1:4567".to_owned()].into()),
            ..VerificationOptions::default()
        };
        let claims = key
            .pair
            .public_key()
            .verify_token::<NoCustomClaims>(token, Some(options))
            .unwrap();
        assert_eq!(claims.subject.as_deref(), Some("mailto:owner@example.com"));
        let lifetime = claims.expires_at.unwrap() - claims.issued_at.unwrap();
        assert_eq!(lifetime.as_secs(), TOKEN_LIFETIME_HOURS * 3600);
    }
}

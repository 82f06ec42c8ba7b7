//! RFC 8291 message encryption: the `aes128gcm` content coding (RFC 8188) keyed by ECDH between the
//! application server's and the subscriber's P-256 keys plus the subscriber's auth secret.

use aes_gcm::Aes128Gcm;
use aes_gcm::aead::{Aead as _, KeyInit as _};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

/// Start of the HKDF info for the input keying material (RFC 8291 §3.4), followed by `ua_public ‖ as_public`.
const KEY_INFO: &[u8] = b"WebPush: info\0";
/// HKDF info of the content-encryption key (RFC 8188 §2.2).
const CEK_INFO: &[u8] = b"Content-Encoding: aes128gcm\0";
/// HKDF info of the nonce (RFC 8188 §2.3).
const NONCE_INFO: &[u8] = b"Content-Encoding: nonce\0";
/// Length of the fixed part of the header: salt (16), record size (4), key id length (1).
const FIXED_HEADER: usize = 21;
/// Length of an uncompressed P-256 point, the key id Web Push uses.
const POINT_LEN: usize = 65;
/// Length of the AES-GCM tag.
const TAG_LEN: usize = 16;
/// Padding delimiter of every record but the last.
const DELIMITER: u8 = 0x01;
/// Padding delimiter of the last record.
const LAST_DELIMITER: u8 = 0x02;

/// The content-encryption key and base nonce of one message.
pub(crate) struct Keys {
    /// AES-128-GCM key.
    pub(crate) cek: [u8; 16],
    /// Nonce of record 0; record `i`'s is this XOR `i`.
    pub(crate) nonce: [u8; 12],
}

/// Derives the keys of a message from the ECDH secret, the auth secret, both public keys (uncompressed
/// points) and the salt (RFC 8291 §3.3–3.4, RFC 8188 §2.2–2.3). `None` only if HKDF refuses a length, which
/// the fixed lengths here never are.
pub(crate) fn derive(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> Option<Keys> {
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), ecdh_secret)
        .expand_multi_info(&[KEY_INFO, ua_public, as_public], &mut ikm)
        .ok()?;
    let content = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut keys = Keys {
        cek: [0; 16],
        nonce: [0; 12],
    };
    content.expand(CEK_INFO, &mut keys.cek).ok()?;
    content.expand(NONCE_INFO, &mut keys.nonce).ok()?;
    Some(keys)
}

/// The nonce of record `seq` (RFC 8188 §2.3).
pub(crate) fn record_nonce(base: [u8; 12], seq: u64) -> [u8; 12] {
    let mut nonce = base;
    for (byte, seq_byte) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *byte ^= seq_byte;
    }
    nonce
}

/// The ECDH shared secret (the x coordinate) of `secret` and `public`.
pub(crate) fn ecdh(secret: &SecretKey, public: &PublicKey) -> [u8; 32] {
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
    (*shared.raw_secret_bytes()).into()
}

/// `public` as an uncompressed point (65 bytes).
pub(crate) fn uncompressed(public: &PublicKey) -> Vec<u8> {
    public.to_encoded_point(false).as_bytes().to_vec()
}

/// Decrypts an `aes128gcm` Web Push body for the subscriber with private key `ua_secret` and auth secret
/// `auth` (RFC 8291 §3.4–4): header `salt ‖ rs ‖ idlen ‖ as_public`, then records of `rs` bytes, each ending in
/// its padding delimiter (`0x02` on the last, `0x01` before) and zero padding. Returns the plaintext, or why
/// the body is not one.
pub(crate) fn decrypt(ua_secret: &SecretKey, auth: &[u8], body: &[u8]) -> Result<Vec<u8>, String> {
    let Some(header) = body.get(..FIXED_HEADER) else {
        return Err(format!(
            "body of {} bytes is shorter than an aes128gcm header",
            body.len()
        ));
    };
    let (salt, rest) = header.split_at(16);
    let record_size = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let id_len = usize::from(rest[4]);
    if id_len != POINT_LEN {
        return Err(format!(
            "key id is {id_len} bytes, not an uncompressed P-256 point (65)"
        ));
    }
    let Some(as_public) = body.get(FIXED_HEADER..FIXED_HEADER + POINT_LEN) else {
        return Err("body ends inside the key id".to_owned());
    };
    let Ok(as_key) = PublicKey::from_sec1_bytes(as_public) else {
        return Err("key id is not a point on P-256".to_owned());
    };
    let Ok(record_size) = usize::try_from(record_size) else {
        return Err("record size does not fit in memory".to_owned());
    };
    if record_size < TAG_LEN + 2 {
        return Err(format!("record size {record_size} is below the minimum 18"));
    }
    let ciphertext = &body[FIXED_HEADER + POINT_LEN..];
    if ciphertext.is_empty() {
        return Err("no record after the header".to_owned());
    }

    let ua_public = uncompressed(&ua_secret.public_key());
    let secret = ecdh(ua_secret, &as_key);
    let Some(keys) = derive(&secret, auth, &ua_public, as_public, salt) else {
        return Err("key derivation failed".to_owned());
    };
    let Ok(cipher) = Aes128Gcm::new_from_slice(&keys.cek) else {
        return Err("content-encryption key has the wrong length".to_owned());
    };

    let records: Vec<&[u8]> = ciphertext.chunks(record_size).collect();
    let mut plaintext = Vec::new();
    for (seq, record) in (0u64..).zip(&records) {
        let last = usize::try_from(seq).ok() == Some(records.len() - 1);
        if record.len() <= TAG_LEN {
            return Err(format!(
                "record {seq} of {} bytes has no room for a delimiter",
                record.len()
            ));
        }
        let nonce = record_nonce(keys.nonce, seq).into();
        let Ok(mut padded) = cipher.decrypt(&nonce, *record) else {
            return Err(format!(
                "record {seq} does not decrypt (wrong keys or auth secret, or altered)"
            ));
        };
        let Some(end) = padded.iter().rposition(|&byte| byte != 0) else {
            return Err(format!("record {seq} has no padding delimiter"));
        };
        let expected = if last { LAST_DELIMITER } else { DELIMITER };
        if padded[end] != expected {
            return Err(format!(
                "record {seq} ends in delimiter {:#04x}, not {expected:#04x}",
                padded[end]
            ));
        }
        padded.truncate(end);
        plaintext.extend_from_slice(&padded);
    }
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    //! The intermediate values of RFC 8291 Appendix A, so a failure points at the step that is wrong.

    // Test code: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used)]

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use p256::{PublicKey, SecretKey};

    use aes_gcm::Aes128Gcm;
    use aes_gcm::aead::{Aead as _, KeyInit as _};

    use super::{decrypt, derive, ecdh, record_nonce, uncompressed};

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    #[test]
    fn the_rfc_8291_intermediate_values_are_derived() {
        let ua = SecretKey::from_slice(&b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")).unwrap();
        let as_public = PublicKey::from_sec1_bytes(&b64(
            "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
        ))
        .unwrap();
        let secret = ecdh(&ua, &as_public);
        assert_eq!(
            URL_SAFE_NO_PAD.encode(secret),
            "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs"
        );
        let keys = derive(
            &secret,
            &b64("BTBZMqHH6r4Tts7J_aSIgg"),
            &uncompressed(&ua.public_key()),
            &uncompressed(&as_public),
            &b64("DGv6ra1nlYgDCS1FRnbzlw"),
        )
        .unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(keys.cek), "oIhVW04MRdy2XN9CiKLxTg");
        assert_eq!(URL_SAFE_NO_PAD.encode(keys.nonce), "4h_95klXJ5E_qnoN");
        assert_eq!(record_nonce(keys.nonce, 0), keys.nonce);
        let mut second = keys.nonce;
        second[11] ^= 1;
        assert_eq!(record_nonce(keys.nonce, 1), second);
    }

    /// A body of several records with padding, as RFC 8188 allows: records of `rs` bytes, `0x01` delimiters
    /// before the last, `0x02` on it, zeros after.
    #[test]
    fn several_padded_records_decrypt() {
        let ua = crate::random_secret_key();
        let sender = crate::random_secret_key();
        let auth = [9u8; 16];
        let salt = [3u8; 16];
        let as_public = uncompressed(&sender.public_key());
        let keys = derive(
            &ecdh(&sender, &ua.public_key()),
            &auth,
            &uncompressed(&ua.public_key()),
            &as_public,
            &salt,
        )
        .unwrap();
        let cipher = Aes128Gcm::new_from_slice(&keys.cek).unwrap();
        let record_size = 32usize; // 16 bytes of content per record, including delimiter and padding
        let records: [&[u8]; 3] = [
            b"0123456789abcde\x01",
            b"fghij\x01\0\0\0\0\0\0\0\0\0\0",
            b"xyz\x02\0",
        ];
        let mut body = salt.to_vec();
        body.extend_from_slice(&u32::try_from(record_size).unwrap().to_be_bytes());
        body.push(65);
        body.extend_from_slice(&as_public);
        for (seq, record) in (0u64..).zip(records) {
            let nonce = record_nonce(keys.nonce, seq).into();
            body.extend_from_slice(&cipher.encrypt(&nonce, record).unwrap());
        }
        assert_eq!(
            decrypt(&ua, &auth, &body).unwrap(),
            b"0123456789abcdefghijxyz".to_vec()
        );

        // A last record with the delimiter of a middle one is refused (a truncated message).
        let cut = body.len() - (3 + 2 + 16);
        let error = decrypt(&ua, &auth, &body[..cut]).unwrap_err();
        assert!(error.contains("delimiter"), "{error}");
    }
}

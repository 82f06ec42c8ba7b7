//! RFC 8292 (VAPID) verification: parses `Authorization: vapid t=<JWT>, k=<key>`, checks the JWT's ES256
//! signature against `k` and its claims against the push service's origin and clock.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;

use crate::VapidClaims;

/// The longest a JWT may be valid for (RFC 8292 §2).
pub(crate) const MAX_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// Why a request's VAPID credentials were refused: its status and the reason recorded.
#[derive(Debug)]
pub(crate) struct Refused {
    /// `401` (missing or malformed credentials) or `403` (credentials that do not verify).
    pub(crate) status: u16,
    /// Human-readable reason.
    pub(crate) reason: String,
}

fn unauthorized(reason: impl Into<String>) -> Refused {
    Refused {
        status: 401,
        reason: reason.into(),
    }
}

fn forbidden(reason: impl Into<String>) -> Refused {
    Refused {
        status: 403,
        reason: reason.into(),
    }
}

/// Decodes base64url, with or without padding.
fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// Verified credentials: the claims and the raw `k` key (uncompressed point).
pub(crate) struct Verified {
    /// The JWT's claims.
    pub(crate) claims: VapidClaims,
    /// `k=` as given (base64url).
    pub(crate) key_text: String,
    /// `k=` decoded.
    pub(crate) key: Vec<u8>,
}

/// Checks the `Authorization` header against `origin` (the `aud` required) at Unix time `now`.
pub(crate) fn verify(authorization: Option<&str>, origin: &str, now: u64) -> Result<Verified, Refused> {
    let Some(authorization) = authorization else {
        return Err(unauthorized("no Authorization header"));
    };
    let (scheme, params) = authorization
        .trim()
        .split_once(' ')
        .unwrap_or((authorization, ""));
    if !scheme.eq_ignore_ascii_case("vapid") {
        return Err(unauthorized(format!(
            "Authorization scheme {scheme:?} is not vapid"
        )));
    }
    let (mut token, mut key_text) = (None, None);
    for param in params.split(',') {
        let Some((name, value)) = param.trim().split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim() {
            "t" => token = Some(value),
            "k" => key_text = Some(value),
            _ => {}
        }
    }
    let (Some(token), Some(key_text)) = (token, key_text) else {
        return Err(unauthorized("Authorization lacks t= or k="));
    };
    let Some(key) = decode(key_text) else {
        return Err(unauthorized("k= is not base64url"));
    };
    if key.len() != 65 || key[0] != 0x04 {
        return Err(unauthorized("k= is not an uncompressed P-256 point (65 bytes)"));
    }
    let Ok(verifying_key) = VerifyingKey::from_sec1_bytes(&key) else {
        return Err(unauthorized("k= is not a point on P-256"));
    };

    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts[..] else {
        return Err(unauthorized("t= is not a JWT of three parts"));
    };
    let Some(header) = decode(header_b64).and_then(|raw| serde_json::from_slice::<Value>(&raw).ok()) else {
        return Err(unauthorized("JWT header is not base64url JSON"));
    };
    if header.get("alg").and_then(Value::as_str) != Some("ES256") {
        return Err(forbidden(format!("JWT alg is {}, not ES256", header["alg"])));
    }
    if let Some(typ) = header.get("typ")
        && !typ.as_str().is_some_and(|typ| typ.eq_ignore_ascii_case("JWT"))
    {
        return Err(forbidden(format!("JWT typ is {typ}, not JWT")));
    }
    let Some(signature) = decode(signature_b64) else {
        return Err(unauthorized("JWT signature is not base64url"));
    };
    let Ok(signature) = Signature::from_slice(&signature) else {
        return Err(forbidden(format!(
            "JWT signature is {} bytes, not raw r‖s (64)",
            signature.len()
        )));
    };
    let signed = &token[..header_b64.len() + 1 + claims_b64.len()];
    if verifying_key.verify(signed.as_bytes(), &signature).is_err() {
        return Err(forbidden("JWT signature does not verify with k="));
    }

    let Some(claims) = decode(claims_b64).and_then(|raw| serde_json::from_slice::<Value>(&raw).ok()) else {
        return Err(forbidden("JWT claims are not base64url JSON"));
    };
    let Some(aud) = claims.get("aud").and_then(Value::as_str) else {
        return Err(forbidden("JWT has no aud"));
    };
    if aud != origin {
        return Err(forbidden(format!(
            "JWT aud {aud:?} is not the push service's origin {origin:?}"
        )));
    }
    let Some(exp) = claims.get("exp").and_then(Value::as_u64) else {
        return Err(forbidden("JWT has no exp (seconds since the epoch)"));
    };
    if exp <= now {
        return Err(forbidden(format!(
            "JWT expired: exp {exp} is not after now {now}"
        )));
    }
    if exp > now + MAX_LIFETIME_SECS {
        return Err(forbidden(format!(
            "JWT exp {exp} is more than 24 h after now {now}"
        )));
    }
    let Some(sub) = claims.get("sub").and_then(Value::as_str) else {
        return Err(forbidden("JWT has no sub"));
    };
    if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
        return Err(forbidden(format!(
            "JWT sub {sub:?} is neither mailto: nor https:"
        )));
    }
    Ok(Verified {
        claims: VapidClaims {
            aud: aud.to_owned(),
            exp,
            sub: sub.to_owned(),
        },
        key_text: key_text.to_owned(),
        key,
    })
}

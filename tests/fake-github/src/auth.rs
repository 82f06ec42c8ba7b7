//! Credentials: HTTP Basic for git (any username, the token as password) and `Bearer`/`token` for the REST
//! API.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// The username of a valid HTTP Basic `Authorization` header whose password is `token`.
pub(crate) fn basic_user(headers: &HeaderMap, token: &str) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    (password == token).then(|| user.to_owned())
}

/// Whether the `Authorization` header is `Bearer <token>` or `token <token>` (scheme case-insensitive).
pub(crate) fn api_token_ok(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let Some((scheme, given)) = value.trim().split_once(' ') else {
        return false;
    };
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")) && given.trim() == token
}

/// Standard base64 (padding optional); `None` on anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(byte: u8) -> Option<u32> {
        match byte {
            b'A'..=b'Z' => Some(u32::from(byte - b'A')),
            b'a'..=b'z' => Some(u32::from(byte - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(byte - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let digits = text.trim_end_matches('=').as_bytes();
    if digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for &byte in chunk {
            acc = (acc << 6) | value(byte)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn decodes_base64() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYg").unwrap(), b"foob");
        assert_eq!(
            base64_decode("eC1hY2Nlc3MtdG9rZW46czNjcjN0").unwrap(),
            b"x-access-token:s3cr3t"
        );
        assert!(base64_decode("Z").is_none());
        assert!(base64_decode("Zm9v!").is_none());
    }

    #[test]
    fn basic() {
        // x-access-token:s3cr3t
        let good = with_auth("Basic eC1hY2Nlc3MtdG9rZW46czNjcjN0");
        assert_eq!(basic_user(&good, "s3cr3t").as_deref(), Some("x-access-token"));
        assert_eq!(basic_user(&good, "other"), None);
        assert_eq!(basic_user(&with_auth("Bearer s3cr3t"), "s3cr3t"), None);
        assert_eq!(basic_user(&HeaderMap::new(), "s3cr3t"), None);
    }

    #[test]
    fn api() {
        assert!(api_token_ok(&with_auth("Bearer s3cr3t"), "s3cr3t"));
        assert!(api_token_ok(&with_auth("token s3cr3t"), "s3cr3t"));
        assert!(!api_token_ok(&with_auth("Bearer wrong"), "s3cr3t"));
        assert!(!api_token_ok(
            &with_auth("Basic eC1hY2Nlc3MtdG9rZW46czNjcjN0"),
            "s3cr3t"
        ));
        assert!(!api_token_ok(&HeaderMap::new(), "s3cr3t"));
    }
}

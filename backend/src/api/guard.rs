//! The request guard, in front of every route: a host allowlist (against DNS rebinding), same-origin checks on
//! every state-changing request and on the WebSocket upgrade (against CSRF and cross-site WebSocket
//! hijacking, answered 403 before any upgrade), JSON-only request bodies (415), and no body announced as over
//! the size limit (413, before reading it).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::MAX_BODY_BYTES;
use crate::error::AppError;

/// Which hosts and origins may use this server.
#[derive(Debug, Clone, Default)]
pub struct RequestPolicy {
    /// The origin users reach us at through a proxy (e.g. `https://agentfarm.tailnet.ts.net`).
    pub public_origin: Option<String>,
    /// Host names accepted besides IP literals, `localhost` and the public origin's host.
    pub allowed_hosts: Vec<String>,
}

impl RequestPolicy {
    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        name.parse::<IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || self
                .allowed_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(name))
            || self
                .public_origin
                .as_deref()
                .and_then(origin_host)
                .is_some_and(|public| public.eq_ignore_ascii_case(name))
    }

    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        self.public_origin.as_deref() == Some(origin)
            || origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
    }

    fn verdict(&self, method: &Method, headers: &HeaderMap) -> Result<(), AppError> {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let host = text(header::HOST).unwrap_or_default();
        if !self.host_allowed(host) {
            return Err(AppError::Forbidden(format!(
                "host {host:?} is not allowed; start the server with --public-url or --allowed-host for it"
            )));
        }
        let upgrade = text(header::UPGRADE).is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        let changes_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !(changes_state || upgrade) {
            return Ok(());
        }
        if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
            && !matches!(site, "same-origin" | "none")
        {
            return Err(AppError::Forbidden(format!(
                "cross-site request refused (Sec-Fetch-Site: {site})"
            )));
        }
        match text(header::ORIGIN) {
            Some(origin) if !self.origin_allowed(origin, host) => {
                return Err(AppError::Forbidden(format!(
                    "requests from origin {origin:?} are not allowed"
                )));
            }
            None if upgrade => {
                return Err(AppError::Forbidden(
                    "a WebSocket upgrade must carry an Origin".into(),
                ));
            }
            _ => {}
        }
        if changes_state {
            json_body(headers)?;
            declared_size(headers)?;
        }
        Ok(())
    }
}

/// A body announced as larger than [`MAX_BODY_BYTES`] is refused from the head alone, before any of it is
/// read (a body without a length is cut at the limit as it is read).
fn declared_size(headers: &HeaderMap) -> Result<(), AppError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|len| len.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_BODY_BYTES as u64 => Err(AppError::PayloadTooLarge(MAX_BODY_BYTES)),
        _ => Ok(()),
    }
}

/// A body, if there is one, must be declared `application/json`.
fn json_body(headers: &HeaderMap) -> Result<(), AppError> {
    match headers.get(header::CONTENT_TYPE) {
        Some(value) => {
            let mime = value
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim();
            if mime.eq_ignore_ascii_case("application/json") {
                Ok(())
            } else {
                Err(AppError::UnsupportedMediaType)
            }
        }
        None => {
            let has_body = headers.contains_key(header::TRANSFER_ENCODING)
                || headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|len| len.trim() != "0");
            if has_body {
                Err(AppError::UnsupportedMediaType)
            } else {
                Ok(())
            }
        }
    }
}

/// `host[:port]` → `host` (IPv6 literals lose their brackets).
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    authority.rsplit_once(':').map_or(authority, |(host, _)| host)
}

/// `scheme://host[:port][/…]` → `host`.
fn origin_host(origin: &str) -> Option<&str> {
    let authority = origin.split_once("://")?.1.split('/').next()?;
    Some(host_name(authority))
}

/// The middleware.
pub async fn check(State(policy): State<Arc<RequestPolicy>>, request: Request, next: Next) -> Response {
    match policy.verdict(request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn hosts() {
        let policy = RequestPolicy {
            public_origin: Some("https://farm.tail1.ts.net".into()),
            allowed_hosts: vec![],
        };
        for ok in [
            "127.0.0.1:8080",
            "localhost:1",
            "[::1]:8080",
            "farm.tail1.ts.net",
            "10.0.0.5",
        ] {
            assert!(policy.host_allowed(ok), "{ok}");
        }
        for bad in ["evil.example:8080", "", "farm.tail1.ts.net.evil.example"] {
            assert!(!policy.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn origins_and_fetch_metadata() {
        let policy = RequestPolicy::default();
        let post = Method::POST;
        let own = headers(&[
            ("host", "127.0.0.1:9"),
            ("origin", "http://127.0.0.1:9"),
            ("content-type", "application/json"),
        ]);
        assert!(policy.verdict(&post, &own).is_ok());
        let evil = headers(&[("host", "127.0.0.1:9"), ("origin", "https://evil.example")]);
        assert!(matches!(
            policy.verdict(&post, &evil),
            Err(AppError::Forbidden(_))
        ));
        let cross = headers(&[("host", "127.0.0.1:9"), ("sec-fetch-site", "cross-site")]);
        assert!(matches!(
            policy.verdict(&post, &cross),
            Err(AppError::Forbidden(_))
        ));
        let same_site = headers(&[("host", "127.0.0.1:9"), ("sec-fetch-site", "same-site")]);
        assert!(matches!(
            policy.verdict(&post, &same_site),
            Err(AppError::Forbidden(_))
        ));
        let reading = headers(&[("host", "127.0.0.1:9"), ("origin", "https://evil.example")]);
        assert!(
            policy.verdict(&Method::GET, &reading).is_ok(),
            "plain reads carry no side effects"
        );
        let ws_without_origin = headers(&[("host", "127.0.0.1:9"), ("upgrade", "websocket")]);
        assert!(policy.verdict(&Method::GET, &ws_without_origin).is_err());
    }

    #[test]
    fn bodies_must_be_json() {
        let policy = RequestPolicy::default();
        let text = headers(&[
            ("host", "127.0.0.1"),
            ("content-type", "text/plain"),
            ("content-length", "2"),
        ]);
        assert!(matches!(
            policy.verdict(&Method::POST, &text),
            Err(AppError::UnsupportedMediaType)
        ));
        let untyped = headers(&[("host", "127.0.0.1"), ("content-length", "2")]);
        assert!(matches!(
            policy.verdict(&Method::POST, &untyped),
            Err(AppError::UnsupportedMediaType)
        ));
        let empty = headers(&[("host", "127.0.0.1"), ("content-length", "0")]);
        assert!(policy.verdict(&Method::POST, &empty).is_ok());
        let charset = headers(&[
            ("host", "127.0.0.1"),
            ("content-type", "application/json; charset=utf-8"),
        ]);
        assert!(policy.verdict(&Method::PUT, &charset).is_ok());
    }
}

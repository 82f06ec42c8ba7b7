//! Who may use the server: the owner's Tailscale login, taken from the identity headers Tailscale Serve sets,
//! believed only from a trusted proxy, held against the login allowlist and, optionally, confirmed by
//! tailscaled's whois (SECURITY.md T11).
//!
//! Serve (also the Kubernetes operator's Ingress proxy, which is Serve in a pod) deletes any
//! `Tailscale-User-Login` a client sent, sets its own from the WireGuard peer's identity (none for tagged
//! devices), and sets `X-Forwarded-For` to the client's tailnet address alone. With `--allowed-login` set:
//!
//! | request | answer |
//! | --- | --- |
//! | `/healthz`, `/readyz` | passes (kubelet probes) |
//! | a `Tailscale-User-Login` from a peer outside `--trusted-proxy` | 403 |
//! | no `Tailscale-User-Login` | 401 |
//! | a login not on the allowlist (compared trimmed and case-insensitively) | 403 |
//! | with `--tailscale-whois`: no `X-Forwarded-For` address, whois failing or unreachable, or naming another login | 403 |
//! | otherwise | passes |
//!
//! Whois is asked about the last `X-Forwarded-For` address (the one the trusted proxy wrote), as `IP:0`, which
//! every tailscaled version accepts for a tailnet address. It catches a proxy that passes on a client's
//! header, not a local process: whatever connects from a trusted address can name any login and the owner's
//! address, so trust only the proxy's addresses. Without `--allowed-login` nothing is checked.
//! Non-ASCII logins are not supported: Serve sends them RFC 2047-encoded, so they match no allowlist entry.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentfarm_shared::api::routes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use serde::Deserialize;

use crate::error::AppError;

/// The header Serve puts the user's login name in.
const LOGIN_HEADER: &str = "tailscale-user-login";

/// The `Host` tailscaled's LocalAPI accepts without a password.
const LOCAL_API_HOST: &str = "local-tailscaled.sock";

/// How long whois may take before the request is refused.
const WHOIS_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest login accepted.
const MAX_LOGIN: usize = 256;

/// Where tailscaled's LocalAPI listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhoisEndpoint {
    /// Its Unix socket, e.g. `/var/run/tailscale/tailscaled.sock`.
    Socket(PathBuf),
    /// `http://IP:PORT`: a LocalAPI reachable over TCP without a password (a bridge to the socket).
    Tcp(SocketAddr),
}

/// `text` trimmed and lower-cased, if it can be a Tailscale login (printable ASCII, no spaces).
pub fn normalize_login(text: &str) -> Option<String> {
    let login = text.trim();
    let valid = !login.is_empty() && login.len() <= MAX_LOGIN && login.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| login.to_ascii_lowercase())
}

/// Why the identity check could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The HTTP client for whois could not be built.
    #[error("the client for tailscaled's whois: {0}")]
    Client(String),
}

/// Whose requests are served.
pub struct IdentityPolicy {
    /// Normalized logins; empty: identity is not required.
    allowed_logins: Vec<String>,
    /// Peers whose identity headers are believed.
    trusted_proxies: Vec<IpNet>,
    /// tailscaled's whois, to confirm each login.
    whois: Option<Whois>,
}

impl IdentityPolicy {
    /// A policy allowing `allowed_logins` (normalized, see [`normalize_login`]) through `trusted_proxies`,
    /// confirmed by the whois at `whois` when given.
    pub fn new(
        allowed_logins: Vec<String>,
        trusted_proxies: Vec<IpNet>,
        whois: Option<&WhoisEndpoint>,
    ) -> Result<IdentityPolicy, IdentityError> {
        Ok(IdentityPolicy {
            allowed_logins,
            trusted_proxies,
            whois: whois.map(Whois::new).transpose()?,
        })
    }

    /// Whether requests must carry an allowed login.
    pub fn required(&self) -> bool {
        !self.allowed_logins.is_empty()
    }

    fn trusts(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.trusted_proxies.iter().any(|net| net.contains(&ip)))
    }

    async fn verdict(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Result<(), AppError> {
        let peer_text = peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let mut logins = headers.get_all(LOGIN_HEADER).iter();
        let (Some(value), None) = (logins.next(), logins.next()) else {
            if headers.contains_key(LOGIN_HEADER) {
                return Err(refuse(&peer_text, "more than one Tailscale-User-Login header"));
            }
            tracing::info!(peer = %peer_text, "refused: no Tailscale login");
            return Err(AppError::Unauthorized(
                "no Tailscale login: open this server at its Tailscale HTTPS name, from a device signed in as an \
                 allowed user (tagged devices carry no login)"
                    .into(),
            ));
        };
        if !self.trusts(peer) {
            return Err(refuse(
                &peer_text,
                "Tailscale identity headers are believed only from a trusted proxy (--trusted-proxy), and this \
                 connection is not from one",
            ));
        }
        let Some(login) = value.to_str().ok().and_then(normalize_login) else {
            return Err(refuse(
                &peer_text,
                "the Tailscale-User-Login header is not a login",
            ));
        };
        if !self.allowed_logins.contains(&login) {
            tracing::warn!(peer = %peer_text, login, "refused: login not allowed");
            return Err(AppError::Forbidden(format!(
                "the Tailscale login {login} is not allowed on this server (--allowed-login)"
            )));
        }
        match &self.whois {
            Some(whois) => whois.confirm(&login, headers, &peer_text).await,
            None => Ok(()),
        }
    }
}

/// A 403 for `reason`, logged with the peer.
fn refuse(peer: &str, reason: &str) -> AppError {
    tracing::warn!(peer, "refused: {reason}");
    AppError::Forbidden(reason.to_owned())
}

/// The middleware: the routes behind it see only requests from allowed logins (or every request, when no
/// login is required).
pub async fn check(State(policy): State<Arc<IdentityPolicy>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !policy.required() || path == routes::HEALTHZ || path == routes::READYZ {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical());
    match policy.verdict(peer, request.headers()).await {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

/// A client of tailscaled's LocalAPI whois.
struct Whois {
    http: reqwest::Client,
    /// `http://local-tailscaled.sock` over the socket, or `http://IP:PORT`.
    base: String,
}

/// `apitype.WhoIsResponse`, the part read here.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WhoisResponse {
    user_profile: UserProfile,
}

/// `tailcfg.UserProfile`, the part read here.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserProfile {
    login_name: String,
}

impl Whois {
    fn new(endpoint: &WhoisEndpoint) -> Result<Whois, IdentityError> {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(WHOIS_TIMEOUT);
        let (builder, base) = match endpoint {
            WhoisEndpoint::Socket(path) => (
                builder.unix_socket(path.as_path()),
                format!("http://{LOCAL_API_HOST}"),
            ),
            WhoisEndpoint::Tcp(addr) => (builder, format!("http://{addr}")),
        };
        let http = builder
            .build()
            .map_err(|err| IdentityError::Client(err.to_string()))?;
        Ok(Whois { http, base })
    }

    /// Ok if tailscaled says the request's tailnet address (the last `X-Forwarded-For` entry) is `login`'s.
    async fn confirm(&self, login: &str, headers: &HeaderMap, peer: &str) -> Result<(), AppError> {
        let Some(ip) = forwarded_for(headers) else {
            return Err(refuse(
                peer,
                "cannot verify the Tailscale login: the proxy sent no X-Forwarded-For address to ask tailscaled about",
            ));
        };
        match self.login_at(ip).await {
            Ok(owner) if owner.trim().eq_ignore_ascii_case(login) => Ok(()),
            Ok(owner) => {
                tracing::warn!(peer, %ip, login, whois = owner, "refused: the login is not the address's owner");
                Err(AppError::Forbidden(format!(
                    "the Tailscale login does not match tailscaled's whois for {ip}"
                )))
            }
            Err(WhoisFailure::Unknown) => Err(refuse(
                peer,
                &format!("cannot verify the Tailscale login: tailscaled knows no node at {ip}"),
            )),
            Err(WhoisFailure::Failed(why)) => {
                tracing::error!(peer, %ip, why, "tailscaled's whois failed");
                Err(AppError::Forbidden(
                    "cannot verify the Tailscale login: tailscaled's whois failed (see the server log)"
                        .into(),
                ))
            }
        }
    }

    /// The login of the node at `ip`.
    async fn login_at(&self, ip: IpAddr) -> Result<String, WhoisFailure> {
        let response = self
            .http
            .get(format!("{}/localapi/v0/whois", self.base))
            .query(&[("addr", SocketAddr::new(ip, 0).to_string())])
            .header(header::HOST, LOCAL_API_HOST)
            .send()
            .await
            .map_err(|err| WhoisFailure::Failed(err.to_string()))?;
        match response.status() {
            StatusCode::OK => response
                .json::<WhoisResponse>()
                .await
                .map(|whois| whois.user_profile.login_name)
                .map_err(|err| WhoisFailure::Failed(format!("unreadable answer: {err}"))),
            StatusCode::NOT_FOUND => Err(WhoisFailure::Unknown),
            status => {
                let text = response.text().await.unwrap_or_default();
                let first_line: String = text
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                Err(WhoisFailure::Failed(format!("{status}: {first_line}")))
            }
        }
    }
}

/// Why whois gave no login.
enum WhoisFailure {
    /// No node has the address (404).
    Unknown,
    /// Unreachable, timed out, or any other answer.
    Failed(String),
}

/// The last address of `X-Forwarded-For`: the one the nearest (trusted) proxy wrote.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()?
        .to_str()
        .ok()?
        .rsplit(',')
        .next()?;
    last.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn policy(proxies: &[&str]) -> IdentityPolicy {
        let proxies = proxies.iter().map(|text| text.parse().unwrap()).collect();
        IdentityPolicy::new(vec!["owner@example.com".into()], proxies, None).unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn only_the_listed_peers_are_trusted() {
        let default = policy(&["127.0.0.1/32", "::1/128"]);
        assert!(default.trusts(ip("127.0.0.1")));
        assert!(default.trusts(ip("::1")));
        assert!(
            !default.trusts(ip("127.0.0.2")),
            "loopback is not trusted wholesale"
        );
        assert!(!default.trusts(ip("10.244.1.7")));
        assert!(!default.trusts(None), "no peer address: not trusted");
        let cluster = policy(&["10.244.0.0/16"]);
        assert!(cluster.trusts(ip("10.244.1.7")));
        assert!(!cluster.trusts(ip("10.245.0.1")));
    }

    #[test]
    fn logins_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_login(" Owner@Example.COM ").as_deref(),
            Some("owner@example.com")
        );
        assert_eq!(
            normalize_login("octocat@github").as_deref(),
            Some("octocat@github")
        );
        for bad in [
            "",
            "  ",
            "two words@example.com",
            "tab\t@x",
            "ünicode@example.com",
        ] {
            assert_eq!(normalize_login(bad), None, "{bad:?}");
        }
        assert_eq!(normalize_login(&"a".repeat(MAX_LOGIN + 1)), None);
    }

    #[test]
    fn the_last_forwarded_address_counts() {
        assert_eq!(
            forwarded_for(&headers(&[("x-forwarded-for", "100.64.0.1")])),
            ip("100.64.0.1")
        );
        assert_eq!(
            forwarded_for(&headers(&[("x-forwarded-for", "1.2.3.4, 100.64.0.2")])),
            ip("100.64.0.2")
        );
        assert_eq!(
            forwarded_for(&headers(&[
                ("x-forwarded-for", "1.2.3.4"),
                ("x-forwarded-for", "::ffff:100.64.0.3")
            ])),
            ip("100.64.0.3")
        );
        assert_eq!(
            forwarded_for(&headers(&[("x-forwarded-for", "100.64.0.1:443")])),
            None
        );
        assert_eq!(forwarded_for(&headers(&[])), None);
    }

    #[tokio::test]
    async fn verdicts() {
        let policy = policy(&["127.0.0.1/32"]);
        let local = ip("127.0.0.1");
        let owner = headers(&[("tailscale-user-login", "owner@example.com")]);
        assert!(policy.verdict(local, &owner).await.is_ok());
        assert!(matches!(
            policy.verdict(ip("127.0.0.2"), &owner).await,
            Err(AppError::Forbidden(_))
        ));
        assert!(matches!(
            policy.verdict(local, &headers(&[])).await,
            Err(AppError::Unauthorized(_))
        ));
        let twice = headers(&[
            ("tailscale-user-login", "owner@example.com"),
            ("tailscale-user-login", "owner@example.com"),
        ]);
        assert!(matches!(
            policy.verdict(local, &twice).await,
            Err(AppError::Forbidden(_))
        ));
        let encoded = headers(&[("tailscale-user-login", "=?utf-8?q?j=C3=BCrgen@example.com?=")]);
        assert!(matches!(
            policy.verdict(local, &encoded).await,
            Err(AppError::Forbidden(_))
        ));
    }
}

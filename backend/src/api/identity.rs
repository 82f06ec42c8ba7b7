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
use std::sync::Arc;

use agentfarm_shared::api::routes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::error::AppError;
use crate::tailscale::{Whois, WhoisEndpoint, WhoisError, WhoisFailure, normalize_login};

/// The header Serve puts the user's login name in.
const LOGIN_HEADER: &str = "tailscale-user-login";

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
    ) -> Result<IdentityPolicy, WhoisError> {
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
            Some(whois) => confirm(whois, &login, headers, &peer_text).await,
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

/// Ok if tailscaled says the request's tailnet address (the last `X-Forwarded-For` entry) is `login`'s.
async fn confirm(whois: &Whois, login: &str, headers: &HeaderMap, peer: &str) -> Result<(), AppError> {
    let Some(ip) = forwarded_for(headers) else {
        return Err(refuse(
            peer,
            "cannot verify the Tailscale login: the proxy sent no X-Forwarded-For address to ask tailscaled about",
        ));
    };
    match whois.login_at(ip).await {
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
                "cannot verify the Tailscale login: tailscaled's whois failed (see the server log)".into(),
            ))
        }
    }
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

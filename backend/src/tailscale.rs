//! tailscaled's LocalAPI whois: which Tailscale login a tailnet address belongs to, asked over tailscaled's
//! Unix socket (or a TCP bridge to it); and the canonical form of a login.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use axum::http::{StatusCode, header};
use serde::Deserialize;

/// The `Host` tailscaled's LocalAPI accepts without a password.
const LOCAL_API_HOST: &str = "local-tailscaled.sock";

/// How long whois may take before the request is refused.
const WHOIS_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest login accepted.
pub const MAX_LOGIN: usize = 256;

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

/// Why the whois client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WhoisError {
    /// The HTTP client could not be built.
    #[error("the client for tailscaled's whois: {0}")]
    Client(String),
}

/// A client of tailscaled's LocalAPI whois.
pub struct Whois {
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
    /// A client of the LocalAPI at `endpoint`.
    pub fn new(endpoint: &WhoisEndpoint) -> Result<Whois, WhoisError> {
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
            .map_err(|err| WhoisError::Client(err.to_string()))?;
        Ok(Whois { http, base })
    }

    /// The login of the node at `ip`.
    pub async fn login_at(&self, ip: IpAddr) -> Result<String, WhoisFailure> {
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
pub enum WhoisFailure {
    /// No node has the address (404).
    Unknown,
    /// Unreachable, timed out, or any other answer.
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! A local fake of tailscaled's LocalAPI for tests: `GET /localapi/v0/whois?addr=<ip>[:<port>]`, served both on
//! `127.0.0.1:<port>` and on a Unix socket (where tailscaled serves it, e.g.
//! `/var/run/tailscale/tailscaled.sock`), answering with tailscaled's JSON shape and refusals:
//!
//! | request | answer |
//! | --- | --- |
//! | `Host` neither `local-tailscaled.sock` nor empty, or an `Origin` or `Referer` header | `403` `invalid localapi request` |
//! | a path other than `/localapi/v0/whois` | `404` `404 page not found` |
//! | no `addr` | `400` `missing 'addr' parameter` |
//! | `addr` neither `IP` nor `IP:port` | `400` `invalid 'addr' parameter` |
//! | an address no peer has | `404` `no match for IP:port` |
//! | a peer's address, any port | `200` `{"Node": {…}, "UserProfile": {"ID", "LoginName", "DisplayName", "ProfilePicURL"}, "CapMap": {}}` |
//!
//! Refusals are plain text ending in a newline, as Go's `http.Error` writes them. Peers are matched by IP
//! only, as tailscaled matches tailnet addresses. Every request is recorded ([`FakeTailscale::requests`]).

mod server;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, PoisonError};

use agentfarm_local_server::{LocalServer, Port, UnixServer};
use tempfile::TempDir;

use crate::server::{Peer, Shared};

/// The `Host` tailscaled's own clients send (`apitype.LocalAPIHost`).
pub const LOCAL_API_HOST: &str = "local-tailscaled.sock";

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedWhois {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path and query, e.g. `/localapi/v0/whois?addr=100.64.0.1%3A0`.
    pub path: String,
    /// The `addr` query parameter, decoded.
    pub addr: Option<String>,
    /// All request headers, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The status answered.
    pub status: u16,
}

impl RecordedWhois {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        agentfarm_local_server::find_header(&self.headers, name)
    }
}

/// A running fake tailscaled LocalAPI; stops when dropped.
pub struct FakeTailscale {
    shared: Arc<Shared>,
    tcp: LocalServer,
    unix: UnixServer,
    _dir: TempDir,
}

impl FakeTailscale {
    /// Starts the fake on `127.0.0.1:0` and on a Unix socket in a temporary directory, in the current tokio
    /// runtime, with no peers.
    ///
    /// # Panics
    /// If the port, the directory or the socket cannot be made (test support: a test cannot go on without
    /// its server).
    #[allow(clippy::expect_used)] // test support; see "Panics"
    pub async fn start() -> FakeTailscale {
        let shared = Arc::new(Shared::default());
        let tcp = Port::bind("fake tailscaled")
            .await
            .serve("fake tailscaled", server::router(Arc::clone(&shared)));
        let dir = tempfile::tempdir().expect("fake tailscaled: a temporary directory");
        let unix = UnixServer::serve(
            "fake tailscaled",
            &dir.path().join("tailscaled.sock"),
            server::router(Arc::clone(&shared)),
        );
        FakeTailscale {
            shared,
            tcp,
            unix,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.tcp.url()
    }

    /// The Unix socket.
    pub fn socket(&self) -> &Path {
        self.unix.path()
    }

    /// Makes `ip` a peer's tailnet address, owned by the user `login` (replacing any earlier owner).
    pub fn add_peer(&self, ip: IpAddr, login: &str) {
        let mut peers = self.shared.peers.lock().unwrap_or_else(PoisonError::into_inner);
        peers.retain(|peer| peer.ip != ip);
        let id = peers.iter().map(|peer| peer.id).max().unwrap_or(1000) + 1;
        peers.push(Peer {
            ip,
            id,
            login: login.to_owned(),
        });
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedWhois> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

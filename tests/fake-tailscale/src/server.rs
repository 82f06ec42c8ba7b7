//! The HTTP side: checks each request in the documented order, answers it as tailscaled would, and records it.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{LOCAL_API_HOST, RecordedWhois};

/// The whois endpoint's path.
const WHOIS_PATH: &str = "/localapi/v0/whois";

/// A node on the fake tailnet.
pub(crate) struct Peer {
    /// Its tailnet address.
    pub(crate) ip: IpAddr,
    /// Its node ID; its user's ID is the same number plus 1000.
    pub(crate) id: u64,
    /// Its user's login name.
    pub(crate) login: String,
}

/// State shared by the server and the [`crate::FakeTailscale`] handle.
#[derive(Default)]
pub(crate) struct Shared {
    /// The peers.
    pub(crate) peers: Mutex<Vec<Peer>>,
    /// Every request, in arrival order.
    pub(crate) requests: Mutex<Vec<RecordedWhois>>,
}

/// The router of the fake.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(dispatch).with_state(shared)
}

async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let addr = request.uri().query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "addr")
            .map(|(_, value)| value.into_owned())
    });
    let (status, body) = answer(&shared, request.headers(), request.uri().path(), addr.as_deref());
    shared
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(RecordedWhois {
            method: request.method().to_string(),
            path: request
                .uri()
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_default(),
            addr,
            headers: agentfarm_local_server::recorded_headers(request.headers()),
            status: status.as_u16(),
        });
    match body {
        Ok(json) => (status, axum::Json(json)).into_response(),
        // Go's http.Error.
        Err(message) => (
            status,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            format!("{message}\n"),
        )
            .into_response(),
    }
}

/// The status and the JSON body, or the status and the refusal's text.
fn answer(
    shared: &Shared,
    headers: &HeaderMap,
    path: &str,
    addr: Option<&str>,
) -> (StatusCode, Result<Value, &'static str>) {
    let host = headers
        .get(header::HOST)
        .map(|value| value.to_str().unwrap_or("?"))
        .unwrap_or_default();
    let browser = headers.contains_key(header::ORIGIN) || headers.contains_key(header::REFERER);
    if browser || !(host.is_empty() || host == LOCAL_API_HOST) {
        return (StatusCode::FORBIDDEN, Err("invalid localapi request"));
    }
    if path != WHOIS_PATH {
        return (StatusCode::NOT_FOUND, Err("404 page not found"));
    }
    let Some(addr) = addr.filter(|addr| !addr.is_empty()) else {
        return (StatusCode::BAD_REQUEST, Err("missing 'addr' parameter"));
    };
    let Some(ip) = addr
        .parse::<IpAddr>()
        .ok()
        .or_else(|| addr.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
    else {
        return (StatusCode::BAD_REQUEST, Err("invalid 'addr' parameter"));
    };
    let peers = shared.peers.lock().unwrap_or_else(PoisonError::into_inner);
    match peers.iter().find(|peer| peer.ip == ip) {
        Some(peer) => (StatusCode::OK, Ok(whois_response(peer))),
        None => (StatusCode::NOT_FOUND, Err("no match for IP:port")),
    }
}

/// `apitype.WhoIsResponse`: the node (`tailcfg.Node`, the fields a client may read) and its user
/// (`tailcfg.UserProfile`).
fn whois_response(peer: &Peer) -> Value {
    let user = peer.id + 1000;
    let prefix = if peer.ip.is_ipv4() { 32 } else { 128 };
    let local_part = peer.login.split('@').next().unwrap_or_default();
    json!({
        "Node": {
            "ID": peer.id,
            "StableID": format!("n{:x}CNTRL", peer.id),
            "Name": format!("device-{}.tail1234.ts.net.", peer.id),
            "User": user,
            "Addresses": [format!("{}/{prefix}", peer.ip)],
            "AllowedIPs": [format!("{}/{prefix}", peer.ip)],
            "Online": true,
            "ComputedName": format!("device-{}", peer.id),
        },
        "UserProfile": {
            "ID": user,
            "LoginName": peer.login,
            "DisplayName": local_part,
            "ProfilePicURL": "",
        },
        "CapMap": {},
    })
}

//! Test support: an axum router served on `127.0.0.1:<free port>` in the current tokio runtime until the
//! handle is dropped — how every fake (model, GitHub, Kubernetes, push) starts and stops — and how they
//! record request headers.

use std::net::SocketAddr;

use axum::Router;
use axum::http::HeaderMap;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A bound loopback port, not yet serving (so a fake can put its own URL into its state first).
pub struct Port {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Port {
    /// Binds `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no loopback port can be bound: a test cannot go on without its server.
    #[allow(clippy::expect_used, clippy::panic)] // test support; see "Panics"
    pub async fn bind(name: &str) -> Port {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|err| panic!("{name}: cannot bind 127.0.0.1:0: {err}"));
        let addr = listener.local_addr().expect("a bound socket has an address");
        Port { listener, addr }
    }

    /// The address it is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `router` (handlers may extract the peer's `ConnectInfo<SocketAddr>`) until the returned handle
    /// is dropped.
    pub fn serve(self, name: &'static str, router: Router) -> LocalServer {
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let listener = self.listener;
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "{name} server failed");
            }
        });
        LocalServer {
            addr: self.addr,
            _shutdown: shutdown,
        }
    }
}

/// A running server; it stops when this is dropped.
pub struct LocalServer {
    addr: SocketAddr,
    /// Dropping it ends the serving task's graceful shutdown.
    _shutdown: oneshot::Sender<()>,
}

impl LocalServer {
    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A request's headers as the fakes record them: names lower-case, values as text, in arrival order.
pub fn recorded_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The first value of header `name` (case-insensitive) among recorded headers.
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

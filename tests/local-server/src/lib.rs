//! Test support: an axum router served on `127.0.0.1:<free port>` (or on a Unix socket) in the current tokio
//! runtime until the handle is dropped — how every fake (model, GitHub, Kubernetes, push, tailscaled) starts
//! and stops — and how they record request headers.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::HeaderMap;
use tokio::net::{TcpListener, UnixListener};
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
    pub async fn bind(name: &str) -> Port {
        Port::bind_to(name, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds `addr`, e.g. an address that the pods of a test cluster reach.
    ///
    /// # Panics
    /// If `addr` cannot be bound: a test cannot go on without its server.
    #[allow(clippy::expect_used, clippy::panic)] // test support; see "Panics"
    pub async fn bind_to(name: &str, addr: SocketAddr) -> Port {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|err| panic!("{name}: cannot bind {addr}: {err}"));
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
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let listener = self.listener;
        let shutdown = spawn(name, |stopped| {
            axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            })
        });
        LocalServer {
            addr: self.addr,
            _shutdown: shutdown,
        }
    }
}

/// Serves `serving(stop)` — an `axum::serve(…)` that shuts down gracefully once `stop` resolves — in the
/// background; dropping the returned sender resolves `stop`.
fn spawn<S>(name: &'static str, serving: impl FnOnce(oneshot::Receiver<()>) -> S) -> oneshot::Sender<()>
where
    S: IntoFuture<Output = std::io::Result<()>>,
    S::IntoFuture: Send + 'static,
{
    let (shutdown, stopped) = oneshot::channel::<()>();
    let serving = serving(stopped).into_future();
    tokio::spawn(async move {
        if let Err(error) = serving.await {
            tracing::warn!(%error, "{name} server failed");
        }
    });
    shutdown
}

/// A server on a Unix socket; it stops when this is dropped (the socket file stays: put it in a temp dir).
pub struct UnixServer {
    path: PathBuf,
    /// Dropping it ends the serving task's graceful shutdown.
    _shutdown: oneshot::Sender<()>,
}

impl UnixServer {
    /// Binds a Unix socket at `path` (which must not exist) and serves `router` there until dropped.
    ///
    /// # Panics
    /// If the socket cannot be bound: a test cannot go on without its server.
    #[allow(clippy::panic)] // test support; see "Panics"
    pub fn serve(name: &'static str, path: &Path, router: Router) -> UnixServer {
        let listener = UnixListener::bind(path)
            .unwrap_or_else(|err| panic!("{name}: cannot bind {}: {err}", path.display()));
        let shutdown = spawn(name, |stopped| {
            axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stopped.await;
            })
        });
        UnixServer {
            path: path.to_owned(),
            _shutdown: shutdown,
        }
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
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

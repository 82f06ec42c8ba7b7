//! Putting it together: open the data dir and store, pick the runtime, reconcile, and serve (the app, the
//! proxies on their own port when they have one, and `/metrics` on its own).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agentfarm_shared::api::ServerInfo;
use agentfarm_shared::redact::Redactor;
use axum::Router;
use nix::fcntl::{Flock, FlockArg};
use tokio::net::TcpListener;

use crate::api::{self, AppState, IdentityPolicy, RequestPolicy};
use crate::doctor::Doctor;
use crate::hub::Hub;
use crate::metrics::{self, Metrics};
use crate::proxy::model::ModelTokens;
use crate::proxy::{self, ProxyState, Upstream};
use crate::push::endpoint::Allowlist;
use crate::push::foreground::Foreground;
use crate::push::{Push, PushError, PushSettings};
use crate::retention;
use crate::runtime::kube::{KubeRuntime, KubeSettings};
use crate::runtime::local::sandbox::{Gvisor, GvisorSettings};
use crate::runtime::local::{LocalRuntime, LocalSettings};
use crate::runtime::{RunnerSite, SharedRuntime};
use crate::service::{Farm, FarmLimits};
use crate::settings::{RuntimeChoice, SandboxChoice, Settings};
use crate::store::{Store, StoreError};

/// Events a socket may fall behind by before it must resync.
const HUB_CAPACITY: usize = 4_096;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data dir could not be prepared.
    #[error("data dir {path}: {message}")]
    DataDir {
        /// The data dir.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The database could not be opened, or is one this agentfarm must not use.
    #[error("database {path}: {error}")]
    Database {
        /// The database file.
        path: String,
        /// Why.
        error: StoreError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Kubernetes runtime was asked for and no cluster could be reached.
    #[error("the Kubernetes runtime: {0}")]
    Kubernetes(String),
    /// Web Push could not be set up.
    #[error("notifications: {0}")]
    Push(#[from] PushError),
    /// No rustls crypto provider is installed for the outgoing HTTPS clients (proxies, push, whois).
    #[error(
        "no TLS crypto provider: install one before starting, as `main` does \
         (rustls::crypto::ring::default_provider().install_default())"
    )]
    NoTlsProvider,
    /// The proxies' HTTP client could not be set up.
    #[error("the proxies' HTTP client: {0}")]
    Proxy(String),
    /// The identity check could not be set up.
    #[error("identity: {0}")]
    Identity(#[from] crate::tailscale::WhoisError),
    /// The local runtime's sandbox could not be set up.
    #[error("the gVisor sandbox: {0}")]
    Sandbox(crate::runtime::RuntimeError),
    /// Reconciling with the runtime failed.
    #[error("reconciling runs at start-up: {0}")]
    Reconcile(crate::error::AppError),
    /// The metrics listener could not be bound.
    #[error("the metrics listener {addr}: {error}")]
    MetricsListener {
        /// The address of `--metrics-listen`.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// A started application: its router, its service, and the data-dir lock that keeps a second server away.
pub struct App {
    /// All routes: the app's, and the proxies' unless they have a listener of their own.
    pub router: Router,
    /// The proxies' routes alone and their own listener (`--proxy-listen`, or the sandbox's gateway);
    /// `None`: they are in `router`.
    proxies: Option<(Router, TcpListener)>,
    /// `/metrics` and its own listener (`--metrics-listen`).
    metrics: (Router, TcpListener),
    /// The service.
    pub farm: Arc<Farm>,
    /// The notification sender; it finishes the notification in hand when the server stops.
    push_worker: tokio::task::JoinHandle<()>,
    _lock: Flock<std::fs::File>,
}

impl App {
    /// Where the proxies listen when they have a listener of their own.
    pub fn proxy_addr(&self) -> Option<SocketAddr> {
        self.proxies
            .as_ref()
            .and_then(|(_, listener)| listener.local_addr().ok())
    }

    /// Where `/metrics` is served.
    pub fn metrics_addr(&self) -> Result<SocketAddr, StartError> {
        Ok(self.metrics.1.local_addr()?)
    }
}

/// Opens everything `settings` names (the sandbox's network first, when agents run in gVisor: the proxies
/// listen on its gateway), reconciles runs the store thinks are active, and starts the scheduler and the
/// retention sweep.
pub async fn start(settings: &Settings) -> Result<App, StartError> {
    let sandbox_refused =
        settings.sandbox.kind == SandboxChoice::Gvisor && settings.runtime == RuntimeChoice::Kubernetes;
    if sandbox_refused {
        return Err(StartError::Sandbox(crate::runtime::RuntimeError::Failed(
            "--sandbox gvisor is the local runtime's; on Kubernetes each config's RuntimeClass sandboxes its agents"
                .into(),
        )));
    }
    // Locked first: the sandbox removes what a previous server of this data dir left, never a live one's.
    let lock = prepare_data_dir(&settings.data_dir)?;
    let sandbox = match settings.sandbox.kind {
        SandboxChoice::None => None,
        SandboxChoice::Gvisor => Some(Arc::new(
            Gvisor::start(&gvisor_settings(settings))
                .await
                .map_err(StartError::Sandbox)?,
        )),
    };
    let proxy_addr = settings.proxy_listen.or_else(|| {
        let gvisor = sandbox.as_ref()?;
        Some(SocketAddr::new(gvisor.gateway().into(), 0))
    });
    let proxy_listener = match proxy_addr {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let bound = proxy_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    if let (Some(gvisor), Some(addr)) = (&sandbox, bound) {
        gvisor
            .allow_proxies(addr.port())
            .await
            .map_err(StartError::Sandbox)?;
    }
    let site = runner_site(settings, &settings.agent_url(bound));
    let (runtime, cluster) = runtime(settings, site, sandbox).await?;
    start_locked(settings, runtime, cluster, proxy_listener, lock).await
}

/// [`start`] with this runtime instead of the one `settings` choose, the cluster it runs agents on (for the
/// settings screen's checks), and the proxies' own listener if they have one. Binds the metrics listener.
///
/// The process must have installed its rustls crypto provider first (the binary does in `main`): the library
/// never sets that process-wide default itself.
pub async fn start_on(
    settings: &Settings,
    runtime: SharedRuntime,
    cluster: Option<kube::Client>,
    proxy_listener: Option<TcpListener>,
) -> Result<App, StartError> {
    let lock = prepare_data_dir(&settings.data_dir)?;
    start_locked(settings, runtime, cluster, proxy_listener, lock).await
}

/// [`start_on`] with the data dir already locked by this server.
async fn start_locked(
    settings: &Settings,
    runtime: SharedRuntime,
    cluster: Option<kube::Client>,
    proxy_listener: Option<TcpListener>,
    lock: Flock<std::fs::File>,
) -> Result<App, StartError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err(StartError::NoTlsProvider);
    }
    let data_dir = &settings.data_dir;
    let metrics_listener = TcpListener::bind(settings.metrics_listen)
        .await
        .map_err(|error| StartError::MetricsListener {
            addr: settings.metrics_listen,
            error,
        })?;
    let db = crate::store::db_path(data_dir);
    let store = Store::open(&db).map_err(|error| StartError::Database {
        path: db.display().to_string(),
        error,
    })?;
    let info = ServerInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        runtime: runtime.info(),
        max_running: settings.max_running,
        direct_credentials: settings.direct_credentials,
    };
    let limits = FarmLimits {
        max_running: settings.max_running,
        log_retention: settings.log_retention,
    };
    let redactor = Redactor::new(owner_tokens(settings));
    let farm = Farm::new(store, runtime, Hub::new(HUB_CAPACITY), limits, redactor);
    farm.start().await.map_err(StartError::Reconcile)?;
    if let Some(keep) = retention::keep_for(settings.run_retention_days) {
        tokio::spawn(retention::run(Arc::clone(&farm), keep, farm.hub().closed()));
    }
    let policy = RequestPolicy {
        public_origin: settings.public_url.clone(),
        allowed_hosts: settings.allowed_hosts.clone(),
    };
    let identity = identity_policy(settings)?;
    let web = match settings.web_app_dir() {
        Some(dir) => match api::web::WebApp::open(&dir).await {
            Ok(web) => {
                tracing::info!(dir = %dir.display(), csp = %web.content_security_policy(), "serving the web app");
                Some(Arc::new(web))
            }
            Err(err) => {
                tracing::warn!(dir = %dir.display(), error = %err, "no web app there (index.html); / shows the placeholder page");
                None
            }
        },
        None => None,
    };
    let doctor = match (cluster, settings.sandbox.kind) {
        (Some(client), _) => Some(Doctor::Cluster {
            client,
            spec: Box::new(settings.kube.doctor_spec()),
        }),
        (None, SandboxChoice::Gvisor) => Some(Doctor::Sandbox {
            runsc: settings.sandbox.runsc.clone(),
        }),
        (None, SandboxChoice::None) => None,
    }
    .map(Arc::new);
    let push = Push::new(
        farm.store().clone(),
        push_settings(settings)?,
        Arc::new(Foreground::default()),
    )
    .await?;
    let push_worker = tokio::spawn(Arc::clone(&push).run(farm.hub().subscribe_runs(), farm.hub().closed()));
    let model_tokens = ModelTokens::default();
    let metrics = Metrics::new(Arc::clone(&farm), &push, model_tokens.by_kind());
    let proxies = proxy::router(ProxyState {
        store: farm.store().clone(),
        upstream: Arc::new(Upstream {
            anthropic_url: settings.anthropic_url.clone(),
            git_url: settings.github_url.clone(),
            api_url: settings.github_api_url.clone(),
            credentials: settings.owner_credentials(),
        }),
        http: proxy_client()?,
        model_tokens,
    });
    let router = api::router(AppState {
        farm: Arc::clone(&farm),
        push,
        doctor,
        policy: Arc::new(policy),
        identity: Arc::new(identity),
        info: Arc::new(info),
        web,
    });
    let (router, proxies) = match proxy_listener {
        Some(listener) => (router, Some((proxies, listener))),
        None => (router.merge(proxies), None),
    };
    Ok(App {
        router,
        proxies,
        metrics: (metrics::router(Arc::new(metrics)), metrics_listener),
        farm,
        push_worker,
        _lock: lock,
    })
}

/// How long the proxies wait to connect upstream (answers themselves may stream for many minutes).
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The client the proxies forward with: never following redirects (they would carry the owner's token to
/// wherever they point).
fn proxy_client() -> Result<reqwest::Client, StartError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(UPSTREAM_CONNECT_TIMEOUT)
        .build()
        .map_err(|err| StartError::Proxy(err.to_string()))
}

/// Who may use the server; warns when anyone on the network could.
fn identity_policy(settings: &Settings) -> Result<IdentityPolicy, StartError> {
    let identity = IdentityPolicy::new(
        settings.allowed_logins.clone(),
        settings.trusted_proxies.clone(),
        settings.tailscale_whois.as_ref(),
    )?;
    if !identity.required() && !settings.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %settings.listen,
            "no --allowed-login: anyone who reaches this address can use the server; allowlist your Tailscale login"
        );
    }
    Ok(identity)
}

/// How long a stop waits for the notification in hand.
const PUSH_GRACE: Duration = Duration::from_secs(20);

/// How long `--runtime auto` waits for a cluster to answer.
const CLUSTER_PATIENCE: Duration = Duration::from_secs(5);

/// The runtime `settings` choose, and its cluster when it is the Kubernetes runtime.
async fn runtime(
    settings: &Settings,
    site: RunnerSite,
    sandbox: Option<Arc<Gvisor>>,
) -> Result<(SharedRuntime, Option<kube::Client>), StartError> {
    let sandboxed = sandbox.is_some();
    let local =
        || -> SharedRuntime { Arc::new(LocalRuntime::new(local_settings(settings, site.clone(), sandbox))) };
    let kube = |client: kube::Client| -> (SharedRuntime, Option<kube::Client>) {
        let mut kube_settings = kube_settings(settings);
        kube_settings.runner = site.clone();
        let runtime = Arc::new(KubeRuntime::new(client.clone(), kube_settings));
        (runtime, Some(client))
    };
    match settings.runtime {
        // The sandbox is the local runtime's: with it, `auto` looks for no cluster.
        _ if sandboxed => Ok((local(), None)),
        RuntimeChoice::Local => Ok((local(), None)),
        RuntimeChoice::Kubernetes => {
            let client = kube::Client::try_default()
                .await
                .map_err(|err| StartError::Kubernetes(format!("no cluster configuration: {err}")))?;
            Ok(kube(client))
        }
        RuntimeChoice::Auto => match cluster(&settings.kube.namespace).await {
            Ok(client) => {
                tracing::info!(
                    namespace = settings.kube.namespace,
                    "a cluster answers: agents run as Kubernetes Jobs"
                );
                Ok(kube(client))
            }
            Err(why) => {
                tracing::info!(why, "no usable cluster: agents run as local processes");
                Ok((local(), None))
            }
        },
    }
}

/// A client for the cluster the environment names, if it answers and lets us list Jobs in `namespace`.
async fn cluster(namespace: &str) -> Result<kube::Client, String> {
    let client = kube::Client::try_default()
        .await
        .map_err(|err| format!("no cluster configuration ({err})"))?;
    let jobs: kube::Api<k8s_openapi::api::batch::v1::Job> = kube::Api::namespaced(client.clone(), namespace);
    let params = kube::api::ListParams::default().limit(1);
    let probe = jobs.list_metadata(&params);
    match tokio::time::timeout(CLUSTER_PATIENCE, probe).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(err)) => Err(format!(
            "the cluster answered, but not with the Jobs of namespace {namespace}: {err}"
        )),
        Err(_) => Err(format!("the cluster did not answer within {CLUSTER_PATIENCE:?}")),
    }
}

/// Where agents reach the model and git, and the control plane at `agent_url`.
fn runner_site(settings: &Settings, agent_url: &str) -> RunnerSite {
    let agent_url = agent_url.to_owned();
    let (git_url, model_url) = if settings.direct_credentials {
        (settings.github_url.clone(), settings.anthropic_url.clone())
    } else {
        (
            format!("{agent_url}/proxy/git"),
            format!("{agent_url}/proxy/anthropic"),
        )
    };
    RunnerSite {
        claude_command: settings.claude_command.clone(),
        git_url,
        control_url: agent_url,
        model_url,
        direct: settings.direct_credentials,
    }
}

/// The owner's tokens as they are now: agent output quoting them is masked. Token-shaped strings are masked
/// whatever their source.
fn owner_tokens(settings: &Settings) -> Vec<String> {
    let credentials = settings.owner_credentials();
    [credentials.claude.current(), credentials.github.current()]
        .into_iter()
        .flatten()
        .collect()
}

fn local_settings(settings: &Settings, runner: RunnerSite, sandbox: Option<Arc<Gvisor>>) -> LocalSettings {
    LocalSettings {
        runs_dir: settings.data_dir.join("runs"),
        agent_command: settings.agent_command.clone(),
        runner,
        env_passthrough: settings.env_passthrough.clone(),
        credentials: settings.owner_credentials(),
        agent_env: settings.agent_env.clone(),
        idle_timeout: settings.idle_timeout(),
        stop_grace: settings.stop_grace(),
        shared_claude_dir: settings.shared_claude_dir.clone(),
        sandbox,
    }
}

/// Where the sandboxes keep their state and network.
fn gvisor_settings(settings: &Settings) -> GvisorSettings {
    GvisorSettings {
        runsc: settings.sandbox.runsc.clone(),
        state_dir: settings.data_dir.join("sandboxes"),
        subnet: settings.sandbox.subnet,
    }
}

/// Web Push's settings: the key from its file when one is named.
fn push_settings(settings: &Settings) -> Result<PushSettings, StartError> {
    let push = &settings.push;
    let private_key = match &push.vapid_private_key_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(key) => Some(key),
            // An optional Secret that does not exist: the key kept in the database serves.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), "no VAPID key file; using the key kept in the database");
                None
            }
            Err(err) => {
                return Err(PushError::KeyFile {
                    path: path.display().to_string(),
                    message: err.to_string(),
                }
                .into());
            }
        },
        None => None,
    };
    Ok(PushSettings {
        contact: push.push_contact.clone(),
        private_key,
        allowlist: Allowlist {
            hosts: push.push_hosts.clone(),
            insecure_origin: push.push_insecure_origin.clone(),
        },
        subscription_ttl: chrono::Duration::days(i64::from(push.push_subscription_days)),
        base_url: settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", settings.listen)),
    })
}

/// The Kubernetes runtime's settings.
pub fn kube_settings(settings: &Settings) -> KubeSettings {
    let kube = &settings.kube;
    KubeSettings {
        namespace: kube.namespace.clone(),
        image: kube.agent_image.clone(),
        default_image_tag: kube.agent_image_tag.clone(),
        default_runtime_class: kube.runtime_class.clone(),
        claude_token_secret: kube.claude_token_secret.clone(),
        github_token_secret: kube.github_token_secret.clone(),
        claude_home_claim: kube.claude_home_claim.clone(),
        node_selector: kube.node_selector.iter().cloned().collect(),
        runner: runner_site(settings, &settings.agent_url(settings.proxy_listen)),
        agent_env: settings.agent_env.clone(),
        idle_timeout: settings.idle_timeout(),
        stop_grace: settings.stop_grace(),
        job_ttl: Duration::from_secs(kube.job_ttl),
        ephemeral_storage: kube.agent_storage.clone(),
        workspace_storage_class: kube.workspace_storage_class.clone(),
        // Twice what can run at once (runs that end quickly make room for more), and never under 20.
        creates_per_minute: settings.max_running.saturating_mul(2).max(20),
    }
}

/// Serves `app` on `listener` (the proxies and `/metrics` on theirs) until `shutdown` resolves; then closes
/// every socket (code 1001, "going away"), waits for requests in flight and the notification being sent,
/// closes the store, which folds the WAL into the database file, and lets the runtime remove what it set up
/// here.
/// Agents are not touched: local ones end with the process, Jobs go on and are adopted by the next start.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let hub = app.farm.hub().clone();
    let closing = async move {
        shutdown.await;
        hub.close();
    };
    if let Some((proxies, proxy_listener)) = app.proxies {
        serve_beside("the proxies", proxy_listener, proxies, &app.farm);
    }
    let (metrics, metrics_listener) = app.metrics;
    serve_beside("/metrics", metrics_listener, metrics, &app.farm);
    // The peer's address decides whether its identity headers are believed.
    axum::serve(
        listener,
        app.router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(closing)
    .await?;
    // A notification already sent is also marked sent before the store closes (else it would go again).
    if tokio::time::timeout(PUSH_GRACE, app.push_worker).await.is_err() {
        tracing::warn!("the notification sender did not finish in time");
    }
    app.farm.store().close().await?;
    app.farm.runtime().shut_down().await;
    Ok(())
}

/// Serves `router` on `listener` in the background until the hub closes (the server stops).
fn serve_beside(what: &'static str, listener: TcpListener, router: Router, farm: &Farm) {
    let stop = farm.hub().closed();
    tokio::spawn(async move {
        let served = axum::serve(listener, router).with_graceful_shutdown(stop).await;
        if let Err(err) = served {
            tracing::error!(%err, "serving {what} failed");
        }
    });
}

/// Creates the data dir (0700) and takes its exclusive lock: one server per data dir.
fn prepare_data_dir(dir: &Path) -> Result<Flock<std::fs::File>, StartError> {
    use std::os::unix::fs::DirBuilderExt;
    let failed = |message: String| StartError::DataDir {
        path: dir.display().to_string(),
        message,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| failed(err.to_string()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("agentfarm.lock"))
        .map_err(|err| failed(err.to_string()))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|_| failed("another agentfarm server is using it".into()))
}

//! Putting it together: open the data dir and store, pick the runtime, reconcile, and serve.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use agentfarm_shared::api::ServerInfo;
use axum::Router;
use nix::fcntl::{Flock, FlockArg};
use tokio::net::TcpListener;

use crate::api::{self, AppState, RequestPolicy};
use crate::hub::Hub;
use crate::runtime::local::{LocalRuntime, LocalSettings, RunnerSite};
use crate::service::{Farm, FarmLimits};
use crate::settings::Settings;
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
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reconciling with the runtime failed.
    #[error("reconciling runs at start-up: {0}")]
    Reconcile(crate::error::AppError),
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// A started application: its router, its service, and the data-dir lock that keeps a second server away.
pub struct App {
    /// All routes.
    pub router: Router,
    /// The service.
    pub farm: Arc<Farm>,
    _lock: Flock<std::fs::File>,
}

/// Opens everything `settings` names, reconciles runs the store thinks are active, and starts the scheduler.
pub async fn start(settings: &Settings) -> Result<App, StartError> {
    let data_dir = &settings.data_dir;
    let lock = prepare_data_dir(data_dir)?;
    let store = Store::open(&data_dir.join("agentfarm.db"))?;
    let runtime = Arc::new(LocalRuntime::new(LocalSettings {
        runs_dir: data_dir.join("runs"),
        agent_command: settings.agent_command.clone(),
        runner: RunnerSite {
            claude_command: settings.claude_command.clone(),
            git_url: settings.github_url.clone(),
            api_url: settings.github_api_url.clone(),
        },
        env_passthrough: settings.env_passthrough.clone(),
        agent_env: settings.agent_env.clone(),
        idle_timeout: settings.idle_timeout(),
        stop_grace: settings.stop_grace(),
        shared_claude_dir: settings.shared_claude_dir.clone(),
    }));
    let info = ServerInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        runtime: crate::runtime::Runtime::info(runtime.as_ref()),
        max_running: settings.max_running,
    };
    let limits = FarmLimits {
        max_running: settings.max_running,
        log_retention: settings.log_retention,
    };
    let farm = Farm::new(store, runtime, Hub::new(HUB_CAPACITY), limits);
    farm.start().await.map_err(StartError::Reconcile)?;
    let policy = RequestPolicy {
        public_origin: settings.public_url.clone(),
        allowed_hosts: settings.allowed_hosts.clone(),
    };
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
    let router = api::router(AppState {
        farm: Arc::clone(&farm),
        policy: Arc::new(policy),
        info: Arc::new(info),
        web,
    });
    Ok(App {
        router,
        farm,
        _lock: lock,
    })
}

/// Serves `app` on `listener` until `shutdown` resolves; then closes every socket (code 1001, "going away"),
/// waits for requests in flight, and folds the WAL into the database. Agents are not touched: local ones end
/// with the process.
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
    axum::serve(listener, app.router)
        .with_graceful_shutdown(closing)
        .await?;
    app.farm.store().checkpoint().await?;
    Ok(())
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

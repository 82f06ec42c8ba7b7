//! Starting a server for a test and talking to it.

use std::sync::Arc;
use std::time::Duration;

use agentfarm::api::ws::session;
use agentfarm::hub::Hub;
use agentfarm::runtime::RunnerSite;
use agentfarm::runtime::local::{LocalRuntime, LocalSettings};
use agentfarm::service::{Farm, FarmLimits};
use agentfarm::store::{NewRun, Store};
use agentfarm_shared::config::ConfigSpec;
use axum::extract::ws::Message as AxumMessage;
use chrono::Utc;
use futures_util::{sink, stream};
use tokio::sync::mpsc;

use agentfarm::runtime::kube::KubeRuntime;
use agentfarm::settings::{RuntimeChoice, Settings};
use agentfarm_fake_kube::{FakeKube, Kubelet};
use agentfarm_fake_model::{FAKE_OAUTH_TOKEN, FakeModel, claude_bin};
use agentfarm_shared::redact::Redactor;
use agentfarm_shared::ws::{ClientFrame, ServerFrame};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;

pub use agentfarm_app_client::{App, PATIENCE, Socket, client, client_builder, respond, within};
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The VAPID contact servers that push are started with.
pub const PUSH_CONTACT: &str = "mailto:owner@example.com";

/// Turns notifications on in `settings`, with `push` (a local fake push service) allowed besides the real
/// push services.
pub fn push_to(settings: &mut Settings, push: &agentfarm_fake_push::FakePush) {
    settings.push.push_contact = Some(PUSH_CONTACT.into());
    settings.push.push_insecure_origin = Some(push.origin());
}

/// What `main` does before it starts a server, so tests that start one in this process do it too: installs the
/// TLS crypto provider (ring), a process-wide choice the library leaves to its binary.
pub fn install_tls_provider() {
    // Fails only when a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The built app: `$AGENTFARM_WEB_DIR`, else `frontend/dist` (`cargo xtask web` builds it).
pub fn web_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("AGENTFARM_WEB_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../frontend/dist"),
        std::path::PathBuf::from,
    );
    assert!(
        dir.join("index.html").exists(),
        "{} has no index.html: run `cargo xtask web` first",
        dir.display()
    );
    dir
}

/// The repository's root.
pub fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("backend/ has a parent")
        .to_owned()
}

/// The files under `dir` (relative to the repository) that git tracks or is about to (untracked but not
/// ignored): what a fresh clone holds, without build output.
pub fn repo_files(dir: &str) -> Vec<std::path::PathBuf> {
    let output = std::process::Command::new("git")
        .args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            dir,
        ])
        .current_dir(repo())
        .output()
        .expect("run git ls-files");
    assert!(output.status.success(), "git ls-files failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|path| repo().join(path))
        .filter(|path| path.is_file())
        .collect()
}

/// Every file under `dir`, recursively (symbolic links are not followed), whatever git thinks of it.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display())) {
            let entry = entry.expect("directory entry");
            if entry.file_type().expect("file type").is_dir() {
                dirs.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    found
}

/// The agent runner built with this workspace: `$AGENTFARM_RUNNER_BIN`, else next to this test binary's
/// directory (`target/<profile>/agentfarm-runner`, which `cargo test --workspace` builds).
pub fn runner_bin() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("AGENTFARM_RUNNER_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("agentfarm-runner");
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask test` (or `cargo build -p agentfarm-runner`) first",
        path.display()
    );
    path
}

/// Settings for a test server in `dir`, running the real CLI against `model` through the server's model proxy:
/// the owner's Claude token ([`FAKE_OAUTH_TOKEN`]) and GitHub token ([`TEST_GITHUB_TOKEN`]) in files only the
/// server reads.
pub fn test_settings(dir: &std::path::Path, model: &FakeModel) -> Settings {
    let mut settings = Settings::with_data_dir(dir.join("data"));
    settings.agent_command = runner_bin();
    settings.claude_command = claude_bin().display().to_string();
    settings.env_passthrough = vec!["PATH".into()];
    settings.anthropic_url = model.base_url();
    settings.agent_env = model
        .model_env()
        .into_iter()
        .filter(|(name, _)| !matches!(name.as_str(), "ANTHROPIC_BASE_URL" | "CLAUDE_CODE_OAUTH_TOKEN"))
        .collect();
    settings.claude_token_file = Some(owner_token(dir, "claude-token", FAKE_OAUTH_TOKEN));
    settings.github_token_file = Some(owner_token(dir, "github-token", TEST_GITHUB_TOKEN));
    settings.idle_timeout = 0;
    settings.stop_grace = 5;
    settings.runtime = RuntimeChoice::Local;
    // Servers run side by side: never the default port.
    settings.metrics_listen = "127.0.0.1:0".parse().unwrap();
    settings
}

/// Writes the owner's token `value` to `dir/name` (mode 0600), as a mounted Secret would hold it.
pub fn owner_token(dir: &std::path::Path, name: &str, value: &str) -> std::path::PathBuf {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, value.as_bytes()).unwrap();
    path
}

/// The owner's GitHub token test servers hold (the fake GitHub accepts it).
pub const TEST_GITHUB_TOKEN: &str = "ghp_agentfarmtestgithubtoken000000000000";

/// A fake cluster for `settings`: its kubelet runs the agent image as the runner built here (with this
/// process's PATH, for node and git). Agents get their capability from the Secret the runtime creates.
pub async fn fake_cluster(dir: &std::path::Path, settings: &Settings) -> FakeKube {
    let fake = FakeKube::start().await;
    fake.run_pods(Kubelet {
        programs: vec![(settings.kube.agent_image.repository().to_owned(), runner_bin())],
        root: dir.join("kubelet"),
        extra_env: vec![("PATH".into(), std::env::var("PATH").unwrap())],
    });
    fake
}

/// Which runtime a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Local processes.
    Local,
    /// Jobs on a fake cluster whose kubelet runs them as local processes.
    Kube,
}

/// A server in this process, with its own data dir and fake model.
pub struct TestServer {
    /// Its API (the URL, the client, the requests the web app makes): the server derefs to it.
    pub app: App,
    pub model: FakeModel,
    /// The fake cluster, for a server on the Kubernetes runtime.
    pub kube: Option<FakeKube>,
    pub dir: TempDir,
    /// `http://<the metrics listener>`.
    pub metrics_url: String,
    _shutdown: oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), agentfarm::server::StartError>>,
}

impl std::ops::Deref for TestServer {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> TestServer {
        Self::start_on(Backend::Local, configure).await
    }

    /// A fake GitHub holding `octo/app` (branch `main`), and a server whose git and GitHub URLs are its,
    /// configured further by `configure`.
    pub async fn with_github(
        configure: impl FnOnce(&mut Settings),
    ) -> (agentfarm_fake_github::FakeGithub, TestServer) {
        let github = agentfarm_fake_github::FakeGithub::start(TEST_GITHUB_TOKEN).await;
        github.create_repo("octo", "app", "main");
        let (git_url, api_url) = (github.git_url(), github.api_url());
        let server = Self::start_with(|s| {
            s.github_url = git_url;
            s.github_api_url = api_url;
            configure(s);
        })
        .await;
        (github, server)
    }

    /// A server on `backend`.
    pub async fn start_on(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestServer {
        install_tls_provider();
        let model = FakeModel::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut settings = test_settings(dir.path(), &model);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        settings.listen = listener.local_addr().unwrap();
        configure(&mut settings);
        let (shutdown, stop) = oneshot::channel::<()>();
        // Start before returning, so that start-up errors fail the test here.
        let (app, kube) = match backend {
            Backend::Local => (agentfarm::server::start(&settings).await.unwrap(), None),
            Backend::Kube => {
                let fake = fake_cluster(dir.path(), &settings).await;
                let runtime = KubeRuntime::new(fake.client(), agentfarm::server::kube_settings(&settings));
                let app =
                    agentfarm::server::start_on(&settings, Arc::new(runtime), Some(fake.client()), None)
                        .await
                        .unwrap();
                (app, Some(fake))
            }
        };
        let metrics_url = format!("http://{}", app.metrics_addr().unwrap());
        let serving = tokio::spawn(agentfarm::server::serve(app, listener, async {
            let _ = stop.await;
        }));
        TestServer {
            app: App::new(url),
            model,
            kube,
            dir,
            metrics_url,
            _shutdown: shutdown,
            serving,
        }
    }

    /// `GET /metrics` on its metrics listener: the exposition's text.
    pub async fn metrics(&self) -> String {
        let response = reqwest::get(format!("{}/metrics", self.metrics_url))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// The value of the sample named exactly `series` (name and labels) in [`TestServer::metrics`].
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    /// Stops the server and waits until it no longer listens; returns the fake model (agents may still use it).
    pub async fn stop(self) -> FakeModel {
        drop(self._shutdown);
        tokio::time::timeout(PATIENCE, self.serving)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        self.model
    }

    /// Stops the server and returns the close code `socket` received.
    pub async fn shutdown_and_read_close(self, mut socket: Socket) -> u16 {
        drop(self._shutdown);
        socket.close_code().await
    }
}

/// The value of the sample named exactly `series` (name and labels) in a Prometheus text exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A service over a real store with config `c` and run `r1`, and no scheduler: for driving sessions directly.
pub async fn bare_farm(hub_capacity: usize, log_retention: u64) -> (Arc<Farm>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("farm.db")).unwrap();
    store
        .create_config("c".into(), ConfigSpec::new("c", "task"), Utc::now())
        .await
        .unwrap();
    let run = NewRun {
        id: "r1".into(),
        config_id: "c".into(),
        config_version: 1,
        prompt: "task".into(),
        branch: "agentfarm/r1".into(),
    };
    store.insert_run(run, Utc::now()).await.unwrap();
    let runtime = Arc::new(LocalRuntime::new(LocalSettings {
        runs_dir: dir.path().join("runs"),
        agent_command: "true".into(),
        runner: RunnerSite {
            claude_command: "claude".into(),
            git_url: String::new(),
            control_url: String::new(),
            model_url: String::new(),
            direct: false,
        },
        env_passthrough: vec![],
        credentials: Settings::with_data_dir(dir.path()).owner_credentials(),
        agent_env: vec![],
        idle_timeout: Duration::ZERO,
        stop_grace: Duration::ZERO,
        shared_claude_dir: None,
        sandbox: None,
    }));
    let limits = FarmLimits {
        max_running: 1,
        log_retention,
    };
    let redactor = Redactor::new([]);
    (
        Farm::new(store, runtime, Hub::new(hub_capacity), limits, redactor),
        dir,
    )
}

/// A socket session served over channels: frames from the server wait in a queue of one.
pub struct ChannelClient {
    frames: mpsc::Receiver<AxumMessage>,
    say: mpsc::Sender<Result<AxumMessage, axum::Error>>,
}

impl ChannelClient {
    pub fn connect(farm: &Arc<Farm>) -> ChannelClient {
        let (frames_tx, frames) = mpsc::channel::<AxumMessage>(1);
        let (say, heard) = mpsc::channel(4);
        let to_client = sink::unfold(frames_tx, |tx, message: AxumMessage| async move {
            tx.send(message)
                .await
                .map(|()| tx)
                .map_err(|_| axum::Error::new("client gone"))
        });
        let from_client = stream::unfold(heard, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        tokio::spawn(session(
            Box::pin(to_client),
            Box::pin(from_client),
            Arc::clone(farm),
            None,
        ));
        ChannelClient { frames, say }
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        let text = serde_json::to_string(frame).unwrap();
        self.say.send(Ok(AxumMessage::Text(text.into()))).await.unwrap();
    }

    pub async fn next(&mut self) -> ServerFrame {
        let message = tokio::time::timeout(PATIENCE, self.frames.recv())
            .await
            .unwrap()
            .unwrap();
        let AxumMessage::Text(text) = message else {
            panic!("{message:?}")
        };
        serde_json::from_str(text.as_str()).unwrap()
    }
}

/// A server as its own "process": a thread with its own tokio runtime, so that stopping it ends every task
/// it had (as an exit would), not only the serving. On the Kubernetes runtime over the fake cluster at
/// `kube_url` when given, else on the runtime `settings` choose. Returns once it has reconciled and serves.
pub struct ServerProcess {
    pub url: String,
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

pub async fn start_process(settings: &Settings, kube_url: Option<String>) -> ServerProcess {
    install_tls_provider();
    let mut settings = settings.clone();
    let (ready, url) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            settings.listen = listener.local_addr().unwrap();
            let app = match kube_url {
                Some(kube_url) => {
                    let client =
                        kube::Client::try_from(kube::Config::new(kube_url.parse().unwrap())).unwrap();
                    let agents =
                        KubeRuntime::new(client.clone(), agentfarm::server::kube_settings(&settings));
                    agentfarm::server::start_on(&settings, Arc::new(agents), Some(client), None).await
                }
                None => agentfarm::server::start(&settings).await,
            }
            .unwrap();
            ready.send(url).unwrap();
            agentfarm::server::serve(app, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        // Everything this "process" started ends here.
        runtime.shutdown_background();
    });
    ServerProcess {
        url: tokio::time::timeout(PATIENCE, url).await.unwrap().unwrap(),
        stop,
        thread,
    }
}

impl ServerProcess {
    /// Stops it and waits until every task it had is gone.
    pub async fn exit(self) {
        drop(self.stop);
        let thread = self.thread;
        tokio::time::timeout(
            PATIENCE,
            tokio::task::spawn_blocking(move || thread.join().unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
    }
}

/// `agentfarm serve` of the real binary on `data_dir`: a free loopback port, the local runtime, agents told
/// to end when a turn ends. Add flags, then [`ServerBinary::spawn`] it (or run it to see it refuse).
pub fn serve_command(data_dir: &std::path::Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentfarm"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--runtime",
            "local",
            "--idle-timeout",
            "0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .kill_on_drop(true);
    command
}

/// The real server binary as a child process (killed if dropped): for crashes and signals.
pub struct ServerBinary {
    child: tokio::process::Child,
    pub url: String,
    pub http: reqwest::Client,
    /// Every line it printed on stdout and stderr so far.
    output: Arc<std::sync::Mutex<Vec<String>>>,
    /// The tasks reading its stdout and stderr: done once it has exited.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

/// Reads `pipe` line by line into `output` until it closes.
fn collect_lines(
    pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    output: Arc<std::sync::Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            output.lock().unwrap().push(line);
        }
    })
}

impl ServerBinary {
    /// A server on `data_dir` whose agents run the real CLI against `model`, through the server's model proxy
    /// (the owner's Claude token in the server's environment).
    pub async fn start(data_dir: &std::path::Path, model: &FakeModel) -> ServerBinary {
        Self::start_with_args(data_dir, model, &[]).await
    }

    /// [`ServerBinary::start`] with more arguments.
    pub async fn start_with_args(
        data_dir: &std::path::Path,
        model: &FakeModel,
        args: &[&str],
    ) -> ServerBinary {
        let env = model.model_env();
        let passthrough: Vec<&str> = std::iter::once("PATH")
            .chain(env.iter().map(|(k, _)| k.as_str()))
            .filter(|name| *name != "ANTHROPIC_BASE_URL")
            .collect();
        let mut command = serve_command(data_dir);
        command
            .arg("--agent-command")
            .arg(runner_bin())
            .arg("--claude-command")
            .arg(claude_bin())
            .arg("--anthropic-url")
            .arg(model.base_url())
            .arg("--agent-env-passthrough")
            .arg(passthrough.join(","))
            .args(args)
            .envs(env);
        Self::spawn(command).await
    }

    /// Runs `command` (see [`serve_command`]) and returns once it serves.
    pub async fn spawn(mut command: tokio::process::Command) -> ServerBinary {
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let url = within(async {
            while let Some(line) = stdout.next_line().await.unwrap() {
                output.lock().unwrap().push(line.clone());
                if let Some(at) = line.find("http://") {
                    return line[at..].split_whitespace().next().unwrap().to_owned();
                }
            }
            panic!("the server exited without printing its URL");
        })
        .await;
        // Keep reading, so the server never writes into a closed pipe.
        let readers = vec![
            collect_lines(stdout.into_inner(), Arc::clone(&output)),
            collect_lines(child.stderr.take().unwrap(), Arc::clone(&output)),
        ];
        ServerBinary {
            http: client(&url),
            child,
            url,
            output,
            readers,
        }
    }

    /// Its process id (the soak reads its memory and open files).
    #[cfg(feature = "soak")]
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// What it printed so far, stdout and stderr.
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        respond(self.http.get(format!("{}{path}", self.url))).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        respond(
            self.http
                .request(method, format!("{}{path}", self.url))
                .json(&body),
        )
        .await
    }

    /// SIGKILL; returns once it is gone.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// SIGTERM; returns how it exited and everything it printed.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id().unwrap()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = within(self.child.wait()).await.unwrap();
        for reader in self.readers.drain(..) {
            within(reader).await.unwrap();
        }
        (status, self.output())
    }
}
